//! A whole zone's CNAMEs (AXFR, or IXFR answered AXFR-style) collected straight into a
//! snapshot's tables as they arrive: an app whose CNAMEs, one per listed service, arrive
//! together (cnamed primaries send them so, and every zone of one service has them so) goes
//! into the tables the moment it is complete, with no copy of its ID or cluster kept beside
//! them. Apps whose records come apart (a primary sending them in canonical order, service
//! by service) wait in a map until their last one arrives.
//!
//! [`FullZone::quick_cname`] reads the common record without decompressing names: an owner
//! `{service}-{app}` with a pointer to the apex, a target seen before in the same message
//! (its bytes, pointers included, mean the same name there). Anything else is left to the
//! reader's general path, which accepts and refuses exactly the same records.

use fxhash::FxHashMap;

use super::message_targets::MessageTargets;
use crate::snapshot::{CnameShape, Snapshot, SnapshotBuilder, Zone};
use crate::wire::name::{check_label, read_name, Charset};
use crate::wire::record::{field, fixed_at, read_be16, RR_FIXED};
use crate::wire::{Rtype, MAX_LABEL, MAX_NAME};

/// The CNAMEs of a whole zone read so far.
pub(super) struct FullZone<'z> {
    builder: SnapshotBuilder<'z>,
    /// One bit per listed service: an app with all of them is complete.
    all: u64,
    /// The app whose records are arriving, not yet complete (none while `seen` is 0). Kept
    /// in place: moving it in and out of an `Option` cost a tenth of a cold start.
    pending: Pending,
    /// Incomplete apps whose records came apart: lower-case app -> (cluster, services seen).
    scattered: FxHashMap<Box<[u8]>, (u32, u64)>,
    /// In the message being read: offsets where the apex is written.
    apex_at: Vec<u16>,
    /// In the message being read: the clusters of the targets met.
    targets: MessageTargets,
}

/// A CNAME read by [`FullZone::quick_cname`].
pub(super) struct QuickCname<'m> {
    /// ASCII, any case.
    pub app: &'m [u8],
    /// The app's number, when its ID is one (digits without a leading zero).
    pub numeric: Option<u64>,
    pub service: usize,
    pub cluster: u32,
    /// Where the next record starts.
    pub next: usize,
}

/// An incomplete app: its lower-case ID, cluster and the services seen.
struct Pending {
    app: [u8; MAX_LABEL],
    len: u8,
    numeric: Option<u64>,
    cluster: u32,
    seen: u64,
}

impl Pending {
    const NONE: Self = Self {
        app: [0; MAX_LABEL],
        len: 0,
        numeric: None,
        cluster: 0,
        seen: 0,
    };

    /// Starts `app` (at most [`MAX_LABEL`] bytes, or `None`).
    fn set(&mut self, app: &[u8], numeric: Option<u64>, cluster: u32, seen: u64) -> Option<()> {
        let stored = self.app.get_mut(..app.len())?;
        stored.copy_from_slice(app);
        stored.make_ascii_lowercase();
        self.len = app.len() as u8;
        self.numeric = numeric;
        self.cluster = cluster;
        self.seen = seen;
        Some(())
    }

    fn app(&self) -> &[u8] {
        &self.app[..usize::from(self.len)]
    }
}

impl<'z> FullZone<'z> {
    pub(super) fn new(zone: &'z Zone) -> Self {
        Self {
            builder: SnapshotBuilder::new(zone),
            all: u64::MAX >> (64 - zone.services.len().clamp(1, 64)),
            pending: Pending::NONE,
            scattered: FxHashMap::default(),
            apex_at: Vec::new(),
            targets: MessageTargets::default(),
        }
    }

    /// The index of cluster `name`.
    pub(super) fn cluster(&mut self, name: &str) -> Result<u32, String> {
        self.builder.cluster(name).map_err(|error| error.0)
    }

    /// Forgets what the last message's offsets meant: called before each message.
    pub(super) fn start_message(&mut self) {
        self.apex_at.clear();
        self.targets = MessageTargets::default();
    }

