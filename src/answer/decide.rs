//! The rules: what a well-formed question gets, from the snapshot alone (RFC 1034 §4.3.2 for
//! the zone, RFC 2308 for negative answers, RFC 4892 for CHAOS). Pure and total: no I/O, no
//! allocation, and every question has exactly one [`Outcome`].
//!
//! Names are matched in whatever case they came (RFC 4343): nothing is copied or folded
//! except a named app's label, on the stack.

use crate::snapshot::Snapshot;
use crate::wire::{Class, Question, Rcode, Rtype};

/// What a well-formed query gets.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome<'s> {
    /// An error or refusal: the question and OPT only.
    Bare(Rcode),
    /// Authoritative data: answer records (complete, owners included, pointing at the
    /// question) and an optional negative SOA owned by the apex at `apex_at` in the qname.
    Authoritative {
        rcode: Rcode,
        answer: Answer<'s>,
        negative_soa: Option<usize>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer<'s> {
    None,
    /// One record owned by the question name, given without its owner.
    OwnedByQname(&'s [u8]),
    /// Complete records with their owners, and how many.
    Records(&'s [u8], u16),
}

/// Where a name sits relative to the zone apex.
#[derive(Debug, PartialEq, Eq)]
enum Position<'n> {
    Outside,
    Apex,
    /// One label below the apex: an instance name `{service}-{app}`, if it exists.
    Child(&'n [u8]),
    /// Two or more labels below the apex: never exists here.
    Deeper,
}

/// Where the wire name `name`, in any case, sits relative to the lower-case apex. Length
/// bytes (at most 63) are never letters, so a case-insensitive compare of wire forms is
/// exact (RFC 4343).
fn locate<'n>(name: &'n [u8], apex: &[u8]) -> Position<'n> {
    let Some(suffix_at) = name.len().checked_sub(apex.len()) else {
        return Position::Outside;
    };
    if !name[suffix_at..].eq_ignore_ascii_case(apex) {
        return Position::Outside;
    }
    // The suffix must start on a label boundary: "xapps.example.com" is not in the zone.
    let mut at = 0;
    let mut labels_above = 0;
    while at < suffix_at {
        at += 1 + usize::from(name[at]);
        labels_above += 1;
    }
    match (at == suffix_at, labels_above) {
        (false, _) => Position::Outside,
        (true, 0) => Position::Apex,
        (true, 1) => Position::Child(&name[1..suffix_at]),
        (true, _) => Position::Deeper,
    }
}

/// The outcome of `question` against `snapshot`.
pub(super) fn decide<'s>(question: &Question<'_>, snapshot: &'s Snapshot) -> Outcome<'s> {
    if question.qtype.is_unsupported_meta() {
        return Outcome::Bare(Rcode::NOTIMP);
    }
    let name = question.name;
    match question.qclass {
        Class::IN => decide_in(question.qtype, name, snapshot),
        Class::CH => decide_chaos(question.qtype, name, snapshot),
        _ => Outcome::Bare(Rcode::REFUSED),
    }
}

fn decide_in<'s>(qtype: Rtype, name: &[u8], snapshot: &'s Snapshot) -> Outcome<'s> {
    let zone = &snapshot.zone;
    let position = locate(name, &zone.apex);
    if position == Position::Outside || qtype.is_transfer() {
        return Outcome::Bare(Rcode::REFUSED);
    }
    let apex_at = name.len() - zone.apex.len();
    let nxdomain = Outcome::Authoritative {
        rcode: Rcode::NXDOMAIN,
        answer: Answer::None,
        negative_soa: Some(apex_at),
    };
    match position {
        Position::Apex => {
            let answer = match qtype {
                // RFC 8482 §4.2: answer ANY with one RRset of our choosing.
                Rtype::SOA | Rtype::ANY => Answer::OwnedByQname(snapshot.soa_answer()),
                Rtype::NS => Answer::Records(&zone.ns_records, zone.ns_count),
                _ => Answer::None,
            };
            let negative_soa = matches!(answer, Answer::None).then_some(apex_at);
            Outcome::Authoritative {
                rcode: Rcode::NOERROR,
                answer,
                negative_soa,
            }
        }
        Position::Child(label) => match snapshot.cname(label) {
            Some(cname) => Outcome::Authoritative {
                rcode: Rcode::NOERROR,
                answer: Answer::OwnedByQname(cname),
                negative_soa: None,
            },
            None => nxdomain,
        },
        Position::Deeper | Position::Outside => nxdomain,
    }
}

/// CHAOS names that identify the server (RFC 4892), in lower-case wire form.
const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";
const VERSION_SERVER: &[u8] = b"\x07version\x06server\x00";
const VERSION_BIND: &[u8] = b"\x07version\x04bind\x00";

