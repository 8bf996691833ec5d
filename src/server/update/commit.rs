//! The committer: UPDATEs taken together, judged one after another, journaled with one
//! fsync, published in one swap, and only then answered.

use std::net::UdpSocket;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::{Job, Reply};
use crate::answer::signed::sign_response;
use crate::journal::{Entry, Journal};
use crate::metrics::{ServerStats, UpdateStats};
use crate::server::checkpoint::Checkpointer;
use crate::server::shared::Shared;
use crate::snapshot::{CnameShape, Snapshot};
use crate::sys::unix_seconds;
use crate::tsig::{self, Key, Verdict};
use crate::update::{judge, Judged, Policy};
use crate::wire::name::wire_to_text;
use crate::wire::update::{parse_update, UPDATE};
use crate::wire::{flags, Rcode, HEADER_LEN, MAX_TCP};

/// Messages committed together at most.
const GROUP: usize = 256;

/// What the committer thread owns.
pub(in crate::server) struct Committer {
    pub(in crate::server) shared: Arc<Shared>,
    /// Shared with the reloader, which locks it too (always after `installing`).
    pub(in crate::server) journal: Arc<Mutex<Journal>>,
    /// Past this size (`--journal-max-size`), a checkpoint.
    pub(in crate::server) checkpoint: (u64, Checkpointer),
    pub(in crate::server) inbox: Receiver<Job>,
    /// Per listen address, a copy of a worker's UDP socket to answer from.
    pub(in crate::server) reply_sockets: Vec<UdpSocket>,
    /// Each new serial goes to the NOTIFY thread.
    pub(in crate::server) notify: Option<mpsc::Sender<u32>>,
    /// The keys that may update (`--update-key`), lower-case wire names.
    pub(in crate::server) update_keys: Vec<Vec<u8>>,
    /// `--clusters`, lower case.
    pub(in crate::server) clusters: Option<Vec<String>>,
    pub(in crate::server) stats: Arc<ServerStats>,
    pub(in crate::server) update_stats: Arc<UpdateStats>,
}

/// Starts the committer thread.
pub(in crate::server) fn spawn_committer(committer: Committer) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cnamed-update".into())
        .spawn(move || committer.run())
        .map(drop)
}

/// One message's fate in a group.
struct Outcome {
    job: Job,
    rcode: Rcode,
    /// The journal record of what it changed, and the snapshot it made.
    commit: Option<(Entry, Arc<Snapshot>)>,
    /// What the log says.
    note: String,
}

