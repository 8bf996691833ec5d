//! Guard rails between the snapshot being served and the one a reload brings: a dump that
//! would turn most of the zone NXDOMAIN, roll the serial back or point apps at a cluster that
//! does not exist is refused, and the old snapshot keeps serving. Pure functions of the two
//! snapshots and the operator's [`Rules`]; the server decides what to do with the verdict.

use std::fmt;

use super::Snapshot;

/// Default `--max-shrink`: a reload may remove at most this percentage of the live apps.
pub const DEFAULT_MAX_SHRINK: u8 = 10;

/// The operator's limits on what a new snapshot may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Percentage of the live apps a reload may remove (0 to 100).
    pub max_shrink_percent: u8,
    /// Lower-case cluster names apps may map to; `None` allows any.
    pub clusters: Option<Vec<String>>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            max_shrink_percent: DEFAULT_MAX_SHRINK,
            clusters: None,
        }
    }
}

/// Why a snapshot may not replace the live one (or, for `Cluster`, be served at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The new serial is not greater than the live one in RFC 1982 arithmetic, and the
    /// content differs (the same serial with the same content is an unchanged reload).
    Serial { live: u32, new: u32 },
    /// The new snapshot has no apps; the live one has.
    Empty { live_apps: usize },
    /// More than `max_percent` of the live apps would go.
    Shrink {
        removed: usize,
        live_apps: usize,
        max_percent: u8,
    },
    /// An app maps to a cluster outside `--clusters`.
    Cluster { cluster: String, app: String },
}

