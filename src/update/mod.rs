//! DNS UPDATE (RFC 2136) judged against the zone served: the zone section, the
//! prerequisites (§3.2), the prescan of the updates (§3.4.1), then the policy, which is the
//! zone's shape (§3.3), and the updates applied in order (§3.4.2) to the apps they touch.
//! Pure: what the message would change, or the RCODE that refuses it and why; the server
//! checks the TSIG before, and journals and publishes after.
//!
//! The policy: CNAMEs at `{service}-{app}.{zone}` for a listed service, whose target is the
//! `--target` of a cluster (one of `--clusters`, when given), may be added, replaced and
//! deleted (by name, RRset or record); an SOA whose fields other than the serial are the
//! served SOA's may set a greater serial (RFC 1982), else it is ignored (§3.4.2.2). After the
//! update every app it touches has a CNAME for every service, all to one cluster, or none.
//! Anything else is REFUSED, and nothing changes. The TTL an UPDATE carries is ignored:
//! every CNAME is served with `--ttl`.

mod read;
#[cfg(test)]
mod tests;

use fxhash::FxHashMap;

use read::{intern, target_cluster, AppId};

use crate::journal::Change;
use crate::snapshot::guard::serial_is_newer;
use crate::snapshot::{AppKey, CnameShape, Snapshot};
use crate::wire::name::wire_to_text;
use crate::wire::update::{UpdateMessage, UpdateRecord, CLASS_ANY, CLASS_NONE};
use crate::wire::{Class, Rcode, Rtype, MAX_NAME};

/// What an UPDATE changes: each app whose state it changes, with its cluster before and
/// after (`None`: not there, removed), and the serial its SOA sets, if it sets one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Judged {
    pub changes: Vec<Change>,
    pub serial: Option<u32>,
}

impl Judged {
    /// Whether the update changes nothing (RFC 2136 §3.4.2.7: NOERROR, serial unchanged).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.serial.is_none()
    }
}

/// Why an UPDATE is not applied: the RCODE answered, and what the log says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub rcode: Rcode,
    pub why: String,
}

fn refused(rcode: Rcode, why: impl Into<String>) -> Refused {
    Refused {
        rcode,
        why: why.into(),
    }
}

/// The rules an update is judged by besides the zone: the clusters apps may map to
/// (`--clusters`, lower case), when restricted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy<'a> {
    pub clusters: Option<&'a [String]>,
}

/// Judges `message` against `snapshot` (whose zone `shape` reads): what it changes, or why
/// not. The prerequisites see the zone before the update.
pub fn judge(
    message: &UpdateMessage<'_>,
    snapshot: &Snapshot,
    shape: &CnameShape<'_>,
    policy: Policy<'_>,
) -> Result<Judged, Refused> {
    let zone = shape.zone();
    if message.zone_class != Class::IN || !message.zone.eq_ignore_ascii_case(&zone.apex) {
        return Err(refused(
            Rcode::NOTAUTH,
            format!("zone {} is not ours", wire_to_text(&message.zone)),
        ));
    }
    let view = View { snapshot, shape };
    check_prerequisites(message, &view)?;
    for record in &message.updates {
        prescan(record, &zone.apex)?;
    }
    // Each update's owner, read once. The base's slots of their apps are asked for before
    // the first lookup: at 100M apps each is a cache miss, and asked for together they
    // overlap (a fifth of a commit's time at 20,000 app changes/s, one after the other).
    let owners: Vec<Owner> = (message.updates.iter())
        .map(|record| view.owner(&record.owner))
        .collect();
    for owner in &owners {
        if let Owner::App(app, _) = owner {
            snapshot.prefetch(AppKey::new(app.as_str().as_bytes()));
        }
    }
    apply(message, &owners, &view, policy)
}

/// The zone as the prerequisites see it.
struct View<'a> {
    snapshot: &'a Snapshot,
    shape: &'a CnameShape<'a>,
}

