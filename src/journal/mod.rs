//! The journal of acknowledged changes (`--journal PATH`, issue 23): an append-only file of
//! records, each the changes of one commit, the serial they start from and the serial they
//! lead to. A change is acknowledged only once its record is on disk (fsync); changes that
//! arrive together share one write and one fsync (group commit). The journal holds every
//! change since the dump it was started on: a start (and a reload of an older export, see
//! [`replay`]) is that dump with the records after its serial replayed.
//!
//! A record is length-prefixed and checksummed:
//!
//! ```text
//! magic "CNJ2" (4) | payload length (4, big-endian) | SipHash-2-4 of the payload (8) | payload
//! payload: previous serial (4) | serial (4) | changes (4)
//!          | per change: app length (1) | app | before length (1) | cluster before
//!                        | cluster length (1) | cluster
//! ```
//!
//! A cluster length of 0 deletes the app; a before length of 0: the app was not there. The
//! cluster before makes each record a whole difference, so IXFR is answered from the
//! journal. A crash can leave a torn record at the end (a
//! partial write) or garbage after the last good one. Opening reads every record up to the
//! first that does not check out and cuts the file there: never misread, never a panic. A
//! file that does not start like a journal is refused, never cut: `--journal` pointed at
//! the wrong file must not destroy it.

pub mod replay;

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::siphash::siphash24;
use crate::snapshot::guard::serial_is_newer;

/// What starts every record.
const MAGIC: &[u8; 4] = b"CNJ2";
/// Magic, length and checksum.
const RECORD_HEADER: usize = 4 + 4 + 8;
/// The checksum's key: fixed, for it guards against torn writes and bit rot, not attackers.
const CHECKSUM_KEY: [u8; 16] = *b"cnamed-journal-1";
/// The longest payload read back: larger lengths are damage, not records.
const MAX_PAYLOAD: usize = 64 << 20;

/// One app's change: its cluster before (`None`: it was not there) and after (`None`: it
/// is deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub app: Box<str>,
    pub before: Option<Box<str>>,
    pub cluster: Option<Box<str>>,
}

/// The changes of one commit, the serial of the zone they apply to and the serial it has
/// after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub previous: u32,
    pub serial: u32,
    pub changes: Vec<Change>,
}

/// An open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Counts resets: a checkpoint written across one is stale.
    generation: u64,
    /// Bytes of good records.
    len: u64,
    /// Records, and the serial of the first.
    records: u64,
    oldest: Option<u32>,
    newest: Option<u32>,
}

