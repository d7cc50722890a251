//! The CRI as referee: Debian 12's real containerd (and runc) in the node, driven over its CRI
//! socket as the kubelet drives it, for many node layouts. For each layout: what containerd
//! accepts or refuses for a host-path volume under the kubelet root (PRIVATE, HOST_TO_CONTAINER,
//! BIDIRECTIONAL), what really propagates (a tmpfs mounted on the host and one mounted in the
//! container, each looked for on the other side), and what `check` and `probe` say. A mode
//! works when containerd accepts it AND the mounts propagate in the direction(s) it needs; all
//! must agree. The table is printed on every run.
//!
//! The client (`tests/cri/cri.py`) runs with Debian's python3-grpcio; its messages are built
//! from the CRI `api.proto` Debian ships (`tests/cri/build.sh`, into target/cri).

mod sandbox;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sandbox::{Sandbox, Setup};
use serde_json::Value;

const IMAGE: &str = "mountprop.invalid/busybox:1";
const KUBELET: &str = "/var/lib/kubelet";
/// The pod volume's host path, under the kubelet root, as the kubelet lays out a hostPath.
const HOST_PATH: &str = "/var/lib/kubelet/pods/mountprop-cri/volumes/vol";
/// Label of every pod the tests make, so that clean-up finds them all.
const LABEL: &str = "mountprop-cri-test";
/// The pods' cgroup parent: the cgroupfs driver puts it in the host's v1 hierarchies.
const CGROUP_PARENT: &str = "mountprop-cri-test";
const PY: &str = "/usr/bin/python3";

