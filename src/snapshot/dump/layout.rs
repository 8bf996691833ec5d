//! The next entry read by the shape of the one before: an export writes its entries alike
//! (`\n"100000123": "mt1",`, the same whitespace, as many digits, a cluster of the same
//! length), so once one is read the next is looked for at fixed offsets. Its end is known
//! before its bytes are, and the processor can start on the entry after it while this one
//! is checked: the general steps find each end from the bytes, one entry after another.

use super::recent::RecentClusters;
use super::tokens::short_digits;

/// The shape of a common numeric entry (see `entries::common_entry`): where it starts (just
/// after the comma before it), at most one whitespace byte, then `"DIGITS": "CLUSTER",`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// The whitespace byte before the ID's quote, if one.
    gap: Option<u8>,
    /// 1 to 7 digits.
    id_len: usize,
    /// 1 to 6 bytes.
    cluster_len: usize,
}

/// The bytes an entry of any layout is read from: a whitespace byte and a quote, 7 digits,
/// `": "` and a word from the cluster on (21), rounded up.
const WINDOW: usize = 24;
/// `": "` as the bytes of a little-endian word.
const SEPARATOR: u32 = u32::from_le_bytes(*b"\": \"");
/// A cluster's closing quote and the comma after it.
const CLUSTER_END: u16 = u16::from_le_bytes(*b"\",");

impl Layout {
    /// The layout of a common numeric entry just read: from `at` (where it started), its
    /// ID's quote at `quote`, `id_len` digits, and `next` just after its comma. `None` when
    /// it has more than one whitespace byte before the ID or more than 7 digits.
    #[inline(always)]
    pub(super) fn of(
        bytes: &[u8],
        at: usize,
        quote: usize,
        id_len: usize,
        next: usize,
    ) -> Option<Self> {
        let gap = match quote - at {
            0 => None,
            1 => Some(bytes[at]),
            _ => return None,
        };
        let cluster_len = next - (quote + 1 + id_len + 4) - 2;
        (id_len <= 7).then_some(Self {
            gap,
            id_len,
            cluster_len,
        })
    }

    /// Bytes from an entry's start to the next's.
    #[inline(always)]
    fn len(&self) -> usize {
        usize::from(self.gap.is_some()) + 1 + self.id_len + 4 + self.cluster_len + 2
    }
}

/// Reads the entry at `at` when it has `layout` and a cluster met before: its ID, its
/// cluster's index and where the next entry starts. What it accepts, `common_entry` accepts
/// with the same result; anything else is left to it.
#[inline(always)]
pub(super) fn predicted_entry(
    bytes: &[u8],
    at: usize,
    layout: &Layout,
    recent: &RecentClusters,
) -> Option<(u64, u32, usize)> {
    let window = bytes.get(at..)?.first_chunk::<WINDOW>()?;
    // Offsets stay within the window for every layout (at most 21 bytes are read).
    let word = |from: usize| {
        window[from..]
            .first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w))
    };
    let quote = match layout.gap {
        None => 0,
        Some(gap) if window[0] == gap => 1,
        Some(_) => return None,
    };
    if window[quote] != b'"' {
        return None;
    }
    let id_at = quote + 1;
    // Digits only: no quote among them, so the ID ends where the separator starts.
    let id = short_digits(word(id_at), layout.id_len)?;
    let separator = id_at + layout.id_len;
    if word(separator) as u32 != SEPARATOR {
        return None;
    }
    // A spelling met before has no quote: the cluster ends at its length.
    let cluster = word(separator + 4);
    if (cluster >> (8 * layout.cluster_len)) as u16 != CLUSTER_END {
        return None;
    }
    let index = recent.get(RecentClusters::masked(cluster, layout.cluster_len))?;
    Some((id, index, at + layout.len()))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::snapshot::{DumpReader, Reading, Snapshot};

    /// The fast reader (one thread, one block) reads `apps` as serde_json's reader does.
    fn reads_as_the_general_reader(apps: &str) {
        let json = format!("{{\"serial\": 3, \"apps\": {{{apps}}}}}");
        let zone = Config::default().zone().unwrap();
        let general = Snapshot::from_json_read_by(json.as_bytes(), &zone, DumpReader::General);
        let reading = Reading {
            threads: 1,
            block: 1 << 20,
        };
        let fast = Snapshot::from_json_read_by(json.as_bytes(), &zone, DumpReader::Stream(reading));
        match (general, fast) {
            (Ok(general), Ok(fast)) => {
                let (mut want, mut got) = (general.apps(), fast.apps());
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(want, got, "{json}");
            }
            (Err(_), Err(_)) => {}
            (general, fast) => panic!("{json}: {:?} against {:?}", general.err(), fast.err()),
        }
    }

    /// A run of entries of one shape, then each way of leaving it, then the run again: the
    /// entry after the run is read by its predicted layout or handed on, never misread.
    #[test]
    fn runs_of_one_shape_and_every_way_to_leave_them() {
        let run = |from: u32| {
            (from..from + 6)
                .map(|id| format!("\"{id}\": \"mt{}\"", id % 3))
                .collect::<Vec<_>>()
                .join(",\n")
        };
        let leaving = [
            "\"1000000\": \"mt1\"",
            "\"0100001\": \"mt1\"",
            "\"100001\": \"mt9\"",
            "\"100002\": \"mt1\" ",
            "\"100003\" : \"mt1\"",
            "\"10000\\u0034\": \"mt1\"",
            "\"100005\": \"m\\u00741\"",
            "\"12345a\": \"mt1\"",
            "\"100007\": \"mt12\"",
            "\"100008\": \"mt\"",
            "\"1000\"9\": \"mt1\"",
            "\"100010\": \"mt1\"\"",
            "\"100011\":\"mt1\"",
            "\"100012\": \"mt1\\\"\"",
            "\"100013\": \"mt\"1\"",
        ];
        let separators = [",\n", ",", ", ", ",\r\n", ",\n\n", ",\t"];
        for (i, odd) in leaving.iter().enumerate() {
            for separator in separators {
                let apps = [run(100_000), odd.to_string(), run(200_000 + 10 * i as u32)];
                reads_as_the_general_reader(&apps.join(separator));
                // The odd one last, before the object closes.
                reads_as_the_general_reader(&[run(100_000), odd.to_string()].join(separator));
            }
        }
    }

    /// Every ID length and cluster length the layout holds, each in a run.
    #[test]
    fn every_layout_reads_its_run() {
        for digits in 1..=8u32 {
            for cluster in ["a", "mt", "mt1", "mt-1", "mt-12", "mt-123", "mt-1234"] {
                let first = 10u64.pow(digits - 1).max(1);
                let apps: Vec<String> = (first..first + 9)
                    .map(|id| format!("\"{id}\": \"{cluster}\""))
                    .collect();
                reads_as_the_general_reader(&apps.join(",\n"));
                reads_as_the_general_reader(&apps.join(","));
            }
        }
    }
}
