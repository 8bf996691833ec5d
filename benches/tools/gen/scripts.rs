//! What the shell scripts in tests/ and benches/ need besides new data: a dump changed in
//! place, a sample of its names, two dumps compared, free loopback ports.
//!
//!     cnamed-gen change --dump PATH [--move N] [--remove N] [--add N] [--prefix P]
//!         [--shift S] [--from-end] [--names FILE] [--every K] [--services LIST]
//!     cnamed-gen sample --dump PATH [--count N] [--missing M] [--seed S]
//!     cnamed-gen same-apps WANT GOT
//!     cnamed-gen ports N
//!
//! `change` reads the dump, takes its app IDs in sorted order, moves the first N (the last N
//! with `--from-end`) `S` clusters on (default 1, in the sorted list of its clusters), removes
//! the N after them, adds N apps `P0`, `P1`… (default prefix `new`) over the clusters in
//! turn, raises the serial by one and replaces the dump atomically (a temporary file, then a
//! rename). With `--names`, every K-th (default 1) changed app's names go there, one `NAME A`
//! line each, for dig -f or a query file: one per service of `--services` (default `ws`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use super::{Rng, ZONE};

/// A dump as the scripts see it: the serial and every app with its cluster.
struct Dump {
    serial: u64,
    apps: BTreeMap<String, String>,
}

