//! Answers to a transfer request that fit one message: an IXFR over UDP (RFC 1995 §2),
//! answered on the worker, and the NOTAUTH answer to a request whose TSIG failed.

use super::ixfr::ixfr;
use super::message::Stream;
use super::{Auth, Gate, RequestKind, TransferRequest};
use crate::snapshot::Snapshot;
use crate::sys::unix_seconds;
use crate::tsig::{sign, sign_failure, Chain, Failure, Signing};
use crate::wire::{flags, Rcode, HEADER_LEN};

/// An IXFR over UDP (RFC 1995 §2), answered in `out` on the worker: the differences if they
/// fit one datagram of 512 bytes (TSIG included), else the current SOA alone, which sends
/// the client to TCP; the SOA alone too when it is current or older than the history.
pub fn answer_over_udp(
    request: &TransferRequest,
    snapshot: &Snapshot,
    gate: &Gate,
    out: &mut [u8],
) -> Option<usize> {
    /// Kept free for a TSIG record, when the request was signed.
    const TSIG_ROOM: usize = 160;
    let tsig_room = match &request.auth {
        Auth::Failed { .. } => return tsig_error(request, out),
        Auth::Valid { .. } => TSIG_ROOM,
        Auth::Unsigned => 0,
    };
    let RequestKind::Ixfr { serial } = request.kind else {
        return None;
    };
    let room = out.len().min(512).saturating_sub(tsig_room);
    let deltas = gate.ixfr_path(serial, snapshot).unwrap_or_default();
    let mut len = None;
    if !deltas.is_empty() {
        let mut stream = ixfr(snapshot, &deltas);
        let first = stream.next_message(request.id, request.question(), &mut out[..room]);
        if stream
            .next_message(request.id, request.question(), &mut [0u8; 512][..room])
            .is_none()
        {
            len = first;
        }
    }
    let len = match len {
        Some(len) => len,
        None => {
            ixfr(snapshot, &[]).next_message(request.id, request.question(), &mut out[..room])?
        }
    };
    match &request.auth {
        Auth::Valid { key, key_name, mac } => {
            let time = u64::from(unix_seconds());
            let signing = Signing::new(key, key_name, Chain::Request(*mac), time);
            sign(out, len, &signing).map(|(len, _)| len)
        }
        _ => Some(len),
    }
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
    let question = request.question();
    let len = HEADER_LEN + question.len();
    let header = out.get_mut(..len)?;
    header[..2].copy_from_slice(&request.id.to_be_bytes());
    header[2..4].copy_from_slice(&(flags::QR | Rcode::NOTAUTH.header_bits()).to_be_bytes());
    header[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    header[HEADER_LEN..].copy_from_slice(question);
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
