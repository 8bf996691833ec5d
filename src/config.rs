//! The operator's settings, with the documented defaults, and the checks of each (the
//! command line's own, which flags go with which command, are in `cli`): a [`ConfigError`]
//! names the flag at fault. The layers below never see a flag: the zone gets
//! its settings checked and in wire form ([`ZoneSettings`]), the server its limits.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::dnstap::{Messages, Settings as DnstapSettings};
use crate::snapshot::guard::{Rules, DEFAULT_MAX_SHRINK};
use crate::snapshot::{expand_target, Zone, ZoneSettings, SOA_EXPIRE, SOA_REFRESH, SOA_RETRY};
use crate::wire::name::{check_label, is_within, name_to_wire, Charset};
use crate::wire::record::{OPTION_HEADER, OPT_FIXED, QUESTION_FIXED, RR_FIXED};
use crate::wire::{HEADER_LEN, MAX_LABEL, MAX_NAME, MAX_TCP, PTR_QNAME};
use crate::xfr::inbound::client::DEFAULT_LIMITS;
use crate::xfr::inbound::secondary::OnExpire;
use crate::xfr::outbound::Prefix;
use crate::xfr::pace::TransferLimits;

/// More workers than this is a typo, not a machine.
const MAX_THREADS: usize = 1024;
/// Largest TTL (RFC 2181 §8).
const MAX_TTL: u32 = 0x7FFF_FFFF;
/// Longest character-string in a TXT record (RFC 1035 §3.3).
const MAX_CHARACTER_STRING: usize = 255;
/// Longest service name: `{service}-` and at least one byte of app ID fit in a label.
const MAX_SERVICE: usize = MAX_LABEL - 2;
/// Room an apex NS answer over TCP always has for its records, whatever the query: the
/// message less the header, the largest question and the largest OPT we send (NSID with a
/// 255-byte identity and a cookie).
const NS_ANSWER_ROOM: usize = MAX_TCP
    - HEADER_LEN
    - (MAX_NAME + QUESTION_FIXED)
    - (OPT_FIXED
        + OPTION_HEADER
        + MAX_CHARACTER_STRING
        + OPTION_HEADER
        + crate::cookie::FULL_COOKIE);
/// `--version-string none` hides the version.
const HIDDEN_VERSION: &str = "none";

/// What version.bind / version.server and `--version` report by default.
pub const VERSION_STRING: &str = concat!("cnamed ", env!("CARGO_PKG_VERSION"));

/// A setting that cannot be served, with the flag that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub flag: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        reason: reason.into(),
    }
}

