//! Device names from domain XML, cached per domain.
//!
//! Only needed when the bulk call does not report `net.N.name` / `block.N.name`
//! (e.g. libvirt's test driver). Reading XML costs a round trip and a parse, so
//! the result is reused for `DEVICE_CACHE_TTL`, and re-read at once when the
//! domain's runtime ID changes (a restart can change tap names and devices).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A virtual NIC as the per-domain stats call needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicDevice {
    /// Host-side target device (`<target dev=...>`), else the MAC address.
    /// `virDomainInterfaceStats` accepts either.
    pub name: String,
    pub mac: Option<String>,
}

/// A virtual disk with media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDevice {
    /// Guest target (`<target dev=...>`), e.g. `vda`.
    pub name: String,
    /// Source file, block device, volume or network name.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainDevices {
    pub nics: Vec<NicDevice>,
    pub disks: Vec<DiskDevice>,
}

/// Reads NIC and disk names from a domain's XML. Pure.
///
/// Left out: interfaces with neither target nor MAC, `hostdev` interfaces
/// (no host-side statistics), disks without a target, and disks without a
/// `<source>` (an empty CD-ROM drive has no statistics).
pub fn parse_domain_devices(xml: &str) -> Result<DomainDevices, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let mut out = DomainDevices::default();
    let Some(devices) = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("devices"))
    else {
        return Ok(out);
    };
    for dev in devices.children().filter(|n| n.is_element()) {
        let child_attr = |tag: &str, attr: &str| {
            dev.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.attribute(attr))
                .map(str::to_string)
        };
        match dev.tag_name().name() {
            "interface" => {
                if dev.attribute("type") == Some("hostdev") {
                    continue;
                }
                let target = child_attr("target", "dev").filter(|s| !s.is_empty());
                let mac = child_attr("mac", "address").filter(|s| !s.is_empty());
                if let Some(name) = target.clone().or_else(|| mac.clone()) {
                    out.nics.push(NicDevice { name, mac });
                }
            }
            "disk" => {
                let Some(name) = child_attr("target", "dev").filter(|s| !s.is_empty()) else {
                    continue;
                };
                let Some(source) = dev.children().find(|c| c.has_tag_name("source")) else {
                    continue;
                };
                let path = ["file", "dev", "volume", "name", "dir"]
                    .iter()
                    .find_map(|a| source.attribute(*a))
                    .map(str::to_string);
                out.disks.push(DiskDevice { name, path });
            }
            _ => {}
        }
    }
    Ok(out)
}

struct Entry {
    id: Option<u32>,
    loaded_at: Instant,
    devices: DomainDevices,
}

/// Device names per domain UUID, reloaded after `ttl` or when the ID changes.
pub struct DeviceCache {
    ttl: Duration,
    entries: HashMap<String, Entry>,
}

