//! RFC 2136 UPDATE messages, read (issue 23, its first part; the server does not answer
//! UPDATE yet): the zone section, the prerequisite section and the update section, each
//! record with its owner decompressed. What the records mean (RFC 2136 §2.4, §2.5: class ANY
//! and NONE, TTL 0, empty RDATA) is the caller's; the additional section (OPT, TSIG) is left
//! to the readers of those.

use super::name::read_name;
use super::record::{field, fixed_at, read_be16, RR_FIXED};
use super::{Class, Header, Opcode, Rtype, HEADER_LEN, MAX_NAME};

/// The opcode of UPDATE (RFC 2136 §1.3).
pub const UPDATE: Opcode = Opcode(5);

/// Class NONE (RFC 2136 §1.3): in an update, "delete this RR"; in a prerequisite, "this
/// RRset or name does not exist".
pub const CLASS_NONE: Class = Class(254);
/// Class ANY: in an update, "delete the RRset or name"; in a prerequisite, "exists".
pub const CLASS_ANY: Class = Class(255);

/// One record of the prerequisite or update section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRecord {
    /// The owner, uncompressed, lower case, in wire form.
    pub owner: Vec<u8>,
    pub rtype: Rtype,
    pub class: Class,
    pub ttl: u32,
    /// Where the RDATA starts in the message, and its length: names in it may point back
    /// into the message.
    pub rdata_at: usize,
    pub rdata_len: usize,
}

/// An UPDATE message, read.
#[derive(Debug)]
pub struct UpdateMessage<'m> {
    pub id: u16,
    /// The zone section's name, uncompressed, lower case, in wire form.
    pub zone: Vec<u8>,
    pub zone_class: Class,
    pub prerequisites: Vec<UpdateRecord>,
    pub updates: Vec<UpdateRecord>,
    message: &'m [u8],
}

/// Why a message cannot be read as an UPDATE: FORMERR (RFC 2136 §3.1.1, §3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// Not an UPDATE request at all (a response, another opcode).
    NotUpdate,
    /// Not one zone, or a zone section whose type is not SOA.
    Zone,
    /// A record that does not parse, or runs past the message.
    Malformed,
}

impl UpdateMessage<'_> {
    /// The name at the start of `record`'s RDATA (a CNAME's target), uncompressed, lower case.
    pub fn rdata_name(&self, record: &UpdateRecord) -> Option<Vec<u8>> {
        let mut name = [0u8; MAX_NAME];
        self.rdata_name_in(record, &mut name).map(<[u8]>::to_vec)
    }

    /// As [`Self::rdata_name`], read into `scratch`.
    pub fn rdata_name_in<'s>(
        &self,
        record: &UpdateRecord,
        scratch: &'s mut [u8; MAX_NAME],
    ) -> Option<&'s [u8]> {
        let rdata = self.message.get(..record.rdata_at + record.rdata_len)?;
        let (len, end) = read_name(rdata, record.rdata_at, scratch)?;
        (end == record.rdata_at + record.rdata_len).then(|| &scratch[..len])
    }

    /// The SOA RDATA of `record`: MNAME and RNAME, uncompressed, lower case, one after the
    /// other, then SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM.
    pub fn rdata_soa(&self, record: &UpdateRecord) -> Option<(Vec<u8>, [u32; 5])> {
        let end = record.rdata_at + record.rdata_len;
        let rdata = self.message.get(..end)?;
        let mut names = Vec::new();
        let mut name = [0u8; MAX_NAME];
        let mut at = record.rdata_at;
        for _ in 0..2 {
            let (len, after) = read_name(rdata, at, &mut name)?;
            names.extend(name[..len].iter().map(u8::to_ascii_lowercase));
            at = after;
        }
        let numbers = rdata.get(at..)?;
        if numbers.len() != 20 {
            return None;
        }
        let mut fields = [0u32; 5];
        for (field, bytes) in fields.iter_mut().zip(numbers.chunks_exact(4)) {
            *field = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Some((names, fields))
    }

    /// `record`'s RDATA as sent.
    pub fn rdata(&self, record: &UpdateRecord) -> &[u8] {
        &self.message[record.rdata_at..record.rdata_at + record.rdata_len]
    }
}

