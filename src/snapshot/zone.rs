//! The fixed part of the zone: everything that does not depend on the dump, encoded once at
//! start-up from settings the configuration has already checked.

use crate::wire::record::{field, fixed_at, push_record, read_be16, RR_FIXED};
use crate::wire::{Class, Rtype};

/// TTL of the apex SOA and NS records.
pub const APEX_TTL: u32 = 3600;
/// SOA REFRESH, RETRY, EXPIRE by default (`--soa-timers`): conventional values.
pub const SOA_REFRESH: u32 = 3600;
pub const SOA_RETRY: u32 = 600;
pub const SOA_EXPIRE: u32 = 604_800;

/// What the zone is made of, checked by [`crate::config::Config::zone_settings`]: names in
/// lower-case wire form, texts as given for logs and the zone file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSettings {
    /// The apex, not the root.
    pub apex: Vec<u8>,
    pub apex_text: String,
    /// Lower-case service names, distinct, 1 to 61 letters or digits.
    pub services: Vec<Box<[u8]>>,
    /// Has a `{cluster}` placeholder and expands to a valid name.
    pub target_template: String,
    pub cname_ttl: u32,
    pub negative_ttl: u32,
    /// SOA REFRESH, RETRY and EXPIRE, seconds: what secondaries of this zone go by.
    pub soa_timers: [u32; 3],
    /// Apex NS names as (text, wire form): 1 to 65535 of them; the first is the SOA MNAME.
    pub ns: Vec<(String, Vec<u8>)>,
    /// SOA RNAME as (text, wire form).
    pub hostmaster: (String, Vec<u8>),
    /// NSID payload and CHAOS TXT string: at most 255 bytes.
    pub identity: Vec<u8>,
    /// The CHAOS version string, at most 255 bytes; `None` hides it.
    pub version: Option<Vec<u8>>,
}

/// The zone's settings in the form answers need them.
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
    /// SOA REFRESH, RETRY and EXPIRE.
    pub soa_timers: [u32; 3],
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

impl Zone {
    /// Pre-encodes everything that does not depend on the dump.
    pub fn new(settings: ZoneSettings) -> Self {
        let mut ns_records = Vec::new();
        for (_, wire) in &settings.ns {
            push_record(&mut ns_records, Rtype::NS, Class::IN, APEX_TTL, &[wire]);
        }
        let (hostmaster_text, hostmaster) = settings.hostmaster;
        // The root name stands in for an MNAME only if the settings broke their promise.
        let mut soa_names = settings
            .ns
            .first()
            .map_or(vec![0], |(_, wire)| wire.clone());
        soa_names.extend_from_slice(&hostmaster);
        Self {
            apex: settings.apex,
            apex_text: settings.apex_text,
            longest_service: settings.services.iter().map(|s| s.len()).max().unwrap_or(0),
            services: settings.services,
            target_template: settings.target_template,
            cname_ttl: settings.cname_ttl,
            negative_ttl: settings.negative_ttl,
            soa_timers: settings.soa_timers,
            soa_names,
            ns_records,
            ns_count: settings.ns.len() as u16,
            ns_text: settings.ns.into_iter().map(|(text, _)| text).collect(),
            hostmaster_text,
            identity_txt: chaos_txt(&settings.identity),
            version_txt: settings.version.as_deref().map(chaos_txt),
            identity: settings.identity,
        }
    }

    /// The `i`th apex NS record without its owner (TYPE to RDATA), for transfers.
    pub fn ns_record(&self, i: usize) -> Option<&[u8]> {
        let mut at = 0;
        for index in 0.. {
            // Owner pointer (2), TYPE, CLASS, TTL (8), RDLENGTH (2), RDATA.
            let fixed = fixed_at::<RR_FIXED>(&self.ns_records, at + 2)?;
            let rdlength = usize::from(read_be16(fixed, field::RDLENGTH));
            let end = at + 12 + rdlength;
            if index == i {
                return self.ns_records.get(at + 2..end);
            }
            at = end;
        }
        None
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
