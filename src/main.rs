//! The `cnamed` binary: parse arguments, run the command, map the outcome to an exit code.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cnamed::cli::{self, Command, Invocation};
use cnamed::config::{Config, VERSION_STRING};
use cnamed::cookie::Secrets;
use cnamed::server::systemd::Notifier;
use cnamed::server::{http, ReloadError, Reloaded, Running, Server, TcpLimits};
use cnamed::snapshot::{Snapshot, Zone};
use cnamed::{sys, zonefile};

/// Exit code for a bad command line or configuration.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let invocation = match cli::parse(std::env::args().skip(1)) {
        Ok(invocation) => invocation,
        Err(error) => return fail(USAGE_ERROR, &error.to_string()),
    };
    let (command, config) = match invocation {
        Invocation::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Invocation::Version => {
            println!("{VERSION_STRING}");
            return ExitCode::SUCCESS;
        }
        Invocation::Run(command, config) => (command, config),
    };
    let zone = match config.zone() {
        Ok(zone) => zone,
        Err(error) => return fail(USAGE_ERROR, &error.to_string()),
    };
    let secrets = match &config.cookie_secret_file {
        Some(path) => Secrets::load(path),
        None => Secrets::random().map_err(|e| cnamed::cookie::SecretError(e.to_string())),
    };
    let secrets = match secrets {
        Ok(secrets) => secrets,
        Err(error) => return fail(USAGE_ERROR, &format!("cookie secret {error}")),
    };
    let started = Instant::now();
    let snapshot = match Snapshot::load(&config.dump, &zone) {
        Ok(snapshot) => snapshot,
        Err(error) => return fail(1, &error.to_string()),
    };
    let load_time = started.elapsed();
    let outcome = match command {
        Command::Check => {
            println!(
                "{}: ok, {} apps, {} clusters, serial {}",
                config.dump.display(),
                snapshot.app_count(),
                snapshot.cluster_count(),
                snapshot.serial
            );
            Ok(())
        }
        Command::Zonefile => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            zonefile::write(&snapshot, &mut out).and_then(|()| out.flush())
        }
        Command::Serve => {
            eprintln!(
                "cnamed: loaded {}: {} apps in {:.1} ms",
                config.dump.display(),
                snapshot.app_count(),
                load_time.as_secs_f64() * 1e3
            );
            serve(&config, zone, snapshot, secrets, load_time)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(1, &error.to_string()),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("cnamed: {message}");
    ExitCode::from(code)
}

/// How long a reload may wait for idle CPU before it takes its fair share.
const IDLE_RELOAD_GRACE: Duration = Duration::from_secs(5);

/// Reloads on a thread that first runs only in the workers' idle time (SCHED_IDLE), so that
/// parsing a dump on a core shared with a worker does not delay queries. A box saturated for
/// longer than `IDLE_RELOAD_GRACE` has no idle time: the reload then runs at normal priority,
/// so that new mappings always arrive.
fn reload_in_idle_time(running: &Running) -> Result<Reloaded, ReloadError> {
    std::thread::scope(|scope| {
        let (started, thread) = mpsc::channel();
        let (finished, done) = mpsc::channel::<()>();
        let loader = scope.spawn(move || {
            let _ = started.send(sys::current_thread());
            // Soft: without SCHED_IDLE the reload simply runs at normal priority.
            let _ = sys::set_thread_idle(sys::current_thread(), true);
            let result = running.reload();
            drop(finished);
            result
        });
        // Disconnected means finished; a timeout means no idle time came in the grace period.
        if done.recv_timeout(IDLE_RELOAD_GRACE) == Err(mpsc::RecvTimeoutError::Timeout) {
            if let Ok(thread) = thread.recv() {
                let _ = sys::set_thread_idle(thread, false);
            }
        }
        loader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn serve(
    config: &Config,
    zone: Zone,
    snapshot: Snapshot,
    secrets: Secrets,
    load_time: Duration,
) -> std::io::Result<()> {
    const SIGNALS: [i32; 3] = [sys::SIGHUP, sys::SIGTERM, sys::SIGINT];
    // Before any worker exists, so that every thread inherits the mask and only the loop
    // below ever sees these signals.
    sys::block_signals(&SIGNALS)?;
    let (apps, clusters, serial) = (
        snapshot.app_count(),
        snapshot.cluster_count(),
        snapshot.serial,
    );
    let limits = TcpLimits {
        idle_timeout: config.tcp_idle_timeout,
        io_timeout: config.tcp_io_timeout,
        max_connections: config.tcp_max_connections,
    };
    // Soft: without it, fewer TCP connections fit, and accept failures say so.
    let _ = sys::raise_fd_limit();
    let server = Server::bind(config, zone, snapshot, secrets, limits)?;
    server.set_load_time(load_time);
    let metrics_listener = match config.metrics {
        Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|error| {
            std::io::Error::new(error.kind(), format!("cannot bind metrics {addr}: {error}"))
        })?),
        None => None,
    };
    let addrs: Vec<String> = server
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let running = server.start()?;
    let notifier = Notifier::from_env();
    eprintln!(
        "cnamed: serving {} with {apps} apps, {clusters} clusters, serial {serial} on {} (udp, tcp), {} workers",
        config.zone,
        addrs.join(" "),
        config.threads
    );
    if let Some(listener) = metrics_listener {
        eprintln!(
            "cnamed: metrics on http://{}/metrics",
            listener.local_addr()?
        );
        http::spawn(listener, running.metrics())?;
    }
    notifier.ready(&format!("serving {apps} apps, serial {serial}"));
    loop {
        match sys::wait_for_signal(&SIGNALS)? {
            sys::SIGHUP => {
                notifier.reloading();
                let status = match reload_in_idle_time(&running) {
                    Ok(done) => {
                        eprintln!(
                            "cnamed: reloaded {}: {} apps, serial {}, {:.1} ms",
                            config.dump.display(),
                            done.apps,
                            done.serial,
                            done.elapsed.as_secs_f64() * 1e3
                        );
                        format!("serving {} apps, serial {}", done.apps, done.serial)
                    }
                    Err(error) => {
                        let serving = running.snapshot();
                        eprintln!(
                            "cnamed: reload failed, still serving serial {}: {error}",
                            serving.serial
                        );
                        format!(
                            "reload failed, serving {} apps, serial {}: {error}",
                            serving.app_count(),
                            serving.serial
                        )
                    }
                };
                notifier.ready(&status);
            }
            _ => {
                notifier.stopping();
                running.shutdown()?;
                eprintln!("cnamed: stopped");
                return Ok(());
            }
        }
    }
}
