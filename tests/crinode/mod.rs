//! The containerd node the CRI tests share: Debian's containerd in a sandbox node (1.6 on the
//! host's own `/`, or 2.x in a Debian 13 tree: [`Containerd`]), its CRI
//! client (`tests/cri/cri.py`, built by `tests/cri/build.sh` into target/cri), an image made
//! offline, and clean-up of the pods and their cgroups on every exit path.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sandbox::{self, Sandbox, Setup};

pub const IMAGE: &str = "mountprop.invalid/busybox:1";
pub const KUBELET: &str = "/var/lib/kubelet";
/// The pod volume's host path, under the kubelet root, as the kubelet lays out a hostPath.
pub const HOST_PATH: &str = "/var/lib/kubelet/pods/mountprop-cri/volumes/vol";
/// Label of every pod the tests make, so that clean-up finds them all.
pub const LABEL: &str = "mountprop-cri-test";
/// The pods' cgroup parent: the cgroupfs driver puts it in the host's v1 hierarchies.
pub const CGROUP_PARENT: &str = "mountprop-cri-test";
pub const PY: &str = "/usr/bin/python3";

/// Which containerd a CRI node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containerd {
    /// The host's (Debian 12: 1.6), in a node of the host's own `/` overlaid.
    Host,
    /// containerd 2 and runc from Debian unstable in the `trixie-cri` tree (scripts/trees.sh),
    /// booted with the tree's own systemd (257).
    Two,
}

impl Containerd {
    /// A containerd-only node of this kind, or `None` after a loud SKIP (without root).
    pub fn setup(self) -> Option<Setup> {
        match self {
            Self::Host => Some(setup()),
            Self::Two => {
                let tree = sandbox::trees::tree("trixie-cri")?;
                // Its own systemd 257 boots on the host's cgroup v1 hybrid layout, so the pods'
                // cgroups land in the host's v1 hierarchies as with 1.6 (no cgroup2 of its own:
                // the host enables no controller there, and containerd 2 asks for cpu).
                let mut s = Setup::default()
                    .with_root(&tree.path)
                    .with_host_runtimes()
                    // The package enables it; the test starts it once the layout is made.
                    .without("/etc/systemd/system/multi-user.target.wants/containerd.service")
                    .etc("containerd/config.toml", &containerd2_config());
                s.hide_host = true;
                Some(s)
            }
        }
    }
}

/// containerd 2's config (`version = 3`: the CRI settings moved to `io.containerd.cri.v1.*`).
pub fn containerd2_config() -> String {
    format!(
        r#"version = 3
# Only the native snapshotter works on the node's overlay; the others would only complain.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.erofs"]

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'native'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{IMAGE}'

[plugins.'io.containerd.cri.v1.runtime']
  # The machine's bounding set lacks CAP_SYS_RESOURCE: runc cannot write oom_score_adj -998.
  restrict_oom_score_adj = true

# The transfer service (which the CRI's image service needs) unpacks with overlayfs unless told
# otherwise, and without it fails to load, taking the CRI down with it.
[[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
  platform = 'linux/amd64'
  snapshotter = 'native'
"#
    )
}

/// containerd's config, in the node's /etc only.
pub fn containerd_config() -> String {
    format!(
        r#"version = 2
# Only the native snapshotter works on the node's overlay; the others would only complain.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.overlayfs"]

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  # The machine's bounding set lacks CAP_SYS_RESOURCE: runc cannot write oom_score_adj -998.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
"#
    )
}

/// The host's docker units (installed with containerd on the host): a containerd-only node.
pub const DOCKER_FILES: [&str; 5] = [
    "/usr/lib/systemd/system/docker.service",
    "/usr/lib/systemd/system/docker.socket",
    "/etc/init.d/docker",
    "/etc/systemd/system/multi-user.target.wants/docker.service",
    "/etc/systemd/system/sockets.target.wants/docker.socket",
];

/// A node running containerd; on every exit path its pods are removed, the node is powered
/// off and the pods' cgroups are removed from the host's hierarchies.
pub struct CriNode {
    pub sb: Option<Sandbox>,
    pub containerd: Containerd,
}

impl std::ops::Deref for CriNode {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        self.sb.as_ref().expect("node")
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        if let Some(sb) = self.sb.take() {
            // No panics here: this may run while a test panics.
            let _ = Command::new("nsenter")
                .args([
                    "-t",
                    &sb.pid.to_string(),
                    "-a",
                    "timeout",
                    "20",
                    PY,
                    "/mnt/harness/cri.py",
                    "clean",
                    LABEL,
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            drop(sb);
        }
        remove_cgroups();
    }
}

/// The pods' cgroups in the host's v1 hierarchies: only directories under our own parent, and
/// only with rmdir (a cgroup that still has tasks stays, and is reported).
pub fn remove_cgroups() {
    fn rm_tree(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm_tree(&e.path());
                }
            }
        }
        if let Err(e) = std::fs::remove_dir(dir) {
            let _ = writeln!(std::io::stderr(), "cri: cannot remove cgroup {}: {e}", dir.display());
        }
    }
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let p = h.path().join(CGROUP_PARENT);
        if p.is_dir() {
            rm_tree(&p);
        }
    }
}

