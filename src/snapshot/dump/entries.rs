//! The entries of a dump's `"apps"` object read straight from its bytes, one part of them at
//! a time (a part is what one thread reads): `"ID": "CLUSTER"` pairs separated by commas,
//! with any JSON whitespace between tokens. A plain string (printable ASCII, no backslash)
//! is used where it lies; any other string token is decoded by serde_json, so every spelling
//! serde_json accepts is read as it reads it, and what it refuses is refused.
//!
//! A part's clusters are looked up among those already known; a new spelling is given a
//! provisional index ([`NEW_CLUSTER`] and its place in [`Part::new_clusters`]) and checked
//! afterwards, in order, by the one thread that interns clusters.

use fxhash::FxHashMap;

use super::layout::{predicted_entry, Layout};
use super::recent::RecentClusters;
use super::tokens::{
    first_bytes, quotes, read_id, short_name, short_number, skip_whitespace, string, App, Id,
    Token, TokenError,
};
use super::{app_id, OwnedAppId, OUT_OF_MEMORY};
use crate::snapshot::error::EntryError;
use crate::snapshot::strings::StringsBuilder;
use crate::snapshot::table::NumericBuilder;

/// Marks a provisional cluster index: the low bits index [`Part::new_clusters`].
pub(super) const NEW_CLUSTER: u32 = 1 << 31;

/// What one part of the apps read: its entries, collected for the tables, and where and
/// why it stopped.
#[derive(Default)]
pub(super) struct Part {
    pub(super) numeric: NumericBuilder,
    pub(super) named: StringsBuilder,
    /// Cluster spellings not known when the part was read, in order of first use.
    pub(super) new_clusters: Vec<NewCluster>,
}

impl Part {
    #[inline]
    fn add_numeric(&mut self, id: u64, cluster: u32) -> Result<(), EntryError> {
        (self.numeric)
            .push(id, cluster)
            .map_err(|_| OUT_OF_MEMORY.into())
    }

    /// Adds a string ID in any case (the table folds it).
    fn add_named(&mut self, id: &[u8], cluster: u32) -> Result<(), EntryError> {
        (self.named)
            .push(id, cluster)
            .map_err(|error| super::strings_error(error, self.named.len()))
    }
}

/// A cluster spelling met for the first time in a part.
pub(super) struct NewCluster {
    pub(super) spelling: Box<str>,
    /// The first app on it, as an error names it, and where that entry starts.
    pub(super) app: String,
    pub(super) at: usize,
}

/// Where reading a part stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The bytes ran out at the start of an entry, `at` (just after `{` or a comma; `first`
    /// when no comma came yet, so that `}` may close the object).
    Short { at: usize, first: bool },
    /// The object closed: `after` is the byte after its `}`.
    Closed { after: usize },
    /// Refused at byte `at` (the start of the entry refused, or of what is not JSON).
    Failed { at: usize, why: String },
}

/// Cluster spellings already checked, with their index.
#[derive(Default)]
pub(super) struct KnownClusters {
    index: FxHashMap<Box<[u8]>, u32>,
}

/// Spellings remembered (bounded: a dump that spells one cluster a million ways must not
/// grow the map without end; the others are checked again, part by part).
const MAX_KNOWN: usize = 4096;

impl KnownClusters {
    pub(super) fn insert(&mut self, spelling: &str, index: u32) {
        if self.index.len() < MAX_KNOWN {
            self.index.insert(spelling.as_bytes().into(), index);
        }
    }

    fn get(&self, spelling: &[u8]) -> Option<u32> {
        self.index.get(spelling).copied()
    }
}

