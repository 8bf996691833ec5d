//! Who may transfer and how many at once: a request admitted (address, question, TSIG,
//! a free slot) becomes a [`TransferRequest`] that holds its slot until the zone is sent.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwapOption;

use super::history::{Delta, History};
use super::{Prefix, RequestKind, XfrStats};
use crate::journal::replay::after;
use crate::journal::Journal;
use crate::snapshot::guard::serial_is_newer;
use crate::snapshot::Snapshot;
use crate::sys::unix_seconds;
use crate::tsig::{self, Key, Signature, Verdict};
use crate::wire::record::{field, fixed_at, read_be16, QUESTION_FIXED, RR_FIXED};
use crate::wire::{skip_name, Class, Header, Opcode, Rtype, HEADER_LEN, MAX_NAME};
use crate::xfr::inbound::client::DEFAULT_LIMITS;
use crate::xfr::pace::TransferLimits;

/// QNAME, QTYPE and QCLASS at their longest.
const MAX_QUESTION: usize = MAX_NAME + 4;

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
    /// One per transfer that may run at once: the client's address while one does.
    slots: Arc<Mutex<Vec<Option<IpAddr>>>>,
    /// Transfers at once to one address; 0: only the total.
    per_address: usize,
    /// How long and how slowly a transfer may go.
    limits: TransferLimits,
    stats: Arc<XfrStats>,
    /// What the last reloads changed, for IXFR.
    history: Mutex<History>,
    /// With UPDATE, the journal: IXFR from a serial the history no longer has is answered
    /// from it.
    journal: OnceLock<Arc<Mutex<Journal>>>,
    /// `--max-ixfr-ratio`: a difference larger than this percentage of the zone's records is
    /// answered with the whole zone; `None`: unlimited.
    max_ixfr_ratio: Option<u32>,
}

/// `--max-ixfr-ratio` when not given.
pub const DEFAULT_MAX_IXFR_RATIO: u32 = 50;

impl Gate {
    /// Transfers for `allow`, at most `max` at once, with `history` deltas kept for IXFR;
    /// no cap per address, and the default limits of a transfer.
    pub fn new(allow: Vec<Prefix>, max: usize, history: usize) -> Self {
        Self {
            allow,
            slots: Arc::new(Mutex::new(vec![None; max])),
            per_address: 0,
            limits: DEFAULT_LIMITS,
            stats: Arc::default(),
            history: Mutex::new(History::new(history)),
            journal: OnceLock::new(),
            max_ixfr_ratio: Some(DEFAULT_MAX_IXFR_RATIO),
        }
    }

    /// Answers IXFR from `journal` too, for serials the history does not reach.
    pub fn set_journal(&self, journal: Arc<Mutex<Journal>>) {
        let _ = self.journal.set(journal);
    }

    /// IXFR answered AXFR-style past `percent` of the zone's records (`None`: never).
    pub fn with_max_ixfr_ratio(mut self, percent: Option<u32>) -> Self {
        self.max_ixfr_ratio = percent;
        self
    }

    /// At most `per_address` transfers at once to one address (0: no cap but the total).
    pub fn with_per_address(mut self, per_address: usize) -> Self {
        self.per_address = per_address;
        self
    }