fn read_dump(path: &Path) -> Result<Dump, String> {
    let text = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let serial = value["serial"]
        .as_u64()
        .ok_or_else(|| format!("{}: no numeric serial", path.display()))?;
    let apps = value["apps"]
        .as_object()
        .ok_or_else(|| format!("{}: no apps object", path.display()))?
        .iter()
        .map(|(app, cluster)| {
            let cluster = cluster
                .as_str()
                .ok_or(format!("app {app}: cluster not a string"));
            cluster.map(|cluster| (app.clone(), cluster.to_owned()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Dump { serial, apps })
}

/// Writes `dump` to `path` through a temporary file and a rename, so that a reload never
/// reads half of it.
fn write_dump(path: &Path, dump: &Dump) -> Result<(), String> {
    let temporary = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut out = BufWriter::new(fs::File::create(&temporary)?);
        write!(out, "{{\"serial\": {}, \"apps\": {{", dump.serial)?;
        for (i, (app, cluster)) in dump.apps.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            let (app, cluster) = (serde_json::to_string(app)?, serde_json::to_string(cluster)?);
            write!(out, "{separator}\n{app}: {cluster}")?;
        }
        writeln!(out, "\n}}}}")?;
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        fs::rename(&temporary, path)
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}

/// `--flag value` pairs of the flags in `known`, and the switches named in `switches`.
fn flags(
    args: &[String],
    known: &[&str],
    switches: &[&str],
) -> Result<BTreeMap<String, String>, String> {
    let mut flags = BTreeMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if !known.contains(&flag.as_str()) && !switches.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        if switches.contains(&flag.as_str()) {
            flags.insert(flag.clone(), String::new());
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        flags.insert(flag.clone(), value.clone());
    }
    Ok(flags)
}

fn number(flags: &BTreeMap<String, String>, flag: &str, default: usize) -> Result<usize, String> {
    flags.get(flag).map_or(Ok(default), |value| {
        value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number"))
    })
}

fn dump_path(flags: &BTreeMap<String, String>) -> Result<PathBuf, String> {
    flags
        .get("--dump")
        .map(PathBuf::from)
        .ok_or_else(|| "--dump PATH is needed".to_owned())
}

/// `cnamed-gen change`: see the module doc.
pub(super) fn change(args: &[String]) -> Result<(), String> {
    const KNOWN: [&str; 9] = [
        "--dump",
        "--move",
        "--remove",
        "--add",
        "--prefix",
        "--shift",
        "--names",
        "--every",
        "--services",
    ];
    let flags = flags(args, &KNOWN, &["--from-end"])?;
    let path = dump_path(&flags)?;
    let mut dump = read_dump(&path)?;
    let (moves, removes, adds) = (
        number(&flags, "--move", 0)?,
        number(&flags, "--remove", 0)?,
        number(&flags, "--add", 0)?,
    );
    let shift = number(&flags, "--shift", 1)?;
    let every = number(&flags, "--every", 1)?.max(1);
    let prefix = flags.get("--prefix").map_or("new", String::as_str);
    let ids: Vec<String> = dump.apps.keys().cloned().collect();
    let mut clusters: Vec<String> = dump.apps.values().cloned().collect();
    clusters.sort();
    clusters.dedup();
    if clusters.is_empty() || moves + removes > ids.len() {
        return Err(format!("{}: too few apps for that change", path.display()));
    }
    let moved = match flags.contains_key("--from-end") {
        true => &ids[ids.len() - moves..],
        false => &ids[..moves],
    };
    let removed = match flags.contains_key("--from-end") {
        true => &ids[ids.len() - moves - removes..ids.len() - moves],
        false => &ids[moves..moves + removes],
    };
    for app in moved {
        let cluster = &dump.apps[app];
        let at = clusters.binary_search(cluster).unwrap_or(0);
        let next = clusters[(at + shift) % clusters.len()].clone();
        dump.apps.insert(app.clone(), next);
    }
    for app in removed {
        dump.apps.remove(app);
    }
    let added: Vec<String> = (0..adds).map(|i| format!("{prefix}{i}")).collect();
    for (i, app) in added.iter().enumerate() {
        let cluster = clusters[i % clusters.len()].clone();
        if dump.apps.insert(app.clone(), cluster).is_some() {
            return Err(format!("app {app} is already in the dump"));
        }
    }
    dump.serial += 1;
    write_dump(&path, &dump)?;
    if let Some(names) = flags.get("--names") {
        let changed = moved.iter().chain(removed).chain(&added);
        let services = flags.get("--services").map_or("ws", String::as_str);
        let mut lines = String::new();
        for app in changed.step_by(every) {
            for service in services.split(',') {
                lines.push_str(&format!("{service}-{app}.{ZONE} A\n"));
            }
        }
        fs::write(names, lines).map_err(|e| format!("{names}: {e}"))?;
    }
    Ok(())
}

/// `cnamed-gen sample`: `--count` apps picked at random (`ws-` A and `api-` CNAME names
/// each), `--missing` names of apps that do not exist, and the apex's SOA and NS.
pub(super) fn sample(args: &[String], out: &mut impl Write) -> Result<(), String> {
    let flags = flags(args, &["--dump", "--count", "--missing", "--seed"], &[])?;
    let dump = read_dump(&dump_path(&flags)?)?;
    let count = number(&flags, "--count", 300)?;
    let missing = number(&flags, "--missing", 50)?;
    let mut rng = Rng(number(&flags, "--seed", 7)? as u64);
    let mut ids: Vec<&String> = dump.apps.keys().collect();
    // A partial Fisher-Yates shuffle: the first `count` are a uniform sample.
    let count = count.min(ids.len());
    for i in 0..count {
        let j = i + rng.below((ids.len() - i) as u64) as usize;
        ids.swap(i, j);
    }
    let mut write = || -> io::Result<()> {
        for app in &ids[..count] {
            writeln!(out, "ws-{app}.{ZONE} A\napi-{app}.{ZONE} CNAME")?;
        }
        for i in 0..missing {
            writeln!(out, "ws-missing{i}.{ZONE} A")?;
        }
        writeln!(out, "{ZONE} SOA\n{ZONE} NS")
    };
    write().map_err(|e| e.to_string())
}

/// `cnamed-gen same-apps WANT GOT`: whether GOT (a dump cnamed wrote, names in lower case)
/// has WANT's serial and mapping; the difference, when not.
pub(super) fn same_apps(args: &[String]) -> Result<(), String> {
    let [want, got] = args else {
        return Err("usage: cnamed-gen same-apps WANT GOT".to_owned());
    };
    let (want, got) = (read_dump(Path::new(want))?, read_dump(Path::new(got))?);
    if want.serial != got.serial {
        return Err(format!(
            "serial {} where {} was expected",
            got.serial, want.serial
        ));
    }
    let lower: BTreeMap<String, String> = want
        .apps
        .iter()
        .map(|(app, cluster)| (app.to_lowercase(), cluster.to_lowercase()))
        .collect();
    let differ = lower
        .iter()
        .filter(|(app, cluster)| got.apps.get(*app) != Some(cluster))
        .count()
        + got
            .apps
            .keys()
            .filter(|app| !lower.contains_key(*app))
            .count();
    match differ {
        0 => Ok(()),
        n => Err(format!("{n} apps differ")),
    }
}

/// `cnamed-gen ports N`: N distinct loopback ports free for both TCP and UDP, each held
/// until all are found, then released for the caller to bind. They are drawn below the
/// kernel's ephemeral range (32768 and up), so that no `:0` bind of another program takes one
/// before the caller binds it (cnamed binds with SO_REUSEPORT and would share it silently).
pub(super) fn ports(args: &[String], out: &mut impl Write) -> Result<(), String> {
    let count: usize = match args {
        [n] => n.parse().map_err(|_| format!("{n:?} is not a number"))?,
        _ => return Err("usage: cnamed-gen ports N".to_owned()),
    };
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for attempt in 0u32..100_000 {
        if ports.len() == count {
            break;
        }
        let port = 20_000 + (random.hash_one(attempt) % 12_000) as u16;
        // Taken by someone else (or by us already): try another.
        let (Ok(tcp), Ok(udp)) = (
            TcpListener::bind(("127.0.0.1", port)),
            UdpSocket::bind(("127.0.0.1", port)),
        ) else {
            continue;
        };
        held.push((tcp, udp));
        ports.push(port.to_string());
    }
    if ports.len() < count {
        return Err(format!("only {} free ports found", ports.len()));
    }
    writeln!(out, "{}", ports.join(" ")).map_err(|e| e.to_string())
}