/// Everything the command line can set. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The JSON dump of app -> cluster.
    pub dump: PathBuf,
    /// The zone apex, e.g. `apps.example.com`.
    pub zone: String,
    /// CNAME target template with `{service}` and `{cluster}` placeholders.
    pub target: String,
    /// Service prefixes, in the order given; none contains '-'.
    pub services: Vec<String>,
    /// Addresses to serve on, UDP and TCP alike; port 0 picks one free port for all.
    pub listen: Vec<SocketAddr>,
    /// Worker threads; each has its own sockets.
    pub threads: usize,
    /// TTL of the CNAME answers.
    pub ttl: u32,
    /// SOA MINIMUM, and so the TTL of negative answers (RFC 2308 §4).
    pub negative_ttl: u32,
    /// SOA REFRESH, RETRY, EXPIRE in seconds.
    pub soa_timers: [u32; 3],
    /// Apex NS names; the first is the SOA MNAME.
    pub ns: Vec<String>,
    /// SOA RNAME; `None` means `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// Reported by CHAOS id.server/hostname.bind and NSID; `None` means the host name.
    pub identity: Option<String>,
    /// Answer to CHAOS version.bind/version.server; `None` means `cnamed <version>`, and
    /// "none" hides it (those names are then REFUSED).
    pub version_string: Option<String>,
    /// A TCP connection with no traffic for this long is closed (RFC 7766 §6.2.3).
    pub tcp_idle_timeout: Duration,
    /// A TCP connection stalled mid-message this long is closed (Knot's tcp-io-timeout).
    pub tcp_io_timeout: Duration,
    /// TCP connections per worker; at the cap a new one closes the least recently active.
    pub tcp_max_connections: usize,
    /// Where to serve Prometheus metrics over HTTP; `None` turns the endpoint off.
    pub metrics: Option<SocketAddr>,
    /// UDP responses per second per client /24 (IPv4) or /56 (IPv6); `None` turns RRL off.
    pub rrl_rate: Option<u32>,
    /// Every `rrl_slip`-th limited response is sent truncated instead of dropped; 0 never.
    pub rrl_slip: u32,
    /// One or two DNS cookie secrets shared by a fleet; `None` means a random one.
    pub cookie_secret_file: Option<PathBuf>,
    /// A dump larger than this is refused before it is read.
    pub max_dump_size: u64,
    /// A reload may remove at most this percentage of the live apps (0 to 100).
    pub max_shrink: u8,
    /// Cluster names apps may map to; `None` allows any.
    pub clusters: Option<Vec<String>>,
    /// The control socket (`cnamed reload`, `cnamed status`); `None` serves none.
    pub control: Option<PathBuf>,
    /// Who may transfer the zone (AXFR over TCP); empty: nobody.
    pub xfr_allow: Vec<Prefix>,
    /// TSIG keys a transfer must be signed with; `None`: the address list alone decides.
    pub tsig_key_file: Option<PathBuf>,
    /// Reloads whose differences are kept for IXFR.
    pub ixfr_history: usize,
    /// Names of the TSIG keys (of `tsig_key_file`) that may send DNS UPDATE; none: every
    /// UPDATE is REFUSED.
    pub update_keys: Vec<String>,
    /// The journal of acknowledged changes; required with `update_keys`.
    pub journal: Option<PathBuf>,
    /// Past this size the journal is checkpointed (`--journal-max-size`).
    pub journal_max_size: u64,
    /// Secondaries told of each new serial (NOTIFY).
    pub notify: Vec<SocketAddr>,
    /// Primaries to transfer the zone from (`fetch`), in order.
    pub primary: Vec<SocketAddr>,
    /// What a secondary does once its zone expires.
    pub on_expire: OnExpire,
    /// Where a copy of the last dump installed is kept, and served at start when the dump
    /// cannot be; `None`: no copy.
    pub last_good: Option<PathBuf>,
    /// The longest a transfer in may take before the next primary is tried.
    pub max_transfer_time_in: Duration,
    /// The longest a transfer out may take before it is cut off.
    pub max_transfer_time_out: Duration,
    /// Bytes per second a transfer must move, either way, over each 30 s; 0: no minimum.
    pub min_transfer_rate: u64,
    /// Transfers out at once to one client address; 0: only the total cap.
    pub max_transfers_per_address: usize,
    /// `--max-ixfr-ratio`: an IXFR difference past this percentage of the zone's records is
    /// answered with the whole zone; `None`: unlimited.
    pub max_ixfr_ratio: Option<u32>,
    /// A secondary's least time between refreshes not asked for by the operator or by a
    /// NOTIFY announcing a newer serial.
    pub min_refresh: Duration,
    /// The dnstap collector's Unix socket; `None`: no query logs.
    pub dnstap: Option<PathBuf>,
    /// One query in this many is logged to dnstap.
    pub dnstap_sample: u32,
    /// Which messages of a logged query go to dnstap.
    pub dnstap_messages: Messages,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dump: PathBuf::from("data/apps.json"),
            zone: "apps.example.com".into(),
            target: "{service}-{cluster}.example.com".into(),
            services: vec!["ws".into(), "sockjs".into(), "api".into()],
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ttl: 300,
            negative_ttl: 60,
            soa_timers: [SOA_REFRESH, SOA_RETRY, SOA_EXPIRE],
            ns: vec!["ns1.example.com".into()],
            hostmaster: None,
            identity: None,
            version_string: None,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_io_timeout: Duration::from_millis(500),
            tcp_max_connections: 1024,
            metrics: None,
            rrl_rate: None,
            rrl_slip: 2,
            cookie_secret_file: None,
            max_dump_size: 4 << 30,
            max_shrink: DEFAULT_MAX_SHRINK,
            clusters: None,
            control: None,
            xfr_allow: Vec::new(),
            tsig_key_file: None,
            ixfr_history: 32,
            update_keys: Vec::new(),
            journal: None,
            journal_max_size: 100 << 20,
            notify: Vec::new(),
            primary: Vec::new(),
            on_expire: OnExpire::default(),
            last_good: None,
            max_transfer_time_in: DEFAULT_LIMITS.max_time,
            max_transfer_time_out: DEFAULT_LIMITS.max_time,
            min_transfer_rate: DEFAULT_LIMITS.min_rate,
            max_transfers_per_address: 0,
            max_ixfr_ratio: Some(crate::xfr::outbound::DEFAULT_MAX_IXFR_RATIO),
            min_refresh: Duration::from_secs(2),
            dnstap: None,
            dnstap_sample: 1,
            dnstap_messages: Messages::Both,
        }
    }
}