/// Reads `message` as an UPDATE request: header, one zone of type SOA, the prerequisites and
/// the updates, every record whole.
pub fn parse_update(message: &[u8]) -> Result<UpdateMessage<'_>, UpdateError> {
    let header = Header::new(message).ok_or(UpdateError::Malformed)?;
    if header.is_response() || header.opcode() != UPDATE {
        return Err(UpdateError::NotUpdate);
    }
    // ZOCOUNT, PRCOUNT and UPCOUNT sit where QDCOUNT, ANCOUNT and NSCOUNT do.
    if header.qdcount() != 1 {
        return Err(UpdateError::Zone);
    }
    let mut name = [0u8; MAX_NAME];
    let (len, at) = read_name(message, HEADER_LEN, &mut name).ok_or(UpdateError::Malformed)?;
    let zone = name[..len].to_vec();
    let fixed = message.get(at..at + 4).ok_or(UpdateError::Malformed)?;
    if Rtype(u16::from_be_bytes([fixed[0], fixed[1]])) != Rtype::SOA {
        return Err(UpdateError::Zone);
    }
    let zone_class = Class(u16::from_be_bytes([fixed[2], fixed[3]]));
    let mut at = at + 4;
    let mut section = |count: u16| -> Result<Vec<UpdateRecord>, UpdateError> {
        let mut records = Vec::new();
        for _ in 0..count {
            let (record, end) = read_record(message, at).ok_or(UpdateError::Malformed)?;
            records.push(record);
            at = end;
        }
        Ok(records)
    };
    let prerequisites = section(header.ancount())?;
    let updates = section(header.nscount())?;
    Ok(UpdateMessage {
        id: header.id(),
        zone,
        zone_class,
        prerequisites,
        updates,
        message,
    })
}