    /// Each transfer within `limits`.
    pub fn with_limits(mut self, limits: TransferLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits of each transfer.
    pub fn limits(&self) -> TransferLimits {
        self.limits
    }

    /// Records the change a reload makes from `old` to `new`, before `new` is served (a
    /// transfer that sees `new` then finds its delta). Costs a pass over both snapshots.
    pub fn record_reload<'a>(
        &self,
        old: &Snapshot,
        new: &Snapshot,
        changed: Option<impl IntoIterator<Item = &'a str>>,
    ) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if !history.enabled() {
            return;
        }
        history.push(match changed {
            Some(apps) => Delta::among(old, new, apps),
            None => Delta::between(old, new),
        });
        let (deltas, bytes) = history.size();
        self.stats
            .history_deltas
            .store(deltas as u64, Ordering::Relaxed);
        self.stats
            .history_bytes
            .store(bytes as u64, Ordering::Relaxed);
    }

    /// How to answer an IXFR from `serial` with `snapshot`: the deltas to send (none: the
    /// client is current), or `None` for the whole zone.
    /// A difference past `--max-ixfr-ratio` of the zone is the whole zone too.
    pub fn ixfr_path(&self, serial: u32, snapshot: &Snapshot) -> Option<Vec<Arc<Delta>>> {
        let deltas = (self.history_path(serial, snapshot))
            .or_else(|| self.journal_path(serial, snapshot))?;
        self.within_ratio(&deltas, snapshot).then_some(deltas)
    }

    /// [`Self::ixfr_path`] from the history in memory alone: no file read.
    pub fn ixfr_path_in_memory(&self, serial: u32, snapshot: &Snapshot) -> Option<Vec<Arc<Delta>>> {
        let deltas = self.history_path(serial, snapshot)?;
        self.within_ratio(&deltas, snapshot).then_some(deltas)
    }

    fn history_path(&self, serial: u32, snapshot: &Snapshot) -> Option<Vec<Arc<Delta>>> {
        if serial == snapshot.serial || serial_is_newer(serial, snapshot.serial) {
            return Some(Vec::new());
        }
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.path(serial, snapshot.serial)
    }

    /// Whether the CNAMEs `deltas` delete and add are at most `--max-ixfr-ratio` percent of
    /// the records of `snapshot`'s zone (BIND's `max-ixfr-ratio`): past that, the whole zone
    /// costs the secondary less than applying the difference.
    fn within_ratio(&self, deltas: &[Arc<Delta>], snapshot: &Snapshot) -> bool {
        let Some(percent) = self.max_ixfr_ratio else {
            return true;
        };
        let services = snapshot.zone.services.len() as u64;
        let changed: u64 = (deltas.iter())
            .map(|delta| (delta.removed.apps.len() + delta.added.apps.len()) as u64 * services)
            .sum();
        let zone = snapshot.app_count() as u64 * services + 1 + snapshot.zone.ns_text.len() as u64;
        changed * 100 <= u64::from(percent) * zone
    }

    /// The difference from `serial` to `snapshot`, condensed from the journal: when its
    /// records lead from exactly `serial` to the serial served.
    fn journal_path(&self, serial: u32, snapshot: &Snapshot) -> Option<Vec<Arc<Delta>>> {
        let journal = self.journal.get()?;
        let entries = journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries()
            .ok()?;
        let records = after(&entries, serial).ok()?;
        let (first, last) = (records.first()?, records.last()?);
        if first.previous != serial || last.serial != snapshot.serial {
            return None;
        }
        Some(vec![Arc::new(Delta::from_journal(
            serial, snapshot, records,
        ))])
    }

    /// The transfer counters.
    pub fn stats(&self) -> Arc<XfrStats> {
        Arc::clone(&self.stats)
    }

    /// Transfers running now.
    pub fn active(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.iter().filter(|slot| slot.is_some()).count()
    }

    /// A transfer for `query` (a whole message) from `peer`, if it is an AXFR or IXFR of the
    /// zone at `apex` from an allowed address and a transfer slot is free. With `keys` (those
    /// of `--tsig-key-file`), the request must also be signed. Anything else (`None`) is
    /// answered by the ordinary rules: REFUSED for a transfer.
    pub fn request(
        &self,
        query: &[u8],
        peer: IpAddr,
        apex: &[u8],
        keys: Option<&ArcSwapOption<Vec<Key>>>,
    ) -> Option<TransferRequest> {
        self.admit(query, peer, apex, keys, true)
    }

    /// The same for an IXFR over UDP, answered in one datagram on the worker: no slot.
    pub fn request_over_udp(
        &self,
        query: &[u8],
        peer: IpAddr,
        apex: &[u8],
        keys: Option<&ArcSwapOption<Vec<Key>>>,
    ) -> Option<TransferRequest> {
        self.admit(query, peer, apex, keys, false)
            .filter(|request| matches!(request.kind, RequestKind::Ixfr { .. }))
    }

    fn admit(
        &self,
        query: &[u8],
        peer: IpAddr,
        apex: &[u8],
        keys: Option<&ArcSwapOption<Vec<Key>>>,
        slot: bool,
    ) -> Option<TransferRequest> {
        if !self.allow.iter().any(|prefix| prefix.contains(peer)) {
            return None;
        }
        let (id, question, kind) = transfer_question(query, apex)?;
        let keys = keys.and_then(ArcSwapOption::load_full);
        let auth = match keys.as_deref() {
            None => Auth::Unsigned,
            Some(keys) => match tsig::find(query) {
                Ok(Some(signed)) => {
                    match tsig::verify(query, &signed, keys, u64::from(unix_seconds())) {
                        // Not a transfer here: the ordinary rules answer it, FORMERR.
                        Verdict::FormErr => return None,
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
        let permit = match slot {
            true => match self.acquire(peer) {
                Some(permit) => Some(permit),
                None => {
                    self.stats.refused_busy[kind.index()].fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            false => None,
        };
        let mut raw = [0u8; MAX_QUESTION];
        raw[..question.len()].copy_from_slice(question);
        Some(TransferRequest {
            id,
            kind,
            peer,
            stats: Arc::clone(&self.stats),
            auth,
            question: raw,
            question_len: question.len(),
            permit,
        })
    }

    /// A free slot for a transfer to `peer`, unless all are taken or `peer` has its share.
    fn acquire(&self, peer: IpAddr) -> Option<Permit> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let held = slots.iter().filter(|slot| **slot == Some(peer)).count();
        if self.per_address != 0 && held >= self.per_address {
            return None;
        }
        let free = slots.iter().position(Option::is_none)?;
        slots[free] = Some(peer);
        Some(Permit {
            slots: Arc::clone(&self.slots),
            index: free,
        })
    }
}

/// The ID, the question (QNAME, QTYPE, QCLASS as received) and the kind of `query` if it is
/// a standard query with one question, AXFR or IXFR IN for `apex`; an IXFR must carry the
/// client's SOA in its authority section (RFC 1995 §3). Read here rather than with
/// `wire::parse_query`: a second caller would change how the compiler inlines the query path.
fn transfer_question<'q>(query: &'q [u8], apex: &[u8]) -> Option<(u16, &'q [u8], RequestKind)> {
    let header = Header::new(query)?;
    if header.is_response() || header.opcode() != Opcode::QUERY || header.qdcount() != 1 {
        return None;
    }
    let name = query.get(HEADER_LEN..HEADER_LEN + apex.len())?;
    if !name.eq_ignore_ascii_case(apex) {
        return None;
    }
    let fixed = fixed_at::<QUESTION_FIXED>(query, HEADER_LEN + apex.len())?;
    let end = HEADER_LEN + apex.len() + QUESTION_FIXED;
    if Class(read_be16(fixed, field::QCLASS)) != Class::IN {
        return None;
    }
    let kind = match Rtype(read_be16(fixed, field::QTYPE)) {
        Rtype::AXFR => RequestKind::Axfr,
        Rtype::IXFR => RequestKind::Ixfr {
            serial: client_serial(query, header, end)?,
        },
        _ => return None,
    };
    Some((header.id(), &query[HEADER_LEN..end], kind))
}

/// The SERIAL of the SOA record at `at`, the first after the question of an IXFR request:
/// the fifth field from the end of its RDATA, so the names before need no reading.
fn client_serial(query: &[u8], header: Header<'_>, at: usize) -> Option<u32> {
    // No answers, and the SOA first in the authority section.
    if header.ancount() != 0 || header.nscount() == 0 {
        return None;
    }
    let owner_end = skip_name(query, at)?;
    let fixed = fixed_at::<RR_FIXED>(query, owner_end)?;
    if Rtype(read_be16(fixed, field::TYPE)) != Rtype::SOA {
        return None;
    }
    let rdlength = usize::from(read_be16(fixed, field::RDLENGTH));
    let end = owner_end + RR_FIXED + rdlength;
    if rdlength < 22 || end > query.len() {
        return None;
    }
    let serial = query.get(end - 20..end - 16)?;
    Some(u32::from_be_bytes([
        serial[0], serial[1], serial[2], serial[3],
    ]))
}

/// A transfer slot, given back when dropped.
#[derive(Debug)]
struct Permit {
    slots: Arc<Mutex<Vec<Option<IpAddr>>>>,
    index: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots[self.index] = None;
    }
}

/// An accepted transfer request: what its answers echo, and its slot.
#[derive(Debug)]
pub struct TransferRequest {
    pub id: u16,
    pub kind: RequestKind,
    pub peer: IpAddr,
    /// Where the transfer counts its outcome.
    pub stats: Arc<XfrStats>,
    pub auth: Auth,
    question: [u8; MAX_QUESTION],
    question_len: usize,
    /// The transfer slot held (none over UDP), given back by [`Self::release_slot`] or when
    /// the request is dropped.
    permit: Option<Permit>,
}

impl TransferRequest {
    /// Gives the transfer slot back as soon as the last message is written, before anything
    /// else the thread does (a thread at low priority on a busy core may wait long for the
    /// CPU), so that a client that has read to the end can start its next transfer at once.
    pub fn release_slot(&mut self) {
        self.permit = None;
    }

    /// QNAME, QTYPE and QCLASS as received.
    pub fn question(&self) -> &[u8] {
        &self.question[..self.question_len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::QueryBuilder;

    /// A difference past `--max-ixfr-ratio` of the zone is answered whole; one within it, or
    /// any with `unlimited`, by its deltas.
    #[test]
    fn a_difference_past_the_ratio_is_the_whole_zone() {
        let zone = crate::testing::zone();
        let build = |serial, moved: usize| {
            let apps: Vec<(String, &str)> = (0..100)
                .map(|i| (i.to_string(), if i < moved { "us" } else { "eu" }))
                .collect();
            Snapshot::from_apps(serial, apps.iter().map(|(a, c)| (a.as_str(), *c)), &zone).unwrap()
        };
        let (base, few, many) = (build(1, 0), build(2, 20), build(3, 60));
        let allow = || vec!["127.0.0.0/8".parse().unwrap()];
        for (ratio, many_whole) in [(Some(50), true), (None, false)] {
            let gate = Gate::new(allow(), 2, 4).with_max_ixfr_ratio(ratio);
            gate.record_reload(&base, &few, None::<[&str; 0]>);
            // 20 apps moved: 120 of 301 records (40%).
            let path = gate.ixfr_path(1, &few).expect("deltas");
            assert_eq!(path.len(), 1);
            gate.record_reload(&few, &many, None::<[&str; 0]>);
            // From 1: 60 moved, 360 of 301 records; from 2: 40 moved, 240 (80%).
            assert_eq!(gate.ixfr_path(1, &many).is_none(), many_whole, "{ratio:?}");
            assert_eq!(gate.ixfr_path_in_memory(2, &many).is_none(), many_whole);
            assert_eq!(gate.ixfr_path(3, &many).map(|path| path.len()), Some(0));
        }
    }

    #[test]
    fn requests_are_allowed_axfrs_of_the_apex_within_the_cap() {
        let gate = Gate::new(vec!["127.0.0.0/8".parse().unwrap()], 2, 0);
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
            QueryBuilder::new("apps.example.com", 251).build(), // IXFR without an SOA
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

    /// With a cap per address, a second transfer to one address is refused while another
    /// address still gets a slot (hardening round three, item 4).
    #[test]
    fn the_cap_per_address_leaves_slots_for_others() {
        let gate = Gate::new(vec!["127.0.0.0/8".parse().unwrap()], 4, 0).with_per_address(1);
        let apex = b"\x04apps\x07example\x03com\x00";
        let axfr = QueryBuilder::new("apps.example.com", 252).build();
        let (one, two): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = gate.request(&axfr, one, apex, None).expect("a slot");
        assert!(gate.request(&axfr, one, apex, None).is_none(), "its share");
        let other = gate
            .request(&axfr, two, apex, None)
            .expect("another address");
        drop(first);
        assert!(gate.request(&axfr, one, apex, None).is_some(), "given back");
        drop(other);
    }
}
