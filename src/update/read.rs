//! Reading an UPDATE's records without allocating per record: app IDs on the stack, CNAME
//! targets read into scratch buffers, cluster names interned per message.

use super::{refused, Refused};
use crate::snapshot::CnameShape;
use crate::wire::name::wire_to_text;
use crate::wire::update::{UpdateMessage, UpdateRecord};
use crate::wire::{Rcode, MAX_LABEL, MAX_NAME};

/// An app ID in lower case, on the stack: reading a record's owner allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct AppId {
    len: u8,
    /// Zero past `len`, so that equal IDs are equal arrays.
    bytes: [u8; MAX_LABEL],
}

impl AppId {
    /// `app` (at most a label, as the shape checked) in lower case.
    pub(super) fn lower_case(app: &str) -> Self {
        let mut bytes = [0u8; MAX_LABEL];
        let len = app.len().min(MAX_LABEL);
        bytes[..len].copy_from_slice(&app.as_bytes()[..len]);
        bytes.make_ascii_lowercase();
        Self {
            len: len as u8,
            bytes,
        }
    }

    pub(super) fn as_str(&self) -> &str {
        // ASCII: the shape checked it (a hostname label).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cluster the target of the CNAME `record` (of `service`) names, read with `scratch`.
pub(super) fn target_cluster<'s>(
    message: &UpdateMessage<'_>,
    record: &UpdateRecord,
    shape: &CnameShape<'_>,
    service: usize,
    scratch: &'s mut ([u8; MAX_NAME], [u8; MAX_NAME]),
) -> Result<&'s str, Refused> {
    let name = || wire_to_text(&record.owner);
    let (name_scratch, text_scratch) = scratch;
    let target = message
        .rdata_name_in(record, name_scratch)
        .ok_or_else(|| refused(Rcode::FORMERR, format!("a bad CNAME target at {}", name())))?;
    shape
        .cluster_in(service, target, text_scratch)
        .map_err(|why| refused(Rcode::REFUSED, format!("{}: {why}", name())))
}

/// The index of `name` in `names`, added if new (an UPDATE names a few clusters).
pub(super) fn intern(names: &mut Vec<Box<str>>, name: &str) -> usize {
    match names.iter().position(|known| **known == *name) {
        Some(at) => at,
        None => {
            names.push(name.into());
            names.len() - 1
        }
    }
}