pub fn leftover_cgroups() -> Vec<PathBuf> {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    hierarchies
        .flatten()
        .map(|h| h.path().join(CGROUP_PARENT))
        .filter(|p| p.exists())
        .collect()
}

/// The client, its messages and the image, built once into target/cri.
pub fn build() -> PathBuf {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/cri");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cri/build.sh");
    let r = Command::new(&script)
        .arg(&out)
        .arg(IMAGE)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        r.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    out
}

/// Whether everything the CRI node needs is installed (loud SKIP, or a failure as root).
pub fn prerequisites(test: &str) -> bool {
    let have = [
        "/usr/bin/containerd",
        "/usr/sbin/runc",
        "/usr/bin/ctr",
        "/bin/busybox",
        "/usr/bin/protoc",
    ]
    .iter()
    .all(|p| Path::new(p).exists())
        && Command::new(PY)
            .args(["-c", "import grpc, google.protobuf"])
            .status()
            .is_ok_and(|s| s.success());
    if !sandbox::require(
        test,
        have,
        "containerd, runc, busybox-static, protobuf-compiler, python3-grpcio or python3-protobuf is missing (scripts/deps.sh installs them)",
    ) {
        return false;
    }
    // The client is built with apt-get and the node needs root: nothing to do without it.
    sandbox::require(test, nix::unistd::geteuid().is_root(), "needs root")
}

/// A containerd-only node: the host's `/` overlaid, containerd configured in its /etc only.
pub fn setup() -> Setup {
    let mut setup = Setup::default()
        .with_overlay_root()
        .with_host_runtimes()
        .etc("containerd/config.toml", &containerd_config());
    for f in DOCKER_FILES {
        setup = setup.without(f);
    }
    setup
}

impl CriNode {
    pub fn boot(test: &str, setup: Setup) -> Option<Self> {
        Self::boot_with(test, Containerd::Host, setup)
    }

    /// A node running `containerd`, booted from `setup` (made by [`Containerd::setup`]).
    pub fn boot_with(test: &str, containerd: Containerd, setup: Setup) -> Option<Self> {
        Some(Self {
            sb: Some(sandbox::boot(test, setup)?),
            containerd,
        })
    }

    /// The client and the image, copied in.
    pub fn copy_client(&self, built: &Path) {
        for f in ["py/cri.py", "py/api_pb2.py", "image.tar"] {
            self.copy_in(&built.join(f));
        }
    }

    /// The image, in containerd's `k8s.io` namespace (containerd must run).
    pub fn import_image(&self) {
        let mut args = vec!["ctr", "-n", "k8s.io", "images", "import"];
        // containerd 2's ctr imports through the transfer service by default, which fails here
        // with "no unpack platforms defined"; --local imports as 1.6 did.
        if self.containerd == Containerd::Two {
            args.push("--local");
        }
        args.extend(["--snapshotter", "native", "/mnt/harness/image.tar"]);
        self.exec(&args).ok();
    }

    /// A running pod `namespace/pod` with one container `container` and `mounts` (host path,
    /// container path, CRI propagation name): its pod and container ids.
    pub fn start_pod(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        mounts: &[(&str, &str, &str)],
    ) -> (String, String) {
        let spec = serde_json::json!({
            "label": LABEL,
            "image": IMAGE,
            "cgroup_parent": format!("/{CGROUP_PARENT}"),
            "namespace": namespace,
            "pod": pod,
            "container": container,
            "mounts": mounts.iter().map(|(h, c, m)| [h, c, m]).collect::<Vec<_>>(),
        })
        .to_string();
        let r = self.exec(&[PY, "/mnt/harness/cri.py", "start", &spec]);
        assert_eq!(r.code, 0, "starting {namespace}/{pod}: {r:#?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
        (
            v["pod_id"].as_str().expect("pod id").to_string(),
            v["container_id"].as_str().expect("container id").to_string(),
        )
    }

    pub fn remove_pod(&self, pod_id: &str) {
        self.exec(&[PY, "/mnt/harness/cri.py", "remove", pod_id]).ok();
    }
}
