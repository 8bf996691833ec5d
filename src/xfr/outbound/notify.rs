//! NOTIFY (RFC 1996) messages: what a primary sends its secondaries after a new serial, and
//! how their acknowledgements are recognised.

use crate::wire::name::read_name;
use crate::wire::record::{fixed_at, read_be16};
use crate::wire::{flags, Class, Header, Opcode, Rcode, Rtype, HEADER_LEN, MAX_NAME};

/// The NOTIFY for the zone at `apex` (wire form): header with `id`, opcode NOTIFY and AA,
/// the question `apex SOA IN`, and the SOA (`soa`, TYPE to RDATA, owner a pointer to the
/// question) in the answer section as a hint (RFC 1996 §3.7). Returns the length, `None` if
/// `out` is too small.
pub fn message(id: u16, apex: &[u8], soa: &[u8], out: &mut [u8]) -> Option<usize> {
    let flags = (u16::from(Opcode::NOTIFY.0) << flags::OPCODE_SHIFT) | flags::AA;
    let mut header = [0u8; HEADER_LEN];
    header[..2].copy_from_slice(&id.to_be_bytes());
    header[2..4].copy_from_slice(&flags.to_be_bytes());
    header[4..6].copy_from_slice(&1u16.to_be_bytes());
    header[6..8].copy_from_slice(&1u16.to_be_bytes());
    let pointer = (0xC000u16 | HEADER_LEN as u16).to_be_bytes();
    let parts: [&[u8]; 6] = [
        &header,
        apex,
        &Rtype::SOA.0.to_be_bytes(),
        &Class::IN.0.to_be_bytes(),
        &pointer,
        soa,
    ];
    let mut len = 0;
    for part in parts {
        out.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    Some(len)
}

/// The acknowledgement of the NOTIFY `query` for the zone at `apex` (wire form): its header
/// with QR and AA, NOERROR, and its question, in `out`; `None` if `query` is not a NOTIFY
/// with the question `apex SOA IN`.
pub fn notify_answer(query: &[u8], apex: &[u8], out: &mut [u8]) -> Option<usize> {
    let header = Header::new(query)?;
    if header.is_response() || header.opcode() != Opcode::NOTIFY || header.qdcount() != 1 {
        return None;
    }
    let question_end = HEADER_LEN + apex.len() + 4;
    let question = query.get(HEADER_LEN..question_end)?;
    let (name, fixed) = question.split_at(apex.len());
    if !name.eq_ignore_ascii_case(apex) || fixed != [0, 6, 0, 1] {
        return None;
    }
    let out = out.get_mut(..question_end)?;
    out[..2].copy_from_slice(&query[..2]);
    let answer_flags = header.flags() & !flags::RCODE_MASK | flags::QR | flags::AA;
    out[2..4].copy_from_slice(&answer_flags.to_be_bytes());
    out[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out[HEADER_LEN..].copy_from_slice(question);
    Some(question_end)
}

/// The serial a NOTIFY announces: the SOA of the zone at `apex` in its answer section (RFC
/// 1996 §3.7), if it has one. `query` must have passed [`notify_answer`] (its question is
/// `apex SOA IN`, uncompressed). A hint only: the sender's address can be forged.
pub fn announced_serial(query: &[u8], apex: &[u8]) -> Option<u32> {
    if Header::new(query)?.ancount() == 0 {
        return None;
    }
    let mut name = [0u8; MAX_NAME];
    let answer_at = HEADER_LEN + apex.len() + 4;
    let (len, record_at) = read_name(query, answer_at, &mut name)?;
    if !name[..len].eq_ignore_ascii_case(apex) {
        return None;
    }
    let fixed = fixed_at::<10>(query, record_at)?;
    if read_be16(fixed, 0..2) != Rtype::SOA.0 {
        return None;
    }
    let rdata_at = record_at + 10;
    let rdata_end = rdata_at + usize::from(read_be16(fixed, 8..10));
    let rdata = query.get(..rdata_end)?;
    let (_, rname_at) = read_name(rdata, rdata_at, &mut name)?;
    let (_, serial_at) = read_name(rdata, rname_at, &mut name)?;
    let serial = rdata.get(serial_at..serial_at + 4)?;
    Some(u32::from_be_bytes(serial.try_into().ok()?))
}

/// The RCODE of `response` if it answers the NOTIFY with `id`: QR set, opcode NOTIFY.
pub fn acknowledgement(response: &[u8], id: u16) -> Option<Rcode> {
    let header = Header::new(response)?;
    let matches = header.id() == id && header.is_response() && header.opcode() == Opcode::NOTIFY;
    matches.then_some(Rcode(header.rcode_low()))
}

/// The query `apex SOA IN` (wire form apex) with `id`, no recursion asked: how a primary
/// asks a secondary which serial it serves. Returns the length, `None` if `out` is too
/// small.
pub fn soa_query(id: u16, apex: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut header = [0u8; HEADER_LEN];
    header[..2].copy_from_slice(&id.to_be_bytes());
    header[4..6].copy_from_slice(&1u16.to_be_bytes());
    let parts: [&[u8]; 4] = [
        &header,
        apex,
        &Rtype::SOA.0.to_be_bytes(),
        &Class::IN.0.to_be_bytes(),
    ];
    let mut len = 0;
    for part in parts {
        out.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    Some(len)
}

/// The serial in `response` if it answers [`soa_query`] with `id` for `apex`: QR set,
/// opcode QUERY, NOERROR, the question as asked and the zone's SOA first in the answers.
pub fn soa_answer_serial(response: &[u8], id: u16, apex: &[u8]) -> Option<u32> {
    let header = Header::new(response)?;
    let answers = header.id() == id
        && header.is_response()
        && header.opcode() == Opcode::QUERY
        && header.rcode_low() == 0
        && header.qdcount() == 1;
    let question = response.get(HEADER_LEN..HEADER_LEN + apex.len() + 4)?;
    let (name, fixed) = question.split_at(apex.len());
    if !answers || !name.eq_ignore_ascii_case(apex) || fixed != [0, 6, 0, 1] {
        return None;
    }
    announced_serial(response, apex)
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::RecordType;
    use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

    use super::*;
    use crate::snapshot::Snapshot;

    /// The sample dump's snapshot and our NOTIFY for it with `id`.
    fn sample_notify(id: u16) -> (Snapshot, Vec<u8>) {
        let zone = crate::testing::zone();
        let snapshot =
            Snapshot::from_json(include_bytes!("../../../data/apps.json"), &zone).unwrap();
        let mut out = [0u8; 512];
        let len = message(id, &zone.apex, snapshot.soa_answer(), &mut out).unwrap();
        (snapshot, out[..len].to_vec())
    }

    #[test]
    fn notify_and_its_acknowledgement() {
        let (snapshot, out) = sample_notify(0x1234);
        let len = out.len();
        let notify = Message::from_bytes(&out[..len]).expect("hickory decodes it");
        assert_eq!(notify.op_code(), OpCode::Notify);
        assert!(notify.authoritative());
        assert_eq!(notify.queries()[0].name().to_ascii(), "apps.example.com.");
        assert_eq!(notify.queries()[0].query_type(), RecordType::SOA);
        let soa = notify.answers()[0].data().unwrap().as_soa().unwrap();
        assert_eq!(soa.serial(), snapshot.serial);

        let mut reply = notify.clone();
        reply.set_message_type(hickory_proto::op::MessageType::Response);
        let bytes = reply.to_bytes().unwrap();
        assert_eq!(acknowledgement(&bytes, 0x1234), Some(Rcode::NOERROR));
        assert_eq!(acknowledgement(&bytes, 0x1235), None, "another ID");
        assert_eq!(acknowledgement(&out[..len], 0x1234), None, "not a response");
    }

    /// The serial in a NOTIFY's answer section, as we send it and as hickory encodes one;
    /// none without an SOA there, or when the record is cut short.
    /// The SOA query reads as one to hickory; an answer to it gives its serial, and one to
    /// another ID, an error or another question gives none.
    #[test]
    fn soa_queries_and_their_answers() {
        let (snapshot, _) = sample_notify(1);
        let apex = &snapshot.zone.apex;
        let mut out = [0u8; 512];
        let len = soa_query(77, apex, &mut out).unwrap();
        let query = Message::from_bytes(&out[..len]).unwrap();
        assert_eq!(query.id(), 77);
        assert!(!query.recursion_desired());
        assert_eq!(query.queries()[0].query_type(), RecordType::SOA);
        assert_eq!(query.queries()[0].name().to_ascii(), "apps.example.com.");
        let mut answer = query.clone();
        answer.set_message_type(hickory_proto::op::MessageType::Response);
        let soa = hickory_proto::rr::Record::from_rdata(
            query.queries()[0].name().clone(),
            300,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                hickory_proto::rr::Name::from_ascii("ns1.example.com.").unwrap(),
                hickory_proto::rr::Name::from_ascii("hostmaster.example.com.").unwrap(),
                4_000_000_123,
                1,
                2,
                3,
                4,
            )),
        );
        answer.add_answer(soa);
        let bytes = answer.to_bytes().unwrap();
        assert_eq!(soa_answer_serial(&bytes, 77, apex), Some(4_000_000_123));
        assert_eq!(soa_answer_serial(&bytes, 78, apex), None);
        assert_eq!(soa_answer_serial(&out[..len], 77, apex), None, "a query");
        let mut refused = answer.clone();
        refused.set_response_code(hickory_proto::op::ResponseCode::Refused);
        assert_eq!(
            soa_answer_serial(&refused.to_bytes().unwrap(), 77, apex),
            None
        );
        let other = b"\x05other\x07example\x03com\x00";
        assert_eq!(soa_answer_serial(&bytes, 77, other), None);
    }

    #[test]
    fn the_announced_serial_is_read_from_the_answer() {
        let (snapshot, out) = sample_notify(7);
        let (zone, len) = (&snapshot.zone, out.len());
        assert_eq!(
            announced_serial(&out[..len], &zone.apex),
            Some(snapshot.serial)
        );
        for cut in 1..len - 12 - zone.apex.len() - 4 {
            assert_eq!(
                announced_serial(&out[..len - cut], &zone.apex),
                None,
                "{cut}"
            );
        }

        let mut notify = Message::from_bytes(&out[..len]).unwrap();
        let mut soa = notify.answers()[0].clone();
        soa.data_mut()
            .and_then(|data| match data {
                hickory_proto::rr::RData::SOA(soa) => Some(soa),
                _ => None,
            })
            .unwrap()
            .increment_serial();
        notify.take_answers();
        notify.add_answer(soa);
        let bytes = notify.to_bytes().unwrap();
        let expected = snapshot.serial.wrapping_add(1);
        assert_eq!(announced_serial(&bytes, &zone.apex), Some(expected));
        notify.take_answers();
        let bytes = notify.to_bytes().unwrap();
        assert_eq!(announced_serial(&bytes, &zone.apex), None);
    }
}