/// containerd's config, in the node's /etc only.
fn containerd_config() -> String {
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
const DOCKER_FILES: [&str; 5] = [
    "/usr/lib/systemd/system/docker.service",
    "/usr/lib/systemd/system/docker.socket",
    "/etc/init.d/docker",
    "/etc/systemd/system/multi-user.target.wants/docker.service",
    "/etc/systemd/system/sockets.target.wants/docker.socket",
];

const SHARE_ROOT: &str = "mount --make-rshared /";

/// One node layout. `prepare` runs in the node before containerd starts (the kubelet root
/// exists, the volume's directory is made after it), `started` after; `then` is a second row
/// on the same node.
struct Layout {
    name: &'static str,
    /// `containerd.service.d/10-layout.conf`.
    dropin: Option<&'static str>,
    prepare: &'static str,
    /// Runs once containerd runs, before the first row.
    started: &'static str,
    then: Option<(&'static str, &'static str)>,
}

const LAYOUTS: &[Layout] = &[
    Layout {
        name: "/ private",
        dropin: None,
        prepare: "",
        started: "",
        then: None,
    },
    Layout {
        name: "/ shared, containerd as shipped",
        dropin: None,
        prepare: SHARE_ROOT,
        started: "",
        then: None,
    },
    Layout {
        name: "/ shared, containerd MountFlags=slave",
        dropin: Some("[Service]\nMountFlags=slave\n"),
        prepare: SHARE_ROOT,
        started: "",
        then: Some((
            "  that node after apply (restarts containerd)",
            "/mnt/harness/mountprop apply",
        )),
    },
    Layout {
        name: "containerd MountFlags=private",
        dropin: Some("[Service]\nMountFlags=private\n"),
        prepare: SHARE_ROOT,
        started: "",
        then: None,
    },
    Layout {
        // systemd makes such a namespace a slave, then shared: a peer group of its own.
        name: "containerd PrivateTmp=yes",
        dropin: Some("[Service]\nPrivateTmp=yes\n"),
        prepare: SHARE_ROOT,
        started: "",
        then: None,
    },
    Layout {
        name: "kubelet root a private mount",
        dropin: None,
        prepare: "mount --make-rshared / && mount -t tmpfs kubelet /var/lib/kubelet && mount --make-private /var/lib/kubelet",
        started: "",
        then: None,
    },
    Layout {
        name: "kubelet root a slave",
        dropin: None,
        prepare: "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-slave /var/lib/kubelet",
        started: "",
        then: None,
    },
    Layout {
        name: "kubelet root shared and slave",
        dropin: None,
        prepare: "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-slave /var/lib/kubelet && mount --make-shared /var/lib/kubelet",
        started: "",
        then: None,
    },
    Layout {
        name: "kubelet root its own peer group",
        dropin: None,
        prepare: "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-private /var/lib/kubelet && mount --make-shared /var/lib/kubelet",
        started: "",
        then: None,
    },
    Layout {
        // A namespace copied from a private mount stays private when the host's turns shared.
        name: "/ made shared after containerd (slave) started",
        dropin: Some("[Service]\nMountFlags=slave\n"),
        prepare: "",
        started: SHARE_ROOT,
        then: None,
    },
    Layout {
        // The runtime's copy of a shared and slave mount, made a slave: a slave of its group.
        name: "kubelet root shared and slave, containerd MountFlags=slave",
        dropin: Some("[Service]\nMountFlags=slave\n"),
        prepare: "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-slave /var/lib/kubelet && mount --make-shared /var/lib/kubelet",
        started: "",
        then: None,
    },
    Layout {
        // A slave needs a master: a namespace copied while `/` was shared holds the peer group.
        name: "/ a slave (of another namespace)",
        dropin: None,
        prepare: "mount --make-rshared /
            setsid unshare --mount --propagation unchanged sleep 86400 </dev/null >/dev/null 2>&1 &
            while [ \"$(readlink /proc/$!/ns/mnt)\" = \"$(readlink /proc/self/ns/mnt)\" ]; do sleep 0.02; done
            mount --make-rslave /",
        started: "",
        then: None,
    },
];

/// What containerd did with one mode, and what really propagated.
#[derive(Debug)]
struct CriMode {
    accepted: bool,
    error: Option<String>,
    host_to_container: Option<bool>,
    container_to_host: Option<bool>,
}

#[derive(Debug)]
struct Row {
    layout: String,
    /// PRIVATE, HOST_TO_CONTAINER, BIDIRECTIONAL.
    cri: [CriMode; 3],
    /// [HostToContainer, Bidirectional] works, and why, from `check --json`.
    check: [(bool, String); 2],
    /// Exit codes of `check` with required_mode HostToContainer and Bidirectional.
    compliant: [i32; 2],
    probe: [(bool, String); 2],
}

impl Row {
    /// The referee: accepted by the CRI and propagating in the needed direction(s).
    fn truth(&self) -> [bool; 2] {
        let h = &self.cri[1];
        let b = &self.cri[2];
        [
            h.accepted && h.host_to_container == Some(true),
            b.accepted && b.host_to_container == Some(true) && b.container_to_host == Some(true),
        ]
    }

    /// Why this row disagrees, if it does.
    fn disagreements(&self) -> Vec<String> {
        let truth = self.truth();
        let mut out = Vec::new();
        for (i, mode) in ["HostToContainer", "Bidirectional"].into_iter().enumerate() {
            let yn = |b: bool| if b { "works" } else { "broken" };
            for (who, said) in [("check", &self.check[i]), ("probe", &self.probe[i])] {
                if said.0 != truth[i] {
                    out.push(format!(
                        "{mode}: {who} says {} ({}), the CRI and real mounts say {}",
                        yn(said.0),
                        said.1,
                        yn(truth[i])
                    ));
                }
            }
            if self.compliant[i] == 0 && !truth[i] {
                out.push(format!("{mode}: check with required_mode = {mode} exits 0 (compliant)"));
            }
        }
        out
    }
}

fn works_of(report: &Value) -> [(bool, String); 2] {
    ["HostToContainer", "Bidirectional"].map(|name| {
        let m = report["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mode"] == name))
            .unwrap_or_else(|| panic!("no mode {name}: {report:#}"));
        (m["works"] == true, m["reason"].as_str().unwrap_or_default().to_string())
    })
}