fn decide_chaos<'s>(qtype: Rtype, name: &[u8], snapshot: &'s Snapshot) -> Outcome<'s> {
    let zone = &snapshot.zone;
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    let record = if is(ID_SERVER) || is(HOSTNAME_BIND) {
        &zone.identity_txt
    } else if is(VERSION_SERVER) || is(VERSION_BIND) {
        // A hidden version is refused, as for any name we do not serve.
        match &zone.version_txt {
            Some(record) => record,
            None => return Outcome::Bare(Rcode::REFUSED),
        }
    } else {
        return Outcome::Bare(Rcode::REFUSED);
    };
    let answer = match qtype {
        Rtype::TXT | Rtype::ANY => Answer::Records(record, 1),
        _ if qtype.is_transfer() => return Outcome::Bare(Rcode::REFUSED),
        _ => Answer::None,
    };
    Outcome::Authoritative {
        rcode: Rcode::NOERROR,
        answer,
        negative_soa: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const APEX: &[u8] = b"\x04apps\x07example\x03com\x00";

    #[test]
    fn positions() {
        let cases: &[(&[u8], Position<'_>)] = &[
            (APEX, Position::Apex),
            (
                b"\x09ws-123456\x04apps\x07example\x03com\x00",
                Position::Child(b"ws-123456"),
            ),
            (
                b"\x01x\x02ws\x04apps\x07example\x03com\x00",
                Position::Deeper,
            ),
            (b"\x05xapps\x07example\x03com\x00", Position::Outside),
            (b"\x07example\x03com\x00", Position::Outside),
            (b"\x00", Position::Outside),
            // The apex bytes appear, but not on a label boundary.
            (b"\x06a\x04apps\x07example\x03com\x00", Position::Outside),
        ];
        for (name, expected) in cases {
            assert_eq!(locate(name, APEX), *expected, "{name:?}");
        }
    }

    /// Every rule, one row each: the question, and the outcome it must get.
    #[test]
    fn rules() {
        let config = Config {
            version_string: Some("none".into()),
            ..Config::default()
        };
        let json = br#"{"serial": 1, "apps": {"123456": "mt1", "my-app": "eu"}}"#;
        let snapshot = Snapshot::from_json(json, &config.zone().unwrap()).unwrap();
        let zone = &snapshot.zone;
        let cname = |label: &[u8]| Answer::OwnedByQname(snapshot.cname(label).unwrap());
        let soa = Answer::OwnedByQname(snapshot.soa_answer());
        let ns = Answer::Records(&zone.ns_records, zone.ns_count);
        let id = Answer::Records(&zone.identity_txt, 1);
        let authoritative = |rcode, answer, negative_soa| Outcome::Authoritative {
            rcode,
            answer,
            negative_soa,
        };
        use Rcode as R;
        const A: u16 = 1;
        const NS: u16 = 2;
        const SOA: u16 = 6;
        const TXT: u16 = 16;
        const ANY: u16 = 255;
        const IN: u16 = 1;
        const CH: u16 = 3;
        #[rustfmt::skip]
        let rows: Vec<(&[u8], u16, u16, Outcome<'_>)> = vec![
            // A known app under a listed service, any case, any type but transfers.
            (b"\x09ws-123456\x04apps\x07example\x03com\x00", A, IN, authoritative(R::NOERROR, cname(b"ws-123456"), None)),
            (b"\x0dSOCKJS-My-App\x04APPS\x07example\x03com\x00", TXT, IN, authoritative(R::NOERROR, cname(b"sockjs-my-app"), None)),
            // The apex: SOA, NS, ANY (the SOA only), anything else NODATA with the SOA.
            (APEX, SOA, IN, authoritative(R::NOERROR, soa, None)),
            (APEX, NS, IN, authoritative(R::NOERROR, ns, None)),
            (APEX, ANY, IN, authoritative(R::NOERROR, Answer::OwnedByQname(snapshot.soa_answer()), None)),
            (APEX, A, IN, authoritative(R::NOERROR, Answer::None, Some(0))),
            // Other names in the zone: NXDOMAIN with the SOA, whose owner is the apex suffix.
            (b"\x06ws-999\x04apps\x07example\x03com\x00", A, IN, authoritative(R::NXDOMAIN, Answer::None, Some(7))),
            (b"\x0aftp-123456\x04apps\x07example\x03com\x00", A, IN, authoritative(R::NXDOMAIN, Answer::None, Some(11))),
            (b"\x01x\x09ws-123456\x04apps\x07example\x03com\x00", A, IN, authoritative(R::NXDOMAIN, Answer::None, Some(12))),
            // Outside the zone, zone transfers, other classes: REFUSED.
            (b"\x07example\x03org\x00", A, IN, Outcome::Bare(R::REFUSED)),
            (APEX, 252, IN, Outcome::Bare(R::REFUSED)),
            (b"\x09ws-123456\x04apps\x07example\x03com\x00", 251, IN, Outcome::Bare(R::REFUSED)),
            (APEX, SOA, 4, Outcome::Bare(R::REFUSED)),
            // Meta types: NOTIMP.
            (APEX, 0, IN, Outcome::Bare(R::NOTIMP)),
            (APEX, 41, IN, Outcome::Bare(R::NOTIMP)),
            (APEX, 250, IN, Outcome::Bare(R::NOTIMP)),
            (APEX, 254, IN, Outcome::Bare(R::NOTIMP)),
            // CHAOS: the identity, NODATA for other types, a hidden version and other names
            // refused.
            (b"\x02ID\x06server\x00", TXT, CH, authoritative(R::NOERROR, id, None)),
            (b"\x08hostname\x04bind\x00", A, CH, authoritative(R::NOERROR, Answer::None, None)),
            (b"\x07version\x04bind\x00", TXT, CH, Outcome::Bare(R::REFUSED)),
            (b"\x02id\x06server\x00", 252, CH, Outcome::Bare(R::REFUSED)),
            (b"\x03foo\x00", TXT, CH, Outcome::Bare(R::REFUSED)),
        ];
        for (name, qtype, qclass, expected) in rows {
            let raw = [name, &qtype.to_be_bytes(), &qclass.to_be_bytes()].concat();
            let question = Question {
                raw: &raw,
                name,
                qtype: Rtype(qtype),
                qclass: Class(qclass),
            };
            assert_eq!(
                decide(&question, &snapshot),
                expected,
                "{name:?} {qtype} {qclass}"
            );
        }
    }
}