impl Config {
    /// The limits of a transfer in (a secondary's, or `fetch`).
    pub fn transfer_limits_in(&self) -> TransferLimits {
        TransferLimits {
            max_time: self.max_transfer_time_in,
            min_rate: self.min_transfer_rate,
            io_timeout: DEFAULT_LIMITS.io_timeout,
        }
    }

    /// The limits of a transfer out (a primary's): a client that takes nothing for 10 s
    /// loses it.
    pub fn transfer_limits_out(&self) -> TransferLimits {
        TransferLimits {
            max_time: self.max_transfer_time_out,
            min_rate: self.min_transfer_rate,
            io_timeout: Duration::from_secs(10),
        }
    }

    /// The query logs to write, with `--dnstap`.
    pub fn dnstap_settings(&self) -> Option<DnstapSettings> {
        self.dnstap.as_ref().map(|path| DnstapSettings {
            path: path.clone(),
            sample: self.dnstap_sample,
            messages: self.dnstap_messages,
        })
    }

    /// Checks the server's limits: worker threads, TCP connections, the RRL rate.
    pub fn check_limits(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(invalid("--threads", format!("must be 1 to {MAX_THREADS}")));
        }
        if self.tcp_max_connections == 0 {
            return Err(invalid("--tcp-max-connections", "needs at least 1"));
        }
        if self.rrl_rate == Some(0) {
            return Err(invalid("--rrl-rate", "needs at least 1"));
        }
        if self.dnstap_sample == 0 {
            return Err(invalid("--dnstap-sample", "needs at least 1 (every query)"));
        }
        for (flag, limit) in [
            ("--max-transfer-time-in", self.max_transfer_time_in),
            ("--max-transfer-time-out", self.max_transfer_time_out),
        ] {
            if limit.is_zero() {
                return Err(invalid(flag, "needs at least 1 second"));
            }
        }
        self.guard_rules().map(drop)
    }

    /// DNS UPDATE needs its keys and a journal, and a primary: a secondary takes its
    /// changes from its primaries. A journal is a primary's of UPDATEs or a secondary's of
    /// the changes its primaries sent. For `serve`: other commands read what they need.
    pub fn check_updates(&self) -> Result<(), ConfigError> {
        let why = match (self.update_keys.is_empty(), &self.journal) {
            (true, Some(_)) if self.primary.is_empty() => {
                return Err(invalid(
                    "--journal",
                    "needs --update-key (a primary's journal) or --primary (a secondary's)",
                ))
            }
            (true, _) => return Ok(()),
            _ if self.tsig_key_file.is_none() => "needs --tsig-key-file, which holds the key",
            (_, None) => "needs --journal PATH: an acknowledged change must be on disk",
            _ if !self.primary.is_empty() => "is for a primary, not a secondary (--primary)",
            _ => return Ok(()),
        };
        Err(invalid("--update-key", why))
    }

    /// The guard rails of reloads, clusters checked and folded to lower case.
    pub fn guard_rules(&self) -> Result<Rules, ConfigError> {
        if self.max_shrink > 100 {
            return Err(invalid("--max-shrink", "is a percentage, 0 to 100"));
        }
        let clusters = match &self.clusters {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(invalid("--clusters", "at least one cluster is needed"))
            }
            Some(list) => {
                let mut clusters: Vec<String> = Vec::new();
                for cluster in list {
                    check_label(cluster, Charset::Hostname, MAX_LABEL)
                        .map_err(|why| invalid("--clusters", format!("{cluster:?} {why}")))?;
                    let lower = cluster.to_ascii_lowercase();
                    if clusters.contains(&lower) {
                        return Err(invalid(
                            "--clusters",
                            format!("{cluster:?} is listed twice"),
                        ));
                    }
                    clusters.push(lower);
                }
                Some(clusters)
            }
        };
        Ok(Rules {
            max_shrink_percent: self.max_shrink,
            clusters,
        })
    }

    /// Checks everything the zone is made of and gives it in the form the zone is built from.
    pub fn zone_settings(&self) -> Result<ZoneSettings, ConfigError> {
        let apex = name_to_wire(&self.zone).map_err(|e| invalid("--zone", e.to_string()))?;
        if apex.len() == 1 {
            return Err(invalid("--zone", "the root zone cannot be served"));
        }
        if self.services.is_empty() {
            return Err(invalid("--services", "at least one service is needed"));
        }
        let mut services: Vec<Box<[u8]>> = Vec::new();
        for service in &self.services {
            check_label(service, Charset::Alphanumeric, MAX_SERVICE)
                .map_err(|why| invalid("--services", format!("{service:?} {why}")))?;
            let lower = service.to_ascii_lowercase().into_bytes().into_boxed_slice();
            if services.contains(&lower) {
                return Err(invalid(
                    "--services",
                    format!("{service:?} is listed twice"),
                ));
            }
            services.push(lower);
        }

        if !self.target.contains("{cluster}") {
            return Err(invalid(
                "--target",
                "the template needs a {cluster} placeholder",
            ));
        }
        let sample = expand_target(&self.target, "ws", "c");
        let sample = name_to_wire(&sample).map_err(|e| invalid("--target", e.to_string()))?;
        // A target in the zone would be answered by this zone: CNAME loops and chains.
        if is_within(&sample, &apex) {
            return Err(invalid(
                "--target",
                format!("{:?} names fall inside --zone {:?}", self.target, self.zone),
            ));
        }

        for (flag, ttl) in [("--ttl", self.ttl), ("--negative-ttl", self.negative_ttl)] {
            if ttl > MAX_TTL {
                return Err(invalid(
                    flag,
                    format!("{ttl} is over the maximum {MAX_TTL}"),
                ));
            }
        }

        let [refresh, retry, expire] = self.soa_timers;
        if refresh == 0 || retry == 0 || expire <= refresh.max(retry) || expire > MAX_TTL {
            return Err(invalid(
                "--soa-timers",
                format!(
                    "{refresh},{retry},{expire}: each must be over 0 and EXPIRE over REFRESH and RETRY, at most {MAX_TTL}"
                ),
            ));
        }

        if self.ns.is_empty() {
            return Err(invalid("--ns", "at least one name server is needed"));
        }
        if u16::try_from(self.ns.len()).is_err() {
            return Err(invalid("--ns", "too many name servers"));
        }
        let ns: Vec<(String, Vec<u8>)> = self
            .ns
            .iter()
            .map(|ns| match name_to_wire(ns) {
                Ok(wire) if wire.len() > 1 => Ok((ns.clone(), wire)),
                Ok(_) => Err(invalid("--ns", format!("{ns:?} is the root, not a server"))),
                Err(e) => Err(invalid("--ns", e.to_string())),
            })
            .collect::<Result<_, ConfigError>>()?;
        // Every NS record: a pointer to the question, the fixed fields, the name.
        let ns_bytes: usize = ns
            .iter()
            .map(|(_, wire)| size_of_val(&PTR_QNAME) + RR_FIXED + wire.len())
            .sum();
        if ns_bytes > NS_ANSWER_ROOM {
            return Err(invalid(
                "--ns",
                format!(
                    "the NS set takes {ns_bytes} bytes, over the {NS_ANSWER_ROOM} that always fit in one TCP answer"
                ),
            ));
        }
        let hostmaster_text = self.hostmaster();
        let hostmaster =
            name_to_wire(&hostmaster_text).map_err(|e| invalid("--hostmaster", e.to_string()))?;

        let identity = self.identity().into_bytes();
        if identity.len() > MAX_CHARACTER_STRING {
            return Err(invalid(
                "--identity",
                format!("longer than {MAX_CHARACTER_STRING} bytes"),
            ));
        }
        let version = self.version().map(|text| text.as_bytes().to_vec());
        if version
            .as_ref()
            .is_some_and(|v| v.len() > MAX_CHARACTER_STRING)
        {
            return Err(invalid(
                "--version-string",
                format!("longer than {MAX_CHARACTER_STRING} bytes"),
            ));
        }

        Ok(ZoneSettings {
            apex,
            apex_text: self.zone.trim_end_matches('.').to_owned(),
            services,
            target_template: self.target.clone(),
            cname_ttl: self.ttl,
            negative_ttl: self.negative_ttl,
            soa_timers: self.soa_timers,
            ns,
            hostmaster: (hostmaster_text, hostmaster),
            identity,
            version,
        })
    }

    /// The zone these settings describe: [`Self::zone_settings`], encoded.
    pub fn zone(&self) -> Result<Zone, ConfigError> {
        self.zone_settings().map(Zone::new)
    }

    /// The SOA RNAME to use.
    pub fn hostmaster(&self) -> String {
        self.hostmaster
            .clone()
            .unwrap_or_else(|| format!("hostmaster.{}", self.zone.trim_end_matches('.')))
    }

    /// The version to report; `None` under `--version-string none`.
    pub fn version(&self) -> Option<&str> {
        match self.version_string.as_deref() {
            Some(HIDDEN_VERSION) => None,
            Some(text) => Some(text),
            None => Some(VERSION_STRING),
        }
    }

    /// The server identity to report: the configured one, else the kernel's host name.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(crate::sys::host_name)
            .unwrap_or_else(|| "cnamed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert_eq!(config.check_limits(), Ok(()));
        let zone = config.zone().unwrap();
        assert_eq!(zone.apex, b"\x04apps\x07example\x03com\x00");
        assert_eq!(zone.services.len(), 3);
        assert_eq!(zone.longest_service, 6);
        assert_eq!(zone.ns_count, 1);
        assert_eq!(zone.negative_soa_ttl(), 60);
    }

    #[test]
    fn bad_settings_name_their_flag() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Change)> = vec![
            ("--zone", Box::new(|c| c.zone = "a..b".into())),
            ("--zone", Box::new(|c| c.zone = ".".into())),
            ("--services", Box::new(|c| c.services = vec!["w-s".into()])),
            ("--services", Box::new(|c| c.services = vec![])),
            (
                "--services",
                Box::new(|c| c.services = vec!["ws".into(), "WS".into()]),
            ),
            (
                "--target",
                Box::new(|c| c.target = "{service}.example.com".into()),
            ),
            (
                "--target",
                Box::new(|c| c.target = "{cluster}..example.com".into()),
            ),
            ("--ttl", Box::new(|c| c.ttl = u32::MAX)),
            ("--ns", Box::new(|c| c.ns = vec![])),
            ("--ns", Box::new(|c| c.ns = vec![".".into()])),
            ("--ns", Box::new(|c| c.ns = vec!["".into()])),
            (
                "--ns",
                Box::new(|c| {
                    c.ns = (0..300)
                        .map(|i| format!("{i}.{}", "n".repeat(200)))
                        .collect()
                }),
            ),
            // The default target falls inside example.com: ws-mt1.example.com would loop.
            ("--target", Box::new(|c| c.zone = "example.com".into())),
            (
                "--target",
                Box::new(|c| c.target = "{service}-{cluster}.apps.example.com".into()),
            ),
            (
                "--hostmaster",
                Box::new(|c| c.hostmaster = Some("a b".into())),
            ),
            (
                "--identity",
                Box::new(|c| c.identity = Some("x".repeat(256))),
            ),
        ];
        for (flag, change) in cases {
            let mut config = Config::default();
            change(&mut config);
            assert_eq!(config.zone().unwrap_err().flag, flag, "{config:?}");
        }
    }

    #[test]
    fn limits_name_their_flag() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Change)> = vec![
            ("--threads", Box::new(|c| c.threads = 0)),
            ("--threads", Box::new(|c| c.threads = 100_000)),
            (
                "--tcp-max-connections",
                Box::new(|c| c.tcp_max_connections = 0),
            ),
            ("--rrl-rate", Box::new(|c| c.rrl_rate = Some(0))),
            ("--dnstap-sample", Box::new(|c| c.dnstap_sample = 0)),
            ("--max-shrink", Box::new(|c| c.max_shrink = 101)),
            (
                "--clusters",
                Box::new(|c| c.clusters = Some(vec!["mt1".into(), "MT1".into()])),
            ),
            (
                "--clusters",
                Box::new(|c| c.clusters = Some(vec!["m t".into()])),
            ),
            ("--clusters", Box::new(|c| c.clusters = Some(vec![]))),
        ];
        for (flag, change) in cases {
            let mut config = Config::default();
            change(&mut config);
            assert_eq!(config.check_limits().unwrap_err().flag, flag, "{config:?}");
        }
    }

    #[test]
    fn updates_need_keys_a_journal_and_a_primary() {
        let updating = Config {
            update_keys: vec!["upd".into()],
            tsig_key_file: Some("keys".into()),
            journal: Some("journal".into()),
            ..Config::default()
        };
        assert_eq!(updating.check_updates(), Ok(()));
        let cases = [
            Config {
                journal: None,
                ..updating.clone()
            },
            Config {
                tsig_key_file: None,
                ..updating.clone()
            },
            Config {
                primary: vec!["127.0.0.1:53".parse().unwrap()],
                ..updating.clone()
            },
        ];
        for config in cases {
            assert_eq!(config.check_updates().unwrap_err().flag, "--update-key");
        }
        let journal_alone = Config {
            update_keys: Vec::new(),
            ..updating
        };
        assert_eq!(journal_alone.check_updates().unwrap_err().flag, "--journal");
        // A secondary keeps a journal of what its primaries sent.
        let secondary = Config {
            primary: vec!["127.0.0.1:53".parse().unwrap()],
            ..journal_alone
        };
        assert_eq!(secondary.check_updates(), Ok(()));
    }
}
