//! Zone transfers in (the start of issue 13, cnamed as a secondary): reads the messages of an
//! AXFR from a primary and checks that the zone has cnamed's shape: the SOA and NS at the
//! apex, and for every app one CNAME `{service}-{app}.{zone}` per listed service, all to the
//! `--target` of one cluster. What it yields is the app → cluster mapping a dump holds; the
//! first record that does not fit is named in the error.

use fxhash::FxHashMap;

use crate::snapshot::Zone;
use crate::wire::name::{check_label, read_name, wire_to_text, Charset, MAX_NAME};
use crate::wire::record::{field, fixed_at, read_be16, RR_FIXED};
use crate::wire::{flags, read_u16, Rtype, HEADER_LEN};

/// An AXFR being read.
pub struct AxfrReader<'z> {
    zone: &'z Zone,
    /// Per listed service, the target text before and after the cluster name.
    targets: Vec<(String, String)>,
    serial: Option<u32>,
    soas: u32,
    /// App → (cluster, bit per service seen).
    apps: FxHashMap<Box<str>, (Box<str>, u64)>,
}

/// The zone a complete AXFR carried.
#[derive(Debug)]
pub struct Transferred {
    pub serial: u32,
    /// Every app with its cluster, in no set order.
    pub apps: Vec<(Box<str>, Box<str>)>,
}

