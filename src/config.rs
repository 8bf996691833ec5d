//! The operator's settings, with the documented defaults. Validation and the wire forms derived
//! from them live in [`crate::snapshot::Zone`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
        }
    }
}

impl Config {
    /// The SOA RNAME to use.
    pub fn hostmaster(&self) -> String {
        self.hostmaster
            .clone()
            .unwrap_or_else(|| format!("hostmaster.{}", self.zone.trim_end_matches('.')))
    }

    /// The server identity to report: the configured one, else the kernel's host name.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|name| name.trim().to_owned())
                .unwrap_or_else(|_| "cnamed".into())
        })
    }
}