/// Reads the entries of `bytes` from `at`, an entry's start (`first`: no comma yet), into
/// `part`, until the bytes end, the object closes or an entry is refused. An entry is added
/// once the comma or brace after it is read, so that one cut short is read again whole.
pub(super) fn read_part(
    bytes: &[u8],
    mut at: usize,
    mut first: bool,
    known: &KnownClusters,
    max_app: usize,
    part: &mut Part,
) -> Stop {
    let mut recent = RecentClusters::default();
    // The shape of the last common numeric entry, which the next most likely has.
    let mut layout = None;
    loop {
        let predicted = layout.and_then(|l| predicted_entry(bytes, at, &l, &recent));
        if let Some((id, cluster, next)) = predicted {
            if part.add_numeric(id, cluster).is_ok() {
                at = next;
                first = false;
                continue;
            }
        }
        if let Some((next, shape)) = common_entry(bytes, at, max_app, &recent, part) {
            at = next;
            layout = shape;
            first = false;
            continue;
        }
        let start = at;
        let short = Stop::Short { at: start, first };
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            None => return short,
            Some(b'}') if first => return Stop::Closed { after: at + 1 },
            Some(b'"') => {}
            Some(_) if first => return failed(at, "expected an app ID or '}'"),
            Some(_) => return failed(at, "expected an app ID after ','"),
        }
        // Where the app's ID starts: what a refusal of the entry points at.
        let entry = at;
        let other = match read_id(bytes, &mut at, max_app) {
            Ok(Id::Valid(app)) => Ok(app),
            Ok(Id::Other(Token::Plain(id))) => {
                app_id(std::str::from_utf8(id).unwrap_or("\u{fffd}"), max_app).map(App::owned)
            }
            Ok(Id::Other(Token::Decoded(id))) => app_id(&id, max_app).map(App::owned),
            Err(TokenError::Short) => return short,
            Err(TokenError::Invalid(why)) => return failed(entry, &why),
        };
        let app = match other {
            Ok(app) => app,
            Err(why) => return failed(entry, &why.0),
        };
        if bytes.get(at..at + 3) == Some(b": \"") {
            at += 2;
        } else {
            at = skip_whitespace(bytes, at);
            match bytes.get(at) {
                None => return short,
                Some(b':') => at += 1,
                Some(_) => return failed(at, &format!("expected ':' after app {app}")),
            }
            at = skip_whitespace(bytes, at);
            match bytes.get(at) {
                None => return short,
                Some(b'"') => {}
                Some(_) => return failed(at, &format!("expected a cluster name for app {app}")),
            }
        }
        // The common cluster first: a short spelling met before, found by one word.
        let cluster = match recent.find(bytes, &mut at) {
            Some(index) => Ok(index),
            None => match string(bytes, &mut at) {
                Ok(cluster) => Err(cluster),
                Err(TokenError::Short) => return short,
                Err(TokenError::Invalid(why)) => return failed(entry, &why),
            },
        };
        at = skip_whitespace(bytes, at);
        let closed = match bytes.get(at) {
            None => return short,
            Some(b',') => false,
            Some(b'}') => true,
            Some(_) => {
                let why = format!("expected ',' or '}}' after the cluster of app {app}");
                return failed(at, &why);
            }
        };
        at += 1;
        let index = match &cluster {
            Ok(index) => *index,
            Err(Token::Plain(spelling)) => {
                let index = cluster_index(spelling, known, part, &app, entry);
                recent.insert(spelling, index);
                index
            }
            Err(Token::Decoded(spelling)) => {
                cluster_index(spelling.as_bytes(), known, part, &app, entry)
            }
        };
        let added = match app {
            App::Numeric(id) => part.add_numeric(id, index),
            App::Named(id) => part.add_named(id, index),
            App::Owned(app) => match *app {
                OwnedAppId::Numeric(id) => part.add_numeric(id, index),
                OwnedAppId::Named { bytes, len } => {
                    part.add_named(&bytes[..usize::from(len)], index)
                }
            },
        };
        if let Err(why) = added {
            return failed(entry, &why.0);
        }
        if closed {
            return Stop::Closed { after: at };
        }
        first = false;
    }
}

/// The entry most dumps are made of, read in one step: `"ID": "CLUSTER",` after any
/// whitespace, the ID a short number (see [`short_number`]) or name (see [`short_name`])
/// and the cluster a spelling of up to 6 bytes met before. Adds it to `part`; where the
/// next entry starts, and for a numeric ID the entry's [`Layout`] (the next entry's likely
/// one). Anything else is left to the general steps, nothing added (they say why one is
/// refused); what this step accepts, they accept with the same result.
#[inline(always)]
fn common_entry(
    bytes: &[u8],
    at: usize,
    max_app: usize,
    recent: &RecentClusters,
    part: &mut Part,
) -> Option<(usize, Option<Layout>)> {
    let quote = skip_whitespace(bytes, at);
    if bytes.get(quote) != Some(&b'"') {
        return None;
    }
    let start = quote + 1;
    if let Some((id, len)) = short_number(bytes, start).filter(|&(_, len)| len <= max_app) {
        let (cluster, next) = common_tail(bytes, start + len, recent)?;
        part.add_numeric(id, cluster).ok()?;
        return Some((next, Layout::of(bytes, at, quote, len, next)));
    }
    common_named(bytes, start, max_app, recent, part).map(|next| (next, None))
}

