//! Deterministic benchmark data: a dump of N apps, and query files in dnsperf format.
//!
//!     cnamed-gen dump --apps N [--clusters C] [--ids numbers|strings] [--seed S] > apps.json
//!     cnamed-gen queries --apps N [--count M] [--mix hits|mixed] [--ids numbers|strings]
//!         [--seed S] > queries.txt
//!
//! and what the shell scripts need besides (`change`, `sample`, `same-apps`, `ports`: see
//! `gen/scripts.rs`), so that none of them builds JSON or opens sockets in Python.
//!
//! App IDs are 100000.. 100000+N-1, or with `--ids strings` the N strings of [`string_id`]:
//! 8 to 30 bytes, about 17 on average, words, hyphens and digits, a tenth numeric-looking
//! with leading zeros, as platforms name apps. "mixed" is 90% hits (type A over every service), 5%
//! unknown apps (NXDOMAIN) and 5% other types (AAAA, TXT, MX and ANY at app names; SOA and NS
//! at the apex).

#[path = "gen/scripts.rs"]
mod scripts;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

const FIRST_APP: u64 = 100_000;
const SERVICES: [&str; 3] = ["ws", "sockjs", "api"];
const ZONE: &str = "apps.example.com";

/// splitmix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Options {
    apps: u64,
    clusters: u64,
    count: u64,
    mixed: bool,
    seed: u64,
    strings: bool,
}

const ADJECTIVES: [&str; 16] = [
    "happy", "blue", "quiet", "rapid", "bold", "calm", "dark", "eager", "fancy", "gentle", "brave",
    "lucky", "misty", "proud", "silent", "wild",
];
const NOUNS: [&str; 16] = [
    "fox", "river", "cloud", "stone", "pine", "hawk", "moon", "tiger", "lake", "owl", "wave",
    "field", "comet", "maple", "wolf", "ember",
];

/// App `i`'s string ID: unique per `i` (its base-36 form is in every shape, and the shapes
/// differ in digits-only, hyphen count or suffix), the same for dump and queries.
fn string_id(i: u64) -> String {
    let mut rng = Rng(i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let adjective = ADJECTIVES[rng.below(16) as usize];
    let noun = NOUNS[rng.below(16) as usize];
    let base36 = {
        let mut n = i;
        let mut digits = Vec::new();
        loop {
            digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        digits.reverse();
        String::from_utf8(digits).unwrap()
    };
    match i % 10 {
        // Numeric-looking, with leading zeros: stays a string ("0012" is not "12").
        0 => format!("00{i:010}"),
        1 | 2 => format!("{adjective}{noun}{base36}"),
        3 => format!(
            "{adjective}-{}-{noun}-{base36}-prod",
            ADJECTIVES[rng.below(16) as usize]
        ),
        // A trailing digit: equal strings would need equal base-36 lengths, hence equal `i`.
        _ => format!("{adjective}-{noun}-{base36}{}", rng.below(10)),
    }
}

/// App `i`'s ID as text.
fn app_id(options: &Options, i: u64) -> String {
    match options.strings {
        true => string_id(i),
        false => (FIRST_APP + i).to_string(),
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        apps: 100_000,
        clusters: 8,
        count: 1_000_000,
        mixed: false,
        seed: 1,
        strings: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--apps" => options.apps = number()?,
            "--clusters" => options.clusters = number()?.max(1),
            "--count" => options.count = number()?,
            "--seed" => options.seed = number()?,
            "--ids" => {
                options.strings = match value.as_str() {
                    "numbers" => false,
                    "strings" => true,
                    other => return Err(format!("--ids: {other:?} is not numbers or strings")),
                }
            }
            "--mix" => {
                options.mixed = match value.as_str() {
                    "hits" => false,
                    "mixed" => true,
                    other => return Err(format!("--mix: {other:?} is not hits or mixed")),
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn dump(options: &Options, out: &mut impl Write) -> io::Result<()> {
    let mut rng = Rng(options.seed);
    write!(
        out,
        "{{\"serial\": {}, \"apps\": {{",
        2026112600 + options.seed
    )?;
    for i in 0..options.apps {
        let separator = if i == 0 { "" } else { "," };
        let cluster = rng.below(options.clusters) + 1;
        write!(
            out,
            "{separator}\n\"{}\": \"mt{cluster}\"",
            app_id(options, i)
        )?;
    }
    writeln!(out, "\n}}}}")
}

fn queries(options: &Options, out: &mut impl Write) -> io::Result<()> {
    let mut rng = Rng(options.seed ^ 0x0D15_EA5E);
    for _ in 0..options.count {
        let service = SERVICES[rng.below(SERVICES.len() as u64) as usize];
        let app = app_id(options, rng.below(options.apps));
        let roll = if options.mixed { rng.below(100) } else { 0 };
        match roll {
            0..=89 => writeln!(out, "{service}-{app}.{ZONE} A")?,
            90..=94 => writeln!(
                out,
                "{service}-{}.{ZONE} A",
                app_id(options, options.apps + rng.below(1 << 20))
            )?,
            _ => match rng.below(6) {
                0 => writeln!(out, "{service}-{app}.{ZONE} AAAA")?,
                1 => writeln!(out, "{service}-{app}.{ZONE} TXT")?,
                2 => writeln!(out, "{service}-{app}.{ZONE} MX")?,
                3 => writeln!(out, "{service}-{app}.{ZONE} ANY")?,
                4 => writeln!(out, "{ZONE} SOA")?,
                _ => writeln!(out, "{ZONE} NS")?,
            },
        }
    }
    Ok(())
}

/// The commands for the shell scripts, which report their own errors.
fn script_command(command: &str, args: &[String]) -> Option<Result<(), String>> {
    let mut out = io::stdout().lock();
    Some(match command {
        "change" => scripts::change(args),
        "sample" => scripts::sample(args, &mut out),
        "same-apps" => scripts::same_apps(args),
        "ports" => scripts::ports(args, &mut out),
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprintln!("usage: cnamed-gen dump|queries [--apps N] [--clusters C] [--count M] [--mix hits|mixed] [--seed S]");
        eprintln!("       cnamed-gen change|sample|same-apps|ports ... (see benches/tools/gen/scripts.rs)");
        return ExitCode::from(2);
    };
    if let Some(result) = script_command(command, &args[1..]) {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("cnamed-gen {command}: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse(&args[1..]) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("cnamed-gen: {error}");
            return ExitCode::from(2);
        }
    };
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let result = match command.as_str() {
        "dump" => dump(&options, &mut out),
        "queries" => queries(&options, &mut out),
        other => {
            eprintln!("cnamed-gen: unknown command {other:?}");
            return ExitCode::from(2);
        }
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cnamed-gen: {error}");
            ExitCode::FAILURE
        }
    }
}
