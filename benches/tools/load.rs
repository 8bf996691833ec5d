//! A closed-loop UDP load generator for DNS servers, cheap enough per query to drive a bare
//! reflector faster than any server (benches/load.sh shows that it does).
//!
//!     cnamed-load --server ADDR:PORT --queries FILE [--duration SECS] [--warmup SECS]
//!                 [--sockets N] [--window N] [--timeout-ms MS]
//!
//! It replays a dnsperf-format query file ("name type" per line) over `--sockets` connected
//! sockets, each its own source port (SO_REUSEPORT spreads load by the 4-tuple), keeping
//! `--window` queries in flight per socket. Queries and replies move in batches of 64 with
//! sendmmsg/recvmmsg. A query unanswered after `--timeout-ms` is lost. It prints one line of
//! key=value results: answered queries per second, lost, latency percentiles and RCODEs.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cnamed::sys::{UdpBatch, BATCH};
use cnamed::testing::{send_connected, wait_readable, QueryBuilder};

/// Largest query we build: a 255-byte name, header and question fixed parts.
const MAX_QUERY: usize = 512;
/// Latency histogram resolution and range: 1 µs buckets up to 1 s (longer is lost anyway).
const HISTOGRAM_US: usize = 1_000_000;
const EXPIRE_EVERY: Duration = Duration::from_millis(50);

struct Options {
    server: SocketAddr,
    queries: PathBuf,
    duration: Duration,
    warmup: Duration,
    sockets: usize,
    window: usize,
    timeout: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        server: "127.0.0.1:5353".parse().unwrap(),
        queries: PathBuf::new(),
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        sockets: 8,
        window: 16,
        timeout: Duration::from_millis(1000),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--server" => {
                options.server = value.parse().map_err(|_| format!("--server: {value:?}"))?
            }
            "--queries" => options.queries = PathBuf::from(value),
            "--duration" => options.duration = Duration::from_secs_f64(number()?),
            "--warmup" => options.warmup = Duration::from_secs_f64(number()?),
            "--sockets" => options.sockets = (number()? as usize).clamp(1, BATCH),
            "--window" => options.window = (number()? as usize).clamp(1, 256),
            "--timeout-ms" => options.timeout = Duration::from_secs_f64(number()? / 1e3),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.queries.as_os_str().is_empty() {
        return Err("--queries FILE is required".into());
    }
    Ok(options)
}

fn rtype_code(text: &str) -> Option<u16> {
    Some(match text.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        other => other.strip_prefix("TYPE")?.parse().ok()?,
    })
}

/// Encodes each "name type" line as a query with ID 0 and no flags set (RD clear, as for an
/// authoritative server).
fn load_queries(path: &PathBuf) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut queries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(rtype)) = (words.next(), words.next()) else {
            return Err(format!("line {}: expected \"name type\"", number + 1));
        };
        let rtype =
            rtype_code(rtype).ok_or(format!("line {}: unknown type {rtype}", number + 1))?;
        let packet = QueryBuilder::new(name, rtype).id(0).flags(0).build();
        if packet.len() > MAX_QUERY {
            return Err(format!("line {}: name too long", number + 1));
        }
        queries.push(packet);
    }
    if queries.is_empty() {
        return Err(format!("{}: no queries", path.display()));
    }
    Ok(queries)
}

/// One query in flight, or a free slot.
#[derive(Clone, Copy)]
struct Slot {
    sent_at: Instant,
    busy: bool,
    /// Bumped on every send, so that a late reply to an expired query is not taken for the
    /// reply to its slot's next query.
    generation: u8,
    counted: bool,
}

struct Port {
    socket: UdpSocket,
    slots: Vec<Slot>,
    free: Vec<u8>,
}

#[derive(Default)]
struct Totals {
    sent: u64,
    answered: u64,
    lost: u64,
    stale: u64,
    rcodes: [u64; 16],
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("cnamed-load: {error}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cnamed-load: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The load generator's state between steps.
struct Load<'q> {
    queries: &'q [Vec<u8>],
    next_query: usize,
    ports: Vec<Port>,
    batch: UdpBatch,
    outgoing: Box<[[u8; MAX_QUERY]; BATCH]>,
    histogram: Vec<u32>,
    totals: Totals,
    timeout: Duration,
}

impl Load<'_> {
    /// Fills every socket's window; `counted` marks queries sent in the measured period.
    fn send(&mut self, counted: bool) {
        for port in &mut self.ports {
            let mut lens = [0usize; BATCH];
            let mut taken = [0u8; BATCH];
            let mut count = 0;
            while count < BATCH {
                let Some(slot) = port.free.pop() else { break };
                let query = &self.queries[self.next_query];
                self.next_query = (self.next_query + 1) % self.queries.len();
                let entry = &mut port.slots[slot as usize];
                entry.generation = entry.generation.wrapping_add(1);
                let buf = &mut self.outgoing[count];
                buf[..query.len()].copy_from_slice(query);
                buf[..2].copy_from_slice(&[entry.generation, slot]);
                lens[count] = query.len();
                taken[count] = slot;
                count += 1;
            }
            if count == 0 {
                continue;
            }
            let outgoing = &self.outgoing;
            let datagrams: [&[u8]; BATCH] = std::array::from_fn(|i| &outgoing[i][..lens[i]]);
            let sent = send_connected(port.socket.as_fd(), &datagrams[..count]).unwrap_or(0);
            let sent_at = Instant::now();
            for &slot in &taken[..sent] {
                let entry = &mut port.slots[slot as usize];
                entry.sent_at = sent_at;
                entry.busy = true;
                entry.counted = counted;
            }
            if counted {
                self.totals.sent += sent as u64;
            }
            // Slots the kernel did not take go back.
            port.free.extend(taken[sent..count].iter().rev());
        }
    }