/// A [`common_entry`] with a named ID from its first byte, `start`. Not inlined: its
/// constants would take the registers the numeric step keeps its own in.
#[inline(never)]
fn common_named(
    bytes: &[u8],
    start: usize,
    max_app: usize,
    recent: &RecentClusters,
    part: &mut Part,
) -> Option<usize> {
    let len = short_name(bytes, start, max_app)?;
    let (cluster, next) = common_tail(bytes, start + len, recent)?;
    part.add_named(&bytes[start..start + len], cluster).ok()?;
    Some(next)
}

/// The rest of a [`common_entry`] from the ID's closing quote at `after_id`: the cluster's
/// index and where the next entry starts.
#[inline(always)]
fn common_tail(bytes: &[u8], after_id: usize, recent: &RecentClusters) -> Option<(u32, usize)> {
    // From the ID's closing quote: `": "`, then the cluster, its quote and a comma.
    let separator = u64::from_le_bytes(*bytes.get(after_id..)?.first_chunk::<8>()?);
    if separator & first_bytes(4) != u64::from_le_bytes(*b"\": \"\0\0\0\0") {
        return None;
    }
    let cluster = u64::from_le_bytes(*bytes.get(after_id + 4..)?.first_chunk::<8>()?);
    let cluster_len = (quotes(cluster).trailing_zeros() / 8) as usize;
    if cluster_len > 6 || (cluster >> (8 * (cluster_len + 1))) as u8 != b',' {
        return None;
    }
    let index = recent.get(RecentClusters::masked(cluster, cluster_len))?;
    Some((index, after_id + 4 + cluster_len + 2))
}

fn failed(at: usize, why: &str) -> Stop {
    Stop::Failed {
        at,
        why: why.to_owned(),
    }
}

