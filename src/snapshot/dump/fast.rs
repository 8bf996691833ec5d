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
use super::source::{read_more, InPlace, Source, Stream};
use super::{AppsBuilder, Unbuilt};
use crate::snapshot::table::NumericMark;
use crate::snapshot::zone::Zone;

/// How a dump is read: by how many threads, in blocks of how many bytes.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub threads: usize,
    pub block: usize,
}

impl Reading {
    /// Every core this process may run on (its CPU affinity), in 1 MiB blocks per thread.
    pub fn every_core() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            threads,
            block: threads * BLOCK_PER_THREAD,
        }
    }
}

/// As much as the general reader's buffer held: a load's memory stays what it was.
const BLOCK_PER_THREAD: usize = 1 << 20;
/// The general reader's buffer, for a dump left to it: serde_json reads a byte at a time.
const FALLBACK_BUFFER: usize = 1 << 20;
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
        let ended =
            read_more(&mut reader, &mut buffer, filled + 4096).map_err(serde_json::Error::io)?;
        if ended && apps_start(&buffer).is_none() || buffer.len() > MAX_PREFIX {
            let rest = std::io::BufReader::with_capacity(FALLBACK_BUFFER, reader);
            let whole = std::io::Cursor::new(buffer).chain(rest);
            return super::parse_reader(whole, size, zone);
        }
    };
    let prefix = buffer[..body].to_vec();
    buffer.drain(..body);
    let stream = Stream {
        reader,
        buffer,
        ended: false,
    };
    read_after_prefix(stream, prefix, size, zone, reading)
}

/// [`parse_stream`] of a dump in memory, its blocks read where they lie.
pub(in crate::snapshot) fn parse_in_place<'z>(
    json: &[u8],
    zone: &'z Zone,
    reading: Reading,
) -> Result<Unbuilt<'z>, serde_json::Error> {
    let Some(body) = apps_start(json) else {
        return super::parse(json, zone);
    };
    let source = InPlace {
        bytes: json,
        at: body,
        end: body,
    };
    read_after_prefix(
        source,
        json[..body].to_vec(),
        json.len() as u64,
        zone,
        reading,
    )
}

/// Reads the apps from `source` and the rest of the document after them, `prefix` the
/// document up to the apps' `{`.
fn read_after_prefix<'z>(
    mut source: impl Source,
    prefix: Vec<u8>,
    size: u64,
    zone: &'z Zone,
    reading: Reading,
) -> Result<Unbuilt<'z>, serde_json::Error> {
    let mut apps = AppsBuilder::new(zone);
    apps.named_apps.reserve_for_dump(size);
    apps.numeric_apps.reserve_for_dump(size);
    let base = prefix.len() as u64;
    let tail = read_apps(&mut source, base, &mut apps, reading)?;
    let mut document = prefix;
    document.push(b'}');
    document.extend_from_slice(&tail);
    let rest = super::parse(&document, zone)?;
    Ok(Unbuilt {
        serial: rest.serial,
        apps,
    })
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

