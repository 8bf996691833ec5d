//! Messages of a zone transfer being filled: the header and question, then records whose
//! names are compressed against the apex, the first record's owner that writes it whole.
//! Shared by AXFR and IXFR.

use crate::snapshot::AppKey;
use crate::wire::record::{field, RR_FIXED};
use crate::wire::{flags, skip_name, HEADER_LEN, MAX_LABEL};

/// Largest message built. Below the 65,535 of TCP so that a TSIG record always fits after
/// the records (RFC 8945 signs every message of a transfer).
pub const MAX_MESSAGE: usize = 65_535 - 512;
/// Offsets a compression pointer can reach (14 bits).
pub(super) const MAX_POINTER: usize = 0x3FFF;
/// `{service}-{app}` at its longest: one label.
pub(super) const MAX_OWNER_LABEL: usize = 1 + MAX_LABEL;

/// A CNAME target that ends with a suffix of the apex (`ws-mt1.example.com.` under
/// `apps.example.com.`): its first `keep` bytes are written, the rest is a pointer to the
/// apex name `skip` bytes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Suffix {
    keep: usize,
    skip: usize,
}

/// Where `target` (a name in wire form) shares its longest suffix, of at least one label,
/// with `apex` (both lower case).
pub(super) fn shared_suffix(target: &[u8], apex: &[u8]) -> Option<Suffix> {
    let boundaries = |name: &[u8]| {
        let mut at = 0;
        let mut starts = Vec::new();
        while let Some(&len) = name.get(at) {
            if len == 0 {
                break;
            }
            starts.push(at);
            at += 1 + len as usize;
        }
        starts
    };
    let apex_starts = boundaries(apex);
    boundaries(target).into_iter().find_map(|keep| {
        apex_starts
            .iter()
            .find(|&&skip| apex[skip..] == target[keep..])
            .map(|&skip| Suffix { keep, skip })
    })
}

/// For each CNAME record (TYPE to RDATA) of `records`, where its target can point into the
/// apex (see [`shared_suffix`]).
pub(super) fn target_suffixes<'r>(
    records: impl Iterator<Item = Option<&'r [u8]>>,
    apex: &[u8],
) -> Vec<Option<Suffix>> {
    records
        .map(|record| shared_suffix(record?.get(RR_FIXED..)?, apex))
        .collect()
}

/// A zone transfer's messages, made one at a time.
pub trait Stream {
    /// Writes the next message into `out` (at least `MAX_MESSAGE` bytes): header with `id`,
    /// the `question` as received, as many records as fit. `None` once all are sent.
    fn next_message(&mut self, id: u16, question: &[u8], out: &mut [u8]) -> Option<usize>;

    /// Records written so far.
    fn records(&self) -> u64;
}

