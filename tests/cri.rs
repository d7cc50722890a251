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

mod crinode;
mod sandbox;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crinode::{CGROUP_PARENT, CriNode, HOST_PATH, IMAGE, KUBELET, LABEL, PY};
use serde_json::Value;

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

fn boot(test: &str, layout: &Layout, built: &Path) -> Option<CriNode> {
    let mut setup = crinode::setup()
        .etc("mountprop/config.toml", "restart = \"always\"\n")
        .etc(
            "mountprop/h2c.toml",
            "restart = \"always\"\nrequired_mode = \"host-to-container\"\n",
        );
    if let Some(d) = layout.dropin {
        setup = setup.file("containerd.service.d/10-layout.conf", d);
    }
    let node = CriNode::boot(test, setup)?;
    node.copy_client(built);
    let prepare = format!(
        "set -e; mkdir -p {KUBELET}; {}\nmkdir -p {HOST_PATH}",
        if layout.prepare.is_empty() { ":" } else { layout.prepare }
    );
    node.sh(&prepare).ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    if !layout.started.is_empty() {
        node.sh(layout.started).ok();
    }
    node.import_image();
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
    if !crinode::prerequisites(test) {
        return;
    }
    // A test process that was killed outright left its pods' (empty) cgroups behind.
    crinode::remove_cgroups();
    let start = Instant::now();
    let built = crinode::build();
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
        assert_eq!(
            crinode::leftover_cgroups(),
            Vec::<PathBuf>::new(),
            "pod cgroups left behind"
        );
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
