//! The fleet view's families: per `--notify` target (a label set bounded by the configured
//! targets), the serial it was last seen serving, whether it is live at the serial served
//! here, and how far behind it is in serials and seconds.

use super::text::family;
use crate::xfr::outbound::fleet::Fleet;

pub(super) fn render(fleet: &Fleet, serial: u64, now_ms: u64, out: &mut String) {
    let view = fleet.view(serial as u32, now_ms);
    let label = |target: &std::net::SocketAddr| format!("{{target=\"{target}\"}}");
    let seen: Vec<_> = (view.iter())
        .filter_map(|t| {
            t.seen
                .map(|(serial, _)| (label(&t.target), serial.to_string()))
        })
        .collect();
    family(
        out,
        "cnamed_notify_target_serial",
        "gauge",
        "The SOA serial each --notify target last answered (absent before its first answer).",
        &seen,
    );
    let live: Vec<_> = (view.iter())
        .map(|t| (label(&t.target), u8::from(t.live).to_string()))
        .collect();
    family(
        out,
        "cnamed_notify_target_live",
        "gauge",
        "1 when the --notify target serves the serial served here, or a newer one.",
        &live,
    );
    let lag_serials: Vec<_> = (view.iter())
        .filter_map(|t| t.lag_serials.map(|lag| (label(&t.target), lag.to_string())))
        .collect();
    family(
        out,
        "cnamed_notify_target_lag_serials",
        "gauge",
        "Serials the --notify target is behind the one served here (absent before its first answer).",
        &lag_serials,
    );
    let lag_seconds: Vec<_> = (view.iter())
        .map(|t| (label(&t.target), format!("{:.3}", t.lag_seconds)))
        .collect();
    family(
        out,
        "cnamed_notify_target_lag_seconds",
        "gauge",
        "Seconds since the first serial the --notify target lacks was served here (0 when live).",
        &lag_seconds,
    );
}