impl Committer {
    fn run(mut self) {
        self.journal_facts();
        let mut out = vec![0u8; MAX_TCP];
        while let Ok(first) = self.inbox.recv() {
            let mut group = vec![first];
            while group.len() < GROUP {
                match self.inbox.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            self.commit(group, &mut out);
        }
    }

    /// Judges, journals, publishes and answers one group.
    fn commit(&mut self, group: Vec<Job>, out: &mut [u8]) {
        let started = Instant::now();
        let keys = self.shared.tsig_keys.load_full();
        let keys = keys.as_deref().map_or(&[][..], Vec::as_slice);
        let installing = self
            .shared
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let live = self.shared.snapshot.load_full();
        let mut current = Arc::clone(&live);
        let mut outcomes = Vec::with_capacity(group.len());
        for job in group {
            let outcome = self.judge_one(job, &current, keys);
            if let Some((_, next)) = &outcome.commit {
                current = Arc::clone(next);
            }
            outcomes.push(outcome);
        }
        let entries = outcomes
            .iter()
            .filter_map(|o| o.commit.as_ref().map(|(entry, _)| entry));
        let records = entries.clone().count();
        let mut journal_size = 0;
        if records > 0 {
            let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
            let appended = journal.append(entries);
            journal_facts(&journal, &self.update_stats);
            journal_size = journal.len();
            drop(journal);
            if let Err(error) = appended {
                self.update_stats.journal_errors.add(1);
                crate::log!(
                    Error,
                    "cannot write the journal: {error}; {records} UPDATEs answered SERVFAIL"
                );
                for outcome in &mut outcomes {
                    if outcome.commit.take().is_some() {
                        outcome.rcode = Rcode::SERVFAIL;
                        outcome.note = format!("journal write failed: {error}");
                    }
                }
                current = Arc::clone(&live);
            }
        }
        if !Arc::ptr_eq(&current, &live) {
            self.publish(&live, &outcomes, &current);
            let (max_size, checkpointer) = &self.checkpoint;
            if journal_size > *max_size {
                checkpointer.start(Arc::clone(&current));
            }
        }
        drop(installing);
        let elapsed = started.elapsed();
        let stats = &self.update_stats;
        for outcome in outcomes {
            if let Some((entry, _)) = &outcome.commit {
                stats.app_changes.add(entry.changes.len() as u64);
            }
            stats.answered(outcome.rcode);
            self.answer(outcome, keys, out, elapsed);
        }
        stats.commits.add(u64::from(records > 0));
        let took = started.elapsed();
        stats.commit_micros.add(took.as_micros() as u64);
        if records > 0 {
            stats.commit_seconds.observe(took);
        }
    }

    /// The journal's size, for the metrics and status.
    fn journal_facts(&self) {
        let journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        journal_facts(&journal, &self.update_stats);
    }

    /// Records each commit's difference for IXFR, swaps in the last snapshot and tells the
    /// secondaries.
    fn publish(&self, live: &Arc<Snapshot>, outcomes: &[Outcome], last: &Arc<Snapshot>) {
        if let Some(gate) = &self.shared.xfr {
            let mut before = live;
            for (entry, after) in outcomes.iter().filter_map(|o| o.commit.as_ref()) {
                let apps = entry.changes.iter().map(|change| &*change.app);
                gate.record_reload(before, after, Some(apps));
                before = after;
            }
        }
        drop(self.shared.snapshot.swap(Arc::clone(last)));
        crate::server::fold::fold_if_due(&self.shared, last, &self.stats);
        self.stats.apps.set(last.app_count() as u64);
        self.stats.serial.set(u64::from(last.serial));
        if let Some(notify) = &self.notify {
            let _ = notify.send(last.serial);
        }
    }

    /// Checks one message's TSIG and judges it against `current`: its RCODE, and the commit
    /// it makes.
    fn judge_one(&self, job: Job, current: &Arc<Snapshot>, keys: &[Key]) -> Outcome {
        let outcome = |job, rcode, note: String| Outcome {
            job,
            rcode,
            commit: None,
            note,
        };
        let message = &job.message;
        // The TSIG first (RFC 8945 §5.2); its errors are answered by `sign_response`.
        let key = match tsig::find(message) {
            Err(tsig::Malformed) => return outcome(job, Rcode::FORMERR, "a bad TSIG".into()),
            Ok(None) => return outcome(job, Rcode::REFUSED, "unsigned".into()),
            Ok(Some(tsig)) => match tsig::verify(message, &tsig, keys, u64::from(unix_seconds())) {
                Verdict::Valid { key, .. } => key,
                Verdict::Error { error, .. } => {
                    return outcome(job, Rcode::NOTAUTH, format!("TSIG error {error}"))
                }
                Verdict::FormErr => return outcome(job, Rcode::FORMERR, "a bad TSIG MAC".into()),
            },
        };
        let key_name = wire_to_text(&key.name);
        if !self.update_keys.contains(&key.name) {
            let note = format!("key {key_name} is not an --update-key");
            return outcome(job, Rcode::REFUSED, note);
        }
        let update = match parse_update(message) {
            Ok(update) => update,
            Err(error) => return outcome(job, Rcode::FORMERR, format!("{error:?}")),
        };
        let judged = CnameShape::new(&current.zone).map_err(|why| (Rcode::SERVFAIL, why));
        let policy = Policy {
            clusters: self.clusters.as_deref(),
        };
        let judged = judged.and_then(|shape| {
            judge(&update, current, &shape, policy).map_err(|refused| (refused.rcode, refused.why))
        });
        let Judged { changes, serial } = match judged {
            Ok(judged) if judged.is_empty() => {
                return outcome(job, Rcode::NOERROR, format!("key {key_name}: no change"))
            }
            Ok(judged) => judged,
            Err((rcode, why)) => return outcome(job, rcode, format!("key {key_name}: {why}")),
        };
        let serial = serial.unwrap_or(current.serial.wrapping_add(1));
        let applied = current.with_changes(
            serial,
            changes
                .iter()
                .map(|change| (&*change.app, change.cluster.as_deref())),
        );
        let next = match applied {
            Ok(next) => next,
            Err(error) => return outcome(job, Rcode::REFUSED, format!("key {key_name}: {error}")),
        };
        let note = format!(
            "key {key_name}: {} changed, serial {serial}",
            crate::log::count(changes.len(), "app")
        );
        let entry = Entry {
            previous: current.serial,
            serial,
            changes,
        };
        Outcome {
            job,
            rcode: Rcode::NOERROR,
            commit: Some((entry, Arc::new(next))),
            note,
        }
    }

    /// Writes, signs and sends the answer of `outcome`, logs it, and gives a UDP buffer back.
    fn answer(&self, outcome: Outcome, keys: &[Key], out: &mut [u8], elapsed: std::time::Duration) {
        let Outcome {
            job, rcode, note, ..
        } = outcome;
        if rcode == Rcode::NOERROR {
            crate::log!(
                Info,
                "UPDATE from {}: {note} ({:.1} ms)",
                job.peer,
                elapsed.as_secs_f64() * 1e3
            );
        } else {
            let rcode = rcode.name();
            crate::log!(Warning, "UPDATE from {}: {rcode}: {note}", job.peer);
        }
        let len = write_answer(&job.message, rcode, out);
        let len = match tsig::find(&job.message) {
            Ok(Some(_)) => sign_response(&job.message, out, len, keys, u64::from(unix_seconds())),
            _ => Some(len),
        };
        if let Some(len) = len {
            match &job.reply {
                Reply::Udp { socket } => {
                    if let Some(socket) = self.reply_sockets.get(*socket) {
                        let _ = socket.send_to(&out[..len], job.peer);
                    }
                }
                Reply::Tcp(sender) => {
                    let _ = sender.send(out[..len].to_vec());
                }
            }
        }
        if let (Reply::Udp { .. }, Some(updates)) = (&job.reply, &self.shared.updates) {
            updates.give_back(job.message);
        }
    }
}

/// The journal's size, for the metrics and status.
pub(in crate::server) fn journal_facts(journal: &Journal, stats: &UpdateStats) {
    stats.journal_bytes.set(journal.len());
    stats.journal_records.set(journal.records());
    let oldest = journal.oldest_serial().map_or(0, u64::from);
    stats.journal_oldest_serial.set(oldest);
}

/// The answer to the UPDATE `message`: its ID, QR, opcode UPDATE and `rcode`, and its zone
/// section when it has a readable one (RFC 2136 §3.8); returns the length.
pub(in crate::server) fn write_answer(message: &[u8], rcode: Rcode, out: &mut [u8]) -> usize {
    let zone_end = crate::wire::skip_name(message, HEADER_LEN)
        .map(|end| end + 4)
        .filter(|&end| end <= message.len() && end <= out.len());
    let id = message.get(..2).unwrap_or(&[0, 0]);
    out[..2].copy_from_slice(id);
    let word = flags::QR | u16::from(UPDATE.0) << flags::OPCODE_SHIFT | rcode.header_bits();
    out[2..4].copy_from_slice(&word.to_be_bytes());
    out[4..12].copy_from_slice(&[0, u8::from(zone_end.is_some()), 0, 0, 0, 0, 0, 0]);
    match zone_end {
        Some(end) => {
            out[HEADER_LEN..end].copy_from_slice(&message[HEADER_LEN..end]);
            end
        }
        None => HEADER_LEN,
    }
}
