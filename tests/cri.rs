//! The CRI as referee: a real containerd (and runc) in the node, driven over its CRI socket as
//! the kubelet drives it, for many node layouts. Two tables, the same layouts: Debian 12's
//! containerd 1.6 in a node of the host's own `/`, and containerd 2 (Debian unstable's, in a
//! Debian 13 tree booted with its own systemd; see `crinode::Containerd`). mountprop judges the
//! modes at two points, `/` (a hostPath volume may be anywhere) and the kubelet root (pod
//! volumes), so each layout has a volume at each: a host path outside the kubelet root, held by
//! `/`, and one under the kubelet root. For each layout, one pod with a container per point and
//! propagation (PRIVATE, HOST_TO_CONTAINER, BIDIRECTIONAL): what containerd accepts or refuses,
//! what really propagates (a tmpfs mounted on the host and one mounted in the container, each
//! looked for on the other side), and what `check` and `probe` say. A mode works at a point
//! when its container runs AND the mounts propagate in the direction(s) it needs; it works on
//! the node when it works at both points; all must agree. The table is printed on every run.
//!
//! The client (`tests/cri/cri.py`) runs with Debian's python3-grpcio; its messages are built
//! from the CRI `api.proto` Debian ships (`tests/cri/build.sh`, into target/cri).

mod crinode;
mod sandbox;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crinode::{CGROUP_PARENT, Containerd, CriNode, IMAGE, KUBELET, LABEL, PY, build, leftover_cgroups, remove_cgroups};
use serde_json::Value;

/// The points the modes are judged at, each with a volume's host path there: a hostPath outside
/// the kubelet root (a log directory, as a log-cleaning DaemonSet mounts it), held by `/` in
/// every layout; and a pod volume under the kubelet root, as the kubelet lays one out.
const POINTS: [(&str, &str); 2] = [
    ("/", "/var/log/mountprop-cri"),
    (KUBELET, "/var/lib/kubelet/pods/mountprop-cri/volumes/vol"),
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
        // `/` is private as the node boots: the bind is private, then a peer group of its own.
        name: "/ private, kubelet root its own peer group",
        dropin: None,
        prepare: "mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-shared /var/lib/kubelet",
        started: "",
        then: None,
    },
    Layout {
        // Nothing under it can be bound, so no volume there starts, whatever its mode.
        name: "kubelet root unbindable",
        dropin: None,
        prepare: "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-unbindable /var/lib/kubelet",
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

/// The Kubernetes modes, in the order of the CRI's PRIVATE, HOST_TO_CONTAINER, BIDIRECTIONAL.
const MODES: [&str; 3] = ["None", "HostToContainer", "Bidirectional"];
const SHORT: [&str; 3] = ["None", "H2C", "Bidir"];

/// What containerd did with one mode, and what really propagated.
#[derive(Debug)]
struct CriMode {
    /// `CreateContainer` succeeded.
    accepted: bool,
    /// `StartContainer` succeeded too.
    started: bool,
    /// The call that failed, and containerd's words.
    error: Option<(String, String)>,
    host_to_container: Option<bool>,
    container_to_host: Option<bool>,
}

impl CriMode {
    /// The referee at one point: the container runs, and its mounts propagate in the
    /// direction(s) mode `i` needs (None: none).
    fn works(&self, i: usize) -> bool {
        let h = self.host_to_container == Some(true);
        let c = self.container_to_host == Some(true);
        self.started && [true, h, h && c][i]
    }

    fn cell(&self, i: usize) -> String {
        match (&self.error, i) {
            (Some((call, _)), _) if call == "CreateContainer" => "refused".into(),
            (Some(_), _) => "no start".into(),
            (None, 0) => "ok".into(),
            (None, _) => format!("{}/{}", yn(self.host_to_container), yn(self.container_to_host)),
        }
    }
}

/// One point's volume: its host path, the mount that holds it in containerd's namespace, and
/// what containerd did with each mode.
#[derive(Debug)]
struct PointRow {
    host_path: &'static str,
    /// Mount point and optional fields of the mount that holds the host path.
    mount: (String, String),
    /// PRIVATE, HOST_TO_CONTAINER, BIDIRECTIONAL.
    cri: [CriMode; 3],
}

#[derive(Debug)]
struct Row {
    layout: String,
    /// At `/` (a hostPath outside the kubelet root) and at the kubelet root.
    points: [PointRow; 2],
    /// Per mode (None, HostToContainer, Bidirectional): works, and why, from `check --json`.
    check: [(bool, String); 3],
    /// Exit codes of `check` with required_mode HostToContainer and Bidirectional.
    compliant: [i32; 2],
    probe: [(bool, String); 3],
}

impl Row {
    /// The referee: a mode works on the node when it works at both points.
    fn truth(&self) -> [bool; 3] {
        [0, 1, 2].map(|i| self.points.iter().all(|p| p.cri[i].works(i)))
    }

    /// Why this row disagrees, if it does.
    fn disagreements(&self) -> Vec<String> {
        let truth = self.truth();
        let yn = |b: bool| if b { "works" } else { "broken" };
        let mut out = Vec::new();
        for (i, mode) in MODES.into_iter().enumerate() {
            let broken_at: Vec<&str> = POINTS
                .iter()
                .zip(&self.points)
                .filter(|(_, p)| !p.cri[i].works(i))
                .map(|((name, _), _)| *name)
                .collect();
            let at = if broken_at.is_empty() {
                String::new()
            } else {
                format!(" (broken at {})", broken_at.join(" and "))
            };
            for (who, said) in [("check", &self.check[i]), ("probe", &self.probe[i])] {
                if said.0 != truth[i] {
                    out.push(format!(
                        "{mode}: {who} says {} ({}), the CRI and real mounts say {}{at}",
                        yn(said.0),
                        said.1,
                        yn(truth[i])
                    ));
                }
            }
            if i > 0 && self.compliant[i - 1] == 0 && !truth[i] {
                out.push(format!("{mode}: check with required_mode = {mode} exits 0 (compliant)"));
            }
        }
        out
    }
}

fn works_of(report: &Value) -> [(bool, String); 3] {
    MODES.map(|name| {
        let m = report["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mode"] == name))
            .unwrap_or_else(|| panic!("no mode {name}: {report:#}"));
        (m["works"] == true, m["reason"].as_str().unwrap_or_default().to_string())
    })
}

