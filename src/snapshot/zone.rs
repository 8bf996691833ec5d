//! The fixed part of the zone: everything derived from the configuration alone, validated and
//! pre-encoded once at start-up.

use std::fmt;

use crate::config::Config;
use crate::wire::name::{check_label, name_to_wire, Charset, MAX_LABEL};
use crate::wire::record::push_record;
use crate::wire::{Class, Rtype};

/// TTL of the apex SOA and NS records.
pub const APEX_TTL: u32 = 3600;
/// SOA REFRESH, RETRY, EXPIRE: conventional values; nothing here transfers the zone.
pub const SOA_REFRESH: u32 = 3600;
pub const SOA_RETRY: u32 = 600;
pub const SOA_EXPIRE: u32 = 604_800;
/// Largest TTL (RFC 2181 §8).
const MAX_TTL: u32 = 0x7FFF_FFFF;
/// Longest character-string in a TXT record (RFC 1035 §3.3).
const MAX_CHARACTER_STRING: usize = 255;

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

/// The configuration in the form answers need it.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The apex in lower-case wire form.
    pub apex: Vec<u8>,
    /// The apex as given, for logs and the zone file.
    pub apex_text: String,
    /// Lower-case service names, indexed as in the CNAME table.
    pub services: Vec<Box<[u8]>>,
    /// Longest service name: app IDs must leave room for `{service}-` in 63 bytes.
    pub longest_service: usize,
    pub target_template: String,
    pub cname_ttl: u32,
    pub negative_ttl: u32,
    /// SOA MNAME and RNAME in wire form, the start of the SOA RDATA.
    pub soa_names: Vec<u8>,
    /// The apex NS records, each complete with an owner pointing at the question name.
    pub ns_records: Vec<u8>,
    pub ns_count: u16,
    pub ns_text: Vec<String>,
    pub hostmaster_text: String,
    /// The identity as NSID payload and TXT string; at most 255 bytes.
    pub identity: Vec<u8>,
    /// CHAOS TXT answers, each a complete record owned by the question name.
    pub identity_txt: Vec<u8>,
    /// `None` when the operator hides the version.
    pub version_txt: Option<Vec<u8>>,
}

/// What version.bind / version.server report.
pub fn version_string() -> String {
    format!("cnamed {}", env!("CARGO_PKG_VERSION"))
}

impl Zone {
    /// Validates `config` and pre-encodes everything that does not depend on the dump.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let apex = name_to_wire(&config.zone).map_err(|e| invalid("--zone", e))?;
        if apex.len() == 1 {
            return Err(invalid("--zone", "the root zone cannot be served"));
        }
        if config.services.is_empty() {
            return Err(invalid("--services", "at least one service is needed"));
        }
        let mut services: Vec<Box<[u8]>> = Vec::new();
        for service in &config.services {
            check_label(service, Charset::Alphanumeric, MAX_LABEL - 2)
                .map_err(|why| invalid("--services", format!("{service:?} {why}")))?;
            let lower = service.to_ascii_lowercase();
            if services.iter().any(|s| **s == *lower.as_bytes()) {
                return Err(invalid(
                    "--services",
                    format!("{service:?} is listed twice"),
                ));
            }
            services.push(lower.into_bytes().into_boxed_slice());
        }
        let longest_service = services.iter().map(|s| s.len()).max().unwrap_or(0);

        if !config.target.contains("{cluster}") {
            return Err(invalid(
                "--target",
                "the template needs a {cluster} placeholder",
            ));
        }
        let sample = expand_target(&config.target, "ws", "c");
        name_to_wire(&sample).map_err(|e| invalid("--target", e))?;

        for (flag, ttl) in [
            ("--ttl", config.ttl),
            ("--negative-ttl", config.negative_ttl),
        ] {
            if ttl > MAX_TTL {
                return Err(invalid(
                    flag,
                    format!("{ttl} is over the maximum {MAX_TTL}"),
                ));
            }
        }

        if config.ns.is_empty() {
            return Err(invalid("--ns", "at least one name server is needed"));
        }
        let mut ns_records = Vec::new();
        for ns in &config.ns {
            let wire = name_to_wire(ns).map_err(|e| invalid("--ns", e))?;
            push_record(&mut ns_records, Rtype::NS, Class::IN, APEX_TTL, &[&wire]);
        }
        let ns_count =
            u16::try_from(config.ns.len()).map_err(|_| invalid("--ns", "too many name servers"))?;
        let hostmaster_text = config.hostmaster();
        let mut soa_names = name_to_wire(&config.ns[0]).map_err(|e| invalid("--ns", e))?;
        soa_names.extend(name_to_wire(&hostmaster_text).map_err(|e| invalid("--hostmaster", e))?);

        let identity = config.identity().into_bytes();
        if identity.len() > MAX_CHARACTER_STRING {
            return Err(invalid(
                "--identity",
                format!("longer than {MAX_CHARACTER_STRING} bytes"),
            ));
        }
        let version = match config.version_string.as_deref() {
            Some("none") => None,
            Some(text) => Some(text.as_bytes().to_vec()),
            None => Some(version_string().into_bytes()),
        };
        if version
            .as_ref()
            .is_some_and(|v| v.len() > MAX_CHARACTER_STRING)
        {
            return Err(invalid(
                "--version-string",
                format!("longer than {MAX_CHARACTER_STRING} bytes"),
            ));
        }

        Ok(Self {
            apex,
            apex_text: config.zone.trim_end_matches('.').to_owned(),
            services,
            longest_service,
            target_template: config.target.clone(),
            cname_ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            soa_names,
            ns_records,
            ns_count,
            ns_text: config.ns.clone(),
            hostmaster_text,
            identity_txt: chaos_txt(&identity),
            version_txt: version.as_deref().map(chaos_txt),
            identity,
        })
    }

    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    pub fn negative_soa_ttl(&self) -> u32 {
        APEX_TTL.min(self.negative_ttl)
    }
}

/// Substitutes the placeholders of a target template.
pub fn expand_target(template: &str, service: &str, cluster: &str) -> String {
    template
        .replace("{service}", service)
        .replace("{cluster}", cluster)
}

/// A TXT record in class CH, owned by the question name, TTL 0 as BIND and NSD send.
fn chaos_txt(text: &[u8]) -> Vec<u8> {
    let mut record = Vec::new();
    push_record(
        &mut record,
        Rtype::TXT,
        Class::CH,
        0,
        &[&[text.len() as u8], text],
    );
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let zone = Zone::new(&Config::default()).unwrap();
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
            assert_eq!(Zone::new(&config).unwrap_err().flag, flag, "{config:?}");
        }
    }
}
