//! Writing a dump: the JSON a secondary keeps of the zone it serves, the last good copy, and
//! what `cnamed fetch` prints. Files are written atomically and durably: a new temporary file
//! beside the target, fsynced, renamed over it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{AppKey, Snapshot};

/// Writes `snapshot` to `path` as a dump, atomically (a temporary file beside it, renamed).
/// The temporary file is always a new one (O_EXCL): whatever was left at its name, a stale
/// file or a symlink planted there to make us write elsewhere, is removed (a link itself,
/// never its target), and a file that appears again meanwhile fails the write.
pub fn save_dump(snapshot: &Snapshot, path: &Path) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".cnamed-tmp");
    let temporary = PathBuf::from(temporary);
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    write_snapshot(snapshot, &mut out)?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Writes `snapshot` as a dump, one app a line: numeric IDs in numeric order, then string IDs
/// in byte order. What it sorts is a copy of the entries alone, 16 bytes an app with a
/// numeric ID and 24 with a string ID: a string per app, as [`Snapshot::apps`] makes, took
/// about 90 bytes an app (9 GB beside the 2 GB of a zone of 100M apps, at every checkpoint,
/// last good copy and secondary's dump).
pub fn write_snapshot(snapshot: &Snapshot, out: &mut impl Write) -> io::Result<()> {
    let named_count = (snapshot.app_entries())
        .filter(|(app, _)| matches!(app, AppKey::Named(_)))
        .count();
    let mut numeric: Vec<(u64, u32)> = Vec::new();
    let mut named: Vec<(&[u8], u32)> = Vec::new();
    let too_many = |_| io::Error::new(io::ErrorKind::OutOfMemory, "no memory to sort the apps");
    numeric
        .try_reserve_exact(snapshot.app_count().saturating_sub(named_count))
        .map_err(too_many)?;
    named.try_reserve_exact(named_count).map_err(too_many)?;
    for (app, cluster) in snapshot.app_entries() {
        match app {
            AppKey::Numeric(id) => numeric.push((id, cluster)),
            AppKey::Named(id) => named.push((id, cluster)),
        }
    }
    numeric.sort_unstable();
    named.sort_unstable();
    let cluster = |index: u32| snapshot.cluster_name(index).unwrap_or_default();
    let mut dump = DumpWriter::start(out, snapshot.serial)?;
    let mut digits = [0u8; 20];
    for &(id, index) in &numeric {
        dump.app(decimal(id, &mut digits), cluster(index))?;
    }
    for &(id, index) in &named {
        // Host-name labels, checked when they came in: ASCII, nothing to convert.
        dump.app(id, cluster(index))?;
    }
    dump.finish()
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Writes a dump (`{"serial": N, "apps": {...}}`) of `apps` (app, cluster), sorted, one a line.
pub fn write_dump<'a>(
    serial: u32,
    apps: impl Iterator<Item = (&'a str, &'a str)>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut apps: Vec<_> = apps.collect();
    apps.sort_unstable();
    let mut dump = DumpWriter::start(out, serial)?;
    for (app, cluster) in apps {
        dump.app(app.as_bytes(), cluster)?;
    }
    dump.finish()
}

/// A dump written one app a line, in the order given.
struct DumpWriter<'w, W: Write> {
    out: &'w mut W,
    separator: &'static str,
}

impl<'w, W: Write> DumpWriter<'w, W> {
    fn start(out: &'w mut W, serial: u32) -> io::Result<Self> {
        write!(out, "{{\"serial\": {serial}, \"apps\": {{")?;
        Ok(Self {
            out,
            separator: "\n",
        })
    }

    /// One app's line, written as bytes: no formatting machinery per app (a third of
    /// writing a 10M-app dump of string IDs went to converting each ID to a `str`). App IDs
    /// and clusters are host-name labels: nothing to escape in JSON.
    fn app(&mut self, id: &[u8], cluster: &str) -> io::Result<()> {
        self.out.write_all(self.separator.as_bytes())?;
        self.out.write_all(b"\"")?;
        self.out.write_all(id)?;
        self.out.write_all(b"\": \"")?;
        self.out.write_all(cluster.as_bytes())?;
        self.out.write_all(b"\"")?;
        self.separator = ",\n";
        Ok(())
    }

    fn finish(self) -> io::Result<()> {
        writeln!(self.out, "\n}}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 123_456, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    /// The dump written holds every app of the snapshot, its changes included, numeric IDs
    /// in numeric order and string IDs after them in byte order (read back by serde_json).
    #[test]
    fn a_written_dump_holds_every_app_in_order() {
        let snapshot = crate::testing::snapshot(
            r#"{"serial": 7, "apps": {"10": "eu", "9": "us", "b-app": "eu", "a-app": "us", "0123": "eu"}}"#,
        );
        let changes = [("9", None), ("11", Some("ap")), ("c-app", Some("eu"))];
        let snapshot = snapshot.with_changes(8, changes).unwrap();
        let mut out = Vec::new();
        write_snapshot(&snapshot, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let ids: Vec<&str> = text
            .lines()
            .skip(1)
            .filter_map(|line| line.split('"').nth(1))
            .collect();
        assert_eq!(
            ids,
            ["10", "11", "0123", "a-app", "b-app", "c-app"],
            "{text}"
        );
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read["serial"], 8);
        let mut apps: Vec<(String, String)> = read["apps"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, cluster)| (id.clone(), cluster.as_str().unwrap().to_owned()))
            .collect();
        apps.sort();
        let mut want: Vec<(String, String)> = (snapshot.apps().into_iter())
            .map(|(id, cluster)| (id, cluster.to_owned()))
            .collect();
        want.sort();
        assert_eq!(apps, want);
    }

    /// A symlink planted at the temporary file's name is replaced, its target untouched
    /// (hardening round three, item 11).
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("cnamed-save-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (dump, victim) = (dir.join("apps.json"), dir.join("victim"));
        std::fs::write(&victim, "precious").unwrap();
        let _ = std::fs::remove_file(dir.join("apps.json.cnamed-tmp"));
        std::os::unix::fs::symlink(&victim, dir.join("apps.json.cnamed-tmp")).unwrap();
        let snapshot = crate::testing::snapshot(r#"{"serial": 7, "apps": {"123": "eu"}}"#);
        save_dump(&snapshot, &dump).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let saved = Snapshot::load(&dump, &snapshot.zone, u64::MAX).unwrap();
        assert_eq!((saved.serial, saved.app_count()), (7, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
