//! The `cnamed` binary: parse arguments, run the command, map the outcome to an exit code.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cnamed::cli::{self, Command, Invocation};
use cnamed::config::{Config, VERSION_STRING};
use cnamed::control::{self, Request};
use cnamed::cookie::{SecretError, Secrets};
use cnamed::server::FirstLoad;
use cnamed::snapshot::{guard, last_good, LoadError, Snapshot, Zone};
use cnamed::xfr::inbound::client::Initial;
use cnamed::{server, zonefile};

/// Exit code for a bad command line or configuration.
const USAGE_ERROR: u8 = 2;
/// Exit code for everything else: a bad dump, a socket that cannot be bound, a reload
/// refused.
const FAILURE: u8 = 1;
/// Exit code of `reload` and `status` when the server cannot be reached.
const UNREACHABLE: u8 = 2;

/// How long the last log lines get to reach stderr before the process exits.
const LOG_FLUSH: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let code = run();
    cnamed::log::flush(LOG_FLUSH);
    code
}

fn run() -> ExitCode {
    let invocation = match cli::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(error) => return fail(USAGE_ERROR, &error.to_string()),
    };
    let (command, config) = match invocation {
        Invocation::Help => {
            print_quiet(cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Invocation::Version => {
            print_quiet(&format!("{VERSION_STRING}\n"));
            return ExitCode::SUCCESS;
        }
        Invocation::Run(command, config) => (command, config),
        Invocation::Control(request, socket) => return ask(request, &socket),
        Invocation::Update(request, config) => return update(request, &config),
        Invocation::Wait(request, socket) => return wait(&request, &socket),
        Invocation::Keygen(request) => return keygen(&request),
    };
    let zone = match config.zone() {
        Ok(zone) => zone,
        Err(error) => return fail(USAGE_ERROR, &error.to_string()),
    };
    let secrets = match &config.cookie_secret_file {
        Some(path) => Secrets::load(path),
        None => Secrets::random().map_err(|e| SecretError(e.to_string())),
    };
    let secrets = match secrets {
        Ok(secrets) => secrets,
        Err(error) => return fail(USAGE_ERROR, &format!("cookie secret {error}")),
    };
    // Read as `serve` reads it, so that `check` catches a key file that would stop the
    // service; a bad one is configuration, as a bad cookie file is.
    if let Some(path) = &config.tsig_key_file {
        if let Err(error) = cnamed::tsig::keyfile::load(path) {
            return fail(USAGE_ERROR, &format!("TSIG key {error}"));
        }
    }
    let outcome = match command {
        Command::Serve => {
            // The server loads the dump itself, once its health endpoint can say it is
            // starting.
            let load = || match (&config.last_good, config.primary.is_empty()) {
                (Some(last_good), true) => load_with_last_good(&config, &zone, last_good),
                // A secondary with a journal starts from its dump and journal, then asks its
                // primaries for what is newer (IXFR): no whole transfer at each start.
                (_, false) if config.journal.is_some() && config.dump.exists() => {
                    load_first(&config, &zone, false).or_else(|error| {
                        cnamed::log!(Warning, "{error}: asking the primaries for the zone");
                        load_first(&config, &zone, true)
                    })
                }
                _ => load_first(&config, &zone, true),
            };
            server::serve(&config, zone.clone(), secrets, load)
        }
        Command::Check => {
            load_first(&config, &zone, false).map(|FirstLoad { snapshot, .. }| {
                print_quiet(&format!(
                    "{}: ok, {} apps, {}, serial {}\n",
                    config.dump.display(),
                    snapshot.app_count(),
                    cnamed::log::count(snapshot.cluster_count(), "cluster"),
                    snapshot.serial
                ));
            })
        }
        Command::Zonefile => load_first(&config, &zone, false).and_then(|first| {
            let snapshot = first.snapshot;
            let mut out = BufWriter::new(std::io::stdout().lock());
            match zonefile::write(&snapshot, &mut out).and_then(|()| out.flush()) {
                // The reader has what it wanted (`cnamed zonefile | head`): stop quietly.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        }),
        Command::Fetch => fetch(&config, &zone),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let hint = match (config.dump == Config::default().dump, config.dump.exists()) {
                (true, false) => {
                    " (the default --dump: give --dump PATH, or the service's options from /etc/default/cnamed)"
                }
                _ => "",
            };
            fail(FAILURE, &format!("{error}{hint}"))
        }
    }
}

/// With `--primary` (serve only): the zone transferred from the first primary that gives it
/// (the server writes it as the dump once it serves, for a restart without primaries);
/// `None` (logged) falls back to the dump.
fn transfer_first(config: &Config, zone: &Zone) -> Option<Initial> {
    if config.primary.is_empty() {
        return None;
    }
    let keys = match &config.tsig_key_file {
        Some(path) => cnamed::tsig::keyfile::load(path).ok()?,
        None => Vec::new(),
    };
    let limits = config.transfer_limits_in();
    match cnamed::xfr::inbound::client::transfer_zone(&config.primary, zone, keys.first(), limits) {
        Ok(initial) => Some(initial),
        Err(error) => {
            cnamed::log!(
                Error,
                "no primary gave the zone ({error}); loading {} instead",
                config.dump.display()
            );
            None
        }
    }
}

/// `cnamed fetch`: the zone from the first primary that gives it, printed as a dump.
fn fetch(config: &Config, zone: &Zone) -> std::io::Result<()> {
    if config.primary.is_empty() {
        return Err(std::io::Error::other("fetch needs --primary ADDR:PORT"));
    }
    let keys = match &config.tsig_key_file {
        Some(path) => cnamed::tsig::keyfile::load(path).map_err(std::io::Error::other)?,
        None => Vec::new(),
    };
    let mut errors = Vec::new();
    for &primary in &config.primary {
        let limits = config.transfer_limits_in();
        match cnamed::xfr::inbound::client::fetch_axfr(primary, zone, keys.first(), limits) {
            Ok(zone) => {
                let mut out = BufWriter::new(std::io::stdout().lock());
                return cnamed::snapshot::save::write_snapshot(&zone.snapshot, &mut out)
                    .and_then(|()| out.flush());
            }
            Err(error) => {
                cnamed::log!(Warning, "{error}");
                errors.extend(error.0);
            }
        }
    }
    let errors = cnamed::xfr::inbound::client::TransferError(errors);
    Err(std::io::Error::other(format!(
        "no primary gave the zone: {errors}"
    )))
}

/// Loads the dump (or, for `serve` with `--primary`, transfers the zone) for the first time,
/// with the rules that hold for every snapshot (the clusters); returns the snapshot, how
/// long it took and where it came from, or why not.
fn load_first(config: &Config, zone: &Zone, from_primaries: bool) -> std::io::Result<FirstLoad> {
    let started = Instant::now();
    let transferred = from_primaries
        .then(|| transfer_first(config, zone))
        .flatten();
    let (snapshot, transfer) = match transferred {
        Some(initial) => (initial.snapshot, Some(initial.transfer)),
        None => {
            let snapshot = Snapshot::load(&config.dump, zone, config.max_dump_size)
                .map_err(std::io::Error::other)?;
            (snapshot, None)
        }
    };
    let rules = config.guard_rules().map_err(std::io::Error::other)?;
    guard::check_clusters(&snapshot, &rules).map_err(|refusal| {
        std::io::Error::other(format!("{}: {refusal}", config.dump.display()))
    })?;
    Ok(FirstLoad {
        snapshot,
        elapsed: started.elapsed(),
        transfer,
        from_last_good: false,
    })
}

/// `serve` from a dump with `--last-good`: the dump, or the last good copy when the dump
/// cannot be served (see `last_good::choose_at_start`; an error line says why). A dump that
/// is served becomes the new copy before serving starts.
fn load_with_last_good(
    config: &Config,
    zone: &Zone,
    last_good: &Path,
) -> std::io::Result<FirstLoad> {
    let started = Instant::now();
    let rules = config.guard_rules().map_err(std::io::Error::other)?;
    let loaded = Snapshot::load(&config.dump, zone, config.max_dump_size).and_then(|snapshot| {
        match guard::check_clusters(&snapshot, &rules) {
            Ok(()) => Ok(snapshot),
            Err(refusal) => Err(LoadError::Refused {
                path: config.dump.clone(),
                refusal,
            }),
        }
    });
    let chosen = last_good::choose_at_start(loaded, last_good, zone, config.max_dump_size, &rules)
        .map_err(std::io::Error::other)?;
    let from_last_good = chosen.passed_over.is_some();
    match &chosen.passed_over {
        Some(why) => cnamed::log!(
            Error,
            "{} cannot be served ({why}); answering from the last good copy {}, serial {}",
            config.dump.display(),
            last_good.display(),
            chosen.snapshot.serial
        ),
        None => {
            if let Err(error) = last_good::save(&chosen.snapshot, last_good) {
                cnamed::log!(
                    Warning,
                    "cannot write the last good copy {}: {error}",
                    last_good.display()
                );
            }
        }
    }
    Ok(FirstLoad {
        snapshot: chosen.snapshot,
        elapsed: started.elapsed(),
        transfer: None,
        from_last_good,
    })
}

/// `cnamed reload` and `cnamed status`: prints the server's answer; exits 0 when done (for a
/// reload: the new mapping is live, or nothing changed), 1 when refused or failed, 2 when
/// the server cannot be reached or gave no answer.
fn ask(request: Request, socket: &Path) -> ExitCode {
    let answer = match control::ask(socket, request) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln_quiet(&format!("cnamed: error: {}: {error}", socket.display()));
            return ExitCode::from(UNREACHABLE);
        }
    };
    let ok = match request {
        Request::Reload { .. } => control::reload_succeeded(&answer),
        Request::Status { .. } => !answer.starts_with("error:"),
    };
    if ok {
        let _ = std::io::stdout().write_all(answer.as_bytes());
        ExitCode::SUCCESS
    } else {
        eprintln_quiet(&format!("cnamed: error: {}", answer.trim_end()));
        ExitCode::from(FAILURE)
    }
}

/// `cnamed wait`: until every `--notify` target of the server at `socket` serves the serial
/// asked for; exit 0 then, 1 on timeout or without targets, 2 when it cannot be reached.
fn wait(request: &cli::WaitRequest, socket: &Path) -> ExitCode {
    match control::wait_live(socket, request.serial, request.timeout) {
        Ok(control::Waited::Live { serial, targets }) => {
            print_quiet(&format!(
                "live: serial {serial} on all {targets} --notify targets\n"
            ));
            ExitCode::SUCCESS
        }
        Ok(control::Waited::Behind { serial, behind }) => {
            let timeout = request.timeout.as_secs();
            let line = format!(
                "cnamed: error: after {timeout} s, not live at serial {serial}: {}",
                behind.join(", ")
            );
            eprintln_quiet(&line);
            ExitCode::from(FAILURE)
        }
        Ok(control::Waited::NoTargets) => {
            let line = "cnamed: error: the server has no --notify targets: nothing to wait for";
            eprintln_quiet(line);
            ExitCode::from(FAILURE)
        }
        Err(error) => {
            eprintln_quiet(&format!("cnamed: error: {}: {error}", socket.display()));
            ExitCode::from(UNREACHABLE)
        }
    }
}

/// `cnamed update`: one UPDATE, signed with `--key` (else the first `--update-key`, else the
/// first key of the file), to `--server` (else the first `--listen`).
fn update(request: cli::UpdateRequest, config: &Config) -> ExitCode {
    use cnamed::updater::{self, UpdateError};
    let zone = match config.zone() {
        Ok(zone) => zone,
        Err(error) => return fail(USAGE_ERROR, &error.to_string()),
    };
    let Some(path) = &config.tsig_key_file else {
        return fail(
            USAGE_ERROR,
            "update needs --tsig-key-file (an UPDATE must be signed)",
        );
    };
    let keys = match cnamed::tsig::keyfile::load(path) {
        Ok(keys) => keys,
        Err(error) => return fail(USAGE_ERROR, &format!("TSIG key {error}")),
    };
    let wanted = request.key.as_ref().or(config.update_keys.first());
    let key = match wanted {
        Some(name) => {
            let wire = cnamed::wire::name::name_to_wire(&name.to_ascii_lowercase());
            keys.iter()
                .find(|key| wire.as_ref().is_ok_and(|w| *w == key.name))
        }
        None => keys.first(),
    };
    let Some(key) = key else {
        return fail(USAGE_ERROR, &format!("no such key in {}", path.display()));
    };
    let server = request.server.unwrap_or(config.listen[0]);
    let mut id = [0u8; 2];
    let _ = cnamed::sys::random_bytes(&mut id);
    let message = match updater::build(
        &zone,
        &request.change,
        request.serial,
        u16::from_be_bytes(id),
    ) {
        Ok(message) => message,
        Err(why) => return fail(USAGE_ERROR, &why),
    };
    match updater::send(server, message, key) {
        Ok(()) => match &request.wait {
            // The serial served once the update is acknowledged is the one it made, or a
            // later one: waiting for it waits for this change.
            Some(wait_request) => {
                let socket = config.control.clone();
                wait(
                    wait_request,
                    &socket.unwrap_or_else(|| control::DEFAULT_SOCKET.into()),
                )
            }
            None => ExitCode::SUCCESS,
        },
        Err(error @ UpdateError::Unreachable(_)) => {
            fail(UNREACHABLE, &format!("update to {server}: {error}"))
        }
        Err(error) => fail(FAILURE, &format!("update to {server}: {error}")),
    }
}

/// `text` on stdout; a reader that has gone (`cnamed --help | head -0`) has what it wanted,
/// so a closed stdout loses it quietly, as it does `zonefile`'s.
/// `cnamed keygen`: the key file on stdout, nothing else there.
fn keygen(request: &cli::KeygenRequest) -> ExitCode {
    let cli::KeygenRequest {
        name,
        algorithm,
        format,
    } = request;
    match cnamed::tsig::keygen::generate(name, *algorithm, *format) {
        Ok(text) => match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(FAILURE, &format!("cannot write the key: {error}")),
        },
        Err(error) => fail(USAGE_ERROR, &error.to_string()),
    }
}

fn print_quiet(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// One line on stderr, for the short-lived client commands; a closed stderr loses it.
fn eprintln_quiet(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn fail(code: u8, message: &str) -> ExitCode {
    cnamed::log!(Error, "{message}");
    ExitCode::from(code)
}
