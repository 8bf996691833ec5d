//! The zone's shape, read back from records: which app and service a CNAME's owner names
//! (`{service}-{app}.{zone}`), and which cluster its target is (the `--target` template).
//! Transfers in and UPDATE messages both read CNAMEs this way.

use super::Zone;
use crate::wire::name::{check_label, wire_to_text, Charset};
use crate::wire::MAX_LABEL;

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
        Ok((app.to_owned(), index))
    }

    /// The cluster a CNAME target (wire form, any case) of `service` names.
    pub fn cluster(&self, service: usize, target: &[u8]) -> Result<String, String> {
        let mut target = wire_to_text(target);
        target.make_ascii_lowercase();
        let target = target.trim_end_matches('.');
        let (before, after) = &self.targets[service];
        let cluster = target
            .strip_prefix(before.as_str())
            .and_then(|rest| rest.strip_suffix(after.as_str()))
            .ok_or_else(|| format!("target {target} is not the --target of a cluster"))?;
        check_label(cluster, Charset::Hostname, MAX_LABEL)
            .map_err(|why| format!("cluster {cluster:?} {why}"))?;
        Ok(cluster.to_owned())
    }

    /// Reads the CNAME `owner` -> `target` of an app: its ID, service index and cluster.
    pub fn cname(&self, owner: &[u8], target: &[u8]) -> Result<(String, usize, String), String> {
        let (app, service) = self.owner(owner)?;
        let cluster = self.cluster(service, target)?;
        Ok((app, service, cluster))
    }
}