/// A node running containerd; on every exit path its pods are removed, the node is powered
/// off and the pods' cgroups are removed from the host's hierarchies.
struct CriNode {
    sb: Option<Sandbox>,
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
fn remove_cgroups() {
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

fn leftover_cgroups() -> Vec<PathBuf> {
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
fn build() -> PathBuf {
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

fn boot(test: &str, layout: &Layout, built: &Path) -> Option<CriNode> {
    let mut setup = Setup::default()
        .with_overlay_root()
        .with_host_runtimes()
        .etc("containerd/config.toml", &containerd_config())
        .etc("mountprop/config.toml", "restart = \"always\"\n")
        .etc(
            "mountprop/h2c.toml",
            "restart = \"always\"\nrequired_mode = \"host-to-container\"\n",
        );
    for f in DOCKER_FILES {
        setup = setup.without(f);
    }
    if let Some(d) = layout.dropin {
        setup = setup.file("containerd.service.d/10-layout.conf", d);
    }
    let node = CriNode {
        sb: Some(sandbox::boot(test, setup)?),
    };
    for f in ["py/cri.py", "py/api_pb2.py", "image.tar"] {
        node.copy_in(&built.join(f));
    }
    let prepare = format!(
        "set -e; mkdir -p {KUBELET}; {}\nmkdir -p {HOST_PATH}",
        if layout.prepare.is_empty() { ":" } else { layout.prepare }
    );
    node.sh(&prepare).ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    if !layout.started.is_empty() {
        node.sh(layout.started).ok();
    }
    node.exec(&[
        "ctr",
        "-n",
        "k8s.io",
        "images",
        "import",
        "--snapshotter",
        "native",
        "/mnt/harness/image.tar",
    ])
    .ok();
    Some(node)
}

/// containerd's words, short: what follows "but it is" in its refusal.
fn short(err: &Option<String>) -> String {
    match err {
        None => "accepted".into(),
        Some(e) => match e.split_once("but it is ") {
            Some((_, why)) => format!("refused: {why}"),
            None => format!("refused: {e}"),
        },
    }
}

fn measure(node: &CriNode, layout: &str) -> Row {
    let spec = serde_json::json!({
        "tag": "r",
        "label": LABEL,
        "image": IMAGE,
        "host_path": HOST_PATH,
        "container_path": "/vol",
        "cgroup_parent": format!("/{CGROUP_PARENT}"),
    })
    .to_string();
    let r = node.exec(&[PY, "/mnt/harness/cri.py", "run", &spec]);
    assert_eq!(r.code, 0, "{layout}: the CRI client failed: {r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{layout}: {e}: {r:#?}"));
    let modes = v["modes"].as_array().expect("modes");
    let cri: Vec<CriMode> = modes
        .iter()
        .map(|m| CriMode {
            accepted: m["accepted"] == true,
            error: m["error"]["details"].as_str().map(str::to_string),
            host_to_container: m["host_to_container"].as_bool(),
            container_to_host: m["container_to_host"].as_bool(),
        })
        .collect();
    let cri: [CriMode; 3] = cri.try_into().expect("three modes");
    // The test bed itself: a PRIVATE volume is always accepted and never propagates; a
    // refusal is containerd's propagation check, nothing else; what is accepted starts.
    let p = &cri[0];
    assert!(
        p.accepted && p.error.is_none(),
        "{layout}: PRIVATE must always work: {p:?}"
    );
    assert_eq!(
        (p.host_to_container, p.container_to_host),
        (Some(false), Some(false)),
        "{layout}: a PRIVATE volume propagated"
    );
    for (m, want) in cri[1..]
        .iter()
        .zip(["not a shared or slave mount", "not a shared mount"])
    {
        if let Some(e) = &m.error {
            assert!(
                !m.accepted && e.contains(want),
                "{layout}: not a propagation refusal: {m:?}"
            );
        }
    }
    let (bidir_code, report) = node.check_json(None);
    let check = works_of(&report);
    let (h2c_code, _) = node.check_json(Some("/etc/mountprop/h2c.toml"));
    let pr = node.mountprop(&["probe", "--json"]);
    let probe: Value =
        serde_json::from_str(&pr.stdout).unwrap_or_else(|e| panic!("{layout}: probe --json: {e}: {pr:#?}"));
    // The probe column is the probe's own: it reached containerd's namespace for both modes.
    for m in probe["modes"].as_array().expect("modes") {
        if m["mode"] != "None" {
            assert_eq!(m["decided_by"], "probe", "{layout}: the probe did not decide: {m:#}");
        }
    }
    Row {
        layout: layout.to_string(),
        cri,
        check,
        compliant: [h2c_code, bidir_code],
        probe: works_of(&probe),
    }
}

/// containerd's words without the container's id (one per refusal).
fn without_id(e: &str) -> String {
    e.split(' ')
        .map(|w| {
            let id = w.trim_matches('"');
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                "\"<id>\""
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn yn(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "y",
        Some(false) => "n",
        None => "-",
    }
}

fn table(rows: &[Row]) -> String {
    let pair = |w: &[(bool, String); 2]| {
        format!(
            "H2C {} Bidir {}",
            if w[0].0 { "yes" } else { "no" },
            if w[1].0 { "yes" } else { "no" }
        )
    };
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let real = format!(
                "H2C {}/{} Bidir {}/{}",
                yn(r.cri[1].host_to_container),
                yn(r.cri[1].container_to_host),
                yn(r.cri[2].host_to_container),
                yn(r.cri[2].container_to_host)
            );
            let bad = r.disagreements();
            [
                r.layout.clone(),
                short(&r.cri[1].error),
                short(&r.cri[2].error),
                real,
                pair(&r.check),
                pair(&r.probe),
                if bad.is_empty() { "yes".into() } else { "NO".into() },
            ]
        })
        .collect();
    let head = [
        "layout",
        "CRI H2C",
        "CRI Bidir",
        "real host->ctr / ctr->host",
        "check",
        "probe",
        "agree",
    ];
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::from("|");
        for (w, v) in width.iter().zip(c) {
            let _ = write!(s, " {v:w$} |");
        }
        s.push('\n');
        s
    };
    let mut s = line(&head.map(String::from));
    s += &line(&width.map(|w| "-".repeat(w)));
    for c in &cells {
        s += &line(c);
    }
    for r in rows {
        for d in r.disagreements() {
            let _ = writeln!(s, "DISAGREES: {}: {d}", r.layout.trim());
        }
    }
    let mut words: Vec<String> = rows
        .iter()
        .flat_map(|r| r.cri.iter().filter_map(|m| m.error.as_deref().map(without_id)))
        .collect();
    words.sort();
    words.dedup();
    for w in words {
        let _ = writeln!(s, "containerd: {w}");
    }
    s
}

#[test]
fn cri_referee_table() {
    let test = "cri_referee_table";
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
        return;
    }
    // The client is built with apt-get and the node needs root: nothing to do without it.
    if !sandbox::require(test, nix::unistd::geteuid().is_root(), "needs root") {
        return;
    }
    // A test process that was killed outright left its pods' (empty) cgroups behind.
    remove_cgroups();
    let start = Instant::now();
    let built = build();
    let built_in = start.elapsed();
    let mut rows = Vec::new();
    let mut runtime = String::new();
    for (i, layout) in LAYOUTS.iter().enumerate() {
        let Some(node) = boot(&format!("cri{i}"), layout, &built) else {
            return;
        };
        if runtime.is_empty() {
            runtime = node.exec(&["containerd", "--version"]).ok().stdout.trim().to_string();
        }
        rows.push(measure(&node, layout.name));
        if let Some((name, action)) = layout.then {
            node.sh(action).ok();
            rows.push(measure(&node, name));
        }
        drop(node);
        assert_eq!(leftover_cgroups(), Vec::<PathBuf>::new(), "pod cgroups left behind");
    }
    let t = table(&rows);
    let _ = writeln!(
        std::io::stderr(),
        "\nCRI referee ({runtime}; {} layouts in {:.1} s, of which {:.1} s building the client):\n{t}",
        rows.len(),
        start.elapsed().as_secs_f64(),
        built_in.as_secs_f64()
    );
    let bad: Vec<&str> = rows
        .iter()
        .filter(|r| !r.disagreements().is_empty())
        .map(|r| r.layout.trim())
        .collect();
    assert!(bad.is_empty(), "rows that disagree with the CRI: {bad:?}\n{t}");
}