    /// The CNAME record at `at` of `message`, when it has the common form (see the module's
    /// notes), or `None` for the general path to read it.
    pub(super) fn quick_cname<'m>(
        &mut self,
        shape: &CnameShape<'_>,
        message: &'m [u8],
        at: usize,
    ) -> Option<QuickCname<'m>> {
        let zone = shape.zone();
        // The owner: one label, then a pointer to the apex.
        let label_len = usize::from(*message.get(at)?);
        if label_len == 0 || label_len > MAX_LABEL {
            return None;
        }
        let label = message.get(at + 1..at + 1 + label_len)?;
        let pointer_at = at + 1 + label_len;
        let pointer = message.get(pointer_at..pointer_at + 2)?;
        if pointer[0] & 0xC0 != 0xC0 {
            return None;
        }
        let to = u16::from_be_bytes([pointer[0] & 0x3F, pointer[1]]);
        if usize::from(to) >= pointer_at {
            return None;
        }
        if !self.apex_at.contains(&to) {
            let mut name = [0u8; MAX_NAME];
            let (len, _) = read_name(message, usize::from(to), &mut name)?;
            if name[..len] != zone.apex[..] {
                return None;
            }
            self.apex_at.push(to);
        }
        let dash = label.iter().position(|&byte| byte == b'-')?;
        let service = zone
            .services
            .iter()
            .position(|s| s.eq_ignore_ascii_case(&label[..dash]))?;
        let app = &label[dash + 1..];
        let numeric = number(app);
        // An app's second and later records: its ID was checked with its first.
        let checked = self.pending.seen != 0 && self.pending.app().eq_ignore_ascii_case(app);
        if numeric.is_none() && !checked {
            let text = std::str::from_utf8(app).ok()?;
            check_label(text, Charset::Hostname, MAX_LABEL).ok()?;
        }
        // The record's type and RDATA.
        let after = pointer_at + 2;
        let fixed: &[u8; RR_FIXED] = fixed_at(message, after)?;
        if Rtype(read_be16(fixed, field::TYPE)) != Rtype::CNAME {
            return None;
        }
        let rdata_at = after + RR_FIXED;
        let next = rdata_at + usize::from(read_be16(fixed, field::RDLENGTH));
        let rdata = message.get(rdata_at..next)?;
        let cluster = match self.targets.cluster_of(rdata, service) {
            Some(cluster) => cluster,
            None => {
                let cluster = self.learn_target(shape, message, rdata_at, service)?;
                self.targets.remember(rdata, service, cluster);
                cluster
            }
        };
        Some(QuickCname {
            app,
            numeric,
            service,
            cluster,
            next,
        })
    }

    /// The cluster of a target not met before in this message.
    fn learn_target(
        &mut self,
        shape: &CnameShape<'_>,
        message: &[u8],
        rdata_at: usize,
        service: usize,
    ) -> Option<u32> {
        let mut target = [0u8; MAX_NAME];
        let (len, _) = read_name(message, rdata_at, &mut target)?;
        let mut scratch = [0u8; MAX_NAME];
        let name = shape
            .cluster_in(service, &target[..len], &mut scratch)
            .ok()?;
        self.builder.cluster(name).ok()
    }

    /// Adds the CNAME of `app` (a checked label, any case; `numeric` its [`number`], `None`
    /// only when it is not one) for service number `service` to the cluster of index
    /// `cluster`; the error says what does not fit.
    pub(super) fn add(
        &mut self,
        app: &[u8],
        numeric: Option<u64>,
        service: usize,
        cluster: u32,
    ) -> Result<(), String> {
        let bit = 1u64 << service;
        let pending = &mut self.pending;
        if pending.seen != 0 {
            let same = match (pending.numeric, numeric) {
                (Some(known), Some(id)) => known == id,
                _ => pending.app().eq_ignore_ascii_case(app),
            };
            if same {
                pending.seen = join(
                    &self.builder,
                    app,
                    pending.cluster,
                    pending.seen,
                    cluster,
                    bit,
                )?;
                if pending.seen == self.all {
                    pending.seen = 0;
                    let (numeric, cluster) = (pending.numeric, pending.cluster);
                    return complete(&mut self.builder, pending.app(), numeric, cluster);
                }
                return Ok(());
            }
            // Another app starts before this one is complete: its records come apart.
            let (before, before_cluster, before_seen) =
                (pending.app, pending.cluster, pending.seen);
            let before = &before[..pending.app().len()];
            pending.seen = 0;
            self.scatter(before, before_cluster, before_seen)?;
        }
        if !self.scattered.is_empty() {
            let lower = app.to_ascii_lowercase();
            if self.scattered.contains_key(&*lower) {
                return self.scatter(&lower, cluster, bit);
            }
        }
        if bit == self.all {
            return complete(&mut self.builder, app, numeric, cluster);
        }
        (self.pending.set(app, numeric, cluster, bit))
            .ok_or_else(|| format!("app {} too long", text(app)))
    }

    /// Adds services `seen` of `app` (lower case) to the scattered apps, and the app to the
    /// tables when that completes it.
    fn scatter(&mut self, app: &[u8], cluster: u32, seen: u64) -> Result<(), String> {
        let Some(entry) = self.scattered.get_mut(app) else {
            self.scattered.insert(app.into(), (cluster, seen));
            return Ok(());
        };
        entry.1 = join(&self.builder, app, entry.0, entry.1, cluster, seen)?;
        if entry.1 != self.all {
            return Ok(());
        }
        self.scattered.remove(app);
        complete(&mut self.builder, app, number(app), cluster)
    }

    /// The snapshot at `serial`, once every app has a CNAME for every listed service.
    pub(super) fn finish(self, serial: u32) -> Result<Snapshot, String> {
        let incomplete = match self.pending.seen {
            0 => self.scattered.keys().next().map(|app| &**app),
            _ => Some(self.pending.app()),
        };
        if let Some(app) = incomplete {
            let app = text(app);
            // Or a record repeated after the app was complete (which is not looked up).
            return Err(format!(
                "app {app} lacks a CNAME for some listed service, or has one twice"
            ));
        }
        self.builder.finish(serial).map_err(|error| error.0)
    }
}

