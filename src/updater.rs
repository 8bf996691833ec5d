//! `cnamed update`: one RFC 2136 UPDATE built from the zone's settings (the CNAMEs of each
//! app, as `serve` would answer them), signed with TSIG, sent over TCP, and its answer read:
//! its RCODE, and its signature checked.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fxhash::FxHashMap;

use crate::snapshot::{expand_target, Zone};
use crate::sys::unix_seconds;
use crate::tsig::{sign_request, Key, ResponseChain};
use crate::wire::name::{check_label, name_to_wire, Charset};
use crate::wire::record::push_record_tail;
use crate::wire::update::{CLASS_ANY, UPDATE};
use crate::wire::{flags, Class, Header, Rcode, Rtype, HEADER_LEN, MAX_LABEL, MAX_TCP};

/// How long the server gets to answer (a commit is one fsync; a batch of apps, more).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What one `cnamed update` asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Each app to its cluster: added, or moved (its CNAMEs replaced).
    Set(Vec<(String, String)>),
    /// Each app removed: its names deleted.
    Delete(Vec<String>),
}

/// Why an update did not go through.
#[derive(Debug)]
pub enum UpdateError {
    /// The server could not be reached, or did not answer: exit 2.
    Unreachable(io::Error),
    /// The server answered with this RCODE (and, for NOTAUTH, a TSIG error): exit 1.
    Refused(Rcode, Option<u16>),
    /// The request could not be made (a bad app or cluster), or the answer was not signed
    /// right: exit 1.
    Invalid(String),
}

impl std::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(error) => write!(f, "no answer: {error}"),
            Self::Refused(rcode, None) => write!(
                f,
                "{}: {}",
                rcode.name(),
                match *rcode {
                    Rcode::REFUSED =>
                        "not allowed (an --update-key? the zone's shape? the server's log says why)",
                    Rcode::NOTAUTH => "the zone is not the server's, or the key was not accepted",
                    Rcode::NOTZONE => "a name outside the zone",
                    Rcode::SERVFAIL => "the server could not commit it (its log says why)",
                    Rcode::FORMERR => "the server could not read it",
                    _ => "a prerequisite did not hold",
                }
            ),
            Self::Refused(rcode, Some(error)) => {
                write!(
                    f,
                    "{} with TSIG error {error} (16 BADSIG, 17 BADKEY, 18 BADTIME)",
                    rcode.name()
                )
            }
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

/// The UPDATE message for `change` in `zone`, unsigned; `serial` adds the SOA that sets it.
pub fn build(
    zone: &Zone,
    change: &Change,
    serial: Option<u32>,
    id: u16,
) -> Result<Vec<u8>, String> {
    let mut section = Section::default();
    let owner = |service: &[u8], app: &str| -> Result<Vec<u8>, String> {
        check_label(app, Charset::Hostname, MAX_LABEL)
            .map_err(|why| format!("app {app:?} {why}"))?;
        let mut owner = vec![(service.len() + 1 + app.len()) as u8];
        owner.extend_from_slice(service);
        owner.push(b'-');
        owner.extend(app.bytes().map(|b| b.to_ascii_lowercase()));
        owner.extend_from_slice(&ZONE_POINTER);
        Ok(owner)
    };
    match change {
        Change::Set(apps) => {
            // Where each target was first written: apps on one cluster share them.
            let mut written: FxHashMap<Vec<u8>, u16> = FxHashMap::default();
            let records_at = HEADER_LEN + zone.apex.len() + 4;
            for (app, cluster) in apps {
                check_label(cluster, Charset::Hostname, MAX_LABEL)
                    .map_err(|why| format!("cluster {cluster:?} {why}"))?;
                for service in &zone.services {
                    let text = String::from_utf8_lossy(service);
                    let target = expand_target(&zone.target_template, &text, cluster);
                    let target = name_to_wire(&target.to_ascii_lowercase())
                        .map_err(|why| format!("target {target}: {why}"))?;
                    let owner = owner(service, app)?;
                    let rdata_at = records_at + section.records.len() + owner.len() + 10;
                    let rdata = match written.get(&target) {
                        Some(&at) => (0xC000 | at).to_be_bytes().to_vec(),
                        None => {
                            if let Ok(at) = u16::try_from(rdata_at) {
                                if at < 0x4000 {
                                    written.insert(target.clone(), at);
                                }
                            }
                            compressed(&target, &zone.apex)
                        }
                    };
                    section.push(&owner, Rtype::CNAME, Class::IN, zone.cname_ttl, &rdata);
                }
            }
        }
        Change::Delete(apps) => {
            for app in apps {
                for service in &zone.services {
                    section.push(&owner(service, app)?, Rtype::ANY, CLASS_ANY, 0, &[]);
                }
            }
        }
    }
    if let Some(serial) = serial {
        let mut rdata = zone.soa_names.clone();
        let [refresh, retry, expire] = zone.soa_timers;
        for field in [serial, refresh, retry, expire, zone.negative_ttl] {
            rdata.extend_from_slice(&field.to_be_bytes());
        }
        section.push(
            &ZONE_POINTER,
            Rtype::SOA,
            Class::IN,
            zone.negative_ttl,
            &rdata,
        );
    }
    let Section { records, count } = section;
    let count = u16::try_from(count).map_err(|_| "too many apps for one UPDATE")?;
    let mut message = Vec::with_capacity(512);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&(u16::from(UPDATE.0) << flags::OPCODE_SHIFT).to_be_bytes());
    for section in [1, 0, count, 0] {
        message.extend_from_slice(&section.to_be_bytes());
    }
    message.extend_from_slice(&zone.apex);
    message.extend_from_slice(&Rtype::SOA.0.to_be_bytes());
    message.extend_from_slice(&Class::IN.0.to_be_bytes());
    message.extend_from_slice(&records);
    if message.len() > MAX_TCP - 512 {
        return Err(format!(
            "{} bytes: too many apps for one UPDATE (64 KB)",
            message.len()
        ));
    }
    Ok(message)
}