/// The mount that holds `path` in a mountinfo text: the last one on the longest prefix of it.
/// Written here, not taken from mountprop, which is under test.
fn holding_mount(mountinfo: &str, path: &str) -> (String, String) {
    let under = |mp: &str| mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
    let mut best: Option<(String, String)> = None;
    for l in mountinfo.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let Some(mp) = f.get(4).filter(|mp| under(mp)) else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp.to_string(), f.get(6..sep).unwrap_or_default().join(" ")));
        }
    }
    best.unwrap_or_else(|| panic!("no mount holds {path}"))
}

fn boot(test: &str, containerd: Containerd, layout: &Layout, built: &Path) -> Option<CriNode> {
    let mut setup = containerd
        .setup()?
        .etc("mountprop/config.toml", "restart = \"always\"\n")
        .etc(
            "mountprop/h2c.toml",
            "restart = \"always\"\nrequired_mode = \"host-to-container\"\n",
        );
    if let Some(d) = layout.dropin {
        setup = setup.file("containerd.service.d/10-layout.conf", d);
    }
    let node = CriNode::boot_with(test, containerd, setup)?;
    node.copy_client(built);
    let prepare = format!(
        "set -e; mkdir -p {KUBELET}; {}\nmkdir -p {} {}",
        if layout.prepare.is_empty() { ":" } else { layout.prepare },
        POINTS[0].1,
        POINTS[1].1
    );
    node.sh(&prepare).ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    if !layout.started.is_empty() {
        node.sh(layout.started).ok();
    }
    node.import_image();
    Some(node)
}

fn measure(node: &CriNode, layout: &str) -> Row {
    let spec = serde_json::json!({
        "tag": "r",
        "label": LABEL,
        "image": IMAGE,
        "host_paths": POINTS.map(|(_, path)| path),
        "container_path": "/vol",
        "cgroup_parent": format!("/{CGROUP_PARENT}"),
    })
    .to_string();
    let r = node.exec(&[PY, "/mnt/harness/cri.py", "run", &spec]);
    assert_eq!(r.code, 0, "{layout}: the CRI client failed: {r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{layout}: {e}: {r:#?}"));
    // The mounts as runc, which binds the volumes, sees them: in containerd's namespace.
    let seen = node.mountinfo(&node.main_pid("containerd.service").to_string());
    let points: Vec<PointRow> = POINTS
        .iter()
        .zip(v["points"].as_array().expect("points"))
        .map(|((point, host_path), p)| {
            let cri: Vec<CriMode> = p["modes"]
                .as_array()
                .expect("modes")
                .iter()
                .map(|m| CriMode {
                    accepted: m["accepted"] == true,
                    started: m["started"] == true,
                    error: m["error"]["details"].as_str().map(|d| {
                        (
                            m["error"]["call"].as_str().unwrap_or_default().to_string(),
                            d.to_string(),
                        )
                    }),
                    host_to_container: m["host_to_container"].as_bool(),
                    container_to_host: m["container_to_host"].as_bool(),
                })
                .collect();
            let row = PointRow {
                host_path,
                mount: holding_mount(&seen, host_path),
                cri: cri.try_into().expect("three modes"),
            };
            control(layout, point, &row);
            row
        })
        .collect();
    let points: [PointRow; 2] = points.try_into().expect("two points");
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
        points,
        check,
        compliant: [h2c_code, bidir_code],
        probe: works_of(&probe),
    }
}