    /// Takes every reply waiting on every socket; returns how many came.
    fn receive(&mut self) -> usize {
        let mut received = 0;
        for port in &mut self.ports {
            while let Ok(got) = self.batch.recv(port.socket.as_fd()) {
                let now = Instant::now();
                for i in 0..got {
                    let reply = self.batch.received(i);
                    if reply.len() < 12 {
                        continue;
                    }
                    let (generation, slot) = (reply[0], reply[1]);
                    let Some(entry) = port.slots.get_mut(slot as usize) else {
                        continue;
                    };
                    if !entry.busy || entry.generation != generation {
                        self.totals.stale += 1;
                        continue;
                    }
                    entry.busy = false;
                    port.free.push(slot);
                    if entry.counted {
                        self.totals.answered += 1;
                        self.totals.rcodes[(reply[3] & 0xF) as usize] += 1;
                        let micros = now.duration_since(entry.sent_at).as_micros() as usize;
                        self.histogram[micros.min(HISTOGRAM_US)] += 1;
                    }
                }
                received += got;
                if got < BATCH {
                    break;
                }
            }
        }
        received
    }

    /// Frees the slots of queries unanswered for longer than the timeout, counting them lost.
    fn expire(&mut self, now: Instant) {
        for port in &mut self.ports {
            for (index, slot) in port.slots.iter_mut().enumerate() {
                if slot.busy && now.duration_since(slot.sent_at) > self.timeout {
                    slot.busy = false;
                    port.free.push(index as u8);
                    self.totals.lost += u64::from(slot.counted);
                }
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.ports
            .iter()
            .map(|p| p.slots.len() - p.free.len())
            .sum()
    }

    fn percentile(&self, fraction: f64) -> usize {
        let target = ((self.totals.answered as f64 * fraction).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (micros, &count) in self.histogram.iter().enumerate() {
            seen += u64::from(count);
            if seen >= target {
                return micros;
            }
        }
        HISTOGRAM_US
    }
}

fn run(options: &Options) -> Result<(), String> {
    let queries = load_queries(&options.queries)?;
    let local: SocketAddr = if options.server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .unwrap();
    let mut ports = Vec::new();
    for _ in 0..options.sockets {
        let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
        socket.connect(options.server).map_err(|e| e.to_string())?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        let idle = Slot {
            sent_at: Instant::now(),
            busy: false,
            generation: 0,
            counted: false,
        };
        ports.push(Port {
            socket,
            slots: vec![idle; options.window],
            free: (0..options.window as u8).rev().collect(),
        });
    }
    let mut load = Load {
        queries: &queries,
        next_query: 0,
        ports,
        batch: UdpBatch::new(),
        outgoing: Box::new([[0u8; MAX_QUERY]; BATCH]),
        histogram: vec![0u32; HISTOGRAM_US + 1],
        totals: Totals::default(),
        timeout: options.timeout,
    };

    let started = Instant::now();
    let measure_from = started + options.warmup;
    let stop_sending = measure_from + options.duration;
    let mut next_expiry = started + EXPIRE_EVERY;
    loop {
        let now = Instant::now();
        let sending = now < stop_sending;
        if !sending && (load.in_flight() == 0 || now >= stop_sending + options.timeout) {
            break;
        }
        if sending {
            load.send(now >= measure_from);
        }
        let received = load.receive();
        let now = Instant::now();
        if now >= next_expiry {
            next_expiry = now + EXPIRE_EVERY;
            load.expire(now);
        }
        if received == 0 && !sending {
            let fds: Vec<_> = load.ports.iter().map(|p| p.socket.as_fd()).collect();
            wait_readable(&fds, Duration::from_millis(10));
        }
    }
    // Whatever is still in flight after the timeout is lost.
    for port in &load.ports {
        load.totals.lost += port.slots.iter().filter(|s| s.busy && s.counted).count() as u64;
    }

    let totals = &load.totals;
    let seconds = options.duration.as_secs_f64();
    let lost_pct = if totals.sent == 0 {
        0.0
    } else {
        100.0 * totals.lost as f64 / totals.sent as f64
    };
    let other: u64 = totals
        .rcodes
        .iter()
        .enumerate()
        .filter(|(rcode, _)| ![0, 3].contains(rcode))
        .map(|(_, count)| count)
        .sum();
    println!(
        "server={} qps={:.0} sent={} answered={} lost={} lost_pct={:.3} p50_us={} p99_us={} p999_us={} noerror={} nxdomain={} other_rcode={} stale={}",
        options.server,
        totals.answered as f64 / seconds,
        totals.sent,
        totals.answered,
        totals.lost,
        lost_pct,
        load.percentile(0.5),
        load.percentile(0.99),
        load.percentile(0.999),
        totals.rcodes[0],
        totals.rcodes[3],
        other,
        totals.stale,
    );
    Ok(())
}
