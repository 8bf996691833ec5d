//! The oracle of the `update` fuzz target, shared with tests/fuzz_corpus.rs: an UPDATE
//! message is untrusted input. Reading and judging it never panics; an UPDATE judged
//! acceptable changes exactly what a model says its update section does (the CNAMEs of each
//! app it names, applied record by record to the base's mapping: add replaces, class ANY
//! deletes, class NONE deletes a matching record), every app it touches ends whole on one
//! cluster or gone, and the new snapshot answers each changed app as judged.

use std::collections::BTreeMap;

use cnamed::snapshot::guard::serial_is_newer;
use cnamed::snapshot::{CnameShape, Snapshot};
use cnamed::update::{judge, Policy};
use cnamed::wire::name::wire_to_text;
use cnamed::wire::update::{parse_update, CLASS_ANY, CLASS_NONE};
use cnamed::wire::{Class, Rtype};

const SERVICES: [&str; 3] = ["ws", "sockjs", "api"];
const SUFFIX: &str = ".apps.example.com.";

/// The snapshot updates are judged against: serial 10, numeric and named apps on three
/// clusters.
pub(crate) fn base_snapshot() -> &'static Snapshot {
    static BASE: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let zone = cnamed::config::Config::default().zone().unwrap();
        let apps = [("1", "c0"), ("2", "c1"), ("app-x", "c2"), ("0123", "c0")];
        Snapshot::from_apps(10, apps, &zone).unwrap()
    })
}

/// The cluster `app` is on in `snapshot`.
fn cluster_of(snapshot: &Snapshot, app: &str) -> Option<String> {
    let index = snapshot.cluster_of(cnamed::snapshot::AppKey::new(app.as_bytes()))?;
    snapshot.cluster_name(index).map(str::to_owned)
}

pub(crate) fn check(message: &[u8], base: &Snapshot) {
    let Ok(update) = parse_update(message) else {
        return;
    };
    let shape = CnameShape::new(&base.zone).unwrap();
    let Ok(judged) = judge(&update, base, &shape, Policy::default()) else {
        return;
    };
    // The model: (app, service) -> cluster, from the base, changed record by record.
    let mut model: BTreeMap<(String, usize), Option<String>> = BTreeMap::new();
    for record in &update.updates {
        let owner = wire_to_text(&record.owner).to_ascii_lowercase();
        let Some(label) = owner.strip_suffix(SUFFIX) else {
            // The apex: only an SOA may be there, and it changes no app.
            assert_eq!(
                (record.class, record.rtype),
                (Class::IN, Rtype::SOA),
                "{owner}"
            );
            continue;
        };
        let (service, app) = label.split_once('-').expect("an app's name");
        let service = SERVICES.iter().position(|s| *s == service).unwrap();
        let slot = model
            .entry((app.to_owned(), service))
            .or_insert_with(|| cluster_of(base, app));
        let target = || {
            let target = update.rdata_name(record)?;
            let text = wire_to_text(&target).to_ascii_lowercase();
            let rest = text.strip_prefix(&format!("{}-", SERVICES[service]))?;
            rest.strip_suffix(".example.com.").map(str::to_owned)
        };
        match record.class {
            Class::IN => *slot = Some(target().expect("an accepted CNAME names a cluster")),
            CLASS_ANY => *slot = None,
            CLASS_NONE => {
                if target().is_some() && *slot == target() {
                    *slot = None;
                }
            }
            other => panic!("class {other:?} accepted"),
        }
    }
    let mut expected: Vec<(String, Option<String>)> = Vec::new();
    let apps: Vec<String> = model.keys().map(|(app, _)| app.clone()).collect();
    for app in apps {
        if expected.iter().any(|(seen, _)| *seen == app) {
            continue;
        }
        let now: Vec<Option<String>> = (0..SERVICES.len())
            .map(|s| {
                model
                    .get(&(app.clone(), s))
                    .cloned()
                    .unwrap_or_else(|| cluster_of(base, &app))
            })
            .collect();
        assert!(
            now.iter().all(|c| *c == now[0]),
            "app {app} judged whole: {now:?}"
        );
        if now[0] != cluster_of(base, &app) {
            expected.push((app, now[0].clone()));
        }
    }
    let mut got: Vec<(String, Option<String>)> = judged
        .changes
        .iter()
        .map(|change| {
            let before = change.before.as_deref().map(str::to_owned);
            assert_eq!(before, cluster_of(base, &change.app), "app {}", change.app);
            (
                change.app.to_string(),
                change.cluster.as_deref().map(str::to_owned),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "the changes judged and the model's");
    if let Some(serial) = judged.serial {
        assert!(serial_is_newer(serial, base.serial));
    }
    if judged.is_empty() {
        return;
    }
    let serial = judged.serial.unwrap_or(base.serial + 1);
    let changes = judged
        .changes
        .iter()
        .map(|c| (&*c.app, c.cluster.as_deref()));
    // Apps the zone's rules refuse (a bad ID, cluster) are refused here too, never served.
    let Ok(next) = base.with_changes(serial, changes) else {
        return;
    };
    assert_eq!(next.serial, serial);
    for (app, cluster) in &got {
        assert_eq!(cluster_of(&next, app), *cluster, "app {app} as judged");
        for service in SERVICES {
            let label = format!("{service}-{app}");
            assert_eq!(next.cname(label.as_bytes()).is_some(), cluster.is_some());
        }
    }
}