/// `{service}-{app}` as a length-prefixed label, in `buf`.
pub(super) fn owner_label<'b>(
    service: &[u8],
    app: AppKey<'_>,
    buf: &'b mut [u8; MAX_OWNER_LABEL],
) -> &'b [u8] {
    let mut len = 1;
    let mut put = |bytes: &[u8]| {
        let end = (len + bytes.len()).min(buf.len());
        buf[len..end].copy_from_slice(&bytes[..end - len]);
        len = end;
    };
    put(service);
    put(b"-");
    match app {
        AppKey::Named(id) => put(id),
        AppKey::Numeric(mut n) => {
            let mut digits = [0u8; 20];
            let mut at = digits.len();
            loop {
                at -= 1;
                digits[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            put(&digits[at..]);
        }
    }
    buf[0] = (len - 1) as u8;
    &buf[..len]
}

/// A message being filled.
pub(super) struct Message<'o, 'z> {
    out: &'o mut [u8],
    len: usize,
    pub(super) count: u16,
    /// The zone's apex in wire form.
    apex: &'z [u8],
    /// Where the apex name was written in this message, for pointers.
    apex_at: Option<usize>,
}

impl<'o, 'z> Message<'o, 'z> {
    /// A message in `out` (at most `MAX_MESSAGE` of it used): the header with `id` and the
    /// flags of an authoritative answer, then `question` (QNAME, QTYPE, QCLASS as received).
    /// `apex` is the zone's apex in wire form, lower case.
    pub(super) fn start(
        out: &'o mut [u8],
        id: u16,
        question: &[u8],
        apex: &'z [u8],
    ) -> Option<Self> {
        let limit = out.len().min(MAX_MESSAGE);
        let mut message = Message {
            out: &mut out[..limit],
            len: HEADER_LEN,
            count: 0,
            apex,
            apex_at: None,
        };
        let header = message.out.get_mut(..HEADER_LEN)?;
        header[..2].copy_from_slice(&id.to_be_bytes());
        header[2..4].copy_from_slice(&(flags::QR | flags::AA).to_be_bytes());
        header[4..6].copy_from_slice(&1u16.to_be_bytes());
        header[6..12].fill(0);
        message.push(&[question]).then_some(message)
    }

    /// Writes the record count; returns the length, `None` if no record fitted.
    pub(super) fn finish(self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        self.out[6..8].copy_from_slice(&self.count.to_be_bytes());
        Some(self.len)
    }

    /// Appends `parts` if they fit whole.
    fn push(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if self.len + total > self.out.len() {
            return false;
        }
        for part in parts {
            self.out[self.len..self.len + part.len()].copy_from_slice(part);
            self.len += part.len();
        }
        true
    }

    /// A CNAME record (TYPE to RDATA) owned by `label`, its target compressed against the
    /// apex when it shares a suffix with it and the apex is in this message.
    pub(super) fn cname(&mut self, label: &[u8], record: &[u8], suffix: Option<Suffix>) -> bool {
        // Without the apex in this message yet, the record is written whole; later records
        // point at its apex.
        let target_at = self.apex_at.zip(suffix).map(|(at, s)| at + s.skip);
        let (Some(suffix), Some(target_at)) = (suffix, target_at) else {
            return self.owned_record(label, &[record]);
        };
        if target_at > MAX_POINTER {
            return self.owned_record(label, &[record]);
        }
        let (fixed, target) = record.split_at(RR_FIXED);
        let rdlength = (suffix.keep + 2) as u16;
        let pointer = (0xC000 | target_at as u16).to_be_bytes();
        let rdata: [&[u8]; 4] = [
            &fixed[..field::RDLENGTH.start],
            &rdlength.to_be_bytes(),
            &target[..suffix.keep],
            &pointer,
        ];
        self.owned_record(label, &rdata)
    }

    /// A record owned by the apex.
    pub(super) fn apex_record(&mut self, record: &[u8]) -> bool {
        self.owned_record(&[], &[record])
    }

    /// The apex SOA record (TYPE to RDATA), MNAME and RNAME pointing into the apex where
    /// they end with a part of it (`ns1.example.com.`, `hostmaster.apps.example.com.`).
    pub(super) fn soa(&mut self, record: &[u8]) -> bool {
        // The owner is the apex: written here now, or pointed to.
        let apex_at = self.apex_at.unwrap_or(self.len);
        let names = record.get(RR_FIXED..).and_then(|rdata| {
            let mname = skip_name(rdata, 0)?;
            let rname = skip_name(&rdata[mname..], 0)?;
            Some((
                &rdata[..mname],
                &rdata[mname..mname + rname],
                &rdata[mname + rname..],
            ))
        });
        let Some((mname, rname, tail)) = names else {
            return self.apex_record(record);
        };
        let compress = |name: &'_ [u8]| -> (usize, Option<[u8; 2]>) {
            match shared_suffix(name, self.apex) {
                Some(suffix) if apex_at + suffix.skip <= MAX_POINTER => (
                    suffix.keep,
                    Some((0xC000 | (apex_at + suffix.skip) as u16).to_be_bytes()),
                ),
                _ => (name.len(), None),
            }
        };
        let (m_keep, m_pointer) = compress(mname);
        let (r_keep, r_pointer) = compress(rname);
        let (m_pointer, r_pointer) = (m_pointer.unwrap_or_default(), r_pointer.unwrap_or_default());
        let m_pointer = &m_pointer[..if m_keep < mname.len() { 2 } else { 0 }];
        let r_pointer = &r_pointer[..if r_keep < rname.len() { 2 } else { 0 }];
        let rdlength = m_keep + m_pointer.len() + r_keep + r_pointer.len() + tail.len();
        let rdlength = (rdlength as u16).to_be_bytes();
        self.owned_record(
            &[],
            &[
                &record[..field::RDLENGTH.start],
                &rdlength,
                &mname[..m_keep],
                m_pointer,
                &rname[..r_keep],
                r_pointer,
                tail,
            ],
        )
    }

    /// A record (TYPE to RDATA, in up to seven parts) owned by `label` under the apex, or by
    /// the apex itself when `label` is empty: the apex is written whole the first time, then
    /// pointed to.
    fn owned_record(&mut self, label: &[u8], record: &[&[u8]]) -> bool {
        if self.count == u16::MAX {
            return false;
        }
        let pointer;
        let apex = self.apex;
        let name: &[u8] = match self.apex_at {
            Some(at) => {
                pointer = (0xC000 | at as u16).to_be_bytes();
                &pointer
            }
            None => apex,
        };
        let mut parts: [&[u8]; 9] = [label, name, &[], &[], &[], &[], &[], &[], &[]];
        for (slot, part) in parts[2..].iter_mut().zip(record) {
            *slot = part;
        }
        let apex_offset = self.len + label.len();
        if !self.push(&parts) {
            return false;
        }
        if self.apex_at.is_none() && apex_offset <= MAX_POINTER {
            self.apex_at = Some(apex_offset);
        }
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_suffixes() {
        let apex = b"\x04apps\x07example\x03com\x00";
        assert_eq!(
            shared_suffix(b"\x06ws-mt1\x07example\x03com\x00", apex),
            Some(Suffix { keep: 7, skip: 5 })
        );
        assert_eq!(
            shared_suffix(b"\x02ws\x04apps\x07example\x03com\x00", apex),
            Some(Suffix { keep: 3, skip: 0 })
        );
        assert_eq!(shared_suffix(b"\x02ws\x03net\x00", apex), None);
        assert_eq!(
            shared_suffix(b"\x02ws\x03com\x00", apex),
            Some(Suffix { keep: 3, skip: 13 })
        );
    }

    #[test]
    fn owner_labels() {
        let mut buf = [0u8; MAX_OWNER_LABEL];
        assert_eq!(
            owner_label(b"ws", AppKey::Numeric(0), &mut buf),
            b"\x04ws-0"
        );
        assert_eq!(
            owner_label(
                b"api",
                AppKey::Numeric(18_446_744_073_709_551_615),
                &mut buf
            ),
            b"\x18api-18446744073709551615"
        );
        assert_eq!(
            owner_label(b"ws", AppKey::Named(b"my-app"), &mut buf),
            b"\x09ws-my-app"
        );
    }
}
