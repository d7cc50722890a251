//! The sandbox must never change the host: a full run of the things tests do inside it leaves
//! the host's /etc, /tmp, /root, /home, /srv and mount table as they were.

mod sandbox;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sandbox::{OLD_DOCKER, Setup};

/// path → (type, size, mtime), without following symlinks.
type Tree = BTreeMap<String, (u32, u64, i64)>;

/// Everything below `dir`, `depth` levels down.
fn tree(dir: &Path, depth: usize, out: &mut Tree) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        out.insert(p.display().to_string(), (m.mode() & 0o170000, m.size(), m.mtime()));
        if m.is_dir() && depth > 0 {
            tree(&p, depth - 1, out);
        }
    }
}

/// Files, /tmp entries, mount table.
fn snapshot() -> (Tree, Vec<String>, String) {
    let mut files = BTreeMap::new();
    tree(Path::new("/etc"), usize::MAX, &mut files);
    for d in ["/root", "/home", "/srv", "/var/tmp"] {
        tree(Path::new(d), 0, &mut files);
    }
    let mut tmp: Vec<String> = std::fs::read_dir("/tmp")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    tmp.sort();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    (files, tmp, mounts)
}

#[test]
fn a_full_sandbox_run_leaves_the_host_as_it_was() {
    let setup = Setup::default()
        .file("docker.service", OLD_DOCKER)
        .etc("mountprop/config.toml", "restart = \"always\"\n");
    if !sandbox::require("host_untouched", nix::unistd::geteuid().is_root(), "needs root") {
        return;
    }
    let (files, tmp, mounts) = snapshot();
    {
        let Some(sb) = sandbox::boot("host_untouched", setup) else {
            return;
        };
        sb.exec(&["systemctl", "start", "docker.service"]).ok();
        assert_eq!(sb.mountprop(&["apply"]).code, 0);
        sb.sh("mkdir -p /var/lib/kubelet /srv/x /root/.ssh && mount -t tmpfs t /var/lib/kubelet && touch /tmp/x /var/tmp/x /etc/x /home/x && systemctl daemon-reload")
            .ok();
        // The sandbox goes down here, on the normal path.
    }
    let (files2, tmp2, mounts2) = snapshot();
    assert_eq!(mounts2, mounts, "host mount table changed");
    let gone: Vec<_> = tmp.iter().filter(|t| !tmp2.contains(t)).collect();
    assert!(gone.is_empty(), "host /tmp lost {gone:?}");
    let changed: Vec<_> = files
        .iter()
        .filter(|(k, v)| files2.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(files2.keys().filter(|k| !files.contains_key(*k)))
        .collect();
    assert!(changed.is_empty(), "host files changed: {changed:?}");
}