/// Adds `app` to the tables being built.
fn complete(
    builder: &mut SnapshotBuilder<'_>,
    app: &[u8],
    numeric: Option<u64>,
    cluster: u32,
) -> Result<(), String> {
    if let Some(id) = numeric {
        return builder.add_numeric(id, cluster).map_err(|error| error.0);
    }
    // Every app here passed `check_label` (the quick path's or the general one's).
    (builder.add_checked_label(app, cluster)).map_err(|error| error.0)
}

/// The services of an incomplete app on cluster `known` with `known_seen`, once services
/// `seen` on `cluster` join them.
fn join(
    builder: &SnapshotBuilder<'_>,
    app: &[u8],
    known: u32,
    known_seen: u64,
    cluster: u32,
    seen: u64,
) -> Result<u64, String> {
    if known != cluster {
        let name = builder.cluster_name(known).unwrap_or("?");
        let app = text(app);
        return Err(format!("app {app} is on {name} for another service"));
    }
    if known_seen & seen != 0 {
        let app = text(app);
        return Err(format!("app {app} has two records for one service"));
    }
    Ok(known_seen | seen)
}

/// An app ID for a message.
fn text(app: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(app)
}

/// The number an app ID of digits names, without a leading zero ("0123" is a name, so it
/// never equals "123"), as [`AppKey::new`](crate::snapshot::AppKey::new) reads it.
pub(super) fn number(app: &[u8]) -> Option<u64> {
    match crate::snapshot::AppKey::new(app) {
        crate::snapshot::AppKey::Numeric(id) => Some(id),
        crate::snapshot::AppKey::Named(_) => None,
    }
}