/// What a name is in the zone.
enum Owner {
    Apex,
    /// An app's CNAME owner: the app and the service index.
    App(AppId, usize),
    /// Any other name in the zone: it has no records.
    Other(String),
}

impl View<'_> {
    fn owner(&self, owner: &[u8]) -> Owner {
        if owner.eq_ignore_ascii_case(&self.shape.zone().apex) {
            return Owner::Apex;
        }
        match self.shape.owner_in(owner) {
            Ok((app, service)) => Owner::App(AppId::lower_case(app), service),
            Err(why) => Owner::Other(why),
        }
    }

    /// The cluster `app` is on.
    fn cluster(&self, app: &str) -> Option<&str> {
        self.snapshot.cluster_name_of(AppKey::new(app.as_bytes()))
    }

    /// The types of the RRsets at `owner`.
    fn types_at(&self, owner: &[u8]) -> &'static [Rtype] {
        match self.owner(owner) {
            Owner::Apex => &[Rtype::SOA, Rtype::NS],
            Owner::App(app, _) if self.cluster(app.as_str()).is_some() => &[Rtype::CNAME],
            _ => &[],
        }
    }
}

/// Whether `owner` is the apex or under it.
fn in_zone(owner: &[u8], apex: &[u8]) -> bool {
    owner.len() >= apex.len() && {
        let cut = owner.len() - apex.len();
        owner[cut..].eq_ignore_ascii_case(apex) && is_label_boundary(owner, cut)
    }
}

/// Whether a label of the wire name `name` starts at `at`.
fn is_label_boundary(name: &[u8], at: usize) -> bool {
    let mut i = 0;
    while i < at {
        i += 1 + usize::from(name[i]);
    }
    i == at
}

