//! JSON dump -> immutable lookup with every answer record pre-encoded.
//!
//! [`Snapshot::load`] is pure: it reads, parses, validates and precomputes, and only a
//! complete, valid dump yields a snapshot. The server swaps a new one in only on `Ok`, so a
//! bad dump never touches the one being served.

mod apply;
pub use apply::Folded;
mod builder;
mod clusters;
mod dump;
mod error;
pub mod guard;
pub mod last_good;
mod load;
mod overlay;
mod probe;
pub mod save;
mod shape;
mod strings;
mod table;
mod zone;

use std::fmt;
use std::sync::Arc;

pub use builder::SnapshotBuilder;
pub use dump::Reading;
pub use error::{EntryError, LoadError};
pub use load::DumpReader;
pub use overlay::fold_at;
pub use shape::CnameShape;
pub use zone::{expand_target, Zone, ZoneSettings, APEX_TTL, SOA_EXPIRE, SOA_REFRESH, SOA_RETRY};

use overlay::{Overlay, OverlayKey};

use crate::wire::record::push_record_tail;
use crate::wire::{Class, Rtype};

/// The read buffer of a dump being loaded.
const READ_BUFFER: usize = 1 << 20;

/// Longest decimal app ID stored as a number: every 19-digit number fits in a u64.
const MAX_NUMERIC_DIGITS: usize = 19;

/// An app ID as the maps store it. Numeric IDs without a leading zero, the common case, are
/// kept as numbers: 12 bytes an entry instead of a boxed slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKey<'a> {
    Numeric(u64),
    Named(&'a [u8]),
}

impl<'a> AppKey<'a> {
    /// Classifies a lower-case app ID. "0123" stays named, so it never equals "123".
    pub fn new(id: &'a [u8]) -> Self {
        let numeric = !id.is_empty()
            && id.len() <= MAX_NUMERIC_DIGITS
            && (id[0] != b'0' || id.len() == 1)
            && id.iter().all(u8::is_ascii_digit);
        if numeric {
            let value = id
                .iter()
                .fold(0u64, |acc, digit| acc * 10 + u64::from(digit - b'0'));
            Self::Numeric(value)
        } else {
            Self::Named(id)
        }
    }
}

/// The apex SOA record without owner, for answers (TTL `APEX_TTL`) and for the authority
/// section of negative answers (RFC 2308 §3).
fn soa_records(zone: &Zone, serial: u32) -> (Vec<u8>, Vec<u8>) {
    let mut soa_rdata = zone.soa_names.clone();
    let [refresh, retry, expire] = zone.soa_timers;
    for value in [serial, refresh, retry, expire, zone.negative_ttl] {
        soa_rdata.extend_from_slice(&value.to_be_bytes());
    }
    let soa = |ttl| {
        let mut record = Vec::new();
        push_record_tail(&mut record, Rtype::SOA, Class::IN, ttl, &[&soa_rdata]);
        record
    };
    (soa(APEX_TTL), soa(zone.negative_soa_ttl()))
}

/// The apps of a snapshot as loaded (or as last folded): large, built once, shared by the
/// versions that changes make of it.
pub(crate) struct Tables {
    numeric_apps: table::NumericTable,
    named_apps: strings::StringTable,
}

impl Tables {
    /// The cluster of an app as these tables have it.
    fn get(&self, key: &OverlayKey) -> Option<u32> {
        match key {
            OverlayKey::Numeric(id) => self.numeric_apps.get(*id),
            OverlayKey::Short(id) => self.named_apps.get(id.as_bytes()),
            OverlayKey::Long(id) => self.named_apps.get(id.as_bytes()),
        }
    }

    fn len(&self) -> usize {
        self.numeric_apps.len() + self.named_apps.len()
    }
}

