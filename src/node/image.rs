//! An image tree (chroot, mkosi, Packer, debootstrap, osbuild output) read the way systemd will
//! read it when the image boots: no running systemd, no bus, nothing mounted. Symlinks are
//! followed inside the tree (an absolute link means the tree's root), never on the host.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::node::ownfile::{OwnDropIn, OwnState};
use crate::node::systemd::UnitProps;
use crate::node::unitfile::{self, MountFlags, SYSTEM_UNIT_PATH};
use crate::node::unitfiles::UnitFile;

/// Where a path inside the tree leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A file or directory, at this host path (inside the tree).
    At(PathBuf),
    /// A symlink to /dev/null: systemd's mask.
    Masked,
    Missing,
}

/// Follows `inside` (an absolute path as the booted image sees it) through the tree at `root`.
pub fn resolve(root: &Path, inside: &Path) -> Resolved {
    let mut todo: Vec<OsString> = inside.components().rev().filter_map(normal).collect();
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let cand = cur.join(&c);
        let host = root.join(cand.strip_prefix("/").unwrap_or(&cand));
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            return Resolved::Missing;
        };
        if !meta.file_type().is_symlink() {
            cur = cand;
            continue;
        }
        hops += 1;
        let Ok(target) = std::fs::read_link(&host) else {
            return Resolved::Missing;
        };
        if hops > 40 {
            return Resolved::Missing;
        }
        if target == Path::new("/dev/null") && todo.is_empty() {
            return Resolved::Masked;
        }
        if target.is_absolute() {
            cur = PathBuf::from("/");
        }
        todo.extend(target.components().rev().filter_map(normal));
    }
    Resolved::At(root.join(cur.strip_prefix("/").unwrap_or(&cur)))
}

fn normal(c: Component<'_>) -> Option<OsString> {
    match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    }
}

/// The systemd version the image will boot, from the name of its `libsystemd-shared-NNN.so`.
pub fn systemd_version(root: &Path) -> Option<(u32, PathBuf)> {
    let mut dirs: Vec<PathBuf> = ["usr/lib/systemd", "lib/systemd", "usr/lib64/systemd"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    // Debian and Ubuntu keep it in the multiarch directory.
    for base in ["usr/lib", "lib"] {
        if let Ok(rd) = std::fs::read_dir(root.join(base)) {
            dirs.extend(rd.flatten().map(|e| e.path().join("systemd")));
        }
    }
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("libsystemd-shared-")) else {
                continue;
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(v) = digits.parse() {
                return Some((v, e.path()));
            }
        }
    }
    None
}

/// A unit as systemd would load it from the tree.
pub struct FoundUnit {
    pub props: UnitProps,
    /// The fragment and drop-ins in systemd's order, mountprop's own included where it sorts.
    pub files: Vec<UnitFile>,
}

/// The fragment: the first unit directory that has the unit (or its template) wins.
fn fragment(root: &Path, unit: &str) -> Result<Option<(PathBuf, PathBuf)>, ()> {
    let mut names = vec![unit.to_string()];
    if let Some((base, kind)) = unit.rsplit_once('.')
        && let Some((stem, inst)) = base.split_once('@')
        && !inst.is_empty()
    {
        names.push(format!("{stem}@.{kind}"));
    }
    for name in &names {
        for dir in SYSTEM_UNIT_PATH {
            let inside = Path::new(dir).join(name);
            match resolve(root, &inside) {
                Resolved::At(host) if host.is_file() => {
                    // An empty unit file masks too.
                    if std::fs::metadata(&host).is_ok_and(|m| m.len() == 0) {
                        return Err(());
                    }
                    return Ok(Some((inside, host)));
                }
                Resolved::Masked => return Err(()),
                _ => {}
            }
        }
    }
    Ok(None)
}