impl DeviceCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    /// The cached devices of `uuid`, or `load()`'s XML parsed and stored.
    /// `load` runs only when nothing fresh is cached for this ID.
    pub fn get_or_load<E>(
        &mut self,
        uuid: &str,
        id: Option<u32>,
        now: Instant,
        load: impl FnOnce() -> Result<String, E>,
    ) -> Result<&DomainDevices, LoadError<E>> {
        let fresh = self
            .entries
            .get(uuid)
            .is_some_and(|e| e.id == id && now.saturating_duration_since(e.loaded_at) < self.ttl);
        if !fresh {
            let xml = load().map_err(LoadError::Load)?;
            let devices = parse_domain_devices(&xml).map_err(LoadError::Parse)?;
            self.entries.insert(
                uuid.to_string(),
                Entry {
                    id,
                    loaded_at: now,
                    devices,
                },
            );
        }
        match self.entries.get(uuid) {
            Some(e) => Ok(&e.devices),
            // Unreachable in practice: inserted just above.
            None => Err(LoadError::Parse(roxmltree::Error::NoRootNode)),
        }
    }

    /// Forgets one domain (e.g. after a device call failed: names may be stale).
    pub fn invalidate(&mut self, uuid: &str) {
        self.entries.remove(uuid);
    }

    /// Keeps only domains for which `keep` says yes (drop vanished domains).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|uuid, _| keep(uuid));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why device names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    #[error("cannot read domain XML: {0}")]
    Load(E),
    #[error("cannot parse domain XML: {0}")]
    Parse(roxmltree::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const XML: &str = r#"<domain type='kvm' id='3'>
  <name>web 01,env=prod &quot;x&quot;\y</name>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web-a.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='/dev/vg0/web-b'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:01'/>
      <source bridge='br0'/>
      <target dev='tap-web0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:02'/>
      <source network='isolated'/>
    </interface>
    <interface type='hostdev'>
      <mac address='52:54:00:aa:bb:03'/>
    </interface>
    <memballoon model='virtio'><stats period='2'/></memballoon>
  </devices>
</domain>"#;

    #[test]
    fn parses_nics_and_disks() {
        let d = parse_domain_devices(XML).expect("valid xml");
        assert_eq!(
            d.nics,
            vec![
                NicDevice {
                    name: "tap-web0".into(),
                    mac: Some("52:54:00:aa:bb:01".into())
                },
                NicDevice {
                    name: "52:54:00:aa:bb:02".into(),
                    mac: Some("52:54:00:aa:bb:02".into())
                },
            ]
        );
        assert_eq!(
            d.disks,
            vec![
                DiskDevice {
                    name: "vda".into(),
                    path: Some("/var/lib/libvirt/images/web-a.qcow2".into())
                },
                DiskDevice {
                    name: "vdb".into(),
                    path: Some("/dev/vg0/web-b".into())
                },
            ]
        );
    }

    #[test]
    fn no_devices_and_bad_xml() {
        let d = parse_domain_devices("<domain><name>x</name></domain>").expect("valid");
        assert_eq!(d, DomainDevices::default());
        assert!(parse_domain_devices("<domain><devices>").is_err());
    }

    fn load_counter<'a>(n: &'a Cell<u32>) -> impl FnOnce() -> Result<String, String> + 'a {
        move || {
            n.set(n.get() + 1);
            Ok(XML.to_string())
        }
    }

    #[test]
    fn cache_reuses_until_ttl_or_id_change() {
        let loads = Cell::new(0);
        let mut c = DeviceCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let d = c
            .get_or_load("u1", Some(3), t0, load_counter(&loads))
            .expect("load");
        assert_eq!(d.nics.len(), 2);
        assert_eq!(loads.get(), 1);

        c.get_or_load(
            "u1",
            Some(3),
            t0 + Duration::from_secs(59),
            load_counter(&loads),
        )
        .expect("cached");
        assert_eq!(loads.get(), 1, "fresh entry reused");

        c.get_or_load(
            "u1",
            Some(4),
            t0 + Duration::from_secs(59),
            load_counter(&loads),
        )
        .expect("reload");
        assert_eq!(loads.get(), 2, "ID change reloads");

        c.get_or_load(
            "u1",
            Some(4),
            t0 + Duration::from_secs(200),
            load_counter(&loads),
        )
        .expect("reload");
        assert_eq!(loads.get(), 3, "expired entry reloads");

        c.invalidate("u1");
        c.get_or_load(
            "u1",
            Some(4),
            t0 + Duration::from_secs(200),
            load_counter(&loads),
        )
        .expect("reload");
        assert_eq!(loads.get(), 4, "invalidated entry reloads");

        c.retain(|u| u != "u1");
        assert!(c.is_empty());
    }

    #[test]
    fn cache_reports_load_and_parse_errors() {
        let mut c = DeviceCache::new(Duration::from_secs(60));
        let now = Instant::now();
        let e = c
            .get_or_load("u", None, now, || Err::<String, _>("gone".to_string()))
            .expect_err("load error");
        assert!(matches!(e, LoadError::Load(ref m) if m == "gone"));
        let e = c
            .get_or_load("u", None, now, || Ok::<_, String>("<x".into()))
            .expect_err("parse error");
        assert!(matches!(e, LoadError::Parse(_)));
        assert_eq!(c.len(), 0);
    }
}