impl Refusal {
    /// Metric label values, in the order of [`Refusal::index`]; "invalid" counts dumps that
    /// did not load at all.
    pub const NAMES: [&'static str; 5] = ["serial", "empty", "shrink", "cluster", "invalid"];
    /// The index of "invalid" in `NAMES`.
    pub const INVALID: usize = 4;

    /// This refusal's index in `NAMES`.
    pub fn index(&self) -> usize {
        match self {
            Self::Serial { .. } => 0,
            Self::Empty { .. } => 1,
            Self::Shrink { .. } => 2,
            Self::Cluster { .. } => 3,
        }
    }

    /// Whether `cnamed reload --force` overrides it. `--clusters` is configuration: a
    /// cluster outside it needs the flag changed, not a forced reload.
    pub fn forcible(&self) -> bool {
        !matches!(self, Self::Cluster { .. })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serial { live, new } => write!(
                f,
                "serial {new} is not newer than the live serial {live} (RFC 1982), and the content differs"
            ),
            Self::Empty { live_apps } => {
                write!(f, "the dump has no apps (the live snapshot has {live_apps})")
            }
            Self::Shrink {
                removed,
                live_apps,
                max_percent,
            } => write!(
                f,
                "it removes {removed} of the {live_apps} live apps ({:.1}%), over --max-shrink {max_percent}%",
                *removed as f64 * 100.0 / *live_apps as f64
            ),
            Self::Cluster { cluster, app } => write!(
                f,
                "app {app:?} maps to cluster {cluster:?}, which --clusters does not list"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// How a new snapshot differs from the live one, app by app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Difference {
    pub added: usize,
    pub removed: usize,
    /// Apps in both, on another cluster.
    pub moved: usize,
}

impl Difference {
    /// Whether both map the same apps to the same clusters.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{} -{} ~{}", self.added, self.removed, self.moved)
    }
}

/// `new` is greater than `old` in RFC 1982 serial arithmetic (SERIAL_BITS 32): ahead by 1
/// to 2^31 - 1. At a distance of exactly 2^31 the order is undefined: not greater.
pub fn serial_is_newer(new: u32, old: u32) -> bool {
    let ahead = new.wrapping_sub(old);
    ahead != 0 && ahead < 1 << 31
}

/// Checks the rules that hold for every snapshot, the first one included: every cluster is
/// listed in `--clusters` when the flag is given.
pub fn check_clusters(snapshot: &Snapshot, rules: &Rules) -> Result<(), Refusal> {
    let Some(allowed) = &rules.clusters else {
        return Ok(());
    };
    let Some(cluster) = snapshot
        .clusters
        .iter()
        .find(|name| !allowed.iter().any(|a| a == &***name))
    else {
        return Ok(());
    };
    let app = snapshot
        .apps()
        .into_iter()
        .find(|(_, on)| *on == &**cluster)
        .map(|(id, _)| id)
        .unwrap_or_default();
    Err(Refusal::Cluster {
        cluster: cluster.to_string(),
        app,
    })
}

/// Whether `new` may replace `live`: its clusters are allowed, and unless `force`, its serial
/// moves forward (or nothing changed), it is not empty and it does not shrink the zone by
/// more than the rules allow. Returns how they differ.
pub fn check_successor(
    live: &Snapshot,
    new: &Snapshot,
    rules: &Rules,
    force: bool,
) -> Result<Difference, Refusal> {
    check_difference(live, new, compare(live, new), rules, force)
}

/// [`check_successor`] with the difference already known (an IXFR lists it).
pub fn check_difference(
    live: &Snapshot,
    new: &Snapshot,
    difference: Difference,
    rules: &Rules,
    force: bool,
) -> Result<Difference, Refusal> {
    check_clusters(new, rules)?;
    if force {
        return Ok(difference);
    }
    let live_apps = live.app_count();
    if new.serial == live.serial && difference.is_empty() {
        return Ok(difference);
    }
    if !serial_is_newer(new.serial, live.serial) {
        return Err(Refusal::Serial {
            live: live.serial,
            new: new.serial,
        });
    }
    if new.app_count() == 0 && live_apps > 0 {
        return Err(Refusal::Empty { live_apps });
    }
    let max_removed = live_apps as u128 * u128::from(rules.max_shrink_percent) / 100;
    if difference.removed as u128 > max_removed {
        return Err(Refusal::Shrink {
            removed: difference.removed,
            live_apps,
            max_percent: rules.max_shrink_percent,
        });
    }
    Ok(difference)
}

/// Counts the apps added, removed and moved from `old` to `new`: one lookup in `old` per app
/// of `new`.
pub fn compare(old: &Snapshot, new: &Snapshot) -> Difference {
    // Cluster indexes differ between snapshots: map new ones to old ones once.
    let to_old: Vec<Option<u32>> = new
        .clusters
        .iter()
        .map(|name| {
            old.clusters
                .iter()
                .position(|old_name| old_name == name)
                .map(|i| i as u32)
        })
        .collect();
    let (mut common, mut moved) = (0usize, 0usize);
    let mut visit = |old_cluster: Option<u32>, new_cluster: u32| {
        if let Some(old_cluster) = old_cluster {
            common += 1;
            if to_old[new_cluster as usize] != Some(old_cluster) {
                moved += 1;
            }
        }
    };
    for (id, cluster) in new.app_entries() {
        visit(old.cluster_of(id), cluster);
    }
    Difference {
        added: new.app_count() - common,
        removed: old.app_count() - common,
        moved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(serial: u32, apps: &[(&str, &str)]) -> Snapshot {
        let entries: Vec<String> = apps
            .iter()
            .map(|(app, cluster)| format!("{app:?}: {cluster:?}"))
            .collect();
        let json = format!(
            r#"{{"serial": {serial}, "apps": {{{}}}}}"#,
            entries.join(",")
        );
        Snapshot::from_json(json.as_bytes(), &crate::testing::zone()).unwrap()
    }

    #[test]
    fn serial_arithmetic() {
        assert!(serial_is_newer(2, 1));
        assert!(!serial_is_newer(1, 1));
        assert!(!serial_is_newer(5, 2026112601));
        // Wrapping: 0 follows u32::MAX.
        assert!(serial_is_newer(0, u32::MAX));
        assert!(serial_is_newer(10, u32::MAX - 10));
        assert!(serial_is_newer((1 << 31) - 1, 0));
        // Exactly half way round: undefined, so not newer, in either direction.
        assert!(!serial_is_newer(1 << 31, 0));
        assert!(!serial_is_newer(0, 1 << 31));
    }

    #[test]
    fn differences_count_apps_by_id_and_cluster_name() {
        let old = snapshot(1, &[("1", "a"), ("2", "b"), ("x", "a"), ("y", "b")]);
        // Cluster indexes differ ("b" first here); "2" and "y" stay on b.
        let new = snapshot(
            2,
            &[("2", "b"), ("1", "c"), ("X", "a"), ("3", "a"), ("y", "b")],
        );
        assert_eq!(
            compare(&old, &new),
            Difference {
                added: 1,
                removed: 0,
                moved: 1
            }
        );
        assert_eq!(
            compare(&new, &old),
            Difference {
                added: 0,
                removed: 1,
                moved: 1
            }
        );
        assert!(compare(&old, &old).is_empty());
    }

    #[test]
    fn each_rule_refuses_and_force_overrides_all_but_clusters() {
        let rules = Rules::default();
        let apps: Vec<(String, &str)> = (0..100).map(|i| (i.to_string(), "a")).collect();
        let refs = |n: usize| -> Vec<(&str, &str)> {
            apps[..n].iter().map(|(id, c)| (id.as_str(), *c)).collect()
        };
        let live = snapshot(10, &refs(100));
        let check = |new: &Snapshot, force| check_successor(&live, new, &rules, force);

        // Unchanged: the same serial and content is fine, a different content is not.
        assert_eq!(
            check(&snapshot(10, &refs(100)), false),
            Ok(Difference::default())
        );
        let same_serial = snapshot(10, &refs(95));
        assert_eq!(
            check(&same_serial, false),
            Err(Refusal::Serial { live: 10, new: 10 })
        );
        let rollback = snapshot(9, &refs(100));
        assert_eq!(
            check(&rollback, false),
            Err(Refusal::Serial { live: 10, new: 9 })
        );
        assert!(check(&rollback, true).is_ok());

        // Shrink: 10% may go, 11% may not.
        assert!(check(&snapshot(11, &refs(90)), false).is_ok());
        let shrunk = snapshot(11, &refs(89));
        assert_eq!(
            check(&shrunk, false),
            Err(Refusal::Shrink {
                removed: 11,
                live_apps: 100,
                max_percent: 10
            })
        );
        assert!(check(&shrunk, true).is_ok());

        let empty = snapshot(11, &[]);
        assert_eq!(check(&empty, false), Err(Refusal::Empty { live_apps: 100 }));
        assert!(check(&empty, true).is_ok());

        let listed = Rules {
            clusters: Some(vec!["a".into(), "b".into()]),
            ..Rules::default()
        };
        let typo = snapshot(11, &[("1", "a"), ("7", "B"), ("42", "bb")]);
        let refusal = Refusal::Cluster {
            cluster: "bb".into(),
            app: "42".into(),
        };
        assert!(!refusal.forcible());
        for force in [false, true] {
            assert_eq!(
                check_successor(&live, &typo, &listed, force),
                Err(refusal.clone())
            );
        }
        assert_eq!(check_clusters(&typo, &listed), Err(refusal));
        assert_eq!(check_clusters(&live, &listed), Ok(()));
    }

    #[test]
    fn names_match_indexes() {
        let serial = Refusal::Serial { live: 1, new: 1 };
        assert_eq!(Refusal::NAMES[serial.index()], "serial");
        let cluster = Refusal::Cluster {
            cluster: String::new(),
            app: String::new(),
        };
        assert_eq!(Refusal::NAMES[cluster.index()], "cluster");
        assert_eq!(Refusal::NAMES[Refusal::INVALID], "invalid");
    }
}
