//! The monitoring kit in `data/monitoring/` against live servers: every metric the Grafana
//! dashboard and the alerting rules name is one cnamed exposes, and the dashboard shows every
//! family cnamed exposes. (`promtool check rules` and `promtool test rules` run in
//! tests/monitoring.sh.)

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;

const SECRET: &str = "PNe84o+cKkIJkh9PXBBYvCPEPBJ6vOIysbX44qdczrQ=";

fn monitoring(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/monitoring")
        .join(file)
}

/// The families a scrape announces (its `# TYPE` lines), a histogram's by the names of its
/// series (`_bucket`, `_sum`, `_count`) too.
fn families(server: &mut Cnamed) -> BTreeSet<String> {
    let (status, body) = http_get(metrics_addr(server), "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    let mut names = BTreeSet::new();
    for rest in body.lines().filter_map(|line| line.strip_prefix("# TYPE ")) {
        let (name, kind) = rest.split_once(' ').unwrap();
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name.to_owned());
    }
    names
}

/// The family a series name belongs to: a histogram's series name its family.
fn family_of<'a>(name: &'a str, exposed: &BTreeSet<String>) -> &'a str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|stem| exposed.contains(*stem))
        .unwrap_or(name)
}

/// The metric names in a PromQL expression: its identifiers outside quoted strings that
/// start as cnamed's and the process family's do, or Prometheus' own `up`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = expr.chars().peekable();
    let mut word = String::new();
    let mut quoted = None;
    while let Some(c) = chars.next() {
        if let Some(quote) = quoted {
            if c == '\\' {
                chars.next();
            } else if c == quote {
                quoted = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        names.push(std::mem::take(&mut word));
        if c == '"' || c == '\'' || c == '`' {
            quoted = Some(c);
        }
    }
    names.push(word);
    names.retain(|w| w.starts_with("cnamed_") || w.starts_with("process_") || w == "up");
    names
}

/// Every string under an `expr`, `query` or `definition` key of the dashboard's JSON.
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query" | "definition", serde_json::Value::String(text)) => {
                        out.push(text.clone())
                    }
                    _ => dashboard_queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_and_alerts_name_only_metrics_cnamed_exposes() {
    // A primary with every optional family (UPDATE and its journal, a --notify target,
    // dnstap) and a secondary of it (the secondary's families).
    let keys = temp_dump(
        "monitoring-keys",
        &format!("key \"upd\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};"),
    );
    let json = r#"{"serial": 100, "apps": {"1": "eu", "2": "us"}}"#;
    let journal = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("monitoring-journal-{}", std::process::id()));
    let _ = std::fs::remove_file(&journal);
    let port = fixed_port();
    let target = format!("127.0.0.1:{port}");
    // A dnstap collector that is not there: the families are exposed all the same.
    let dnstap = journal.with_extension("dnstap.sock");
    let mut primary = Cnamed::start_dump(
        &temp_dump("monitoring-primary", json),
        &[
            "--tsig-key-file",
            keys.to_str().unwrap(),
            "--update-key",
            "upd",
            "--journal",
            journal.to_str().unwrap(),
            "--xfr-allow",
            "127.0.0.1",
            "--notify",
            &target,
            "--dnstap",
            dnstap.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let primary_addr = primary.addr.to_string();
    let mut secondary = Cnamed::start_dump(
        &temp_dump("monitoring-secondary", json),
        &[
            "--listen",
            &target,
            "--primary",
            &primary_addr,
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let mut exposed = families(&mut primary);
    exposed.extend(families(&mut secondary));
    let _ = std::fs::remove_file(&journal);
    assert!(exposed.contains("cnamed_journal_bytes"), "{exposed:?}");
    assert!(exposed.contains("cnamed_secondary_expired"), "{exposed:?}");
    assert!(
        exposed.contains("cnamed_notify_target_lag_seconds"),
        "{exposed:?}"
    );

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring("cnamed-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    // The rules: each `expr:` holds one expression on its line.
    let rules = std::fs::read_to_string(monitoring("cnamed-alerts.yml")).unwrap();
    let alerts = rules
        .lines()
        .filter(|l| l.trim().starts_with("- alert:"))
        .count();
    let rule_exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_owned)
        .collect();
    assert_eq!(rule_exprs.len(), alerts, "one single-line expr per alert");
    assert!(alerts >= 10, "{alerts} alerts");
    assert!(queries.len() >= 40, "{} dashboard queries", queries.len());

    let mut shown = BTreeSet::new();
    for (source, expr) in queries
        .iter()
        .map(|q| ("dashboard", q))
        .chain(rule_exprs.iter().map(|q| ("alerts", q)))
    {
        // Template queries like "prometheus" (the datasource type) name no metric.
        if expr == "prometheus" {
            continue;
        }
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{source}: {expr:?} names no metric");
        for name in names {
            assert!(
                name == "up" || exposed.contains(&name),
                "{source}: {name} in {expr:?} is not exposed"
            );
            if source == "dashboard" {
                shown.insert(family_of(&name, &exposed).to_owned());
            }
        }
    }
    let missing: Vec<&String> = exposed
        .iter()
        .filter(|name| family_of(name, &exposed) == name.as_str() && !shown.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "families not on the dashboard: {missing:?}"
    );
}

#[test]
fn metric_names_skip_labels_functions_and_strings() {
    assert_eq!(
        metric_names(
            r#"sum by (rcode) (rate(cnamed_responses_total{instance=~"cnamed_x"}[5m])) / up"#
        ),
        ["cnamed_responses_total", "up"]
    );
    assert_eq!(
        metric_names("process_open_fds / process_max_fds > 0.8"),
        ["process_open_fds", "process_max_fds"]
    );
}