/// Reads the apps from `source` (at stream offset `base`) into `apps`; what follows them,
/// to the end of the dump.
fn read_apps(
    source: &mut impl Source,
    mut base: u64,
    apps: &mut AppsBuilder,
    reading: Reading,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut known = KnownClusters::default();
    let mut parts: Vec<Part> = Vec::new();
    let mut first = true;
    let mut want = reading.block.max(1);
    loop {
        let ended = source.fill(want).map_err(serde_json::Error::io)?;
        let block = source.unread();
        match read_block(block, first, &mut known, apps, &mut parts, reading) {
            Stop::Short { at, first: more } => {
                if ended {
                    let at = base + block.len() as u64;
                    return Err(custom(&format!(
                        "EOF while reading the apps at byte offset {at}"
                    )));
                }
                // One entry longer than a block (whitespace, say): a larger block.
                want = match at {
                    0 => block.len().saturating_mul(2).max(want),
                    _ => reading.block.max(1),
                };
                source.consume(at);
                base += at as u64;
                first = more;
            }
            Stop::Closed { after } => {
                source.consume(after);
                return source.rest().map_err(serde_json::Error::io);
            }
            Stop::Failed { at, why } => {
                return Err(custom(&format!(
                    "{why} at byte offset {}",
                    base + at as u64
                )));
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
    // The first part reads into the apps' own builders: on one thread nothing is copied.
    std::mem::swap(&mut apps.numeric_apps, &mut parts[0].numeric);
    std::mem::swap(&mut apps.named_apps, &mut parts[0].named);
    let before = Mark::of(&mut parts[0]);
    let stops = read_parts(block, &starts, first, known, apps.max_app, parts);
    // A part after the first began where the one before it ended, or all is read again.
    let aligned = |stops: &[Stop]| {
        (1..starts.len()).all(|i| match &stops[i - 1] {
            Stop::Short { at, first } => *at == starts[i] && !first,
            _ => true,
        })
    };
    let stops = match stops {
        Some(stops) if aligned(&stops) => stops,
        _ => {
            before.truncate(&mut parts[0]);
            clear(parts);
            let known = &*known;
            vec![read_part(
                block,
                0,
                first,
                known,
                apps.max_app,
                &mut parts[0],
            )]
        }
    };
    let mut last = Stop::Short { at: 0, first };
    for (i, stop) in stops.into_iter().enumerate() {
        let from = if i == 0 {
            before.clone()
        } else {
            Mark::default()
        };
        let refused = merge(&mut parts[i], from, known, apps, i > 0);
        if i == 0 {
            std::mem::swap(&mut apps.numeric_apps, &mut parts[0].numeric);
            std::mem::swap(&mut apps.named_apps, &mut parts[0].named);
        }
        if let Some(refused) = refused {
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

/// How many apps a part's builders held before it was read.
#[derive(Clone, Default)]
struct Mark {
    numeric: NumericMark,
    named: (usize, usize),
}

impl Mark {
    fn of(part: &mut Part) -> Self {
        Self {
            numeric: part.numeric.mark(),
            named: part.named.mark(),
        }
    }

    fn truncate(&self, part: &mut Part) {
        part.numeric.truncate(&self.numeric);
        part.named.truncate(self.named);
        part.new_clusters.clear();
    }
}

/// Empties the parts, all but the builders of the first, which are the apps' (see
/// [`read_block`]) and are empty or swapped back by now.
fn clear(parts: &mut [Part]) {
    for (i, part) in parts.iter_mut().enumerate() {
        if i > 0 {
            part.numeric.clear();
            part.named.clear();
        }
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
        // The first thread also reads the blocks in and merges the parts: a smaller share.
        let share = block.len() * (i * 10 - 1) / (threads * 10);
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
/// this thread and the others on their own; their stops, in order. `None` when a thread
/// could not be had.
fn read_parts(
    block: &[u8],
    starts: &[usize],
    first: bool,
    known: &KnownClusters,
    max_app: usize,
    parts: &mut [Part],
) -> Option<Vec<Stop>> {
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
    if !spawned {
        crate::log!(
            Warning,
            "no thread to read a dump's part with: reading on one"
        );
        return None;
    }
    Some(stops)
}

/// Adds a part's entries to `apps`, its new clusters interned first in the order they were
/// met; the refusal of one, at the entry that first named it. Adds the part's entries past `from` to `apps` (`append`), or leaves them where they are
/// (the first part, which read into the apps' builders).
fn merge(
    part: &mut Part,
    from: Mark,
    known: &mut KnownClusters,
    apps: &mut AppsBuilder,
    append: bool,
) -> Option<Stop> {
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
        part.numeric.map_clusters(&from.numeric, resolve);
        part.named.map_clusters(from.named, resolve);
    }
    if !append {
        return None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{DumpReader, LoadError, Snapshot};

    #[test]
    fn the_usual_starts_are_read_fast() {
        for start in [
            "{\"serial\": 2026112601, \"apps\": {\n",
            "{\"serial\":1,\"apps\":{",
            " {\n  \"serial\" : 7 ,\n  \"apps\" : {",
            "{\"apps\": {",
            "{\"apps\": {}, \"serial\": 1}",
        ] {
            let end = start.rfind('{').unwrap() + 1;
            assert_eq!(apps_start(start.as_bytes()), Some(end), "{start:?}");
        }
        for start in [
            "{\"version\": 1, \"serial\": 1, \"apps\": {",
            "{\"serial\": 1, \"apps\": [",
            "{\"serial\": 1, \"apps\"",
            "[",
        ] {
            assert_eq!(apps_start(start.as_bytes()), None, "{start:?}");
        }
    }

    fn message(result: Result<Snapshot, LoadError>) -> String {
        match result {
            Ok(_) => panic!("accepted"),
            Err(error) => error.to_string(),
        }
    }

    /// Refusals in memory and from a file are the general reader's, line and column
    /// included; from a FIFO, the fast reader's, which names the app and the byte.
    #[test]
    fn refusals_read_as_before() {
        let zone = crate::testing::zone();
        let dir = std::env::temp_dir().join(format!("cnamed-fast-refusals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dumps = [
            (
                "{\"serial\": 1, \"apps\": {\n\"1\": \"mt1\",\n\"1 2\": \"mt1\"\n}}",
                "app \"1 2\" contains ' '",
            ),
            (
                "{\"serial\": 1, \"apps\": {\n\"1\": \"mt1\",\n\"2\": \"a_b\"\n}}",
                "app \"2\": cluster \"a_b\" contains '_'",
            ),
            (
                "{\"serial\": 1, \"apps\": {\n\"7\": \"mt1\",\n\"7\": \"mt2\"\n}}",
                "app \"7\" appears twice",
            ),
            ("{\"serial\": 1, \"apps\": {\n\"1\": \"mt1\",\n", "EOF"),
            (
                "{\"serial\": 1, \"apps\": {\"1\": \"mt1\"}, \"serial\": 2}",
                "\"serial\" appears twice",
            ),
            ("{\"apps\": {\"1\": \"mt1\"}}", "no \"serial\""),
        ];
        for (json, why) in dumps {
            let general = message(Snapshot::from_json_read_by(
                json.as_bytes(),
                &zone,
                DumpReader::General,
            ));
            assert!(general.contains(why), "{json}: {general}");
            assert_eq!(
                message(Snapshot::from_json(json.as_bytes(), &zone)),
                general,
                "{json}"
            );
            let path = dir.join("dump.json");
            std::fs::write(&path, json).unwrap();
            let from_file = message(Snapshot::load(&path, &zone, 1 << 20));
            // serde_json counts columns its own way per source: the file read generally.
            let file = std::fs::File::open(&path).unwrap();
            let read = Snapshot::read_dump(&path, file, json.len() as u64, &zone, 1 << 20, None);
            let general = match read {
                Ok(_) => panic!("accepted {json}"),
                Err(error) => error.to_string(),
            };
            assert!(general.contains(why), "{json}: {general}");
            assert_eq!(from_file, general, "{json}");
        }
        // A FIFO cannot be read twice: the fast reader's own refusal, with the byte offset.
        let fifo = dir.join("dump.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let json = dumps[0].0;
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, json).unwrap())
        };
        let refused = message(Snapshot::load(&fifo, &zone, 1 << 20));
        writer.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            refused.contains("app \"1 2\" contains ' '") && refused.contains("at byte offset 36"),
            "{refused}"
        );
    }
}
