//! Zone transfers out: who may transfer (`--xfr-allow`), how many at once, and the AXFR
//! stream itself (RFC 5936), made from the snapshot being served.
//!
//! A TCP connection whose query is an allowed AXFR for the apex is handed, once its earlier
//! answers are sent, to a thread of its own (see `server::transfer`): transfers never take
//! a worker's time, and a transfer keeps the snapshot it started with.

pub mod axfr;
pub mod keys;
pub mod message;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::sys::unix_seconds;
use crate::wire::tsig::{self, Key, Signature, Verdict};
use crate::wire::{flags, Class, Rtype, HEADER_LEN, MAX_NAME};

/// Transfers served at once; one more is refused (REFUSED, as for a client not allowed).
pub const MAX_TRANSFERS: usize = 4;
/// QNAME, QTYPE and QCLASS at their longest.
const MAX_QUESTION: usize = MAX_NAME + 4;

/// An address prefix of `--xfr-allow`: `192.0.2.0/24`, `::1/128`, or an address alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Whether `ip` is inside this prefix (an IPv4 address never matches an IPv6 prefix).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(net) & mask_v4(self.len) == u32::from(ip) & mask_v4(self.len)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(net) & mask_v6(self.len) == u128::from(ip) & mask_v6(self.len)
            }
            _ => false,
        }
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an address or ADDR/LEN prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(len) if len <= max => len,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        // Host bits set (192.0.2.1/24) usually mean a typo in the length: refuse it.
        let host_bits = match addr {
            IpAddr::V4(v4) => u32::from(v4) & !mask_v4(len) != 0,
            IpAddr::V6(v6) => u128::from(v6) & !mask_v6(len) != 0,
        };
        if host_bits {
            return Err(format!("{text:?} has host bits set after /{len}"));
        }
        Ok(Self { addr, len })
    }
}

/// The network bits of an IPv4 prefix of `len` bits.
fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// The network bits of an IPv6 prefix of `len` bits.
fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Counts of transfers, written by the transfer threads and the workers, read by the
/// metrics.
#[derive(Debug, Default)]
pub struct XfrStats {
    pub completed: AtomicU64,
    /// Ended early: the client went away or stopped reading.
    pub failed: AtomicU64,
    /// Allowed, but refused because `MAX_TRANSFERS` were running.
    pub refused_busy: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
}

/// How a transfer request was authenticated (RFC 8945).
#[derive(Debug)]
pub enum Auth {
    /// No keys configured: the address list alone decides.
    Unsigned,
    /// Signed with `key`, checked: every response message is signed.
    Valid {
        key: Key,
        /// The key's name as the request spelled it.
        key_name: Vec<u8>,
        mac: Signature,
    },
    /// A TSIG error to answer with NOTAUTH: BADKEY or BADSIG unsigned, BADTIME signed.
    Failed {
        error: u16,
        key: Option<Key>,
        key_name: Vec<u8>,
        algorithm: Vec<u8>,
        mac: Signature,
        time_signed: u64,
    },
}

/// Who may transfer, and the transfers running.
#[derive(Debug)]
pub struct Gate {
    allow: Vec<Prefix>,
    active: Arc<AtomicUsize>,
    max: usize,
    stats: Arc<XfrStats>,
}

impl Gate {
    pub fn new(allow: Vec<Prefix>, max: usize) -> Self {
        Self {
            allow,
            active: Arc::new(AtomicUsize::new(0)),
            max,
            stats: Arc::default(),
        }
    }

    /// The transfer counters.
    pub fn stats(&self) -> Arc<XfrStats> {
        Arc::clone(&self.stats)
    }

