//! The dump format, parsed straight into the lookup maps with serde visitors (no intermediate
//! `serde_json::Value`, so a 10-million-app dump is read in one pass):
//!
//! ```json
//! {"serial": 2026112601, "apps": {"123456": "mt1", "my-app": "eu"}}
//! ```

mod entries;
mod fast;
mod layout;
mod recent;
mod source;
mod tokens;

pub use fast::Reading;
pub(super) use fast::{parse_in_place, parse_stream};

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::clusters::Clusters;
use super::error::EntryError;
use super::strings::{self, StringTable, StringsBuilder};
use super::table::{BuildError, NumericBuilder, NumericTable};
use super::zone::Zone;
use super::AppKey;
use crate::wire::name::{check_label, fold_label, Charset, MAX_LABEL};

/// What a dump holds, ready for the snapshot.
pub(super) struct Parsed {
    pub(super) serial: u32,
    pub(super) numeric_apps: NumericTable,
    pub(super) named_apps: StringTable,
    pub(super) clusters: Vec<Box<str>>,
    pub(super) cnames: Vec<Box<[u8]>>,
}

/// A dump read and checked entry by entry, its tables not built yet: the caller can free the
/// file's bytes first, so that a reload never holds them and the new tables at once.
pub(super) struct Unbuilt<'z> {
    serial: u32,
    apps: AppsBuilder<'z>,
}

impl Unbuilt<'_> {
    /// How many apps were read.
    pub(super) fn len(&self) -> usize {
        self.apps.numeric_apps.len() + self.apps.named_apps.len()
    }

    /// Builds the tables; the error names a duplicate app.
    pub(super) fn build(self) -> Result<Parsed, serde_json::Error> {
        let mut parsed = self.apps.finish().map_err(de::Error::custom)?;
        parsed.serial = self.serial;
        Ok(parsed)
    }
}

/// [`parse`] of a dump of `size` bytes, read as it is parsed.
pub(super) fn parse_reader<'z>(
    reader: impl std::io::Read,
    size: u64,
    zone: &'z Zone,
) -> Result<Unbuilt<'z>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let seed = DumpSeed { zone, size };
    let unbuilt = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(unbuilt)
}

pub(super) fn parse<'z>(json: &[u8], zone: &'z Zone) -> Result<Unbuilt<'z>, serde_json::Error> {
    // Nothing is reserved ahead from the dump's shape (commas inside an ignored field would
    // ask for gigabytes), only, untouched, from its size (`reserve_for_dump`): the lists
    // grow with the entries read, and a failed allocation fails this load, not the process.
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let seed = DumpSeed {
        zone,
        size: json.len() as u64,
    };
    let unbuilt = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(unbuilt)
}

struct DumpSeed<'z> {
    zone: &'z Zone,
    /// The dump's size in bytes.
    size: u64,
}

impl<'de, 'z> DeserializeSeed<'de> for DumpSeed<'z> {
    type Value = Unbuilt<'z>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Unbuilt<'z>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'z> Visitor<'de> for DumpSeed<'z> {
    type Value = Unbuilt<'z>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object {"serial": N, "apps": {"<app>": "<cluster>", ...}}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unbuilt<'z>, A::Error> {
        let mut serial = None;
        let mut apps = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "serial" if serial.is_none() => serial = Some(map.next_value::<u32>()?),
                "apps" if apps.is_none() => {
                    let seed = AppsSeed {
                        zone: self.zone,
                        size: self.size,
                    };
                    apps = Some(map.next_value_seed(seed)?)
                }
                "serial" | "apps" => {
                    return Err(de::Error::custom(format!("{key:?} appears twice")))
                }
                // Unknown fields are left for newer dump writers.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let apps = apps.ok_or_else(|| de::Error::missing_field("apps"))?;
        // Every box of a fleet must serve the same SOA serial, and reloads are checked
        // against it (RFC 1982): the exporter sets it, never the load time.
        let serial = serial.ok_or_else(|| {
            de::Error::custom(
                "the dump has no \"serial\" (a 32-bit SOA serial, e.g. the export time in Unix seconds)",
            )
        })?;
        Ok(Unbuilt { serial, apps })
    }
}