impl<'z> AxfrReader<'z> {
    /// A reader for `zone`; its `--target` template must name `{cluster}` (else a target
    /// cannot say which cluster it is).
    pub fn new(zone: &'z Zone) -> Result<Self, String> {
        if zone.services.len() > 64 {
            return Err("more than 64 services".into());
        }
        let targets = zone
            .services
            .iter()
            .map(|service| {
                let service = String::from_utf8_lossy(service);
                let template = zone
                    .target_template
                    .replace("{service}", &service)
                    .to_ascii_lowercase();
                let template = template.trim_end_matches('.');
                match template.split_once("{cluster}") {
                    Some((before, after)) => Ok((before.to_owned(), after.to_owned())),
                    None => Err(format!(
                        "--target {:?} has no {{cluster}}",
                        zone.target_template
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            zone,
            targets,
            serial: None,
            soas: 0,
            apps: FxHashMap::default(),
        })
    }

    /// Reads one message of the transfer; `Ok(true)` once the closing SOA has been read.
    pub fn read_message(&mut self, message: &[u8]) -> Result<bool, String> {
        let word = |at| read_u16(message, at).ok_or("a message shorter than its header");
        let header_flags = word(2)?;
        let rcode = header_flags & flags::RCODE_MASK;
        if header_flags & flags::QR == 0 || rcode != 0 {
            return Err(format!("the primary answered with RCODE {rcode}"));
        }
        let (questions, answers) = (word(4)?, word(6)?);
        let mut name = [0u8; MAX_NAME];
        let mut at = HEADER_LEN;
        for _ in 0..questions {
            at = read_name(message, at, &mut name).ok_or("a bad question")?.1 + 4;
        }
        for _ in 0..answers {
            if self.soas == 2 {
                return Err("records after the closing SOA".into());
            }
            let (owner_len, after) = read_name(message, at, &mut name).ok_or("a bad owner name")?;
            let owner = &name[..owner_len];
            let fixed: &[u8; RR_FIXED] = fixed_at(message, after).ok_or("a record cut short")?;
            let rtype = Rtype(read_be16(fixed, field::TYPE));
            let rdlength = usize::from(read_be16(fixed, field::RDLENGTH));
            let rdata_at = after + RR_FIXED;
            if message.len() < rdata_at + rdlength {
                return Err("a record cut short".into());
            }
            let owner_text = wire_to_text(owner);
            let misfit = |why: &str| format!("record {owner_text} type {}: {why}", rtype.0);
            let at_apex = owner == &self.zone.apex[..];
            match rtype {
                Rtype::SOA if at_apex => {
                    let serial_at = (rdata_at + rdlength)
                        .checked_sub(20)
                        .ok_or_else(|| misfit("SOA too short"))?;
                    let serial = u32::from_be_bytes(
                        message[serial_at..serial_at + 4]
                            .try_into()
                            .map_err(|_| misfit("SOA too short"))?,
                    );
                    if *self.serial.get_or_insert(serial) != serial {
                        return Err(misfit("the closing SOA has another serial"));
                    }
                    self.soas += 1;
                }
                Rtype::NS if at_apex && self.soas == 1 => {}
                Rtype::CNAME if self.soas == 1 => {
                    let mut target = [0u8; MAX_NAME];
                    let (target_len, _) = read_name(message, rdata_at, &mut target)
                        .ok_or_else(|| misfit("a bad CNAME target"))?;
                    self.cname(owner, &target[..target_len])
                        .map_err(|why| misfit(&why))?;
                }
                _ => {
                    return Err(misfit(
                        "not of cnamed's shape (SOA and NS at the apex, CNAMEs of apps)",
                    ))
                }
            }
            at = rdata_at + rdlength;
        }
        Ok(self.soas == 2)
    }

    /// Records the CNAME `owner` → `target` of an app.
    fn cname(&mut self, owner: &[u8], target: &[u8]) -> Result<(), String> {
        let label_len = usize::from(owner[0]);
        if owner.get(1 + label_len..) != Some(&self.zone.apex[..]) {
            return Err("not one label under the apex".into());
        }
        let label = std::str::from_utf8(&owner[1..1 + label_len]).map_err(|_| "not ASCII")?;
        let (service, app) = label.split_once('-').ok_or("no '-' in the label")?;
        let index = self
            .zone
            .services
            .iter()
            .position(|s| **s == *service.as_bytes())
            .ok_or_else(|| format!("service {service:?} is not listed"))?;
        let target = wire_to_text(target);
        let target = target.trim_end_matches('.');
        let (before, after) = &self.targets[index];
        let cluster = target
            .strip_prefix(before.as_str())
            .and_then(|rest| rest.strip_suffix(after.as_str()))
            .ok_or_else(|| format!("target {target} is not the --target of a cluster"))?;
        check_label(cluster, Charset::Hostname, crate::wire::MAX_LABEL)
            .map_err(|why| format!("cluster {cluster:?} {why}"))?;
        check_label(app, Charset::Hostname, crate::wire::MAX_LABEL)
            .map_err(|why| format!("app {app:?} {why}"))?;
        let bit = 1u64 << index;
        match self.apps.get_mut(app) {
            Some((known, seen)) => {
                if **known != *cluster {
                    return Err(format!("app {app} is on {known} for another service"));
                }
                if *seen & bit != 0 {
                    return Err(format!("app {app} has two {service} records"));
                }
                *seen |= bit;
            }
            None => {
                self.apps.insert(app.into(), (cluster.into(), bit));
            }
        }
        Ok(())
    }

    /// The zone, once the closing SOA is read and every app has a CNAME per service.
    pub fn finish(self) -> Result<Transferred, String> {
        let (Some(serial), 2) = (self.serial, self.soas) else {
            return Err("the transfer ended before its closing SOA".into());
        };
        let all = u64::MAX >> (64 - self.zone.services.len());
        let mut apps = Vec::with_capacity(self.apps.len());
        for (app, (cluster, seen)) in self.apps {
            if seen != all {
                return Err(format!("app {app} lacks a CNAME for some listed service"));
            }
            apps.push((app, cluster));
        }
        Ok(Transferred { serial, apps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::snapshot::Snapshot;
    use crate::xfr::axfr::axfr;
    use crate::xfr::message::{Stream, MAX_MESSAGE};

    fn question() -> Vec<u8> {
        let mut question = b"\x04apps\x07example\x03com\x00".to_vec();
        question.extend_from_slice(&[0, 252, 0, 1]);
        question
    }

    /// Our own AXFR, read back, is the snapshot's mapping exactly.
    #[test]
    fn reads_back_what_axfr_sends() {
        let zone = Config::default().zone().unwrap();
        let entries: Vec<String> = (0..3000)
            .map(|i| match i % 7 {
                0 => format!(r#""App-{i}": "eu""#),
                _ => format!(r#""{i}": "mt{}""#, i % 5),
            })
            .collect();
        let json = format!(r#"{{"serial": 42, "apps": {{{}}}}}"#, entries.join(","));
        let snapshot = Snapshot::from_json(json.as_bytes(), &zone).unwrap();
        let mut reader = AxfrReader::new(&zone).unwrap();
        let mut transfer = axfr(&snapshot);
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut done = false;
        while let Some(len) = transfer.next_message(1, &question(), &mut buf) {
            assert!(!done, "records after the end");
            done = reader.read_message(&buf[..len]).unwrap();
        }
        assert!(done);
        let got = reader.finish().unwrap();
        assert_eq!(got.serial, 42);
        // Built into a snapshot, it answers as the original does.
        let rebuilt = Snapshot::from_apps(
            got.serial,
            got.apps.iter().map(|(a, c)| (&**a, &**c)),
            &zone,
        )
        .unwrap();
        assert_eq!(rebuilt.apps(), snapshot.apps());
        assert_eq!(rebuilt.soa_answer(), snapshot.soa_answer());
        assert_eq!(rebuilt.cname(b"ws-App-7"), snapshot.cname(b"ws-app-7"));
        let mut apps: Vec<(String, String)> = got
            .apps
            .iter()
            .map(|(a, c)| (a.to_string(), c.to_string()))
            .collect();
        apps.sort();
        let want: Vec<(String, String)> = snapshot
            .apps()
            .into_iter()
            .map(|(a, c)| (a, c.to_owned()))
            .collect();
        assert_eq!(apps, want);
    }

    #[test]
    fn misfits_are_named() {
        let zone = Config::default().zone().unwrap();
        let snapshot =
            Snapshot::from_json(br#"{"serial": 1, "apps": {"7": "eu"}}"#, &zone).unwrap();
        let mut buf = vec![0u8; MAX_MESSAGE];
        let len = axfr(&snapshot)
            .next_message(1, &question(), &mut buf)
            .unwrap();
        let message = buf[..len].to_vec();
        // The whole transfer is one message: it reads, and stopping before it fails.
        let mut reader = AxfrReader::new(&zone).unwrap();
        assert_eq!(reader.read_message(&message), Ok(true));
        assert!(reader.finish().is_ok());
        assert!(AxfrReader::new(&zone).unwrap().finish().is_err());
        // An error RCODE.
        let mut refused = message.clone();
        refused[3] |= 5;
        let error = AxfrReader::new(&zone)
            .unwrap()
            .read_message(&refused)
            .unwrap_err();
        assert!(error.contains("RCODE 5"), "{error}");
        // A service not listed: "ws" becomes "wx" in the first owner.
        let at = message.windows(4).position(|w| w == b"\x04ws-").unwrap();
        let mut unlisted = message.clone();
        unlisted[at + 2] = b'x';
        let error = AxfrReader::new(&zone)
            .unwrap()
            .read_message(&unlisted)
            .unwrap_err();
        assert!(
            error.contains("record wx-7.apps.example.com.") && error.contains("not listed"),
            "{error}"
        );
    }
}
