//! The dump read at memory speed: its `"apps"` read straight from the bytes by
//! [`entries`](super::entries), a block at a time, each block's parts on every core; the
//! rest of the document (serial, unknown fields, what follows the apps) read by serde_json
//! as ever.
//!
//! A dump is read as a stream (it may be a FIFO): blocks are read into one buffer and an
//! entry cut by a block's end is read again at the next block's start. A block is split
//! into parts just after a comma near each thread's share; a part's reader assumes it starts
//! at an entry, and the assumption is checked when the part before ends: it must end
//! exactly there, after a comma. Where it does not (a comma inside a string), the block is
//! read again on one thread. Parts are merged in order, so the first refusal in the file is
//! the one reported, and clusters get their indices in the order a single pass gives.
//!
//! Anything before the apps other than `{"serial": DIGITS, "apps": {` (unknown fields,
//! escapes, keys in another order) is handed with the rest of the stream to serde_json
//! whole. After the apps, serde_json reads the document again without them: the start up to
//! the apps' `{`, then `}`, then what followed; it finds a missing or repeated field and
//! trailing characters as before.

use std::io::Read;

use serde::de::Error as _;

use super::entries::{read_part, KnownClusters, Part, Stop, NEW_CLUSTER};
use super::{AppsBuilder, Unbuilt};
use crate::snapshot::zone::Zone;

/// How a dump is read: by how many threads, in blocks of how many bytes.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub threads: usize,
    pub block: usize,
}

impl Reading {
    /// Every core this process may run on (its CPU affinity), in 4 MiB blocks per thread.
    pub fn every_core() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            threads,
            block: threads * BLOCK_PER_THREAD,
        }
    }
}

const BLOCK_PER_THREAD: usize = 4 << 20;
/// The most bytes read for the start of the document before it is left to serde_json.
const MAX_PREFIX: usize = 64 << 10;
/// Below this, a block is read by one thread: a thread costs more than it saves.
const MIN_PART: usize = 64 << 10;

/// Reads a dump of `size` bytes from `reader`; the error is serde_json's, or a part's
/// refusal with its byte offset.
pub(in crate::snapshot) fn parse_stream<'z>(
    mut reader: impl Read,
    size: u64,
    zone: &'z Zone,
    reading: Reading,
) -> Result<Unbuilt<'z>, serde_json::Error> {
    let mut buffer = Vec::new();
    let body = loop {
        let filled = buffer.len();
        if let Some(start) = apps_start(&buffer) {
            break start;
        }
        let more =
            read_more(&mut reader, &mut buffer, filled + 4096).map_err(serde_json::Error::io)?;
        if more == 0 || buffer.len() > MAX_PREFIX {
            let whole = std::io::Cursor::new(buffer).chain(reader);
            return super::parse_reader(whole, size, zone);
        }
    };
    let prefix = buffer[..body].to_vec();
    buffer.drain(..body);
    let mut reader = Blocks {
        reader,
        buffer,
        base: body as u64,
        eof: false,
        reading,
    };
    let mut apps = AppsBuilder::new(zone);
    apps.named_apps.reserve_for_dump(size);
    let tail = reader.read_apps(&mut apps)?;
    let mut document = prefix;
    document.push(b'}');
    document.extend_from_slice(&tail);
    let rest = super::parse(&document, zone)?;
    Ok(Unbuilt {
        serial: rest.serial,
        apps,
    })
}

/// Reads up to `want` bytes into `buffer` (grown to it); how many were read, 0 at the end.
fn read_more(reader: &mut impl Read, buffer: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    let filled = buffer.len();
    if want <= filled {
        return Ok(0);
    }
    buffer.resize(want, 0);
    let mut at = filled;
    while at < want {
        match reader.read(&mut buffer[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                buffer.truncate(at);
                return Err(error);
            }
        }
    }
    buffer.truncate(at);
    Ok(at - filled)
}