/// The test bed itself, at one point (a failure here is the test's, not a verdict). The volume
/// is where the row says (`/` holds the host path outside the kubelet root). A PRIVATE volume
/// starts and never propagates. One failure of it is allowed, and is then the None mode's
/// verdict: on a mount that is unbindable where runc binds it, the bind fails (EINVAL) after
/// containerd accepted it. A refusal is containerd's propagation check, nothing else, and
/// whatever is accepted starts.
fn control(layout: &str, point: &str, p: &PointRow) {
    let (mount_point, fields) = &p.mount;
    assert!(
        mount_point == "/" || point != "/",
        "{layout}: {} is held by {mount_point}, not by /",
        p.host_path
    );
    let private = &p.cri[0];
    let unbindable = fields.split(' ').any(|f| f == "unbindable");
    match &private.error {
        Some((call, e)) => assert!(
            unbindable && private.accepted && call == "StartContainer" && e.contains("invalid argument"),
            "{layout}: at {point}, a PRIVATE volume failed (its mount: {fields:?}): {private:?}"
        ),
        None => assert_eq!(
            (private.started, private.host_to_container, private.container_to_host),
            (true, Some(false), Some(false)),
            "{layout}: at {point}, a PRIVATE volume propagated"
        ),
    }
    for (m, want) in p.cri[1..]
        .iter()
        .zip(["not a shared or slave mount", "not a shared mount"])
    {
        match &m.error {
            Some((call, e)) => assert!(
                !m.accepted && call == "CreateContainer" && e.contains(want),
                "{layout}: at {point}, not a propagation refusal: {m:?}"
            ),
            None => assert!(m.started, "{layout}: at {point}, accepted but not started: {m:?}"),
        }
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
    let triple = |w: [bool; 3]| w.map(|b| if b { "yes" } else { "no" }).join("/");
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut c = vec![r.layout.clone()];
            for p in &r.points {
                c.extend((0..3).map(|i| p.cri[i].cell(i)));
            }
            c.push(triple(r.truth()));
            c.push(triple(r.check.each_ref().map(|w| w.0)));
            c.push(triple(r.probe.each_ref().map(|w| w.0)));
            c.push(if r.disagreements().is_empty() { "yes" } else { "NO" }.into());
            c
        })
        .collect();
    let mut head = vec!["layout".to_string()];
    for p in ["/", "kubelet"] {
        head.extend(SHORT.map(|m| format!("{p} {m}")));
    }
    head.extend(["works", "check", "probe", "agree"].map(String::from));
    let mut width: Vec<usize> = head.iter().map(String::len).collect();
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
    let mut s = format!(
        "Volumes at / ({}) and at the kubelet root ({}): host->ctr/ctr->host as seen, ok (PRIVATE ran), \
         refused (CreateContainer), no start (StartContainer). works/check/probe: None/H2C/Bidir; \
         a mode works when it works at both points.\n",
        POINTS[0].1, POINTS[1].1
    );
    s += &line(&head);
    s += &line(&width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
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
        .flat_map(|r| &r.points)
        .flat_map(|p| &p.cri)
        .filter_map(|m| m.error.as_ref().map(|(call, e)| format!("{call}: {}", without_id(e))))
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
    referee("cri_referee_table", "cri", Containerd::Host);
}

#[test]
fn cri_referee_table_containerd2() {
    referee("cri_referee_table_containerd2", "cri2-", Containerd::Two);
}

/// One table at a time: both share the pods' cgroup parent in the host's hierarchies, which
/// each cleans up and checks between layouts (the sandbox lock alone would let the other
/// table's next node boot in between).
static ONE_TABLE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The table for one containerd; `prefix` names its sandboxes.
fn referee(test: &str, prefix: &str, containerd: Containerd) {
    if !crinode::prerequisites(test) {
        return;
    }
    let _one = ONE_TABLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // A test process that was killed outright left its pods' (empty) cgroups behind.
    remove_cgroups();
    let start = Instant::now();
    let built = build();
    // containerd 2's tree is built here on first use (scripts/trees.sh), so that its time is
    // told apart from the layouts'.
    if containerd.setup().is_none() {
        return;
    }
    let built_in = start.elapsed();
    let mut rows = Vec::new();
    let mut runtime = String::new();
    let mut waited = std::time::Duration::ZERO;
    for (i, layout) in LAYOUTS.iter().enumerate() {
        let Some(node) = boot(&format!("{prefix}{i}"), containerd, layout, &built) else {
            return;
        };
        waited += node.waited;
        if runtime.is_empty() {
            runtime = node.exec(&["containerd", "--version"]).ok().stdout.trim().to_string();
            // "containerd <module> <version> [<package version>]": the table is the one it says.
            let major = runtime.split_whitespace().nth(2).and_then(|v| v.split('.').next());
            let want = if containerd == Containerd::Two { "2" } else { "1" };
            assert_eq!(major, Some(want), "{test}: not the containerd it is for: {runtime}");
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
        "\nCRI referee ({runtime}; {} layouts in {:.1} s, of which {:.1} s building the client (and a tree) and {:.1} s waiting for other tests' sandboxes):\n{t}",
        rows.len(),
        start.elapsed().as_secs_f64(),
        built_in.as_secs_f64(),
        waited.as_secs_f64()
    );
    let bad: Vec<&str> = rows
        .iter()
        .filter(|r| !r.disagreements().is_empty())
        .map(|r| r.layout.trim())
        .collect();
    assert!(bad.is_empty(), "rows that disagree with the CRI: {bad:?}\n{t}");
}
