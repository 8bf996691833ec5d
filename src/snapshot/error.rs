//! The error every builder of a snapshot's tables returns.

use std::fmt;

/// An entry that cannot be served (an app, a cluster, a duplicate), or tables that cannot
/// be built from the entries: which, and why, as the operator reads it. In a dump, serde
/// adds the line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError(pub String);

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EntryError {}

impl From<String> for EntryError {
    fn from(why: String) -> Self {
        Self(why)
    }
}

impl From<&str> for EntryError {
    fn from(why: &str) -> Self {
        Self(why.to_owned())
    }
}
