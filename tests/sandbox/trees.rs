//! The systemd version matrix's nodes: minimal Debian trees (scripts/trees.sh builds them under
//! target/trees/<suite>), each booted with its own systemd as PID 1, and the static mountprop
//! build that runs in all of them (Debian 11's glibc 2.31 is older than the host build needs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::Setup;

/// Where the static build is, when `scripts/test.sh` (or the caller) built it already.
pub const STATIC_BIN_ENV: &str = "MOUNTPROP_STATIC_BIN";
const MUSL: &str = "x86_64-unknown-linux-musl";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// One booted version: a suite's tree and the systemd in it.
pub struct Tree {
    pub suite: String,
    pub path: PathBuf,
    /// From the tree's libsystemd-shared-NNN.so, as `mountprop --root` reads it.
    pub version: u32,
}

impl Tree {
    /// A node of this tree: its own systemd, a tmpfs over it, the static binary, and
    /// cgroup2 where its systemd refuses the host's v1 hybrid layout.
    pub fn setup(&self) -> Setup {
        let mut s = Setup::default()
            .with_root(&self.path)
            .with_bin(&static_bin())
            .with_cgroup2(self.version >= 258);
        s.hide_host = true;
        s
    }
}

/// The tree `suite` (a suite, or `trixie-cri`: see scripts/trees.sh), built if it is not
/// there yet; waits for a build that scripts/test.sh started in the background (the script
/// holds a lock while it builds).
/// Without root (mmdebstrap and the boot need it): a loud SKIP and `None`, as for any sandbox.
pub fn tree(suite: &str) -> Option<Tree> {
    let root = nix::unistd::geteuid().is_root();
    if !super::require(
        &format!("matrix {suite}"),
        root,
        "the version matrix builds and boots trees as root",
    ) {
        return None;
    }
    let path = repo("target/trees").join(suite);
    if !path.join("usr/lib/systemd/systemd").exists() && !path.join("lib/systemd/systemd").exists() {
        let out = Command::new(repo("scripts/trees.sh"))
            .arg(suite)
            .output()
            .expect("run scripts/trees.sh");
        assert!(
            out.status.success(),
            "scripts/trees.sh {suite} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (version, _) =
        mountprop::image::systemd_version(&path).unwrap_or_else(|| panic!("no systemd in {}", path.display()));
    Some(Tree {
        suite: suite.to_string(),
        path,
        version,
    })
}

/// The static (musl) mountprop: `$MOUNTPROP_STATIC_BIN` when set, else built here once with
/// `cargo build --release --target x86_64-unknown-linux-musl` (quick when up to date).
pub fn static_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os(STATIC_BIN_ENV) {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "{STATIC_BIN_ENV}={} is not a file", p.display());
            return p;
        }
        let out = Command::new(env!("CARGO"))
            .args(["build", "--release", "--locked", "--target", MUSL])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo build --target {MUSL} (rustup target add {MUSL}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        repo(&format!("target/{MUSL}/release/mountprop"))
    })
    .clone()
}

/// The .deb scripts/package.sh builds (target/packages/mountprop_<version>-1_amd64.deb).
pub fn deb_path() -> PathBuf {
    repo(&format!(
        "target/packages/mountprop_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ))
}
