//! The errors of building a snapshot: an entry that cannot be served, a dump not loaded.

use std::fmt;
use std::path::PathBuf;

use super::guard;

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

/// Why a dump was not loaded.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Larger than the operator allows (`--max-dump-size`), found before reading it.
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// Bad JSON or a bad entry; the message names the entry, line and column.
    Invalid {
        path: Option<PathBuf>,
        error: serde_json::Error,
    },
    /// Loaded, but against a rule every snapshot must keep (`--clusters`).
    Refused {
        path: PathBuf,
        refusal: guard::Refusal,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::TooLarge { path, size, max } => write!(
                f,
                "{} is {size} bytes, over --max-dump-size {max}",
                path.display()
            ),
            Self::Invalid {
                path: Some(path),
                error,
            } => write!(f, "{}: {error}", path.display()),
            Self::Invalid { path: None, error } => write!(f, "{error}"),
            Self::Refused { path, refusal } => write!(f, "{}: {refusal}", path.display()),
        }
    }
}

impl std::error::Error for LoadError {}