    /// Transfers running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// A transfer for `query` (a whole message) from `peer`, if it is an AXFR of the zone at
    /// `apex` from an allowed address and a transfer slot is free. With `keys` (those of
    /// `--tsig-key-file`), the request must also be signed. Anything else (`None`) is
    /// answered by the ordinary rules: REFUSED for a transfer.
    pub fn request(
        &self,
        query: &[u8],
        peer: IpAddr,
        apex: &[u8],
        keys: Option<&ArcSwapOption<Vec<Key>>>,
    ) -> Option<Request> {
        if !self.allow.iter().any(|prefix| prefix.contains(peer)) {
            return None;
        }
        let (id, question) = axfr_question(query, apex)?;
        let keys = keys.and_then(ArcSwapOption::load_full);
        let auth = match keys.as_deref() {
            None => Auth::Unsigned,
            Some(keys) => match tsig::find(query) {
                Ok(Some(signed)) => {
                    match tsig::verify(query, &signed, keys, u64::from(unix_seconds())) {
                        Verdict::Valid { key, mac, .. } => Auth::Valid {
                            key: key.clone(),
                            key_name: signed.key_name.to_vec(),
                            mac,
                        },
                        Verdict::Error {
                            error,
                            key,
                            mac,
                            time_signed,
                        } => Auth::Failed {
                            error,
                            key: key.cloned(),
                            key_name: signed.key_name.to_vec(),
                            algorithm: signed.algorithm.to_vec(),
                            mac,
                            time_signed,
                        },
                    }
                }
                // Unsigned (or unreadable): not a transfer here; the ordinary rules refuse it.
                _ => return None,
            },
        };
        let Some(permit) = self.acquire() else {
            self.stats.refused_busy.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let mut raw = [0u8; MAX_QUESTION];
        raw[..question.len()].copy_from_slice(question);
        Some(Request {
            id,
            peer,
            stats: Arc::clone(&self.stats),
            auth,
            question: raw,
            question_len: question.len(),
            _permit: permit,
        })
    }

    fn acquire(&self) -> Option<Permit> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Permit(Arc::clone(&self.active)))
    }
}

/// The ID and the question (QNAME, QTYPE, QCLASS as received) of `query` if it is a
/// standard query with one question, AXFR IN for `apex`. Read here rather than with
/// `wire::parse_query`: a second caller would change how the compiler inlines the query path.
fn axfr_question<'q>(query: &'q [u8], apex: &[u8]) -> Option<(u16, &'q [u8])> {
    let header = query.get(..HEADER_LEN)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let opcode = (flags >> flags::OPCODE_SHIFT) & flags::OPCODE_MASK;
    if flags & flags::QR != 0 || opcode != 0 || header[4..6] != [0, 1] {
        return None;
    }
    let name = query.get(HEADER_LEN..HEADER_LEN + apex.len())?;
    if !name.eq_ignore_ascii_case(apex) {
        return None;
    }
    let end = HEADER_LEN + apex.len() + 4;
    let fixed = query.get(end - 4..end)?;
    let (qtype, qclass) = (
        u16::from_be_bytes([fixed[0], fixed[1]]),
        u16::from_be_bytes([fixed[2], fixed[3]]),
    );
    if Rtype(qtype) != Rtype::AXFR || Class(qclass) != Class::IN {
        return None;
    }
    Some((
        u16::from_be_bytes([header[0], header[1]]),
        &query[HEADER_LEN..end],
    ))
}

/// A transfer slot, given back when dropped.
#[derive(Debug)]
struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accepted transfer request: what its answers echo, and its slot.
#[derive(Debug)]
pub struct Request {
    pub id: u16,
    pub peer: IpAddr,
    /// Where the transfer counts its outcome.
    pub stats: Arc<XfrStats>,
    pub auth: Auth,
    question: [u8; MAX_QUESTION],
    question_len: usize,
    _permit: Permit,
}

impl Request {
    /// QNAME, QTYPE and QCLASS as received.
    pub fn question(&self) -> &[u8] {
        &self.question[..self.question_len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::QueryBuilder;

    #[test]
    fn prefixes() {
        let net: Prefix = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Prefix = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        for bad in [
            "192.0.2.1/24",
            "10.0.0.0/33",
            "::/129",
            "host",
            "1.2.3.4/x",
            "",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_are_allowed_axfrs_of_the_apex_within_the_cap() {
        let gate = Gate::new(vec!["127.0.0.0/8".parse().unwrap()], 2);
        let apex = b"\x04apps\x07example\x03com\x00";
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let axfr = QueryBuilder::new("APPS.example.com", 252).id(7).build();
        let first = gate.request(&axfr, local, apex, None).expect("allowed");
        assert_eq!(first.id, 7);
        assert_eq!(&first.question()[..5], b"\x04APPS");
        assert_eq!(gate.active(), 1);
        let outsider: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(gate.request(&axfr, outsider, apex, None).is_none());
        for other in [
            QueryBuilder::new("apps.example.com", 251).build(), // IXFR
            QueryBuilder::new("apps.example.com", 6).build(),
            QueryBuilder::new("ws-1.apps.example.com", 252).build(),
            QueryBuilder::new("apps.example.com", 252).class(3).build(),
        ] {
            assert!(gate.request(&other, local, apex, None).is_none());
        }
        let second = gate
            .request(&axfr, local, apex, None)
            .expect("a second slot");
        assert!(
            gate.request(&axfr, local, apex, None).is_none(),
            "over the cap"
        );
        drop(first);
        assert!(
            gate.request(&axfr, local, apex, None).is_some(),
            "a slot came back"
        );
        drop(second);
        assert_eq!(gate.active(), 0);
    }
}
