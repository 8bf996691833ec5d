//! The clusters of a dump, interned as they are met, each with its CNAME records encoded
//! once.

use fxhash::FxHashMap;

use super::error::EntryError;
use super::zone::{expand_target, Zone};
use crate::wire::name::{check_label, fold_label, name_to_wire, Charset, MAX_LABEL};
use crate::wire::record::push_record_tail;
use crate::wire::{Class, Rtype};

/// Spellings of cluster names remembered as checked (bounded: a dump that spells one
/// cluster a million ways must not grow it without end).
const MAX_VERBATIM: usize = 4096;

/// Clusters seen so far, each with its CNAME records pre-encoded once.
pub(super) struct Clusters<'z> {
    zone: &'z Zone,
    index: FxHashMap<Box<str>, u32>,
    /// Cluster names exactly as written in the dump, already checked: the lookup most apps
    /// take, without checking and folding the name again.
    verbatim: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    cnames: Vec<Box<[u8]>>,
}

impl<'z> Clusters<'z> {
    /// Clusters of `zone`, starting from `names` with their CNAME records `cnames` (none for
    /// a dump; a snapshot's, for a difference applied to it).
    pub(super) fn new(zone: &'z Zone, names: Vec<Box<str>>, cnames: Vec<Box<[u8]>>) -> Self {
        Self {
            zone,
            index: (0u32..)
                .zip(&names)
                .map(|(index, name)| (name.clone(), index))
                .collect(),
            verbatim: FxHashMap::default(),
            names,
            cnames,
        }
    }

    /// The name of cluster `index`.
    pub(super) fn name(&self, index: u32) -> Option<&str> {
        self.names.get(index as usize).map(|name| &**name)
    }

    /// The names, by index, and their CNAME records.
    pub(super) fn into_parts(self) -> (Vec<Box<str>>, Vec<Box<[u8]>>) {
        (self.names, self.cnames)
    }

    pub(super) fn intern(&mut self, name: &str) -> Result<u32, EntryError> {
        // A name seen before exactly as written was checked then: most apps' clusters.
        if let Some(&index) = self.verbatim.get(name) {
            return Ok(index);
        }
        let index = self.intern_new(name)?;
        if self.verbatim.len() < MAX_VERBATIM {
            self.verbatim.insert(name.into(), index);
        }
        Ok(index)
    }

    fn intern_new(&mut self, name: &str) -> Result<u32, EntryError> {
        check_label(name, Charset::Hostname, MAX_LABEL).map_err(|why| why.to_string())?;
        // Folded on the stack: this runs once per app, and most clusters are already known.
        let mut scratch = [0u8; MAX_LABEL];
        let folded = fold_label(name.as_bytes(), &mut scratch).ok_or("is too long")?;
        let lower = std::str::from_utf8(folded).map_err(|_| "is not ASCII")?;
        if let Some(&index) = self.index.get(lower) {
            return Ok(index);
        }
        let lower = lower.to_owned();
        let index = u32::try_from(self.names.len()).map_err(|_| "is one cluster too many")?;
        for service in &self.zone.services {
            let service = std::str::from_utf8(service).unwrap_or_default();
            let target = expand_target(&self.zone.target_template, service, &lower);
            let wire = name_to_wire(&target).map_err(|why| format!("gives a bad target: {why}"))?;
            let mut record = Vec::new();
            push_record_tail(
                &mut record,
                Rtype::CNAME,
                Class::IN,
                self.zone.cname_ttl,
                &[&wire],
            );
            self.cnames.push(record.into_boxed_slice());
        }
        let lower: Box<str> = lower.into();
        self.index.insert(lower.clone(), index);
        self.names.push(lower);
        Ok(index)
    }
}