/// The update section being written, and how many records it has.
#[derive(Default)]
struct Section {
    records: Vec<u8>,
    count: usize,
}

impl Section {
    fn push(&mut self, owner: &[u8], rtype: Rtype, class: Class, ttl: u32, rdata: &[u8]) {
        self.records.extend_from_slice(owner);
        push_record_tail(&mut self.records, rtype, class, ttl, &[rdata]);
        self.count += 1;
    }
}

/// A compression pointer (RFC 1035 §4.1.4) to the zone's name, which the zone section writes
/// right after the header: names end with it, so that 500 apps fit one message.
const ZONE_POINTER: [u8; 2] = [0xC0, HEADER_LEN as u8];

/// `name` (wire form) with its longest suffix that is also a suffix of `apex` replaced by a
/// pointer into the zone section.
fn compressed(name: &[u8], apex: &[u8]) -> Vec<u8> {
    let starts = |wire: &[u8]| {
        let mut at = 0;
        let mut starts = Vec::new();
        while at < wire.len() && wire[at] != 0 {
            starts.push(at);
            at += 1 + usize::from(wire[at]);
        }
        starts
    };
    let apex_starts = starts(apex);
    for at in starts(name) {
        let found = apex_starts
            .iter()
            .find(|&&from| apex[from..].eq_ignore_ascii_case(&name[at..]));
        if let Some(&from) = found {
            let pointer = 0xC000 | (HEADER_LEN + from) as u16;
            let mut out = name[..at].to_vec();
            out.extend_from_slice(&pointer.to_be_bytes());
            return out;
        }
    }
    name.to_vec()
}

/// Sends `message` signed with `key` to `server` over TCP and reads the answer: `Ok` on
/// NOERROR with a good signature.
pub fn send(server: SocketAddr, message: Vec<u8>, key: &Key) -> Result<(), UpdateError> {
    let mut signed = message;
    let len = signed.len();
    signed.resize(len + 512, 0);
    let (len, mac) = sign_request(&mut signed, len, key, u64::from(unix_seconds()))
        .ok_or_else(|| UpdateError::Invalid("cannot sign the UPDATE".into()))?;
    signed.truncate(len);
    let id = u16::from_be_bytes([signed[0], signed[1]]);
    let answer = exchange(server, &signed).map_err(UpdateError::Unreachable)?;
    let header =
        Header::new(&answer).ok_or_else(|| UpdateError::Invalid("a short answer".into()))?;
    if header.id() != id || !header.is_response() {
        return Err(UpdateError::Invalid("an answer to another message".into()));
    }
    let rcode = Rcode(header.flags() & flags::RCODE_MASK);
    let tsig_error = crate::tsig::find(&answer)
        .ok()
        .flatten()
        .map(|tsig| tsig.error);
    if rcode != Rcode::NOERROR {
        return Err(UpdateError::Refused(rcode, tsig_error.filter(|&e| e != 0)));
    }
    match ResponseChain::new(key, mac).verify(&answer, u64::from(unix_seconds())) {
        Ok(true) => Ok(()),
        Ok(false) => Err(UpdateError::Invalid(
            "NOERROR, but the answer is not signed".into(),
        )),
        Err(error) => Err(UpdateError::Invalid(format!(
            "NOERROR, but the answer's signature: {error:?}"
        ))),
    }
}

/// One message out and its answer back, each after its length.
fn exchange(server: SocketAddr, message: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&server, ANSWER_TIMEOUT)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut frame = (message.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(message);
    stream.write_all(&frame)?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::RData;
    use hickory_proto::serialize::binary::BinDecodable;

    /// 500 apps fit one message (names compressed against the zone), and an independent
    /// decoder reads every record back as written.
    #[test]
    fn five_hundred_apps_fit_one_update() {
        let zone = crate::testing::zone();
        let apps: Vec<(String, String)> = (0..500)
            .map(|i| (format!("app-{i:06}"), format!("Cluster{}", i % 7)))
            .collect();
        let message = build(&zone, &Change::Set(apps.clone()), Some(7), 1).unwrap();
        assert!(message.len() < 64 * 1024, "{} bytes", message.len());
        let decoded = Message::from_bytes(&message).unwrap();
        let records = decoded.name_servers();
        assert_eq!(records.len(), 500 * zone.services.len() + 1);
        for (i, record) in records[..records.len() - 1].iter().enumerate() {
            let (app, cluster) = &apps[i / zone.services.len()];
            let service = String::from_utf8_lossy(&zone.services[i % zone.services.len()]);
            assert_eq!(
                record.name().to_ascii(),
                format!("{service}-{app}.apps.example.com.")
            );
            let Some(RData::CNAME(target)) = record.data() else {
                panic!("{record}");
            };
            let want = expand_target(&zone.target_template, &service, cluster);
            assert!(target
                .0
                .to_ascii()
                .eq_ignore_ascii_case(&format!("{want}.")));
        }
        let soa = records.last().unwrap();
        assert_eq!(soa.name().to_ascii(), "apps.example.com.");
    }
}