struct AppsSeed<'z> {
    zone: &'z Zone,
    size: u64,
}

impl<'de, 'z> DeserializeSeed<'de> for AppsSeed<'z> {
    type Value = AppsBuilder<'z>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<AppsBuilder<'z>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'z> Visitor<'de> for AppsSeed<'z> {
    type Value = AppsBuilder<'z>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping app IDs to cluster names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AppsBuilder<'z>, A::Error> {
        let mut builder = AppsBuilder::new(self.zone);
        builder.named_apps.reserve_for_dump(self.size);
        let max_len = builder.max_app;
        while let Some(app) = map.next_key_seed(AppIdSeed { max_len })? {
            let cluster = map.next_value_seed(ClusterSeed {
                app: &app,
                clusters: &mut builder.clusters,
            })?;
            builder.insert(app, cluster).map_err(de::Error::custom)?;
        }
        Ok(builder)
    }
}

/// The lookup maps being built, app by app: from a dump, or from a zone transfer.
pub(super) struct AppsBuilder<'z> {
    clusters: Clusters<'z>,
    /// Apps are collected in order and built into their tables at the end, where
    /// duplicates are found.
    numeric_apps: NumericBuilder,
    named_apps: StringsBuilder,
    /// Longest app ID: `{service}-{app}` must fit one label for every service.
    max_app: usize,
}

impl<'z> AppsBuilder<'z> {
    pub(super) fn new(zone: &'z Zone) -> Self {
        Self {
            clusters: Clusters::new(zone, Vec::new(), Vec::new()),
            numeric_apps: NumericBuilder::default(),
            named_apps: StringsBuilder::default(),
            max_app: MAX_LABEL - 1 - zone.longest_service,
        }
    }

    /// Adds `app` on `cluster`, both checked as a dump's are; the error names the app.
    pub(super) fn add(&mut self, app: &str, cluster: &str) -> Result<(), EntryError> {
        let app = app_id(app, self.max_app)?;
        let cluster = self
            .clusters
            .intern(cluster)
            .map_err(|why| format!("app {app}: cluster {cluster:?} {why}"))?;
        self.insert(app, cluster)
    }

    /// The index of cluster `name`, checked and interned as a dump's are.
    pub(super) fn cluster(&mut self, name: &str) -> Result<u32, EntryError> {
        (self.clusters.intern(name)).map_err(|why| format!("cluster {name:?} {why}").into())
    }

    pub(super) fn cluster_name(&self, index: u32) -> Option<&str> {
        self.clusters.name(index)
    }

    /// Adds `app` on the cluster of index `cluster` (from [`Self::cluster`]).
    pub(super) fn add_on(&mut self, app: &str, cluster: u32) -> Result<(), EntryError> {
        let app = app_id(app, self.max_app)?;
        self.insert(app, cluster)
    }

    /// Adds app `app`, a label already checked as a hostname label (any case) that is not a
    /// number: a transfer's app, without checking it again.
    pub(super) fn add_checked_label(&mut self, app: &[u8], cluster: u32) -> Result<(), EntryError> {
        match OwnedAppId::named(app) {
            Some(named) if app.len() <= self.max_app => self.insert(named, cluster),
            // Too long for every service's label: the general path says so.
            _ => self.add_on(&String::from_utf8_lossy(app), cluster),
        }
    }

    /// Adds numeric app `id` (its decimal form a valid app ID) on the cluster of index
    /// `cluster`: the common app of a transfer, without reading its digits again.
    pub(super) fn add_numeric(&mut self, id: u64, cluster: u32) -> Result<(), EntryError> {
        if id.checked_ilog10().unwrap_or(0) as usize >= self.max_app {
            // Too long for every service's label: the general path says so.
            return self.add_on(&id.to_string(), cluster);
        }
        self.insert(OwnedAppId::Numeric(id), cluster)
    }

    fn insert(&mut self, app: OwnedAppId, cluster: u32) -> Result<(), EntryError> {
        match app {
            OwnedAppId::Numeric(id) => self
                .numeric_apps
                .push(id, cluster)
                .map_err(|_| OUT_OF_MEMORY.to_owned())?,
            OwnedAppId::Named { bytes, len } => self
                .named_apps
                .push(&bytes[..usize::from(len)], cluster)
                .map_err(|error| strings_error(error, self.named_apps.len()))?,
        }
        Ok(())
    }