/// What opening found.
#[derive(Debug)]
pub struct Opened {
    pub journal: Journal,
    /// Every good record, in order.
    pub entries: Vec<Entry>,
    /// Bytes cut after the last good record (a torn write, or damage); 0 normally.
    pub cut: u64,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, reads its records, and cuts whatever follows
    /// the last good one (durably, before anything new is appended).
    pub fn open(path: &Path) -> io::Result<Opened> {
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if created {
            // The new file's name must be on disk too, or a crash could lose the journal.
            sync_directory(path)?;
        }
        let total = file.metadata()?.len();
        let mut start = [0u8; MAGIC.len()];
        let start_len = fill(&mut file, &mut start)?;
        if start[..start_len] != MAGIC[..start_len] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a cnamed journal (it does not start with \"CNJ2\"); left untouched",
            ));
        }
        file.seek(SeekFrom::Start(0))?;
        let (entries, good) = read_records(BufReader::new(&mut file))?;
        if good < total {
            file.set_len(good)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(good))?;
        Ok(Opened {
            journal: Self {
                file,
                path: path.to_path_buf(),
                generation: 0,
                len: good,
                records: entries.len() as u64,
                oldest: entries.first().map(|entry| entry.serial),
                newest: entries.last().map(|entry| entry.serial),
            },
            entries,
            cut: total - good,
        })
    }

    /// Appends `entries` with one write and one fsync: when it returns `Ok`, they are on
    /// disk. On an error the file is cut back to where it was, so that a failed commit
    /// leaves no record a later open could take for acknowledged.
    pub fn append<'e>(&mut self, entries: impl IntoIterator<Item = &'e Entry>) -> io::Result<()> {
        let mut bytes = Vec::new();
        let (mut records, mut first, mut last) = (0, None, None);
        for entry in entries {
            encode(entry, &mut bytes)?;
            records += 1;
            first = first.or(Some(entry.serial));
            last = Some(entry.serial);
        }
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(error);
        }
        self.len += bytes.len() as u64;
        self.records += records;
        self.oldest = self.oldest.or(first);
        self.newest = last.or(self.newest);
        Ok(())
    }

    /// Every record, read back from the file in order (a reload of an older export replays
    /// them). Reads with positioned reads: the append position stays.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let reader = ReadAt {
            file: &self.file,
            at: 0,
            end: self.len,
        };
        let (entries, good) = read_records(BufReader::new(reader))?;
        if good != self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the journal changed under us: {good} good bytes of {}",
                    self.len
                ),
            ));
        }
        Ok(entries)
    }

    /// Empties the journal, durably, and removes its checkpoint: a dump that supersedes
    /// every record has been put in service, and a start must not replay them on it.
    pub fn reset(&mut self) -> io::Result<()> {
        self.generation += 1;
        let checkpoint = checkpoint_path(&self.path);
        if checkpoint.exists() {
            std::fs::remove_file(&checkpoint)?;
            sync_directory(&self.path)?;
        }
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.sync_all()?;
        self.len = 0;
        self.records = 0;
        self.oldest = None;
        self.newest = None;
        Ok(())
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many times the journal was reset.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Drops the records up to `serial`, which a checkpoint holds: the records after it go
    /// to a new file that replaces the journal atomically (a crash leaves the old one or
    /// the new one, both good with the checkpoint).
    pub fn drop_through(&mut self, serial: u32) -> io::Result<()> {
        let entries = self.entries()?;
        let kept: Vec<&Entry> = entries
            .iter()
            .filter(|entry| serial_is_newer(entry.serial, serial))
            .collect();
        let mut bytes = Vec::new();
        for entry in &kept {
            encode(entry, &mut bytes)?;
        }
        let mut name = self.path.clone().into_os_string();
        name.push(".new");
        let new_path = PathBuf::from(name);
        let mut new = File::create(&new_path)?;
        new.write_all(&bytes)?;
        new.sync_all()?;
        drop(new);
        std::fs::rename(&new_path, &self.path)?;
        sync_directory(&self.path)?;
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        file.seek(SeekFrom::End(0))?;
        self.file = file;
        self.len = bytes.len() as u64;
        self.records = kept.len() as u64;
        self.oldest = kept.first().map(|entry| entry.serial);
        self.newest = kept.last().map(|entry| entry.serial);
        Ok(())
    }

    /// The serial of the last record, if there is one.
    pub fn newest_serial(&self) -> Option<u32> {
        self.newest
    }

    /// Good records.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The serial of the first record, if there is one.
    pub fn oldest_serial(&self) -> Option<u32> {
        self.oldest
    }

    /// Bytes of good records.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where the checkpoint of the journal at `journal` is: beside it, `<journal>.checkpoint`.
pub fn checkpoint_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".checkpoint");
    PathBuf::from(name)
}

/// Makes the names in the directory of `path` durable (a file created, renamed or removed).
pub fn sync_directory(path: &Path) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