/// RFC 2136 §3.2: every prerequisite, against the zone before the update.
fn check_prerequisites(message: &UpdateMessage<'_>, view: &View<'_>) -> Result<(), Refused> {
    let apex = &view.shape.zone().apex;
    // Value-dependent prerequisites, gathered by owner and type (§3.2.3).
    let mut sets: Vec<(&UpdateRecord, Vec<&UpdateRecord>)> = Vec::new();
    for record in &message.prerequisites {
        let name = || wire_to_text(&record.owner);
        if record.ttl != 0 {
            return Err(refused(Rcode::FORMERR, "a prerequisite with a TTL"));
        }
        if !in_zone(&record.owner, apex) {
            return Err(refused(
                Rcode::NOTZONE,
                format!("prerequisite {} outside the zone", name()),
            ));
        }
        let types = view.types_at(&record.owner);
        let wants_empty = |class| {
            if record.rdata_len != 0 {
                return Err(refused(
                    Rcode::FORMERR,
                    format!("a prerequisite of class {class} with RDATA"),
                ));
            }
            Ok(())
        };
        match record.class {
            CLASS_ANY => {
                wants_empty("ANY")?;
                if record.rtype == Rtype::ANY && types.is_empty() {
                    return Err(refused(
                        Rcode::NXDOMAIN,
                        format!("{} is not in use", name()),
                    ));
                }
                if record.rtype != Rtype::ANY && !types.contains(&record.rtype) {
                    return Err(refused(
                        Rcode::NXRRSET,
                        format!("{} has no {} RRset", name(), record.rtype),
                    ));
                }
            }
            CLASS_NONE => {
                wants_empty("NONE")?;
                if record.rtype == Rtype::ANY && !types.is_empty() {
                    return Err(refused(Rcode::YXDOMAIN, format!("{} is in use", name())));
                }
                if record.rtype != Rtype::ANY && types.contains(&record.rtype) {
                    return Err(refused(
                        Rcode::YXRRSET,
                        format!("{} has a {} RRset", name(), record.rtype),
                    ));
                }
            }
            Class::IN => match sets.iter_mut().find(|(first, _)| {
                first.rtype == record.rtype && first.owner.eq_ignore_ascii_case(&record.owner)
            }) {
                Some((_, set)) => set.push(record),
                None => sets.push((record, vec![record])),
            },
            _ => return Err(refused(Rcode::FORMERR, "a prerequisite of another class")),
        }
    }
    for (first, set) in sets {
        if !rrset_is(message, view, first, &set) {
            return Err(refused(
                Rcode::NXRRSET,
                format!(
                    "the {} RRset of {} is not as the prerequisite says",
                    first.rtype,
                    wire_to_text(&first.owner)
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the RRset `first.owner`/`first.rtype` of the zone is exactly the records of `set`
/// (RFC 2136 §3.2.3: the same RDATA, duplicates aside).
fn rrset_is(
    message: &UpdateMessage<'_>,
    view: &View<'_>,
    first: &UpdateRecord,
    set: &[&UpdateRecord],
) -> bool {
    let zone = view.shape.zone();
    match (view.owner(&first.owner), first.rtype) {
        (Owner::App(app, service), Rtype::CNAME) => {
            let Some(cluster) = view.cluster(app.as_str()) else {
                return false;
            };
            set.iter().all(|record| {
                message
                    .rdata_name(record)
                    .and_then(|target| view.shape.cluster(service, &target).ok())
                    .is_some_and(|named| named == cluster)
            })
        }
        (Owner::Apex, Rtype::SOA) => set.iter().all(|record| {
            message.rdata_soa(record).is_some_and(|(names, fields)| {
                names == zone.soa_names && fields == served_soa(view.snapshot)
            })
        }),
        (Owner::Apex, Rtype::NS) => {
            let mut named: Vec<String> = Vec::new();
            for record in set {
                let Some(target) = message.rdata_name(record) else {
                    return false;
                };
                let text = wire_to_text(&target).to_ascii_lowercase();
                let text = text.trim_end_matches('.').to_owned();
                if !named.contains(&text) {
                    named.push(text);
                }
            }
            let ours = |name: &String| {
                zone.ns_text
                    .iter()
                    .any(|ns| ns.trim_end_matches('.').eq_ignore_ascii_case(name))
            };
            named.len() == zone.ns_text.len() && named.iter().all(ours)
        }
        _ => false,
    }
}

/// The served SOA's SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM.
fn served_soa(snapshot: &Snapshot) -> [u32; 5] {
    let [refresh, retry, expire] = snapshot.zone.soa_timers;
    [
        snapshot.serial,
        refresh,
        retry,
        expire,
        snapshot.zone.negative_ttl,
    ]
}

/// RFC 2136 §3.4.1.2-3: the form of one update record.
fn prescan(record: &UpdateRecord, apex: &[u8]) -> Result<(), Refused> {
    if !in_zone(&record.owner, apex) {
        return Err(refused(
            Rcode::NOTZONE,
            format!("update of {} outside the zone", wire_to_text(&record.owner)),
        ));
    }
    let meta = matches!(record.rtype.0, 251..=254);
    let well_formed = match record.class {
        Class::IN => !meta && record.rtype != Rtype::ANY,
        CLASS_ANY => record.ttl == 0 && record.rdata_len == 0 && !meta,
        CLASS_NONE => record.ttl == 0 && !meta && record.rtype != Rtype::ANY,
        _ => false,
    };
    match well_formed {
        true => Ok(()),
        false => Err(refused(
            Rcode::FORMERR,
            format!(
                "a malformed update of {} (class {}, type {})",
                wire_to_text(&record.owner),
                record.class.0,
                record.rtype
            ),
        )),
    }
}

/// RFC 2136 §3.3 and §3.4.2: each update allowed by the policy, applied in order to the
/// CNAMEs of the apps it touches; then every app must have one cluster for all services, or
/// none.
fn apply(
    message: &UpdateMessage<'_>,
    owners: &[Owner],
    view: &View<'_>,
    policy: Policy<'_>,
) -> Result<Judged, Refused> {
    let zone = view.shape.zone();
    let services = zone.services.len();
    // The clusters named, once each: an app's state is indices into them, so that a record
    // costs no copy of a name.
    let mut clusters: Vec<Box<str>> = Vec::new();
    // Each app touched, in order, with its cluster before; `now` holds its cluster per
    // service (`services` slots an app).
    let mut index: FxHashMap<AppId, usize> = FxHashMap::default();
    let mut touched: Vec<(AppId, Option<usize>)> = Vec::new();
    let mut scratch = ([0u8; MAX_NAME], [0u8; MAX_NAME]);
    let mut now: Vec<Option<usize>> = Vec::new();
    let mut serial = view.snapshot.serial;
    let mut judged = Judged::default();
    for (record, owner) in message.updates.iter().zip(owners) {
        let name = || wire_to_text(&record.owner);
        let (app, service) = match *owner {
            Owner::App(app, service) => (app, service),
            Owner::Apex if record.class == Class::IN && record.rtype == Rtype::SOA => {
                let Some((names, fields)) = message.rdata_soa(record) else {
                    return Err(refused(Rcode::FORMERR, "an SOA that does not parse"));
                };
                if names != zone.soa_names || fields[1..] != served_soa(view.snapshot)[1..] {
                    return Err(refused(
                        Rcode::REFUSED,
                        "an SOA whose fields other than the serial differ from the zone's",
                    ));
                }
                // A serial not greater than the zone's is ignored (§3.4.2.2).
                if serial_is_newer(fields[0], serial) {
                    serial = fields[0];
                    judged.serial = Some(serial);
                }
                continue;
            }
            Owner::Apex => {
                return Err(refused(
                    Rcode::REFUSED,
                    format!(
                        "the apex's {} records are not changed by UPDATE",
                        record.rtype
                    ),
                ))
            }
            Owner::Other(ref why) => {
                return Err(refused(
                    Rcode::REFUSED,
                    format!("{} is not an app's name: {why}", name()),
                ))
            }
        };
        let at = match index.get(&app) {
            Some(&at) => at,
            None => {
                let before = view
                    .cluster(app.as_str())
                    .map(|name| intern(&mut clusters, name));
                index.insert(app, touched.len());
                touched.push((app, before));
                now.resize(now.len() + services, before);
                touched.len() - 1
            }
        };
        let slot = &mut now[at * services + service];
        match (record.class, record.rtype) {
            (Class::IN, Rtype::CNAME) => {
                let cluster = target_cluster(message, record, view.shape, service, &mut scratch)?;
                if let Some(allowed) = policy.clusters {
                    if !allowed.iter().any(|known| known == cluster) {
                        return Err(refused(
                            Rcode::REFUSED,
                            format!("{}: cluster {cluster} is not in --clusters", name()),
                        ));
                    }
                }
                // A CNAME added where one is replaces it (§3.4.2.2).
                *slot = Some(intern(&mut clusters, cluster));
            }
            (CLASS_ANY, Rtype::ANY | Rtype::CNAME) => *slot = None,
            (CLASS_NONE, Rtype::CNAME) => {
                // Deletes the record only if it is there (§3.4.2.4).
                if let Ok(cluster) =
                    target_cluster(message, record, view.shape, service, &mut scratch)
                {
                    if slot.is_some_and(|at| *clusters[at] == *cluster) {
                        *slot = None;
                    }
                }
            }
            (_, rtype) => {
                return Err(refused(
                    Rcode::REFUSED,
                    format!("{}: only CNAMEs of apps are changed, not {rtype}", name()),
                ))
            }
        }
    }
    let name_of = |at: Option<usize>| at.map(|at| clusters[at].clone());
    for ((app, before), now) in touched.into_iter().zip(now.chunks(services.max(1))) {
        let after = match now {
            [first, rest @ ..] if rest.iter().all(|other| other == first) => *first,
            _ => {
                return Err(refused(
                    Rcode::REFUSED,
                    format!(
                        "app {app} would have CNAMEs for some services only, or on two clusters"
                    ),
                ))
            }
        };
        if before != after {
            judged.changes.push(Change {
                app: app.as_str().into(),
                before: name_of(before),
                cluster: name_of(after),
            });
        }
    }
    Ok(judged)
}