    /// The maps; the serial is set by the caller.
    pub(super) fn finish(self) -> Result<Parsed, EntryError> {
        let numeric_apps = self.numeric_apps.build().map_err(|error| match error {
            BuildError::Duplicate(id) => duplicate(&OwnedAppId::Numeric(id)),
            BuildError::OutOfMemory => OUT_OF_MEMORY.into(),
        })?;
        let named_apps = self
            .named_apps
            .build()
            .map_err(|error| strings_error(error, 0))?;
        let (names, cnames) = self.clusters.into_parts();
        Ok(Parsed {
            serial: 0,
            numeric_apps,
            named_apps,
            clusters: names,
            cnames,
        })
    }
}

/// A string table's refusal as a dump error.
pub(super) fn strings_error(error: strings::BuildError, apps_so_far: usize) -> EntryError {
    match error {
        strings::BuildError::Duplicate(id) => {
            let len = id.len().min(MAX_LABEL);
            let mut bytes = [0u8; MAX_LABEL];
            bytes[..len].copy_from_slice(&id[..len]);
            duplicate(&OwnedAppId::Named {
                bytes,
                len: len as u8,
            })
        }
        strings::BuildError::TooLong(id) => EntryError(format!(
            "app {:?} is longer than a {MAX_LABEL}-byte label",
            String::from_utf8_lossy(&id)
        )),
        strings::BuildError::TooLarge => EntryError(format!(
            "the string app IDs pass 4 GB after {apps_so_far} apps: too many for one table"
        )),
        strings::BuildError::OutOfMemory => OUT_OF_MEMORY.into(),
    }
}

pub(super) const OUT_OF_MEMORY: &str =
    "out of memory for the apps read so far (the old snapshot keeps serving)";

fn duplicate(app: &OwnedAppId) -> EntryError {
    EntryError(format!(
        "app {app} appears twice (app IDs are compared without case)"
    ))
}

/// A validated app ID: a number (no allocation, the common case) or lower-case bytes.
#[derive(Clone)]
pub(super) enum OwnedAppId {
    Numeric(u64),
    /// Lower case, on the stack: a dump of string IDs allocates nothing per app.
    Named {
        bytes: [u8; MAX_LABEL],
        len: u8,
    },
}

impl OwnedAppId {
    /// A string ID, `id` in lower case; `None` when longer than a label.
    fn named(id: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_LABEL];
        let len = fold_label(id, &mut bytes)?.len() as u8;
        Some(Self::Named { bytes, len })
    }
}

impl fmt::Display for OwnedAppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Numeric(id) => write!(f, "\"{id}\""),
            Self::Named { bytes, len } => {
                let id = &bytes[..usize::from(*len)];
                write!(f, "{:?}", String::from_utf8_lossy(id))
            }
        }
    }
}

/// Reads an app ID, validated and folded to lower case.
struct AppIdSeed {
    max_len: usize,
}

impl<'de> DeserializeSeed<'de> for AppIdSeed {
    type Value = OwnedAppId;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<OwnedAppId, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for AppIdSeed {
    type Value = OwnedAppId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an app ID")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<OwnedAppId, E> {
        app_id(id, self.max_len).map_err(E::custom)
    }
}

/// An app ID checked and folded to lower case.
pub(super) fn app_id(id: &str, max_len: usize) -> Result<OwnedAppId, EntryError> {
    // The common case first: a number, which is a valid label as it stands (one pass).
    if id.len() <= max_len {
        if let AppKey::Numeric(number) = AppKey::new(id.as_bytes()) {
            return Ok(OwnedAppId::Numeric(number));
        }
    }
    check_label(id, Charset::Hostname, max_len).map_err(|why| {
        format!(
            "app {id:?} {why} (it must fit '{{service}}-{{app}}' in one {MAX_LABEL}-byte label)"
        )
    })?;
    // Digits have no case, so the original spelling classifies like the folded one.
    Ok(match AppKey::new(id.as_bytes()) {
        AppKey::Numeric(number) => OwnedAppId::Numeric(number),
        AppKey::Named(_) => {
            OwnedAppId::named(id.as_bytes()).ok_or_else(|| format!("app {id:?} is too long"))?
        }
    })
}

