//! Loading a dump: from a file (or a FIFO) or from memory, by the fast reader with the
//! general one's last word on a refusal.

use std::path::Path;

use super::dump::{self, Reading};
use super::error::LoadError;
use super::zone::Zone;
use super::{Snapshot, READ_BUFFER};
use crate::progress::Progress;

/// Which dump reader reads a dump held in memory (see [`Snapshot::from_json_read_by`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum DumpReader {
    /// serde_json's.
    General,
    /// The fast one, the bytes read as a stream (as a file is).
    Stream(Reading),
    /// The fast one, each block read where it lies.
    InPlace(Reading),
}

impl Snapshot {
    /// Reads and loads the dump at `path`, refusing one over `max_size` bytes before reading
    /// it (a FIFO or a growing file is cut off at the limit instead). The file is read as it
    /// is parsed, a block at a time, never whole: a reload holds the old snapshot and the
    /// new one's tables, not the file too.
    ///
    /// The apps are read by the fast reader on every core (`dump::fast`). When it refuses a
    /// regular file, the general reader reads the file again and has the last word: its
    /// message names the line and column. A FIFO's refusal names the byte offset instead.
    pub fn load(path: &Path, zone: &Zone, max_size: u64) -> Result<Self, LoadError> {
        let read_error = |error| LoadError::Read {
            path: path.to_owned(),
            error,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if metadata.len() > max_size {
            return Err(LoadError::TooLarge {
                path: path.to_owned(),
                size: metadata.len(),
                max: max_size,
            });
        }
        // A pipe's size is unknown: its bytes are counted, not a share of them.
        let total = if metadata.is_file() {
            metadata.len()
        } else {
            0
        };
        let progress = Progress::start(format!("loading {}", path.display()), total);
        let read = |file, reading| {
            let file = progress.count(file);
            Self::read_dump(path, file, metadata.len(), zone, max_size, reading)
        };
        let parsed = match read(file, Some(Reading::every_core())) {
            Err(LoadError::Invalid { .. }) if metadata.is_file() => {
                read(std::fs::File::open(path).map_err(read_error)?, None)
            }
            parsed => parsed,
        }?;
        drop(progress);
        let mut snapshot = Self::from_parsed(parsed, zone);
        snapshot.dump_modified_ms = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_millis() as u64);
        Ok(snapshot)
    }

    /// Reads the dump `file` of `size` bytes at `path`, cut off past `max_size`: by the fast
    /// reader, or by the general one (`reading` `None`).
    pub(super) fn read_dump(
        path: &Path,
        file: impl std::io::Read,
        size: u64,
        zone: &Zone,
        max_size: u64,
        reading: Option<Reading>,
    ) -> Result<dump::Parsed, LoadError> {
        let mut limited = file.take(max_size.saturating_add(1));
        // The fast reader reads blocks of its own; serde_json a byte at a time, buffered.
        let parsed = match reading {
            Some(reading) => dump::parse_stream(&mut limited, size, zone, reading),
            None => {
                let reader = std::io::BufReader::with_capacity(READ_BUFFER, &mut limited);
                dump::parse_reader(reader, size, zone)
            }
        }
        .and_then(dump::Unbuilt::build);
        if limited.limit() == 0 {
            return Err(LoadError::TooLarge {
                path: path.to_owned(),
                size: max_size.saturating_add(1),
                max: max_size,
            });
        }
        parsed.map_err(|error| match error.is_io() {
            true => LoadError::Read {
                path: path.to_owned(),
                error: error.into(),
            },
            false => LoadError::Invalid {
                path: Some(path.to_owned()),
                error,
            },
        })
    }

    /// Loads a dump held in memory (the fast reader first, the general one on a refusal, as
    /// [`Self::load`] does).
    pub fn from_json(json: &[u8], zone: &Zone) -> Result<Self, LoadError> {
        Self::from_json_read_by(json, zone, DumpReader::InPlace(Reading::every_core()))
            .or_else(|_| Self::from_json_read_by(json, zone, DumpReader::General))
    }

    /// Loads a dump held in memory with one reader only: for the fuzz target that compares
    /// them, and benchmarks.
    #[doc(hidden)]
    pub fn from_json_read_by(
        json: &[u8],
        zone: &Zone,
        reader: DumpReader,
    ) -> Result<Self, LoadError> {
        let invalid = |error| LoadError::Invalid { path: None, error };
        let parsed = match reader {
            DumpReader::General => dump::parse(json, zone),
            DumpReader::Stream(reading) => {
                dump::parse_stream(json, json.len() as u64, zone, reading)
            }
            DumpReader::InPlace(reading) => dump::parse_in_place(json, zone, reading),
        };
        let parsed = parsed.and_then(dump::Unbuilt::build).map_err(invalid)?;
        Ok(Self::from_parsed(parsed, zone))
    }

    /// Reads the apps of a dump held in memory with the fast reader, in place, without
    /// building the tables: how many; for the reader's benchmark.
    #[doc(hidden)]
    pub fn scan_json(json: &[u8], zone: &Zone, reading: Reading) -> Result<usize, LoadError> {
        let invalid = |error| LoadError::Invalid { path: None, error };
        let unbuilt = dump::parse_in_place(json, zone, reading).map_err(invalid)?;
        Ok(unbuilt.len())
    }
}
