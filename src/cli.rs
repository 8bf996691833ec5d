//! argv -> one `Config` and a command. Hand-rolled: a dozen flags do not need a parser crate.
//! This reads values; what they may be is [`crate::config`]'s to say.

use std::fmt;
use std::net::SocketAddr;

use crate::updater::Change;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::config::Config;
use crate::control::{Request, DEFAULT_SOCKET};
use crate::tsig::keygen::KeyFormat;
use crate::tsig::Algorithm;

mod usage;
pub use usage::USAGE;

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Answer queries.
    Serve,
    /// Load and validate the dump, print counts.
    Check,
    /// Print the zone as an RFC 1035 master file.
    Zonefile,
    /// Transfer the zone from a primary, print it as a dump.
    Fetch,
}

/// A command word: one run here, or a request for the running server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    Run(Command),
    Reload,
    Status,
    Update,
    Wait,
    Keygen,
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Run(Command, Box<Config>),
    /// `update`: one DNS UPDATE for the server, in the zone `Config` describes.
    Update(UpdateRequest, Box<Config>),
    /// `reload` or `status`: a request for the server at the socket.
    Control(Request, PathBuf),
    /// `wait`: until the server's `--notify` targets serve a serial.
    Wait(WaitRequest, PathBuf),
    /// `keygen`: a new TSIG key file on stdout.
    Keygen(KeygenRequest),
    Help,
    Version,
}

/// What `cnamed update` sends, and where.
#[derive(Debug, PartialEq, Eq)]
pub struct UpdateRequest {
    /// `--server`; `None`: the first `--listen`.
    pub server: Option<SocketAddr>,
    /// `--key`; `None`: the first `--update-key`, else the first key of the file.
    pub key: Option<String>,
    pub serial: Option<u32>,
    pub change: Change,
    /// `--wait`: then wait, as `cnamed wait`, for the serial the update made.
    pub wait: Option<WaitRequest>,
}

/// The key `cnamed keygen` makes.
#[derive(Debug, PartialEq, Eq)]
pub struct KeygenRequest {
    pub name: String,
    /// `--algorithm` [default: hmac-sha256].
    pub algorithm: Algorithm,
    /// `--format bind|knot` [default: bind].
    pub format: KeyFormat,
}

/// What `cnamed wait` waits for.
#[derive(Debug, PartialEq, Eq)]
pub struct WaitRequest {
    /// `--serial`; `None`: the one served when asked.
    pub serial: Option<u32>,
    /// `--timeout` [default: 30 s].
    pub timeout: Duration,
}

/// How long `cnamed wait` waits when not told.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// A bad command line: names the flag or word at fault.
#[derive(Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (try --help)", self.0)
    }
}

impl std::error::Error for CliError {}

/// Every option that takes a value; anything else starting with '-' is unknown.
const VALUE_FLAGS: [&str; 49] = [
    "--dump",
    "--zone",
    "--target",
    "--services",
    "--listen",
    "--threads",
    "--ttl",
    "--negative-ttl",
    "--soa-timers",
    "--ns",
    "--hostmaster",
    "--identity",
    "--version-string",
    "--tcp-idle-timeout",
    "--tcp-io-timeout",
    "--tcp-max-connections",
    "--metrics",
    "--rrl-rate",
    "--rrl-slip",
    "--cookie-secret-file",
    "--max-dump-size",
    "--max-shrink",
    "--clusters",
    "--control",
    "--xfr-allow",
    "--tsig-key-file",
    "--ixfr-history",
    "--update-key",
    "--journal",
    "--journal-max-size",
    "--notify",
    "--primary",
    "--on-expire",
    "--max-transfer-time-in",
    "--max-transfer-time-out",
    "--min-transfer-rate",
    "--max-transfers-per-address",
    "--min-refresh",
    "--last-good",
    "--dnstap",
    "--dnstap-sample",
    "--dnstap-messages",
    "--server",
    "--key",
    "--serial",
    "--timeout",
    "--max-ixfr-ratio",
    "--algorithm",
    "--format",
];

fn value<T: FromStr>(flag: &str, text: &str, what: &str) -> Result<T, CliError> {
    text.parse()
        .map_err(|_| CliError(format!("{flag}: {text:?} is not {what}")))
}

