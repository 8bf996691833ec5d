//! `cnamed-update-load`: UPDATEs against a primary, timed from send to NOERROR (which cnamed
//! sends only once the change is fsynced and served), and a bare fsync for comparison.
//!
//!     cnamed-update-load --server ADDR:PORT --keys FILE [--key NAME] [--count N] [--rate R]
//!         [--batch K] [--pipeline P] [--first ID] [--named]
//!     cnamed-update-load --fsync FILE [--count N]
//!
//! Each UPDATE sets K new apps (numeric IDs counting from `--first`, or `u{ID}` with
//! `--named`: string IDs beside the numeric ones of a numeric zone) on cluster `mt1`, signed
//! with the key, over one TCP connection with up to P messages in flight, R messages a second
//! at most (0: as fast as answers come). Prints the round trip's p50, p99 and max, and app
//! changes per second. `--fsync`: N appends of 4 KB each followed by fdatasync, the floor of
//! any durable commit on that disk. The zone is the default settings' (apps.example.com).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnamed::testing::zone;
use cnamed::tsig::{keyfile, sign_request};
use cnamed::updater::{build, Change};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

fn report(what: &str, mut times: Vec<Duration>, elapsed: Duration, changes: u64) {
    times.sort();
    println!(
        "{what}: {} round trips, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} app changes/s",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        changes as f64 / elapsed.as_secs_f64()
    );
}

fn fsync_probe(path: &str, count: usize) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let block = vec![0x5a; 4096];
    let mut times = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(t.elapsed());
    }
    report("4 KB append + fdatasync", times, started.elapsed(), 0);
    std::fs::remove_file(path)
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(message)
}

struct Options {
    server: SocketAddr,
    keys: String,
    key: Option<String>,
    count: usize,
    rate: f64,
    batch: usize,
    pipeline: usize,
    first: u64,
    named: bool,
}

fn run(options: &Options) -> Result<(), String> {
    let keys = keyfile::load(options.keys.as_ref()).map_err(|e| e.to_string())?;
    let key = match &options.key {
        Some(name) => keys
            .iter()
            .find(|k| cnamed::wire::name::wire_to_text(&k.name).trim_end_matches('.') == name)
            .ok_or(format!("no key {name}"))?,
        None => keys.first().ok_or("no key in the file")?,
    };
    let zone = zone();
    let mut stream = TcpStream::connect(options.server).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel::<Result<(u16, Instant), String>>();
    let count = options.count;
    let answers = std::thread::spawn(move || -> Result<Vec<Duration>, String> {
        let mut times = Vec::with_capacity(count);
        let mut sent: VecDeque<(u16, Instant)> = VecDeque::new();
        while times.len() < count {
            let answer = read_frame(&mut reader).map_err(|e| e.to_string())?;
            let at = Instant::now();
            while let Ok(message) = rx.try_recv() {
                sent.push_back(message?);
            }
            if sent.is_empty() {
                sent.push_back(rx.recv().map_err(|e| e.to_string())??);
            }
            let (id, started) = sent.pop_front().ok_or("an answer to nothing")?;
            if answer.get(..2) != Some(&id.to_be_bytes()[..]) || answer[3] & 0x0f != 0 {
                return Err(format!("update {id}: not NOERROR: {:02x?}", &answer[..4]));
            }
            times.push(at - started);
            ANSWERED.fetch_add(1, Ordering::AcqRel);
        }
        Ok(times)
    });
    let interval = (options.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / options.rate));
    let started = Instant::now();
    let (in_flight, mut next_app) = (options.pipeline.max(1), options.first);
    for i in 0..count {
        if let Some(interval) = interval {
            let due = started + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        // At most `pipeline` messages unanswered.
        while i - ANSWERED.load(Ordering::Acquire) >= in_flight {
            std::thread::sleep(Duration::from_micros(50));
        }
        let apps = (0..options.batch)
            .map(|_| {
                next_app += 1;
                let prefix = if options.named { "u" } else { "" };
                (format!("{prefix}{next_app}"), "mt1".to_owned())
            })
            .collect();
        let id = i as u16;
        let mut message = build(&zone, &Change::Set(apps), None, id)?;
        let len = message.len();
        message.resize(len + 256, 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let (end, _) = sign_request(&mut message, len, key, now).ok_or("cannot sign")?;
        message.truncate(end);
        let mut frame = (end as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&message);
        let _ = tx.send(Ok((id, Instant::now())));
        stream.write_all(&frame).map_err(|e| e.to_string())?;
    }
    let times = answers.join().map_err(|_| "the answer thread died")??;
    let elapsed = started.elapsed();
    let what = format!(
        "UPDATE of {} app(s), {} in flight",
        options.batch, in_flight
    );
    report(&what, times, elapsed, (count * options.batch) as u64);
    Ok(())
}

/// Answers received, for the sender's window.
static ANSWERED: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let count = value("--count")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if let Some(path) = value("--fsync") {
        return match fsync_probe(&path, count) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("cnamed-update-load: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let (Some(server), Some(keys)) = (
        value("--server").and_then(|s| s.parse().ok()),
        value("--keys"),
    ) else {
        eprintln!("usage: cnamed-update-load --server ADDR:PORT --keys FILE [--key NAME] [--count N] [--rate R] [--batch K] [--pipeline P] [--first ID] [--named] | --fsync FILE [--count N]");
        return ExitCode::from(2);
    };
    let options = Options {
        server,
        keys,
        key: value("--key"),
        count,
        rate: value("--rate")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100.0),
        batch: value("--batch").and_then(|v| v.parse().ok()).unwrap_or(1),
        pipeline: value("--pipeline")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        first: value("--first").and_then(|v| v.parse().ok()).unwrap_or(0),
        named: args.iter().any(|arg| arg == "--named"),
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cnamed-update-load: {error}");
            ExitCode::FAILURE
        }
    }
}
