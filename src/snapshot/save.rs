//! Writing a dump: the JSON a secondary keeps of the zone it serves, the last good copy, and
//! what `cnamed fetch` prints. Files are written atomically and durably: a new temporary file
//! beside the target, fsynced, renamed over it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::Snapshot;

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
    let mut out = io::BufWriter::new(file);
    let apps = snapshot.apps();
    write_dump(
        snapshot.serial,
        apps.iter().map(|(app, cluster)| (app.as_str(), *cluster)),
        &mut out,
    )?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Writes a dump (`{"serial": N, "apps": {...}}`) of `apps` (app, cluster), sorted, one a line.
pub fn write_dump<'a>(
    serial: u32,
    apps: impl Iterator<Item = (&'a str, &'a str)>,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut apps: Vec<_> = apps.collect();
    apps.sort_unstable();
    write!(out, "{{\"serial\": {serial}, \"apps\": {{")?;
    for (i, (app, cluster)) in apps.into_iter().enumerate() {
        let separator = if i == 0 { "\n" } else { ",\n" };
        // App IDs and clusters are host-name labels: nothing to escape in JSON.
        write!(out, "{separator}\"{app}\": \"{cluster}\"")?;
    }
    writeln!(out, "\n}}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