/// Appends the record of `entry` to `out`.
fn encode(entry: &Entry, out: &mut Vec<u8>) -> io::Result<()> {
    let too_long =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} too long"));
    let mut payload = Vec::new();
    payload.extend_from_slice(&entry.previous.to_be_bytes());
    payload.extend_from_slice(&entry.serial.to_be_bytes());
    let count = u32::try_from(entry.changes.len()).map_err(|_| too_long("a commit"))?;
    payload.extend_from_slice(&count.to_be_bytes());
    for change in &entry.changes {
        let before = change.before.as_deref().unwrap_or("");
        let cluster = change.cluster.as_deref().unwrap_or("");
        for text in [&*change.app, before, cluster] {
            let len = u8::try_from(text.len()).map_err(|_| too_long("a name"))?;
            payload.push(len);
            payload.extend_from_slice(text.as_bytes());
        }
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(too_long("a commit"));
    }
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&siphash24(&CHECKSUM_KEY, &payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Reads records until the end or the first one that does not check out; returns them and
/// the bytes they take.
fn read_records(mut input: impl Read) -> io::Result<(Vec<Entry>, u64)> {
    let mut entries = Vec::new();
    let mut good = 0u64;
    loop {
        let mut header = [0u8; RECORD_HEADER];
        if !read_full(&mut input, &mut header)? || &header[..4] != MAGIC {
            return Ok((entries, good));
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if len > MAX_PAYLOAD {
            return Ok((entries, good));
        }
        let checksum = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
        let mut payload = vec![0u8; len];
        if !read_full(&mut input, &mut payload)? || siphash24(&CHECKSUM_KEY, &payload) != checksum {
            return Ok((entries, good));
        }
        let Some(entry) = decode(&payload) else {
            return Ok((entries, good));
        };
        entries.push(entry);
        good += (RECORD_HEADER + len) as u64;
    }
}

/// Reads `file` from `at` to `end` by positioned reads, leaving its offset alone.
struct ReadAt<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Fills `buf`; `false` when the input ends first.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    Ok(fill(input, buf)? == buf.len())
}

/// Reads into `buf` until it is full or the input ends; returns how much it holds.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The entry of a payload whose checksum matched; `None` if it does not parse whole.
fn decode(payload: &[u8]) -> Option<Entry> {
    let mut at = 0;
    let mut take = |n: usize| {
        let part = payload.get(at..at + n)?;
        at += n;
        Some(part)
    };
    let previous = u32::from_be_bytes(take(4)?.try_into().ok()?);
    let serial = u32::from_be_bytes(take(4)?.try_into().ok()?);
    let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut changes = Vec::new();
    for _ in 0..count {
        let mut text = || {
            let len = usize::from(*take(1)?.first()?);
            std::str::from_utf8(take(len)?).ok().map(Box::<str>::from)
        };
        let app = text()?;
        let before = text()?;
        let cluster = text()?;
        changes.push(Change {
            app,
            before: (!before.is_empty()).then_some(before),
            cluster: (!cluster.is_empty()).then_some(cluster),
        });
    }
    (at == payload.len()).then_some(Entry {
        previous,
        serial,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: u32, apps: &[(&str, Option<&str>)]) -> Entry {
        let changes = apps
            .iter()
            .map(|(app, cluster)| Change {
                app: (*app).into(),
                before: None,
                cluster: cluster.map(Into::into),
            })
            .collect();
        Entry {
            previous: serial - 1,
            serial,
            changes,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cnamed-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn entries_come_back_in_order() {
        let path = temp("order");
        let first = [entry(2, &[("1", Some("eu")), ("app-x", Some("us"))])];
        let next = [entry(3, &[("1", None)]), entry(4, &[("7", Some("mt1"))])];
        let mut opened = Journal::open(&path).unwrap();
        assert!(opened.entries.is_empty() && opened.journal.is_empty());
        opened.journal.append(&first).unwrap();
        opened.journal.append(&next).unwrap();
        drop(opened);
        let reopened = Journal::open(&path).unwrap();
        let all: Vec<Entry> = first.iter().chain(&next).cloned().collect();
        assert_eq!((reopened.entries, reopened.cut), (all, 0));
        assert_eq!(
            reopened.journal.len(),
            std::fs::metadata(&path).unwrap().len()
        );
    }

    /// A record cut anywhere (a crash mid-write) is dropped whole, the ones before it kept,
    /// and the file cut back so that the next append follows the last good record.
    #[test]
    fn a_torn_tail_is_cut_never_misread() {
        let path = temp("torn");
        let good = entry(2, &[("1", Some("eu"))]);
        let torn = entry(3, &[("2", Some("us")), ("3", None)]);
        let mut journal = Journal::open(&path).unwrap().journal;
        journal.append(std::slice::from_ref(&good)).unwrap();
        let good_len = journal.len();
        journal.append(&[torn]).unwrap();
        let whole = std::fs::read(&path).unwrap();
        drop(journal);
        for cut_at in good_len as usize..whole.len() {
            std::fs::write(&path, &whole[..cut_at]).unwrap();
            let opened = Journal::open(&path).unwrap();
            assert_eq!(
                opened.entries,
                std::slice::from_ref(&good),
                "cut at {cut_at}"
            );
            assert_eq!(opened.cut, cut_at as u64 - good_len);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        }
        // Appending after the cut continues from the good record.
        let mut opened = Journal::open(&path).unwrap();
        let later = entry(4, &[("9", Some("eu"))]);
        opened.journal.append(std::slice::from_ref(&later)).unwrap();
        assert_eq!(Journal::open(&path).unwrap().entries, [good, later]);
    }

    /// A flipped bit in a record fails its checksum: that record and everything after it are
    /// cut, whatever they would have parsed as.
    #[test]
    fn damage_ends_the_journal_at_the_last_good_record() {
        let path = temp("damage");
        let entries = [
            entry(2, &[("1", Some("eu"))]),
            entry(3, &[("2", Some("us"))]),
            entry(4, &[("3", Some("mt1"))]),
        ];
        Journal::open(&path)
            .unwrap()
            .journal
            .append(&entries)
            .unwrap();
        let whole = std::fs::read(&path).unwrap();
        let record = whole.len() / 3;
        for at in [record + 4, record + 10, record + RECORD_HEADER + 2] {
            let mut damaged = whole.clone();
            damaged[at] ^= 0x10;
            std::fs::write(&path, &damaged).unwrap();
            let opened = Journal::open(&path).unwrap();
            assert_eq!(opened.entries, entries[..1], "byte {at}");
            assert_eq!(opened.cut as usize, whole.len() - record);
        }
    }

    /// `--journal` pointed at another file (the dump, say): refused, not a byte cut. A start
    /// of the magic alone is a torn first write: cut.
    #[test]
    fn a_file_that_is_no_journal_is_left_alone() {
        let path = temp("foreign");
        let dump = br#"{"serial": 1, "apps": {"1": "eu"}}"#;
        std::fs::write(&path, dump).unwrap();
        let error = Journal::open(&path).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("not a cnamed journal"),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), dump);
        std::fs::write(&path, &MAGIC[..3]).unwrap();
        let opened = Journal::open(&path).unwrap();
        assert_eq!((opened.entries.len(), opened.cut), (0, 3));
    }

    /// Records read back while the journal stays open for appending; emptied, it holds
    /// nothing, on disk too, and appends start over.
    #[test]
    fn entries_read_back_and_reset() {
        let path = temp("reset");
        let mut journal = Journal::open(&path).unwrap().journal;
        let first = [entry(2, &[("1", Some("eu"))]), entry(3, &[("2", None)])];
        journal.append(&first).unwrap();
        assert_eq!(journal.entries().unwrap(), first);
        let later = entry(4, &[("3", Some("us"))]);
        journal.append(std::slice::from_ref(&later)).unwrap();
        assert_eq!(journal.entries().unwrap().len(), 3);
        assert_eq!(
            (journal.oldest_serial(), journal.newest_serial()),
            (Some(2), Some(4))
        );
        journal.reset().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(journal.entries().unwrap().is_empty() && journal.is_empty());
        assert_eq!(
            (journal.oldest_serial(), journal.newest_serial()),
            (None, None)
        );
        journal.append(std::slice::from_ref(&later)).unwrap();
        drop(journal);
        assert_eq!(Journal::open(&path).unwrap().entries, [later]);
    }

    /// Dropping the records a checkpoint holds keeps the later ones, on disk, and appends
    /// go on after them.
    #[test]
    fn records_up_to_a_checkpoint_are_dropped() {
        let path = temp("drop");
        let mut journal = Journal::open(&path).unwrap().journal;
        let all: Vec<Entry> = (2..7).map(|s| entry(s, &[("1", Some("eu"))])).collect();
        journal.append(&all).unwrap();
        journal.drop_through(4).unwrap();
        assert_eq!(journal.entries().unwrap(), all[3..]);
        assert_eq!((journal.oldest_serial(), journal.records()), (Some(5), 2));
        let later = entry(7, &[("2", None)]);
        journal.append(std::slice::from_ref(&later)).unwrap();
        drop(journal);
        let opened = Journal::open(&path).unwrap();
        assert_eq!(opened.entries, [all[3].clone(), all[4].clone(), later]);
        assert_eq!(opened.cut, 0);
    }
}