/// Where the apps' entries start: just after `{"serial": DIGITS, "apps": {` (the serial
/// optional, any JSON whitespace), or `None` when the start is not that or not all here yet.
fn apps_start(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    let expect = |at: &mut usize, token: &[u8]| {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(*at) {
            *at += 1;
        }
        let found = bytes.get(*at..*at + token.len()) == Some(token);
        *at += token.len();
        found
    };
    if !expect(&mut at, b"{") {
        return None;
    }
    let apps_first = at;
    if expect(&mut at, b"\"serial\"") && expect(&mut at, b":") {
        expect(&mut at, b"");
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        if !expect(&mut at, b",") {
            return None;
        }
    } else {
        at = apps_first;
    }
    (expect(&mut at, b"\"apps\"") && expect(&mut at, b":") && expect(&mut at, b"{")).then_some(at)
}

/// The stream after the apps' `{`, read a block at a time.
struct Blocks<R> {
    reader: R,
    /// Bytes read and not consumed yet: an entry's start first.
    buffer: Vec<u8>,
    /// The stream offset of `buffer[0]`, for errors.
    base: u64,
    eof: bool,
    reading: Reading,
}

impl<R: Read> Blocks<R> {
    /// Reads the apps into `apps`; what follows them, to the end of the stream.
    fn read_apps(&mut self, apps: &mut AppsBuilder) -> Result<Vec<u8>, serde_json::Error> {
        let mut known = KnownClusters::default();
        let mut parts: Vec<Part> = Vec::new();
        let mut first = true;
        loop {
            let mut want = self.reading.block.max(1);
            if self.buffer.len() >= want {
                // One entry longer than a block (whitespace, say): a larger block.
                want = self.buffer.len() * 2;
            }
            if !self.eof {
                let filled = self.buffer.len();
                self.eof = read_more(&mut self.reader, &mut self.buffer, want)
                    .map_err(serde_json::Error::io)?
                    == 0
                    && self.buffer.len() == filled;
            }
            let stop = read_block(
                &self.buffer,
                first,
                &mut known,
                apps,
                &mut parts,
                self.reading,
            );
            match stop {
                Stop::Short { at, first: more } => {
                    if self.eof {
                        let at = self.base + self.buffer.len() as u64;
                        return Err(custom(&format!("EOF while reading the apps at byte {at}")));
                    }
                    self.buffer.drain(..at);
                    self.base += at as u64;
                    first = more;
                }
                Stop::Closed { after } => {
                    self.buffer.drain(..after);
                    if !self.eof {
                        self.reader
                            .read_to_end(&mut self.buffer)
                            .map_err(serde_json::Error::io)?;
                    }
                    return Ok(std::mem::take(&mut self.buffer));
                }
                Stop::Failed { at, why } => {
                    return Err(custom(&format!("{why} at byte {}", self.base + at as u64)));
                }
            }
        }
    }
}

fn custom(why: &str) -> serde_json::Error {
    serde_json::Error::custom(why)
}

/// Reads the entries of `block` (starting at an entry; `first` when before any comma) on
/// up to `reading.threads` threads, adds them to `apps` in order; where the reading stopped.
fn read_block(
    block: &[u8],
    first: bool,
    known: &mut KnownClusters,
    apps: &mut AppsBuilder,
    parts: &mut Vec<Part>,
    reading: Reading,
) -> Stop {
    let starts = part_starts(block, reading);
    parts.resize_with(starts.len().max(parts.len()), Part::default);
    let mut stops = read_parts(block, &starts, first, known, apps.max_app, parts);
    // A part after the first began where the one before it ended, or all is read again.
    let aligned = (1..starts.len()).all(|i| match &stops[i - 1] {
        Stop::Short { at, first } => *at == starts[i] && !first,
        _ => true,
    });
    if !aligned {
        clear(&mut parts[..starts.len()]);
        stops = read_parts(block, &[0], first, known, apps.max_app, parts);
    }
    let mut last = Stop::Short { at: 0, first };
    for (part, stop) in parts.iter_mut().zip(stops) {
        if let Some(refused) = merge(part, known, apps) {
            last = refused;
            break;
        }
        let end = !matches!(stop, Stop::Short { .. });
        last = stop;
        if end {
            break;
        }
    }
    clear(parts);
    last
}