/// One immutable version of the zone: base tables and the changes made since (the overlay).
#[derive(Debug)]
pub struct Snapshot {
    pub zone: Zone,
    /// SOA SERIAL, from the dump.
    pub serial: u32,
    /// When the dump file was last modified, Unix milliseconds; 0 when not from a file.
    pub dump_modified_ms: u64,
    /// The SOA record without its owner, TTL `APEX_TTL`, for answers.
    soa_answer: Vec<u8>,
    /// The same with the negative-answer TTL, for the authority section (RFC 2308 §3).
    soa_negative: Vec<u8>,
    tables: Arc<Tables>,
    /// Apps changed since the tables were built: asked before them.
    overlay: Overlay,
    app_count: usize,
    /// Lower-case cluster names; an app's value indexes this.
    clusters: Vec<Box<str>>,
    /// CNAME records without owner, at `cluster * services + service`.
    cnames: Vec<Box<[u8]>>,
}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tables")
            .field("apps", &self.len())
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot of `apps` (ID, cluster) at `serial`, each checked as a dump's entries are;
    /// the error names the first that is not. For a zone transferred in.
    pub fn from_apps<'a>(
        serial: u32,
        apps: impl IntoIterator<Item = (&'a str, &'a str)>,
        zone: &Zone,
    ) -> Result<Self, EntryError> {
        let mut builder = SnapshotBuilder::new(zone);
        for (app, cluster) in apps {
            builder.add(app, cluster)?;
        }
        builder.finish(serial)
    }

    /// This snapshot at `serial` with `changes` applied in order: `(app, Some(cluster))`
    /// puts an app on a cluster (added or moved), `(app, None)` removes one the zone has.
    /// Checked as a dump's entries are; the error names the first that is not. The changes
    /// go to a copy of the overlay, the base tables are shared: the cost is the overlay's
    /// size and the changes', not the zone's. Past [`fold_at`] entries, [`Self::fold`].
    pub fn with_changes<'a>(
        &self,
        serial: u32,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, EntryError> {
        let current = apply::Current {
            tables: &self.tables,
            overlay: &self.overlay,
            clusters: &self.clusters,
            cnames: &self.cnames,
            app_count: self.app_count,
        };
        let applied = apply::apply_changes(current, &self.zone, changes)?;
        let (soa_answer, soa_negative) = soa_records(&self.zone, serial);
        Ok(Self {
            zone: self.zone.clone(),
            serial,
            dump_modified_ms: self.dump_modified_ms,
            soa_answer,
            soa_negative,
            tables: Arc::clone(&self.tables),
            overlay: applied.overlay,
            app_count: applied.app_count,
            clusters: applied.clusters,
            cnames: applied.cnames,
        })
    }

    /// Entries in the overlay: changes since the base tables were built.
    pub fn overlay_len(&self) -> usize {
        self.overlay.len()
    }

    fn from_parsed(parsed: dump::Parsed, zone: &Zone) -> Self {
        let serial = parsed.serial;
        let (soa_answer, soa_negative) = soa_records(zone, serial);
        let tables = Tables {
            numeric_apps: parsed.numeric_apps,
            named_apps: parsed.named_apps,
        };
        Self {
            zone: zone.clone(),
            serial,
            dump_modified_ms: 0,
            soa_answer,
            soa_negative,
            app_count: tables.len(),
            tables: Arc::new(tables),
            overlay: Overlay::default(),
            clusters: parsed.clusters,
            cnames: parsed.cnames,
        }
    }

    /// The same snapshot with SOA REFRESH, RETRY and EXPIRE `timers`: a secondary serves
    /// its primary's.
    pub fn with_soa_timers(mut self, timers: [u32; 3]) -> Self {
        if self.zone.soa_timers != timers {
            self.zone.soa_timers = timers;
            (self.soa_answer, self.soa_negative) = soa_records(&self.zone, self.serial);
        }
        self
    }

    /// Number of apps.
    pub fn app_count(&self) -> usize {
        self.app_count
    }

    /// Number of distinct clusters.
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Looks up an instance label `{service}-{app}`, in any ASCII case (RFC 4343); returns
    /// the CNAME record (without owner) it maps to. The split is at the first '-'.
    pub fn cname(&self, label: &[u8]) -> Option<&[u8]> {
        // Labels are short: a plain scan beats memchr's setup.
        let dash = label.iter().position(|&byte| byte == b'-')?;
        let (service, app) = (&label[..dash], &label[dash + 1..]);
        let service_index = self
            .zone
            .services
            .iter()
            .position(|s| s.eq_ignore_ascii_case(service))?;
        let cluster = match AppKey::new(app) {
            // Digits have no case: the common path folds nothing.
            AppKey::Numeric(id) if self.overlay.is_empty() => self.tables.numeric_apps.get(id),
            AppKey::Numeric(id) => self.numeric_changed(id),
            AppKey::Named(id) => self.named_cluster(id),
        }?;
        let index = cluster as usize * self.zone.services.len() + service_index;
        self.cnames.get(index).map(|record| &record[..])
    }

    /// The cluster of a string app ID, out of line: inlined, its fold and compare loops
    /// cost the numeric path (the common one) 4-8 instructions per query in register moves.
    #[inline(never)]
    fn named_cluster(&self, id: &[u8]) -> Option<u32> {
        match self.overlay.named(id) {
            Some(state) => state,
            None => self.tables.named_apps.get(id),
        }
    }

    /// The cluster of a numeric app when there are changes: out of line, so that the path
    /// without any stays as it was.
    #[inline(never)]
    fn numeric_changed(&self, id: u64) -> Option<u32> {
        match self.overlay.numeric(id) {
            Some(state) => state,
            None => self.tables.numeric_apps.get(id),
        }
    }

    /// The apex SOA record without owner, for the answer section.
    pub fn soa_answer(&self) -> &[u8] {
        &self.soa_answer
    }

    /// The apex SOA record without owner, for negative answers.
    pub fn soa_negative(&self) -> &[u8] {
        &self.soa_negative
    }

    /// Every app with its cluster index, in no particular order, without allocating: for
    /// streaming the zone (AXFR).
    pub fn app_entries(&self) -> impl Iterator<Item = (AppKey<'_>, u32)> + '_ {
        let overlay = &self.overlay;
        let numeric = self
            .tables
            .numeric_apps
            .iter()
            .filter(move |&(id, _)| overlay.is_empty() || overlay.numeric(id).is_none())
            .map(|(id, cluster)| (AppKey::Numeric(id), cluster));
        let named = self
            .tables
            .named_apps
            .iter()
            .filter(move |&(id, _)| overlay.is_empty() || overlay.named(id).is_none())
            .map(|(id, cluster)| (AppKey::Named(id), cluster));
        let numeric_changed = overlay
            .numeric_entries()
            .filter_map(|(id, state)| Some((AppKey::Numeric(id), state?)));
        let named_changed = overlay
            .named_entries()
            .filter_map(|(id, state)| Some((AppKey::Named(id), state?)));
        numeric
            .chain(named)
            .chain(numeric_changed)
            .chain(named_changed)
    }

    /// The cluster index of an app (a named ID in lower case), for comparing snapshots.
    pub fn cluster_of(&self, app: AppKey<'_>) -> Option<u32> {
        match app {
            AppKey::Numeric(id) => self.numeric_changed(id),
            AppKey::Named(id) => self.named_cluster(id),
        }
    }

    /// Starts bringing `app`'s slot of the base tables into the caches: a batch of lookups
    /// asked for first has its cache misses overlap (at 100M apps each is one).
    pub fn prefetch(&self, app: AppKey<'_>) {
        match app {
            AppKey::Numeric(id) => self.tables.numeric_apps.prefetch(id),
            AppKey::Named(id) => self.tables.named_apps.prefetch(id),
        }
    }

    /// The name of cluster `index`, lower case.
    pub fn cluster_name(&self, index: u32) -> Option<&str> {
        self.clusters.get(index as usize).map(|name| &**name)
    }

    /// The name of the cluster `app` is on (a named ID in lower case).
    pub fn cluster_name_of(&self, app: AppKey<'_>) -> Option<&str> {
        self.cluster_of(app)
            .and_then(|index| self.cluster_name(index))
    }

    /// The CNAME record (without owner) of `service` (an index into the zone's services) on
    /// cluster `cluster`.
    pub fn cname_record(&self, cluster: u32, service: usize) -> Option<&[u8]> {
        let index = cluster as usize * self.zone.services.len() + service;
        self.cnames.get(index).map(|record| &record[..])
    }

    /// Every app with its cluster, sorted by app ID as text. For the zone file; allocates.
    pub fn apps(&self) -> Vec<(String, &str)> {
        let mut apps: Vec<_> = self
            .app_entries()
            .map(|(id, cluster)| {
                let id = match id {
                    AppKey::Numeric(id) => id.to_string(),
                    AppKey::Named(id) => String::from_utf8_lossy(id).into_owned(),
                };
                (id, &*self.clusters[cluster as usize])
            })
            .collect();
        apps.sort_unstable();
        apps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        crate::testing::zone()
    }

    #[test]
    fn snapshots_from_apps_check_what_dumps_check() {
        let zone = zone();
        let snapshot = Snapshot::from_apps(9, [("12", "eu"), ("My-App", "US")], &zone).unwrap();
        assert_eq!(snapshot.serial, 9);
        assert_eq!(
            snapshot.apps(),
            [("12".to_owned(), "eu"), ("my-app".to_owned(), "us")]
        );
        for (apps, error) in [
            (
                &[("12", "eu"), ("12", "us")][..],
                r#"app "12" appears twice"#,
            ),
            (&[("a_b", "eu")][..], r#"app "a_b" contains '_'"#),
            (
                &[("7", "e u")][..],
                r#"app "7": cluster "e u" contains ' '"#,
            ),
        ] {
            let got = Snapshot::from_apps(1, apps.iter().copied(), &zone)
                .unwrap_err()
                .to_string();
            assert!(got.contains(error), "{got}");
        }
    }

    #[test]
    fn changes_apply_to_a_copy() {
        let zone = zone();
        let base =
            Snapshot::from_apps(1, [("1", "eu"), ("2", "eu"), ("app-x", "us")], &zone).unwrap();
        let changed = base
            .with_changes(
                2,
                [
                    ("1", None),
                    ("2", Some("mt9")),
                    ("App-X", Some("eu")),
                    ("3", Some("us")),
                    ("app-y", Some("EU")),
                    ("3", None),
                    ("3", Some("eu")),
                ],
            )
            .unwrap();
        assert_eq!(changed.serial, 2);
        let want = Snapshot::from_apps(
            2,
            [("2", "mt9"), ("app-x", "eu"), ("3", "eu"), ("app-y", "eu")],
            &zone,
        )
        .unwrap();
        assert_eq!(changed.apps(), want.apps());
        assert_eq!(changed.soa_answer(), want.soa_answer());
        for label in [&b"ws-2"[..], b"api-app-x", b"sockjs-3", b"ws-app-y"] {
            assert_eq!(changed.cname(label), want.cname(label), "{label:?}");
        }
        assert_eq!(changed.cname(b"ws-1"), None);
        // The base is untouched.
        assert_eq!(
            base.apps(),
            [
                ("1".to_owned(), "eu"),
                ("2".to_owned(), "eu"),
                ("app-x".to_owned(), "us")
            ]
        );
        for (changes, error) in [
            (
                &[("4", None)][..],
                r#"app "4" is removed but not in the zone"#,
            ),
            (&[("1", None), ("1", None)][..], r#"app "1" is removed"#),
            (&[("app-z", None)][..], r#"app "app-z" is removed"#),
            (&[("a_b", Some("eu"))][..], r#"app "a_b" contains '_'"#),
            (&[("7", Some("e u"))][..], r#"cluster "e u" contains ' '"#),
        ] {
            let got = base
                .with_changes(2, changes.iter().copied())
                .unwrap_err()
                .to_string();
            assert!(got.contains(error), "{got}");
        }
    }

    /// What a query or a transfer can see: the apps, their count, some answers.
    type Seen<'a> = (Vec<(String, &'a str)>, usize, Vec<Option<Vec<u8>>>);

    fn seen(snapshot: &Snapshot) -> Seen<'_> {
        let labels = [
            "ws-1",
            "ws-2",
            "ws-3",
            "WS-4",
            "api-App-X",
            "api-app-y",
            "ws-9",
        ];
        let cnames = labels
            .iter()
            .map(|label| snapshot.cname(label.as_bytes()).map(<[u8]>::to_vec))
            .collect();
        let entries = snapshot.app_entries().count();
        assert_eq!(entries, snapshot.app_count());
        (snapshot.apps(), entries, cnames)
    }

    #[test]
    fn changes_share_the_tables_and_a_fold_changes_nothing_seen() {
        let zone = zone();
        let base = Snapshot::from_apps(
            1,
            [("1", "eu"), ("2", "eu"), ("3", "us"), ("app-x", "us")],
            &zone,
        )
        .unwrap();
        let changed = base
            .with_changes(
                2,
                [
                    ("1", None),
                    ("2", Some("mt9")),
                    ("4", Some("eu")),
                    ("App-X", None),
                    ("app-y", Some("us")),
                ],
            )
            .unwrap();
        assert!(Arc::ptr_eq(&base.tables, &changed.tables));
        assert_eq!(changed.overlay_len(), 5);
        // Moved back: the overlay forgets it, as the tables say the same.
        let back = changed.with_changes(3, [("2", Some("eu"))]).unwrap();
        assert_eq!(back.overlay_len(), 4);
        let want = Snapshot::from_apps(
            3,
            [("2", "eu"), ("3", "us"), ("4", "eu"), ("app-y", "us")],
            &zone,
        )
        .unwrap();
        assert_eq!(seen(&back), seen(&want));

        let folded = back.fold().unwrap();
        // A change made while the fold ran is kept over the new tables.
        let later = back.with_changes(4, [("9", Some("eu"))]).unwrap();
        let rebased = later.rebased(&folded).unwrap();
        assert_eq!(rebased.overlay_len(), 1);
        assert_eq!(seen(&rebased), seen(&later));
        assert_eq!(rebased.serial, 4);
        assert_eq!(rebased.apps().len(), 5);
        // Tables replaced meanwhile (a load): the fold is of no use.
        assert!(want.rebased(&folded).is_none());
    }

    /// While a fold runs, an app it adds is deleted, one it deletes comes back, one it
    /// moves moves back: each is now as the old tables say, which the overlay keeps no
    /// entry for, but the new tables say otherwise. Found by tests/update.rs
    /// `a_fold_keeps_every_change` (an acknowledged delete answered after a fold).
    #[test]
    fn a_change_back_to_the_old_tables_survives_the_fold() {
        let zone = zone();
        let base =
            Snapshot::from_apps(1, [("1", "eu"), ("2", "eu"), ("app-x", "us")], &zone).unwrap();
        let changes = [
            ("1", None),
            ("2", Some("us")),
            ("3", Some("eu")),
            ("app-x", None),
            ("app-y", Some("eu")),
        ];
        let mut changed = base.with_changes(2, changes).unwrap();
        // Past the overlay's first layer, so that the changes back are merged down.
        for n in 0..3_000u32 {
            let id = format!("{}", 1_000 + n);
            changed = changed
                .with_changes(3, [(id.as_str(), Some("eu"))])
                .unwrap();
        }
        let folded = changed.fold().unwrap();
        let undone = [
            ("1", Some("eu")),
            ("2", Some("eu")),
            ("3", None),
            ("app-x", Some("us")),
            ("app-y", None),
        ];
        let mut later = changed.with_changes(4, undone).unwrap();
        for n in 0..3_000u32 {
            let id = format!("{}", 10_000 + n);
            later = later.with_changes(5, [(id.as_str(), Some("us"))]).unwrap();
        }
        let rebased = later.rebased(&folded).unwrap();
        assert_eq!(seen(&rebased), seen(&later));
        assert_eq!(rebased.overlay_len(), 3_000 + 5);
        assert_eq!(rebased.apps().len(), later.apps().len());
    }

    #[test]
    fn app_keys() {
        assert_eq!(AppKey::new(b"123456"), AppKey::Numeric(123456));
        assert_eq!(AppKey::new(b"0"), AppKey::Numeric(0));
        assert_eq!(AppKey::new(b"0123"), AppKey::Named(b"0123"));
        assert_eq!(AppKey::new(b"my-app"), AppKey::Named(b"my-app"));
        let twenty = b"12345678901234567890";
        assert_eq!(AppKey::new(twenty), AppKey::Named(twenty));
        assert_eq!(
            AppKey::new(b"9999999999999999999"),
            AppKey::Numeric(9_999_999_999_999_999_999)
        );
    }

    #[test]
    fn lookups() {
        let json = br#"{"serial": 7, "apps": {"123456": "MT1", "My-App": "eu", "0123": "mt1"}}"#;
        let snapshot = Snapshot::from_json(json, &zone()).unwrap();
        assert_eq!(snapshot.serial, 7);
        assert_eq!(snapshot.app_count(), 3);
        assert_eq!(snapshot.cluster_count(), 2);
        let target = |label: &[u8]| snapshot.cname(label).map(|rr| rr[10..].to_vec());
        assert_eq!(
            target(b"ws-123456").unwrap(),
            b"\x06ws-mt1\x07example\x03com\x00"
        );
        assert_eq!(
            target(b"sockjs-my-app").unwrap(),
            b"\x09sockjs-eu\x07example\x03com\x00"
        );
        assert_eq!(
            target(b"api-0123").unwrap(),
            b"\x07api-mt1\x07example\x03com\x00"
        );
        for missing in [
            &b"ws-123"[..],
            b"ws-",
            b"ws",
            b"ftp-123456",
            b"-123456",
            b"ws-00123456",
        ] {
            assert_eq!(target(missing), None, "{missing:?}");
        }
        let cname = snapshot.cname(b"ws-123456").unwrap();
        assert_eq!(&cname[..10], &[0, 5, 0, 1, 0, 0, 1, 44, 0, 20]);
    }

    #[test]
    fn soa_records() {
        let snapshot =
            Snapshot::from_json(br#"{"serial": 2026112601, "apps": {}}"#, &zone()).unwrap();
        let soa = snapshot.soa_negative();
        assert_eq!(&soa[..8], &[0, 6, 0, 1, 0, 0, 0, 60]);
        let rdata = &soa[10..];
        let times = &rdata[rdata.len() - 20..];
        assert_eq!(&times[..4], &2026112601u32.to_be_bytes());
        assert_eq!(&times[16..], &60u32.to_be_bytes());
        assert_eq!(&snapshot.soa_answer()[4..8], &3600u32.to_be_bytes());
    }

    #[test]
    fn serial_is_required() {
        let error = Snapshot::from_json(br#"{"apps": {"1": "a"}}"#, &zone()).unwrap_err();
        assert!(error.to_string().contains("no \"serial\""), "{error}");
    }
}