/// The record at `at`, and where the next one starts.
fn read_record(message: &[u8], at: usize) -> Option<(UpdateRecord, usize)> {
    let mut name = [0u8; MAX_NAME];
    let (len, owner_end) = read_name(message, at, &mut name)?;
    let fixed = fixed_at::<RR_FIXED>(message, owner_end)?;
    let rdata_at = owner_end + RR_FIXED;
    let rdata_len = usize::from(read_be16(fixed, field::RDLENGTH));
    let end = rdata_at + rdata_len;
    if end > message.len() {
        return None;
    }
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let record = UpdateRecord {
        owner: name[..len].to_vec(),
        rtype: Rtype(read_be16(fixed, field::TYPE)),
        class: Class(read_be16(fixed, field::CLASS)),
        ttl,
        rdata_at,
        rdata_len,
    };
    Some((record, end))
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::update_message::{self, UpdateMessage as _};
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::rdata::CNAME;
    use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;
    use crate::wire::name::name_to_wire;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
    }

    fn wire(text: &str) -> Vec<u8> {
        name_to_wire(text).unwrap()
    }

    /// An UPDATE as hickory (the client library of many control planes) builds it: its
    /// zone, a prerequisite, adds, and the deletions of RFC 2136 §2.5.2-2.5.4, read back with
    /// their classes, TTLs and (compressed) CNAME targets.
    #[test]
    fn updates_read_as_hickory_writes_them() {
        let zone = name("apps.example.com.");
        let mut message: Message = update_message::create(
            RecordSet::from(cname("ws-7.apps.example.com.", "ws-eu.example.com.")),
            zone.clone(),
            false,
        );
        message.set_id(41);
        // Prerequisite: the name is not in use (class NONE, type ANY).
        let mut absent = Record::with(name("sockjs-7.apps.example.com."), RecordType::ANY, 0);
        absent.set_dns_class(DNSClass::NONE);
        message.add_pre_requisite(absent);
        message.add_update(cname(
            "SOCKJS-7.Apps.Example.com.",
            "sockjs-eu.example.com.",
        ));
        // Delete one RR (NONE), an RRset (ANY, type CNAME), all RRsets at a name (ANY, ANY).
        let mut one = cname("api-8.apps.example.com.", "api-us.example.com.");
        one.set_dns_class(DNSClass::NONE).set_ttl(0);
        message.add_update(one);
        let mut rrset = Record::with(name("ws-8.apps.example.com."), RecordType::CNAME, 0);
        rrset.set_dns_class(DNSClass::ANY);
        message.add_update(rrset);
        let mut all = Record::with(name("ws-9.apps.example.com."), RecordType::ANY, 0);
        all.set_dns_class(DNSClass::ANY);
        message.add_update(all);
        let bytes = message.to_bytes().unwrap();

        let update = parse_update(&bytes).unwrap();
        assert_eq!(
            (update.id, update.zone.as_slice()),
            (41, wire("apps.example.com").as_slice())
        );
        assert_eq!(update.zone_class, Class::IN);
        // `create` asks that the RRset not exist (NONE, CNAME); ours that the name not exist.
        let prerequisites: Vec<_> = update
            .prerequisites
            .iter()
            .map(|r| (r.owner.clone(), r.class, r.rtype, r.rdata_len))
            .collect();
        assert_eq!(
            prerequisites,
            [
                (wire("ws-7.apps.example.com"), CLASS_NONE, Rtype::CNAME, 0),
                (wire("sockjs-7.apps.example.com"), CLASS_NONE, Rtype::ANY, 0),
            ]
        );
        let summary: Vec<_> = update
            .updates
            .iter()
            .map(|r| {
                (
                    r.owner.clone(),
                    r.rtype,
                    r.class,
                    r.ttl,
                    update.rdata_name(r),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    wire("ws-7.apps.example.com"),
                    Rtype::CNAME,
                    Class::IN,
                    300,
                    Some(wire("ws-eu.example.com"))
                ),
                (
                    wire("sockjs-7.apps.example.com"),
                    Rtype::CNAME,
                    Class::IN,
                    300,
                    Some(wire("sockjs-eu.example.com"))
                ),
                (
                    wire("api-8.apps.example.com"),
                    Rtype::CNAME,
                    CLASS_NONE,
                    0,
                    Some(wire("api-us.example.com"))
                ),
                (
                    wire("ws-8.apps.example.com"),
                    Rtype::CNAME,
                    CLASS_ANY,
                    0,
                    None
                ),
                (
                    wire("ws-9.apps.example.com"),
                    Rtype::ANY,
                    CLASS_ANY,
                    0,
                    None
                ),
            ]
        );
    }

    /// FORMERR cases (RFC 2136 §3.1.1): no zone or two, a zone of another type, a record cut
    /// short; and what is not an UPDATE at all.
    #[test]
    fn malformed_updates_are_named() {
        let zone = name("apps.example.com.");
        let rrset = RecordSet::from(cname("ws-7.apps.example.com.", "ws-eu.example.com."));
        let good = update_message::create(rrset, zone.clone(), false)
            .to_bytes()
            .unwrap();
        assert!(parse_update(&good).is_ok());
        for cut in 1..good.len() - HEADER_LEN {
            assert!(
                parse_update(&good[..good.len() - cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut two_zones = Message::new();
        two_zones.set_op_code(hickory_proto::op::OpCode::Update);
        two_zones.add_zone(Query::query(zone.clone(), RecordType::SOA));
        two_zones.add_zone(Query::query(zone.clone(), RecordType::SOA));
        assert_eq!(
            parse_update(&two_zones.to_bytes().unwrap()).unwrap_err(),
            UpdateError::Zone
        );
        let mut not_soa = Message::new();
        not_soa.set_op_code(hickory_proto::op::OpCode::Update);
        not_soa.add_zone(Query::query(zone.clone(), RecordType::A));
        assert_eq!(
            parse_update(&not_soa.to_bytes().unwrap()).unwrap_err(),
            UpdateError::Zone
        );
        let query = Message::new()
            .add_query(Query::query(zone, RecordType::SOA))
            .to_bytes()
            .unwrap();
        assert_eq!(parse_update(&query).unwrap_err(), UpdateError::NotUpdate);
    }
}
