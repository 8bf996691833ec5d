//! Why a transfer in failed: what a primary sent that cannot be taken ([`ReadError`]), and
//! what each primary asked gave ([`TransferError`]).

use std::fmt;

/// Why what a primary sent cannot be taken: the record or the message, and what is wrong
/// with it, as the operator reads it in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError(pub String);

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

impl From<String> for ReadError {
    fn from(why: String) -> Self {
        Self(why)
    }
}

impl From<&str> for ReadError {
    fn from(why: &str) -> Self {
        Self(why.to_owned())
    }
}

/// Why no primary gave the zone: what went wrong with each, in the order they were asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferError(pub Vec<String>);

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for TransferError {}
