//! The zone as an RFC 1035 §5 master file, for peers (NSD, Knot) and for inspection.

use std::io::{self, Write};

use crate::snapshot::{expand_target, Snapshot, APEX_TTL};

fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Writes SOA, NS and one CNAME per app per service, apps sorted by ID.
pub fn write(snapshot: &Snapshot, out: &mut impl Write) -> io::Result<()> {
    let zone = &snapshot.zone;
    writeln!(out, "$ORIGIN {}", absolute(&zone.apex_text))?;
    writeln!(
        out,
        "@ {APEX_TTL} IN SOA {} {} {} {} {} {} {}",
        absolute(&zone.ns_text[0]),
        absolute(&zone.hostmaster_text),
        snapshot.serial,
        zone.soa_timers[0],
        zone.soa_timers[1],
        zone.soa_timers[2],
        zone.negative_ttl
    )?;
    for ns in &zone.ns_text {
        writeln!(out, "@ {APEX_TTL} IN NS {}", absolute(ns))?;
    }
    let services: Vec<&str> = zone
        .services
        .iter()
        .map(|s| std::str::from_utf8(s).unwrap_or_default())
        .collect();
    for (app, cluster) in snapshot.apps() {
        for service in &services {
            let target = expand_target(&zone.target_template, service, cluster);
            writeln!(
                out,
                "{service}-{app} {} IN CNAME {}",
                zone.cname_ttl,
                absolute(&target)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_file() {
        let zone = crate::testing::zone();
        let snapshot =
            Snapshot::from_json(br#"{"serial": 5, "apps": {"9": "b", "10": "A"}}"#, &zone).unwrap();
        let mut out = Vec::new();
        write(&snapshot, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "$ORIGIN apps.example.com.");
        assert_eq!(
            lines[1],
            "@ 3600 IN SOA ns1.example.com. hostmaster.apps.example.com. 5 3600 600 604800 60"
        );
        assert_eq!(lines[2], "@ 3600 IN NS ns1.example.com.");
        assert_eq!(lines[3], "ws-10 300 IN CNAME ws-a.example.com.");
        assert_eq!(lines.len(), 3 + 2 * 3);
        assert_eq!(lines[8], "api-9 300 IN CNAME api-b.example.com.");
    }
}