/// The index of a cluster spelling: known, or provisional (see [`NEW_CLUSTER`]).
fn cluster_index(
    spelling: &[u8],
    known: &KnownClusters,
    part: &mut Part,
    app: &App,
    at: usize,
) -> u32 {
    if let Some(index) = known.get(spelling) {
        return index;
    }
    let new = &mut part.new_clusters;
    if let Some(place) = new.iter().position(|n| n.spelling.as_bytes() == spelling) {
        return NEW_CLUSTER | place as u32;
    }
    // A token is valid UTF-8: plain ones are ASCII, others were decoded.
    let spelling = String::from_utf8_lossy(spelling);
    new.push(NewCluster {
        spelling: spelling.into(),
        app: app.to_string(),
        at,
    });
    NEW_CLUSTER | (new.len() - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_APP: usize = 56;

    fn read(text: &str, first: bool) -> (Stop, Part) {
        let mut part = Part::default();
        let mut known = KnownClusters::default();
        known.insert("mt1", 0);
        let stop = read_part(text.as_bytes(), 0, first, &known, MAX_APP, &mut part);
        (stop, part)
    }

    #[test]
    fn entries_until_the_object_closes() {
        let (stop, part) = read("\n \"12\" :\t\"mt1\",\r\n\"ab\":\"mt2\" }, x", true);
        assert_eq!(stop, Stop::Closed { after: 29 });
        assert_eq!(part.numeric.len(), 1);
        assert_eq!(part.named.len(), 1);
        assert_eq!(part.new_clusters.len(), 1);
        assert_eq!(&*part.new_clusters[0].spelling, "mt2");
    }

    /// The one-step read of the common entry and the general steps around it: every entry
    /// read once, with its cluster, whichever reads it; near misses left to the steps.
    #[test]
    fn the_common_entry_and_its_near_misses() {
        let text = concat!(
            "\"7\": \"mt1\",\n\"8\": \"mt1\",\t\"9\": \"mt2\",\n\"10\": \"mt2\",",
            " \"011\": \"mt1\",\r\"12\" : \"mt1\",\n\"13\": \"mt1\" ,\"14\": \"cluster7\",",
            "\n\n\"15\": \"cluster7\",\"160000000000000\": \"mt2\",\"ab\": \"mt2\",",
            "\"1700000000000000\": \"mt1\",\"18\": \"mt1\",",
            // Named IDs: the one step, and its near misses.
            "\n\"Happy-Fox-1\": \"mt2\",\"happy-fox-2\" : \"mt1\",\"happy-fox-3\": \"cluster7\",",
            "\"0000000000000000000000000000019\": \"mt2\",\"happy-fox-4\": \"mt1\" ,",
            "\"happy-fox-is-a-long-name-of-32-b\": \"mt1\",\"20\": \"mt1\"}"
        );
        let (stop, mut part) = read(text, true);
        assert_eq!(stop, Stop::Closed { after: text.len() });
        let spellings: Vec<&str> = part.new_clusters.iter().map(|n| &*n.spelling).collect();
        assert_eq!(spellings, ["mt2", "cluster7"]);
        let (mt1, mt2, cluster7) = (0, NEW_CLUSTER, NEW_CLUSTER | 1);
        let named = std::mem::take(&mut part.named).build().unwrap();
        let expected_named = [
            ("011", mt1),
            ("ab", mt2),
            ("happy-fox-1", mt2),
            ("happy-fox-2", mt1),
            ("happy-fox-3", cluster7),
            ("0000000000000000000000000000019", mt2),
            ("happy-fox-4", mt1),
            ("happy-fox-is-a-long-name-of-32-b", mt1),
        ];
        assert_eq!(named.len(), expected_named.len());
        for (id, cluster) in expected_named {
            assert_eq!(named.get(id.as_bytes()), Some(cluster), "app {id}");
        }
        let table = std::mem::take(&mut part.numeric).build().unwrap();
        let expected = [
            (7, mt1),
            (8, mt1),
            (9, mt2),
            (10, mt2),
            (12, mt1),
            (13, mt1),
            (14, cluster7),
            (15, cluster7),
            (160_000_000_000_000, mt2),
            (1_700_000_000_000_000, mt1),
            (18, mt1),
            (20, mt1),
        ];
        assert_eq!(table.len(), expected.len());
        for (id, cluster) in expected {
            assert_eq!(table.get(id), Some(cluster), "app {id}");
        }
    }

    #[test]
    fn an_entry_cut_short_is_left_whole() {
        let text = "\"1\": \"mt1\", \"2\": \"mt1\"";
        for cut in 12..text.len() {
            let (stop, part) = read(&text[..cut], true);
            assert_eq!(
                stop,
                Stop::Short {
                    at: 11,
                    first: false
                },
                "cut at {cut}"
            );
            assert_eq!(part.numeric.len(), 1);
        }
        assert_eq!(read("", true).0, Stop::Short { at: 0, first: true });
        assert_eq!(
            read(" ", false).0,
            Stop::Short {
                at: 0,
                first: false
            }
        );
    }

    #[test]
    fn escapes_are_decoded_and_control_characters_refused() {
        let (stop, part) = read(r#""\u0061b": "m\u00741"}"#, true);
        assert!(matches!(stop, Stop::Closed { .. }), "{stop:?}");
        assert_eq!(part.named.len(), 1);
        assert!(part.new_clusters.is_empty(), "decoded to the known mt1");
        let (stop, _) = read("\"a\tb\": \"mt1\"}", true);
        assert!(
            matches!(stop, Stop::Failed { at: 0, ref why } if why.contains("control character")),
            "{stop:?}"
        );
        let (stop, _) = read(r#""a\"b": "mt1"}"#, true);
        assert!(
            matches!(stop, Stop::Failed { at: 0, ref why } if why.contains("contains '\"'")),
            "{stop:?}"
        );
    }

    #[test]
    fn refusals_say_where() {
        let cases = [
            (r#"}"#, false, 0, "expected an app ID after ','"),
            (r#"5: "mt1"}"#, true, 0, "expected an app ID or '}'"),
            (r#""1" "mt1"}"#, true, 4, "expected ':'"),
            (
                r#""1": 5}"#,
                true,
                5,
                "expected a cluster name for app \"1\"",
            ),
            (r#""1": "mt1" "2""#, true, 11, "expected ',' or '}'"),
            (
                r#""1": "mt1", "1 2": "mt1"}"#,
                true,
                12,
                "app \"1 2\" contains ' '",
            ),
        ];
        for (text, first, at, why) in cases {
            match read(text, first).0 {
                Stop::Failed { at: got, why: said } => {
                    assert_eq!(got, at, "{text}");
                    assert!(said.contains(why), "{text}: {said}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