/// Reads an app's cluster name and interns it.
struct ClusterSeed<'a, 'z> {
    app: &'a OwnedAppId,
    clusters: &'a mut Clusters<'z>,
}

impl<'de> DeserializeSeed<'de> for ClusterSeed<'_, '_> {
    type Value = u32;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for ClusterSeed<'_, '_> {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a cluster name for app {}", self.app)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<u32, E> {
        self.clusters
            .intern(name)
            .map_err(|why| E::custom(format!("app {}: cluster {name:?} {why}", self.app)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(json: &str) -> String {
        let zone = crate::testing::zone();
        match parse(json.as_bytes(), &zone).and_then(Unbuilt::build) {
            Ok(_) => panic!("accepted {json}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn bad_dumps_name_the_entry() {
        let long_app = "a".repeat(57);
        let long_cluster = "c".repeat(60);
        let cases = [
            (r#"{"serial": 1, "apps": {"1": "a""#.to_owned(), "EOF"),
            (r#"{"serial": 1}"#.to_owned(), "missing field `apps`"),
            (r#"{"apps": {"1": "a"}}"#.to_owned(), r#"no "serial""#),
            (
                r#"{"serial": 1, "apps": {"1 2": "a"}}"#.to_owned(),
                r#"app "1 2" contains ' '"#,
            ),
            (
                r#"{"serial": 1, "apps": {"": "a"}}"#.to_owned(),
                r#"app "" is empty"#,
            ),
            (
                r#"{"serial": 1, "apps": {"-1": "a"}}"#.to_owned(),
                "starts or ends with '-'",
            ),
            (
                r#"{"serial": 1, "apps": {"é": "a"}}"#.to_owned(),
                "contains 'é'",
            ),
            (
                format!(r#"{{"serial": 1, "apps": {{"{long_app}": "a"}}}}"#),
                "longer than 56 bytes",
            ),
            (
                r#"{"serial": 1, "apps": {"1": "a_b"}}"#.to_owned(),
                r#"app "1": cluster "a_b" contains '_'"#,
            ),
            (
                r#"{"serial": 1, "apps": {"1": 5}}"#.to_owned(),
                "invalid type: integer `5`",
            ),
            (
                format!(r#"{{"serial": 1, "apps": {{"1": "{long_cluster}"}}}}"#),
                "gives a bad target",
            ),
            (
                r#"{"serial": 1, "apps": {"Ab": "a", "aB": "b"}}"#.to_owned(),
                r#"app "ab" appears twice"#,
            ),
            (
                r#"{"serial": 1, "apps": {"7": "a", "7": "a"}}"#.to_owned(),
                r#"app "7" appears twice"#,
            ),
            (
                r#"{"serial": 1, "apps": {}, "apps": {}}"#.to_owned(),
                r#""apps" appears twice"#,
            ),
            (r#"{"serial": -1, "apps": {}}"#.to_owned(), "invalid value"),
            (
                r#"{"serial": 1, "apps": {}} x"#.to_owned(),
                "trailing characters",
            ),
            (r#"[]"#.to_owned(), "invalid type: sequence"),
        ];
        for (json, expected) in cases {
            let error = error_of(&json);
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn longest_app_fits_every_service() {
        let zone = crate::testing::zone();
        let json = format!(r#"{{"serial": 1, "apps": {{"{}": "a"}}}}"#, "a".repeat(56));
        let parsed = parse(json.as_bytes(), &zone)
            .and_then(Unbuilt::build)
            .unwrap();
        assert_eq!(parsed.named_apps.len(), 1);
    }

    #[test]
    fn unknown_fields_and_escapes() {
        let zone = crate::testing::zone();
        let json = br#"{"generated": {"by": "x"}, "apps": {"\u0061pp": "e\u0075"}, "serial": 3}"#;
        let parsed = parse(json, &zone).and_then(Unbuilt::build).unwrap();
        assert_eq!(parsed.serial, 3);
        assert_eq!(parsed.named_apps.get(b"app"), Some(0));
        assert_eq!(&*parsed.clusters[0], "eu");
    }
}
