//! Answers to a transfer request that fit one message: an IXFR over UDP (RFC 1995 §2),
//! answered on the worker, and the NOTAUTH answer to a request whose TSIG failed.

use super::ixfr::ixfr;
use super::message::Stream;
use super::{Auth, Gate, RequestKind, TransferRequest};
use crate::snapshot::Snapshot;
use crate::sys::unix_seconds;
use crate::tsig::{sign, sign_failure, Chain, Failure, Signing};
use crate::wire::{flags, Rcode, HEADER_LEN, PLAIN_UDP};

/// An IXFR over UDP (RFC 1995 §2), answered in `out` on the worker: the differences if they
/// fit one datagram of 512 bytes (TSIG included), else the current SOA alone, which sends
/// the client to TCP; the SOA alone too when it is current or older than the history. A
/// signed answer stays within the 512 bytes: when even the SOA leaves no room for the TSIG
/// (a long key name), the question alone goes, TC=1, signed.
pub fn answer_over_udp(
    request: &TransferRequest,
    snapshot: &Snapshot,
    gate: &Gate,
    out: &mut [u8],
) -> Option<usize> {
    let RequestKind::Ixfr { serial } = request.kind else {
        return None;
    };
    let signing = match &request.auth {
        Auth::Failed { .. } => return tsig_error(request, out),
        Auth::Valid { key, key_name, mac } => Some(Signing::new(
            key,
            key_name,
            Chain::Request(*mac),
            u64::from(unix_seconds()),
        )),
        Auth::Unsigned => None,
    };
    let limit = out.len().min(PLAIN_UDP);
    let out = &mut out[..limit];
    // The history in memory only: a worker does not read the journal (the SOA alone sends
    // the client to TCP, RFC 1995 §2).
    let deltas = gate
        .ixfr_path_in_memory(serial, snapshot)
        .unwrap_or_default();
    let mut scratch = [0u8; PLAIN_UDP];
    // The first of these that fits, signed when the request was: the differences, the SOA
    // alone, the question alone.
    (0..3).find_map(|attempt| {
        let len = match attempt {
            0 if deltas.is_empty() => None,
            0 => whole_message(ixfr(snapshot, &deltas), request, out, &mut scratch),
            1 => ixfr(snapshot, &[]).next_message(request.id, request.question(), out),
            _ => question_only(request, out, flags::AA | flags::TC),
        }?;
        match &signing {
            Some(signing) => sign(out, len, signing).map(|(len, _)| len),
            None => Some(len),
        }
    })
}

/// The transfer `stream` if it is one message that fits `out`: its length.
fn whole_message(
    mut stream: impl Stream,
    request: &TransferRequest,
    out: &mut [u8],
    scratch: &mut [u8],
) -> Option<usize> {
    let room = out.len();
    let first = stream.next_message(request.id, request.question(), out)?;
    let more = stream.next_message(request.id, request.question(), &mut scratch[..room]);
    more.is_none().then_some(first)
}

/// A response of the header and question of `request`, with QR and `bits` set; returns its
/// length.
fn question_only(request: &TransferRequest, out: &mut [u8], bits: u16) -> Option<usize> {
    let question = request.question();
    let len = HEADER_LEN + question.len();
    let header = out.get_mut(..len)?;
    header[..2].copy_from_slice(&request.id.to_be_bytes());
    header[2..4].copy_from_slice(&(flags::QR | bits).to_be_bytes());
    header[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    header[HEADER_LEN..].copy_from_slice(question);
    Some(len)
}

/// The NOTAUTH answer to a request whose TSIG failed (RFC 8945 §5.2): the question, and a
/// TSIG with the error, unsigned for BADKEY and BADSIG, signed for BADTIME.
pub fn tsig_error(request: &TransferRequest, out: &mut [u8]) -> Option<usize> {
    let Auth::Failed {
        error,
        key,
        key_name,
        algorithm,
        mac,
        time_signed,
    } = &request.auth
    else {
        return None;
    };
    let len = question_only(request, out, Rcode::NOTAUTH.header_bits())?;
    let failure = Failure {
        error: *error,
        key: key.as_ref(),
        key_name,
        algorithm,
        mac: *mac,
        time_signed: *time_signed,
    };
    sign_failure(out, len, &failure, u64::from(unix_seconds()))
}