fn seconds(flag: &str, text: &str) -> Result<Duration, CliError> {
    value(flag, text, "a number of seconds").map(Duration::from_secs)
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, CliError> {
    let mut config = Config::default();
    let mut command = None;
    let mut listen = Vec::new();
    let mut ns = Vec::new();
    let (mut force, mut json) = (false, false);
    let (mut server, mut key, mut serial) = (None, None, None);
    let (mut wait, mut timeout) = (false, None);
    let (mut algorithm, mut format) = (None, None);
    let mut operands = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if !arg.starts_with('-') && matches!(command, Some(Word::Update | Word::Keygen)) {
            operands.push(arg);
            continue;
        }
        if !arg.starts_with('-') {
            let chosen = match arg.as_str() {
                "serve" => Word::Run(Command::Serve),
                "check" => Word::Run(Command::Check),
                "zonefile" => Word::Run(Command::Zonefile),
                "fetch" => Word::Run(Command::Fetch),
                "reload" => Word::Reload,
                "status" => Word::Status,
                "update" => Word::Update,
                "wait" => Word::Wait,
                "keygen" => Word::Keygen,
                "help" => return Ok(Invocation::Help),
                "version" => return Ok(Invocation::Version),
                other => return Err(CliError(format!("unknown command {other:?}"))),
            };
            if command.replace(chosen).is_some() {
                return Err(CliError(format!("a second command {arg:?}")));
            }
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "--force" if inline.is_none() => {
                force = true;
                continue;
            }
            "--json" if inline.is_none() => {
                json = true;
                continue;
            }
            "--wait" if inline.is_none() => {
                wait = true;
                continue;
            }
            known if VALUE_FLAGS.contains(&known) => {}
            other => return Err(CliError(format!("unknown option {other}"))),
        }
        let text = match inline {
            Some(text) => text,
            None => args
                .next()
                .ok_or_else(|| CliError(format!("{flag} needs a value")))?,
        };
        let flag = flag.as_str();
        match flag {
            "--dump" => config.dump = PathBuf::from(text),
            "--zone" => config.zone = text,
            "--target" => config.target = text,
            "--services" => config.services = text.split(',').map(str::to_owned).collect(),
            "--listen" => {
                let addr: SocketAddr = value(flag, &text, "an ADDR:PORT (IPv6 as [ADDR]:PORT)")?;
                if listen.contains(&addr) {
                    return Err(CliError(format!("{flag}: {addr} is given twice")));
                }
                listen.push(addr);
            }
            "--threads" => config.threads = value(flag, &text, "a number of threads")?,
            "--ttl" => config.ttl = value(flag, &text, "a TTL in seconds")?,
            "--negative-ttl" => config.negative_ttl = value(flag, &text, "a TTL in seconds")?,
            "--soa-timers" => {
                let what = "REFRESH,RETRY,EXPIRE in seconds";
                let numbers: Vec<u32> = text
                    .split(',')
                    .map(|n| value(flag, n, what))
                    .collect::<Result<_, _>>()?;
                config.soa_timers = numbers
                    .try_into()
                    .map_err(|_| CliError(format!("{flag}: {text:?} is not {what}")))?;
            }
            "--ns" => ns.push(text),
            "--hostmaster" => config.hostmaster = Some(text),
            "--identity" => config.identity = Some(text),
            "--version-string" => config.version_string = Some(text),
            "--tcp-idle-timeout" => {
                let seconds: u64 = value(flag, &text, "a number of seconds")?;
                config.tcp_idle_timeout = Duration::from_secs(seconds);
            }
            "--tcp-io-timeout" => {
                let millis: u64 = value(flag, &text, "a number of milliseconds")?;
                config.tcp_io_timeout = Duration::from_millis(millis);
            }
            "--tcp-max-connections" => {
                config.tcp_max_connections = value(flag, &text, "a number of connections")?
            }
            "--metrics" => {
                config.metrics = Some(value(flag, &text, "an ADDR:PORT (IPv6 as [ADDR]:PORT)")?)
            }
            "--rrl-rate" => {
                config.rrl_rate = Some(value(flag, &text, "a number of responses per second")?)
            }
            "--rrl-slip" => config.rrl_slip = value(flag, &text, "a number (0 never slips)")?,
            "--cookie-secret-file" => config.cookie_secret_file = Some(PathBuf::from(text)),
            "--max-dump-size" => config.max_dump_size = value(flag, &text, "a number of bytes")?,
            "--max-shrink" => config.max_shrink = value(flag, &text, "a percentage, 0 to 100")?,
            "--clusters" => config.clusters = Some(text.split(',').map(str::to_owned).collect()),
            "--control" => config.control = Some(PathBuf::from(text)),
            "--tsig-key-file" => config.tsig_key_file = Some(PathBuf::from(text)),
            "--notify" => config.notify.push(value(flag, &text, "an ADDR:PORT")?),
            "--primary" => config.primary.push(value(flag, &text, "an ADDR:PORT")?),
            "--on-expire" => config.on_expire = value(flag, &text, "serve or servfail")?,
            "--ixfr-history" => config.ixfr_history = value(flag, &text, "a number of reloads")?,
            "--update-key" => config.update_keys.push(text),
            "--journal" => config.journal = Some(PathBuf::from(text)),
            "--journal-max-size" => {
                config.journal_max_size = value(flag, &text, "a number of bytes")?
            }
            "--max-transfer-time-in" => {
                config.max_transfer_time_in = seconds(flag, &text)?;
            }
            "--max-transfer-time-out" => {
                config.max_transfer_time_out = seconds(flag, &text)?;
            }
            "--min-transfer-rate" => {
                config.min_transfer_rate = value(flag, &text, "a number of bytes per second")?
            }
            "--max-ixfr-ratio" => {
                config.max_ixfr_ratio = match text.as_str() {
                    "unlimited" => None,
                    percent => Some(value(flag, percent, "a percentage or unlimited")?),
                }
            }
            "--max-transfers-per-address" => {
                config.max_transfers_per_address = value(flag, &text, "a number of transfers")?
            }
            "--min-refresh" => config.min_refresh = seconds(flag, &text)?,
            "--last-good" => config.last_good = Some(PathBuf::from(text)),
            "--dnstap" => config.dnstap = Some(PathBuf::from(text)),
            "--dnstap-sample" => {
                config.dnstap_sample = value(flag, &text, "a number of queries (1: every one)")?
            }
            "--dnstap-messages" => {
                config.dnstap_messages = value(flag, &text, "queries, responses or both")?
            }
            "--server" => server = Some(value(flag, &text, "an ADDR:PORT")?),
            "--key" => key = Some(text),
            "--serial" => serial = Some(value(flag, &text, "a serial, 0 to 4294967295")?),
            "--timeout" => timeout = Some(seconds(flag, &text)?),
            "--algorithm" => {
                let known = Algorithm::from_name(&text);
                let what = format!("{flag}: {text:?} is not hmac-sha256 or hmac-sha512");
                algorithm = Some(known.ok_or(CliError(what))?);
            }
            "--format" => {
                format = Some(match text.as_str() {
                    "bind" => KeyFormat::Bind,
                    "knot" => KeyFormat::Knot,
                    _ => return Err(CliError(format!("{flag}: {text:?} is not bind or knot"))),
                })
            }
            "--xfr-allow" => config.xfr_allow.push(
                text.parse()
                    .map_err(|why| CliError(format!("{flag}: {why}")))?,
            ),
            other => return Err(CliError(format!("unknown option {other}"))),
        }
    }
    if !listen.is_empty() {
        config.listen = listen;
    }
    if !ns.is_empty() {
        config.ns = ns;
    }
    let command = command.unwrap_or(Word::Run(Command::Serve));
    if force && command != Word::Reload {
        return Err(CliError("--force goes with reload".into()));
    }
    if json && command != Word::Status {
        return Err(CliError("--json goes with status".into()));
    }
    if command != Word::Update && (server.is_some() || key.is_some()) {
        return Err(CliError("--server and --key go with update".into()));
    }
    if !matches!(command, Word::Update | Word::Wait) && serial.is_some() {
        return Err(CliError("--serial goes with update and wait".into()));
    }
    if command != Word::Update && wait {
        return Err(CliError("--wait goes with update".into()));
    }
    if !(command == Word::Wait || wait) && timeout.is_some() {
        return Err(CliError(
            "--timeout goes with wait and update --wait".into(),
        ));
    }
    if command != Word::Keygen && (algorithm.is_some() || format.is_some()) {
        return Err(CliError("--algorithm and --format go with keygen".into()));
    }
    let timeout = timeout.unwrap_or(DEFAULT_WAIT);
    // The zone is checked by the caller, which builds it; limits are only read later.
    config
        .check_limits()
        .map_err(|error| CliError(error.to_string()))?;
    if command == Word::Run(Command::Serve) {
        config
            .check_updates()
            .map_err(|error| CliError(error.to_string()))?;
    }
    // The server's other flags are accepted and unused, so that one set of options (a unit's
    // EnvironmentFile) serves `serve` and `reload` alike.
    let socket = || {
        config
            .control
            .clone()
            .unwrap_or_else(|| DEFAULT_SOCKET.into())
    };
    Ok(match command {
        Word::Reload => Invocation::Control(Request::Reload { force }, socket()),
        Word::Status => Invocation::Control(Request::Status { json }, socket()),
        Word::Wait => Invocation::Wait(WaitRequest { serial, timeout }, socket()),
        Word::Update => {
            let request = UpdateRequest {
                server,
                key,
                serial,
                change: update_change(operands)?,
                wait: wait.then_some(WaitRequest {
                    serial: None,
                    timeout,
                }),
            };
            Invocation::Update(request, Box::new(config))
        }
        Word::Keygen => {
            let [name] = <[String; 1]>::try_from(operands)
                .map_err(|_| CliError("keygen needs one key NAME".into()))?;
            Invocation::Keygen(KeygenRequest {
                name,
                algorithm: algorithm.unwrap_or(Algorithm::HmacSha256),
                format: format.unwrap_or(KeyFormat::Bind),
            })
        }
        Word::Run(command) => Invocation::Run(command, Box::new(config)),
    })
}

