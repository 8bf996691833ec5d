//! The zone's shape, read back from records: which app and service a CNAME's owner names
//! (`{service}-{app}.{zone}`), and which cluster its target is (the `--target` template).
//! Transfers in and UPDATE messages both read CNAMEs this way.

use super::Zone;
use crate::wire::name::{check_label, wire_to_text, Charset};
use crate::wire::{MAX_LABEL, MAX_NAME};

/// Reads CNAME owners and targets of `zone`.
#[derive(Debug)]
pub struct CnameShape<'z> {
    zone: &'z Zone,
    /// Per listed service, the target text before and after the cluster name.
    targets: Vec<(String, String)>,
}

impl<'z> CnameShape<'z> {
    /// The shape of `zone`; its `--target` template must name `{cluster}` (else a target
    /// cannot say which cluster it is), and it has at most 64 services.
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
        Ok(Self { zone, targets })
    }

    pub fn zone(&self) -> &'z Zone {
        self.zone
    }

    /// The app and service index an owner (wire form, any case) names: one label under the
    /// apex, `{service}-{app}`, with a listed service and a valid app ID.
    pub fn owner(&self, owner: &[u8]) -> Result<(String, usize), String> {
        self.owner_in(owner)
            .map(|(app, service)| (app.to_owned(), service))
    }

    /// As [`Self::owner`], the app borrowed from `owner` (its case as there).
    pub fn owner_in<'o>(&self, owner: &'o [u8]) -> Result<(&'o str, usize), String> {
        let label_len = usize::from(*owner.first().ok_or("an empty name")?);
        let apex = owner.get(1 + label_len..).ok_or("a bad name")?;
        if label_len == 0 || !apex.eq_ignore_ascii_case(&self.zone.apex) {
            return Err("not one label under the apex".into());
        }
        let label = std::str::from_utf8(&owner[1..1 + label_len]).map_err(|_| "not ASCII")?;
        let (service, app) = label.split_once('-').ok_or("no '-' in the label")?;
        let index = self
            .zone
            .services
            .iter()
            .position(|s| s.eq_ignore_ascii_case(service.as_bytes()))
            .ok_or_else(|| format!("service {service:?} is not listed"))?;
        check_label(app, Charset::Hostname, MAX_LABEL)
            .map_err(|why| format!("app {app:?} {why}"))?;
        Ok((app, index))
    }

    /// The cluster a CNAME target (wire form, any case) of `service` names.
    pub fn cluster(&self, service: usize, target: &[u8]) -> Result<String, String> {
        let mut target = wire_to_text(target);
        target.make_ascii_lowercase();
        self.cluster_of_text(service, &target).map(str::to_owned)
    }

    /// The cluster a target in text form (lower case) of `service` names.
    fn cluster_of_text<'t>(&self, service: usize, target: &'t str) -> Result<&'t str, String> {
        let target = target.trim_end_matches('.');
        let (before, after) = &self.targets[service];
        let cluster = target
            .strip_prefix(before.as_str())
            .and_then(|rest| rest.strip_suffix(after.as_str()))
            .ok_or_else(|| format!("target {target} is not the --target of a cluster"))?;
        check_label(cluster, Charset::Hostname, MAX_LABEL)
            .map_err(|why| format!("cluster {cluster:?} {why}"))?;
        Ok(cluster)
    }

    /// As [`Self::cluster`], the name written into `scratch`: a target in ASCII (any valid
    /// one) costs no allocation.
    pub fn cluster_in<'s>(
        &self,
        service: usize,
        target: &[u8],
        scratch: &'s mut [u8; MAX_NAME],
    ) -> Result<&'s str, String> {
        let Some(len) = ascii_text(target, scratch) else {
            // Not ASCII, or longer than a name: the general path, for its answer.
            let cluster = self.cluster(service, target)?;
            let copy = scratch
                .get_mut(..cluster.len())
                .ok_or("a cluster longer than a name")?;
            copy.copy_from_slice(cluster.as_bytes());
            return Ok(std::str::from_utf8(copy).unwrap_or_default());
        };
        // ASCII by construction.
        let text = std::str::from_utf8(&scratch[..len]).unwrap_or_default();
        self.cluster_of_text(service, text)
    }

    /// Reads the CNAME `owner` -> `target` of an app: its ID, service index and cluster.
    pub fn cname(&self, owner: &[u8], target: &[u8]) -> Result<(String, usize, String), String> {
        let (app, service) = self.owner(owner)?;
        let cluster = self.cluster(service, target)?;
        Ok((app, service, cluster))
    }
}

/// `wire` as [`wire_to_text`] writes it, in lower case, into `out`: its length, or `None`
/// when a label is not ASCII or the text does not fit.
fn ascii_text(wire: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut at = 0;
    while let Some(&label_len) = wire.get(at) {
        if label_len == 0 {
            break;
        }
        let label = wire.get(at + 1..at + 1 + usize::from(label_len))?;
        if !label.is_ascii() {
            return None;
        }
        let to = out.get_mut(len..len + label.len() + 1)?;
        to[..label.len()].copy_from_slice(label);
        to[..label.len()].make_ascii_lowercase();
        to[label.len()] = b'.';
        len += label.len() + 1;
        at += 1 + usize::from(label_len);
    }
    if len == 0 {
        *out.first_mut()? = b'.';
        len = 1;
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{wire_name, zone};

    /// The allocation-free reading of a target answers exactly as the general one.
    #[test]
    fn cluster_in_reads_as_cluster_does() {
        let zone = zone();
        let shape = CnameShape::new(&zone).unwrap();
        let mut targets: Vec<Vec<u8>> = [
            "ws-eu.example.com.",
            "WS-EU.Example.COM.",
            "sockjs-eu.example.com.",
            "ws-.example.com.",
            "ws-eu.example.org.",
            "ws-e_u.example.com.",
            "eu.example.com.",
            ".",
        ]
        .iter()
        .map(|text| wire_name(text))
        .collect();
        // Not ASCII, a dot inside a label, a label cut short.
        targets.push(b"\x05ws-\xe9u\x07example\x03com\x00".to_vec());
        targets.push(b"\x05ws-eu\x07example\x04com.\x00".to_vec());
        targets.push(b"\x05ws-eu\x07exam".to_vec());
        for target in &targets {
            for service in 0..zone.services.len() {
                let mut scratch = [0u8; MAX_NAME];
                let fast = shape.cluster_in(service, target, &mut scratch);
                let slow = shape.cluster(service, target);
                assert_eq!(
                    fast.map(str::to_owned),
                    slow,
                    "{target:?}, service {service}"
                );
            }
        }
        let mut scratch = [0u8; MAX_NAME];
        assert_eq!(shape.cluster_in(0, &targets[1], &mut scratch), Ok("eu"));
    }
}