/// Reads `unit` from the tree: load state, fragment, drop-ins in order and the `MountFlags`
/// systemd will end with.
pub fn unit(root: &Path, name: &str, own: &OwnDropIn) -> FoundUnit {
    let (load_state, frag) = match fragment(root, name) {
        Err(()) => ("masked", None),
        Ok(None) => ("not-found", None),
        Ok(Some(f)) => ("loaded", Some(f)),
    };
    let dirs = unitfile::dropin_dirs(root, name);
    let mut nominal: Vec<PathBuf> = vec![own.path.clone()];
    for dir in &dirs {
        let inside = Path::new("/").join(dir.strip_prefix(root).unwrap_or(dir));
        let Resolved::At(host_dir) = resolve(root, &inside) else {
            continue;
        };
        let Ok(rd) = std::fs::read_dir(&host_dir) else { continue };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "conf") {
                nominal.push(dir.join(e.file_name()));
            }
        }
    }
    let ordered = unitfile::order_dropins(&dirs, nominal);
    let mut files = Vec::new();
    if let Some((_, host)) = &frag {
        files.push(read(host, &root.join(host.strip_prefix(root).unwrap_or(host)), false));
    }
    let mut dropin_paths = Vec::new();
    for p in ordered {
        let is_own = p == own.path;
        if is_own && own.state == OwnState::Missing {
            files.push(UnitFile::own_missing(p, false));
            continue;
        }
        let inside = Path::new("/").join(p.strip_prefix(root).unwrap_or(&p));
        match resolve(root, &inside) {
            Resolved::At(host) => {
                dropin_paths.push(p.clone());
                files.push(read(&host, &p, is_own));
            }
            // A masked drop-in hides lower ones of its name and sets nothing.
            Resolved::Masked | Resolved::Missing => {}
        }
    }
    let winner = unitfile::winning_setting(files.iter().map(|f| f.settings.as_slice()));
    let effective = winner.map_or(MountFlags::Unset, |w| w.value);
    let props = UnitProps {
        load_state: load_state.to_string(),
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        fragment_path: frag.map(|(_, host)| host),
        dropin_paths,
        mount_flags: (load_state == "loaded").then_some(effective.bits()),
        ..UnitProps::default()
    };
    if load_state != "loaded" {
        files.clear();
    }
    FoundUnit { props, files }
}

/// Reads a unit file found at `host`, reporting it as `shown`.
fn read(host: &Path, shown: &Path, own: bool) -> UnitFile {
    UnitFile::from_read(shown, std::fs::read(host), true, own)
}

/// Whether mountprop.service is installed and enabled in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInstall {
    pub unit: String,
    /// Where the booted image will find the unit, e.g. /lib/systemd/system/mountprop.service.
    pub fragment: Option<PathBuf>,
    /// For each target in WantedBy=: the `.wants` directory (relative to the root), and what the
    /// link there points to now.
    pub links: Vec<WantsLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WantsLink {
    pub dir: PathBuf,
    pub target: Option<PathBuf>,
}

pub const SERVICE: &str = "mountprop.service";