/// `set APP CLUSTER ...` or `delete APP ...`.
fn update_change(operands: Vec<String>) -> Result<Change, CliError> {
    let usage = || CliError("update needs set APP CLUSTER [...] or delete APP [...]".into());
    let (verb, rest) = operands.split_first().ok_or_else(usage)?;
    match verb.as_str() {
        "set" if !rest.is_empty() && rest.len() % 2 == 0 => Ok(Change::Set(
            rest.chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].to_ascii_lowercase()))
                .collect(),
        )),
        "delete" if !rest.is_empty() => Ok(Change::Delete(rest.to_vec())),
        _ => Err(usage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, CliError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(
            run(&[]),
            Ok(Invocation::Run(Command::Serve, Box::default()))
        );
        let Ok(Invocation::Run(command, config)) = run(&[
            "check",
            "--zone=x.example",
            "--listen",
            "[::1]:53",
            "--listen",
            "127.0.0.1:0",
            "--ns",
            "a.example",
            "--ns",
            "b.example",
            "--services",
            "ws,api",
            "--ttl",
            "30",
        ]) else {
            panic!("rejected");
        };
        assert_eq!(command, Command::Check);
        assert_eq!(config.zone, "x.example");
        assert_eq!(config.listen.len(), 2);
        assert_eq!(config.ns, ["a.example", "b.example"]);
        assert_eq!(config.services, ["ws", "api"]);
        assert_eq!(config.ttl, 30);
        assert_eq!(run(&["zonefile", "-h"]), Ok(Invocation::Help));
        assert_eq!(run(&["-V"]), Ok(Invocation::Version));
        assert_eq!(run(&["help"]), Ok(Invocation::Help));
        assert_eq!(run(&["version"]), Ok(Invocation::Version));
        assert_eq!(
            run(&["reload", "--force", "--zone", "x.example"]),
            Ok(Invocation::Control(
                Request::Reload { force: true },
                DEFAULT_SOCKET.into()
            ))
        );
        assert_eq!(
            run(&["status", "--json", "--control=/tmp/c"]),
            Ok(Invocation::Control(
                Request::Status { json: true },
                "/tmp/c".into()
            ))
        );
    }

    #[test]
    fn every_value_flag_is_parsed_and_documented() {
        for flag in VALUE_FLAGS {
            if let Err(error) = run(&[flag, "1"]) {
                assert!(!error.0.contains("unknown option"), "{flag}: {error}");
            }
            assert!(USAGE.contains(flag), "{flag} missing from USAGE");
        }
    }

    /// The README's flags table has a row for every flag of `--help`, and no other.
    #[test]
    fn readme_table_has_every_flag() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("| flag | default | meaning |")
            .expect("the table");
        let rows: Vec<&str> = readme[start..]
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .collect();
        let flags =
            VALUE_FLAGS
                .iter()
                .chain(&["--force", "--json", "--wait", "--help", "--version"]);
        for flag in flags {
            let row = format!("`{flag}");
            assert!(
                rows.iter().any(|r| r.contains(&row)),
                "{flag} missing from the README's table"
            );
        }
        for row in &rows {
            let flag = row.split('`').nth(1).unwrap().split(' ').next().unwrap();
            assert!(
                USAGE.contains(flag),
                "{flag} is in the README, not in --help"
            );
        }
    }

    /// `wait` with and without its flags, and `update --wait`.
    #[test]
    fn wait_and_update_wait() {
        let socket = PathBuf::from(DEFAULT_SOCKET);
        assert_eq!(
            run(&["wait"]),
            Ok(Invocation::Wait(
                WaitRequest {
                    serial: None,
                    timeout: DEFAULT_WAIT
                },
                socket
            ))
        );
        let waited = WaitRequest {
            serial: Some(7),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(
            run(&[
                "wait",
                "--serial=7",
                "--timeout",
                "5",
                "--control",
                "/tmp/c"
            ]),
            Ok(Invocation::Wait(waited, PathBuf::from("/tmp/c")))
        );
        let Ok(Invocation::Update(request, _)) =
            run(&["update", "--wait", "--timeout", "9", "set", "1", "eu"])
        else {
            panic!("not an update")
        };
        let wait = request.wait.expect("--wait");
        assert_eq!((wait.serial, wait.timeout), (None, Duration::from_secs(9)));
    }

    /// The man page documents every flag and command (roff escapes each '-').
    #[test]
    fn man_page_documents_every_flag() {
        let man = include_str!("../data/man/cnamed.8");
        let flags =
            VALUE_FLAGS
                .iter()
                .chain(&["--force", "--json", "--wait", "--help", "--version"]);
        for flag in flags {
            let escaped = flag.replace('-', "\\-");
            assert!(man.contains(&escaped), "{flag} missing from cnamed.8");
        }
        let commands = [
            "serve", "check", "zonefile", "fetch", "reload", "status", "wait",
        ];
        for command in commands {
            assert!(man.contains(&format!(".B {command}")), "{command}");
        }
    }

    #[test]
    fn errors_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--threads", "x"], "--threads"),
            (&["--threads", "0"], "--threads"),
            (&["--threads", "100000"], "--threads"),
            (
                &["--listen", "127.0.0.1:53", "--listen", "127.0.0.1:53"],
                "given twice",
            ),
            (&["--ttl", "-1"], "--ttl"),
            (&["--rrl-rate", "0"], "--rrl-rate"),
            (&["--rrl-slip", "x"], "--rrl-slip"),
            (&["--metrics", "9100"], "--metrics"),
            (&["--listen", "localhost"], "--listen"),
            (&["--zone"], "--zone needs a value"),
            (&["--frobnicate", "1"], "--frobnicate"),
            (&["--frob"], "unknown option --frob"),
            (&["-x"], "unknown option -x"),
            (&["serve", "check"], "second command"),
            (&["bogus"], "unknown command"),
            (&["--force"], "--force goes with reload"),
            (&["reload", "--json"], "--json goes with status"),
            (&["reload", "--force=1"], "unknown option --force"),
            (
                &["status", "--serial", "5"],
                "--serial goes with update and wait",
            ),
            (&["wait", "--wait"], "--wait goes with update"),
            (&["status", "--timeout", "5"], "--timeout goes with wait"),
            (
                &["update", "--timeout", "5", "set", "1", "eu"],
                "--timeout goes with wait",
            ),
            (&["wait", "--key", "k"], "--server and --key go with update"),
            (&["wait", "--timeout", "soon"], "--timeout"),
        ];
        for (args, expected) in cases {
            let error = run(args).unwrap_err().to_string();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn keygen_takes_a_name_an_algorithm_and_a_format() {
        let expected = |name: &str, algorithm, format| {
            Ok(Invocation::Keygen(KeygenRequest {
                name: name.into(),
                algorithm,
                format,
            }))
        };
        assert_eq!(
            run(&["keygen", "xfr-key"]),
            expected("xfr-key", Algorithm::HmacSha256, KeyFormat::Bind)
        );
        assert_eq!(
            run(&[
                "keygen",
                "--algorithm",
                "hmac-sha512",
                "--format=knot",
                "k.example."
            ]),
            expected("k.example.", Algorithm::HmacSha512, KeyFormat::Knot)
        );
        for (args, why) in [
            (&["keygen"][..], "keygen needs one key NAME"),
            (&["keygen", "a", "b"], "keygen needs one key NAME"),
            (&["keygen", "--format", "yaml", "k"], "is not bind or knot"),
            (
                &["keygen", "--algorithm", "hmac-md5", "k"],
                "is not hmac-sha256",
            ),
            (&["reload", "--format", "knot"], "go with keygen"),
        ] {
            let error = run(args).unwrap_err();
            assert!(error.0.contains(why), "{args:?}: {error}");
        }
    }
}
