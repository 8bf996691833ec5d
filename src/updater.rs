//! `cnamed update`: one RFC 2136 UPDATE built from the zone's settings (the CNAMEs of each
//! app, as `serve` would answer them), signed with TSIG, sent over TCP, and its answer read:
//! its RCODE, and its signature checked.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::snapshot::{expand_target, Zone};
use crate::sys::unix_seconds;
use crate::tsig::{sign_request, Key, ResponseChain};
use crate::wire::name::{check_label, name_to_wire, Charset};
use crate::wire::record::push_record_tail;
use crate::wire::update::{CLASS_ANY, UPDATE};
use crate::wire::{flags, Class, Header, Rcode, Rtype, MAX_LABEL, MAX_TCP};

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
    // The update section, and how many records it has.
    let (mut records, mut count) = (Vec::with_capacity(512), 0usize);
    let mut push = |owner: &[u8], rtype, class, ttl, rdata: &[u8]| {
        records.extend_from_slice(owner);
        push_record_tail(&mut records, rtype, class, ttl, &[rdata]);
        count += 1;
    };
    let owner = |service: &[u8], app: &str| -> Result<Vec<u8>, String> {
        check_label(app, Charset::Hostname, MAX_LABEL)
            .map_err(|why| format!("app {app:?} {why}"))?;
        let mut owner = vec![(service.len() + 1 + app.len()) as u8];
        owner.extend_from_slice(service);
        owner.push(b'-');
        owner.extend(app.bytes().map(|b| b.to_ascii_lowercase()));
        owner.extend_from_slice(&zone.apex);
        Ok(owner)
    };
    match change {
        Change::Set(apps) => {
            for (app, cluster) in apps {
                check_label(cluster, Charset::Hostname, MAX_LABEL)
                    .map_err(|why| format!("cluster {cluster:?} {why}"))?;
                for service in &zone.services {
                    let text = String::from_utf8_lossy(service);
                    let target = expand_target(&zone.target_template, &text, cluster);
                    let target =
                        name_to_wire(&target).map_err(|why| format!("target {target}: {why}"))?;
                    let owner = owner(service, app)?;
                    push(&owner, Rtype::CNAME, Class::IN, zone.cname_ttl, &target);
                }
            }
        }
        Change::Delete(apps) => {
            for app in apps {
                for service in &zone.services {
                    push(&owner(service, app)?, Rtype::ANY, CLASS_ANY, 0, &[]);
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
        push(&zone.apex, Rtype::SOA, Class::IN, zone.negative_ttl, &rdata);
    }
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
