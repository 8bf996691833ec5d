//! TSIG (RFC 8945): transaction signatures on DNS messages, between the wire format below
//! and the servers and clients above.
//!
//! - `record`: the TSIG record of a message read, in wire terms;
//! - `key`: keys, the HMACs (RustCrypto's) and the MACs they make;
//! - `sign`: a request's MAC verified, and a message signed ([`Signing`]) or its TSIG error
//!   answered;
//! - `chain`: the responses of a transfer checked one after another (RFC 8945 §5.3.1);
//! - `keyfile`: the key file (`--tsig-key-file`) in BIND's and Knot's `key` format.

mod chain;
mod key;
pub mod keyfile;
pub mod keygen;
mod record;
mod sign;
#[cfg(test)]
mod tests;

pub use chain::{ChainError, ResponseChain};
pub use key::{Algorithm, Key, Signature};
pub use record::{find, Malformed, Tsig};
pub use sign::{sign, sign_failure, sign_request, verify, Chain, Failure, Signing, Verdict};

/// TSIG errors (RFC 8945 §5.2), in the record's Error field.
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;
/// Class ANY, as a TSIG record has.
const CLASS_ANY: u16 = 255;
/// Longest MAC we make (HMAC-SHA512).
pub const MAX_MAC: usize = 64;
/// How long a signature of ours stays valid either side of its time (RFC 8945 §10).
pub const FUDGE: u16 = 300;