pub fn service_install(root: &Path) -> ServiceInstall {
    let frag = fragment(root, SERVICE).ok().flatten();
    let wanted_by: Vec<String> = frag
        .as_ref()
        .and_then(|(_, host)| std::fs::read_to_string(host).ok())
        .map(|text| {
            unitfile::parse(&text)
                .into_iter()
                .filter(|a| a.section == "Install" && a.key == "WantedBy")
                .flat_map(|a| a.value.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let links = wanted_by
        .iter()
        .map(|t| {
            let dir = PathBuf::from(format!("etc/systemd/system/{t}.wants"));
            let target = std::fs::read_link(root.join(&dir).join(SERVICE)).ok();
            WantsLink { dir, target }
        })
        .collect();
    ServiceInstall {
        unit: SERVICE.into(),
        fragment: frag.map(|(inside, _)| inside),
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree(PathBuf);
    impl Tree {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("mountprop-img-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        fn file(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        fn link(&self, rel: &str, target: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            symlink(target, p).unwrap();
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn own(root: &Path, unit: &str) -> OwnDropIn {
        OwnDropIn {
            path: root.join(format!("etc/systemd/system/{unit}.d/90-mountprop.conf")),
            state: OwnState::Missing,
        }
    }

    #[test]
    fn absolute_links_stay_inside_the_tree() {
        let t = Tree::new("links");
        t.link("lib", "usr/lib");
        t.file("usr/lib/systemd/system/a.service", "[Service]\nMountFlags=slave\n");
        t.link("etc/systemd/system/b.service", "/lib/systemd/system/a.service");
        t.link("etc/systemd/system/m.service", "/dev/null");
        t.link("etc/systemd/system/esc.service", "/etc/passwd");
        assert_eq!(
            resolve(&t.0, Path::new("/etc/systemd/system/b.service")),
            Resolved::At(t.0.join("usr/lib/systemd/system/a.service"))
        );
        assert_eq!(
            resolve(&t.0, Path::new("/etc/systemd/system/m.service")),
            Resolved::Masked
        );
        // /etc/passwd of the tree, which does not exist: never the host's.
        assert_eq!(
            resolve(&t.0, Path::new("/etc/systemd/system/esc.service")),
            Resolved::Missing
        );
        t.link("loop", "loop");
        assert_eq!(resolve(&t.0, Path::new("/loop")), Resolved::Missing);
    }

    #[test]
    fn effective_mount_flags_from_fragment_and_dropins() {
        let t = Tree::new("eff");
        t.file("usr/lib/systemd/system/docker.service", "[Service]\nMountFlags=slave\n");
        t.file(
            "run/systemd/system/docker.service.d/10-a.conf",
            "[Service]\nMountFlags=private\n",
        );
        t.file(
            "etc/systemd/system/docker.service.d/50-b.conf",
            "[Service]\nMountFlags=shared\n",
        );
        t.file(
            "usr/lib/systemd/system/docker.service.d/50-b.conf",
            "[Service]\nMountFlags=slave\n",
        );
        let u = unit(&t.0, "docker.service", &own(&t.0, "docker.service"));
        assert_eq!(u.props.load_state, "loaded");
        assert_eq!(u.props.mount_flags, Some(unitfile::MS_SHARED));
        assert_eq!(
            u.props.dropin_paths,
            [
                t.0.join("run/systemd/system/docker.service.d/10-a.conf"),
                t.0.join("etc/systemd/system/docker.service.d/50-b.conf")
            ]
        );
        t.file(
            "etc/systemd/system/docker.service.d/60-reset.conf",
            "[Service]\nMountFlags=\n",
        );
        assert_eq!(
            unit(&t.0, "docker.service", &own(&t.0, "docker.service"))
                .props
                .mount_flags,
            Some(0)
        );
    }

    #[test]
    fn masked_and_missing_units() {
        let t = Tree::new("mask");
        t.link("etc/systemd/system/docker.service", "/dev/null");
        t.file("usr/lib/systemd/system/docker.service", "[Service]\nMountFlags=slave\n");
        assert_eq!(
            unit(&t.0, "docker.service", &own(&t.0, "docker.service"))
                .props
                .load_state,
            "masked"
        );
        assert_eq!(
            unit(&t.0, "crio.service", &own(&t.0, "crio.service")).props.load_state,
            "not-found"
        );
    }

    #[test]
    fn template_instances_use_the_template_fragment() {
        let t = Tree::new("tmpl");
        t.file("usr/lib/systemd/system/rt@.service", "[Service]\nMountFlags=slave\n");
        let u = unit(&t.0, "rt@a.service", &own(&t.0, "rt@a.service"));
        assert_eq!(u.props.load_state, "loaded");
        assert_eq!(u.props.mount_flags, Some(unitfile::MS_SLAVE));
    }

    #[test]
    fn version_from_the_shared_library_name() {
        let t = Tree::new("ver");
        assert_eq!(systemd_version(&t.0), None);
        t.file("usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so", "");
        assert_eq!(systemd_version(&t.0).map(|v| v.0), Some(252));
        let t = Tree::new("ver2");
        t.file("usr/lib64/systemd/libsystemd-shared-255.3-1.fc40.so", "");
        assert_eq!(systemd_version(&t.0).map(|v| v.0), Some(255));
    }

    #[test]
    fn service_install_reads_wanted_by_and_links() {
        let t = Tree::new("svc");
        assert_eq!(service_install(&t.0).fragment, None);
        t.file(
            "lib/systemd/system/mountprop.service",
            "[Service]\nExecStart=/usr/bin/mountprop daemon\n[Install]\nWantedBy=multi-user.target\n",
        );
        let s = service_install(&t.0);
        assert_eq!(
            s.fragment.as_deref(),
            Some(Path::new("/lib/systemd/system/mountprop.service"))
        );
        assert_eq!(
            s.links,
            [WantsLink {
                dir: "etc/systemd/system/multi-user.target.wants".into(),
                target: None
            }]
        );
        t.link(
            "etc/systemd/system/multi-user.target.wants/mountprop.service",
            "/lib/systemd/system/mountprop.service",
        );
        assert!(service_install(&t.0).links[0].target.is_some());
    }
}