fn clear(parts: &mut [Part]) {
    for part in parts {
        part.numeric.clear();
        part.named.clear();
        part.new_clusters.clear();
    }
}

/// Where each thread's part of `block` starts: the first at 0, the others just after the
/// first comma from their share on.
fn part_starts(block: &[u8], reading: Reading) -> Vec<usize> {
    let threads = reading
        .threads
        .clamp(1, block.len() / MIN_PART.min(reading.block).max(1) + 1);
    let mut starts = vec![0];
    for i in 1..threads {
        let share = block.len() * i / threads;
        let from = share.max(starts[starts.len() - 1] + 1);
        if let Some(comma) = block
            .get(from..)
            .and_then(|rest| memchr::memchr(b',', rest))
        {
            starts.push(from + comma + 1);
        }
    }
    starts.dedup();
    starts
}

/// Reads the parts starting at `starts` (each ending where the next starts), the first on
/// this thread and the others on their own; their stops, in order. When a thread cannot be
/// had, the block is read as one part here.
fn read_parts(
    block: &[u8],
    starts: &[usize],
    first: bool,
    known: &KnownClusters,
    max_app: usize,
    parts: &mut [Part],
) -> Vec<Stop> {
    let ends = starts.iter().skip(1).copied().chain([block.len()]);
    let (spawned, stops) = std::thread::scope(|scope| {
        let mut jobs = starts.iter().zip(ends).zip(parts.iter_mut());
        let Some(((&start, end), head)) = jobs.next() else {
            return (true, Vec::new());
        };
        let handles: Vec<_> = jobs
            .map(|((&start, end), part)| {
                let job = move || read_part(&block[..end], start, false, known, max_app, part);
                std::thread::Builder::new()
                    .name("cnamed-load".into())
                    .spawn_scoped(scope, job)
            })
            .collect();
        let mut stops = vec![read_part(&block[..end], start, first, known, max_app, head)];
        let mut spawned = true;
        for handle in handles {
            match handle {
                Ok(handle) => stops.push(
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                ),
                Err(_) => spawned = false,
            }
        }
        (spawned, stops)
    });
    if spawned {
        return stops;
    }
    crate::log!(
        Warning,
        "no thread to read a dump's part with: reading on one"
    );
    clear(parts);
    vec![read_part(block, 0, first, known, max_app, &mut parts[0])]
}

/// Adds a part's entries to `apps`, its new clusters interned first in the order they were
/// met; the refusal of one, at the entry that first named it.
fn merge(part: &mut Part, known: &mut KnownClusters, apps: &mut AppsBuilder) -> Option<Stop> {
    let mut indices = Vec::with_capacity(part.new_clusters.len());
    for new in &part.new_clusters {
        match apps.clusters.intern(&new.spelling) {
            Ok(index) => {
                known.insert(&new.spelling, index);
                indices.push(index);
            }
            Err(why) => {
                let why = format!("app {}: cluster {:?} {why}", new.app, new.spelling);
                return Some(Stop::Failed { at: new.at, why });
            }
        }
    }
    if !indices.is_empty() {
        let resolve = |cluster: u32| match cluster & NEW_CLUSTER {
            0 => cluster,
            _ => indices[(cluster & !NEW_CLUSTER) as usize],
        };
        part.numeric.map_clusters(resolve);
        part.named.map_clusters(resolve);
    }
    let out_of_memory = || Stop::Failed {
        at: 0,
        why: super::OUT_OF_MEMORY.to_owned(),
    };
    if apps.numeric_apps.append(&mut part.numeric).is_err() {
        return Some(out_of_memory());
    }
    let so_far = apps.named_apps.len();
    if let Err(error) = apps.named_apps.append(&mut part.named) {
        let why = super::strings_error(error, so_far).0;
        return Some(Stop::Failed { at: 0, why });
    }
    None
}
