//! Stale containers on a real node: Debian's containerd driven over its CRI (the CRI test
//! bed, `tests/crinode`), pods that keep running while the node is fixed or broken under them.
//! What mountprop lists is checked against real mounts: a tmpfs mounted on the host under the
//! volume's source, looked for in the container's own mount table.

mod crinode;
mod sandbox;

use std::time::{Duration, Instant};

use crinode::{Containerd, CriNode, KUBELET};
use serde_json::Value;

const H2C: &str = "PROPAGATION_HOST_TO_CONTAINER";
const BIDIR: &str = "PROPAGATION_BIDIRECTIONAL";
const PRIVATE: &str = "PROPAGATION_PRIVATE";
const LOGS: &str = "/var/lib/kubelet/pods/log-cleaner/volumes/logs";
const DATA: &str = "/var/lib/kubelet/pods/csi-node/volumes/data";
const WEB: &str = "/var/lib/kubelet/pods/web/volumes/cache";

/// `(label, destination, gets, decided by the live check)` of every stale volume in a report.
fn stale(report: &Value) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for c in report["stale_containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no stale_containers: {report:#}"))
    {
        let label = format!(
            "{}/{}/{}",
            c["pod_namespace"].as_str().unwrap_or("-"),
            c["pod_name"].as_str().unwrap_or("-"),
            c["container"].as_str().unwrap_or("-")
        );
        for v in c["volumes"].as_array().expect("volumes") {
            out.push((
                label.clone(),
                v["destination"].as_str().unwrap_or_default().to_string(),
                v["gets"].as_str().unwrap_or_default().to_string(),
                v["probed"] == true,
            ));
        }
    }
    out.sort();
    out
}

fn labels(report: &Value) -> Vec<String> {
    let mut l: Vec<String> = stale(report).into_iter().map(|s| s.0).collect();
    l.dedup();
    l
}

fn json(node: &CriNode, args: &[&str]) -> (i32, Value) {
    let r = node.mountprop(args);
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {r:#?}"));
    (r.code, v)
}

/// The container's init pid, from containerd's task bundle (as mountprop finds it).
fn pid_of(node: &CriNode, ctr: &str) -> String {
    node.read(&format!(
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ctr}/init.pid"
    ))
    .unwrap_or_else(|| panic!("no init.pid for {ctr}"))
    .trim()
    .to_string()
}

/// The referee: a tmpfs mounted on the host under `source` appears in the container's table.
fn receives(node: &CriNode, ctr: &str, source: &str) -> bool {
    let pid = pid_of(node, ctr);
    let r = node.sh(&format!(
        "set -e; d={source}/referee; mkdir -p $d; mount -t tmpfs -o size=4k referee-{ctr} $d; \
         n=$(grep -c ' referee-{ctr} ' /proc/{pid}/mountinfo || true); umount $d; rmdir $d; echo $n"
    ));
    assert_eq!(r.code, 0, "{r:#?}");
    r.stdout.trim() != "0"
}

/// The propagation fields of the mount at `point` in `pid`'s table.
fn prop(node: &CriNode, pid: &str, point: &str) -> String {
    sandbox::Sandbox::propagation_of(&node.mountinfo(pid), point)
}

/// A containerd node, `prepare` run before containerd starts; `daemon`: the shipped
/// mountprop.service installed (not started).
fn boot(test: &str, containerd: Containerd, prepare: &str, config: &str, daemon: bool) -> Option<CriNode> {
    let built = crinode::build();
    let mut setup = containerd.setup()?.etc("mountprop/config.toml", config);
    if daemon {
        setup = setup.file("mountprop.service", &daemon_unit());
    }
    let node = CriNode::boot_with(test, containerd, setup)?;
    node.copy_client(&built);
    node.sh(&format!("set -e; mkdir -p {KUBELET} {LOGS} {DATA} {WEB}; {prepare}"))
        .ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    node.import_image();
    Some(node)
}

/// Pods started while the kubelet root was only a slave (the CRI accepts HostToContainer
/// there): after `apply` fixes the node, the old log cleaner still receives nothing and is
/// listed by pod and container, everywhere; the pod with a private volume never is; once the
/// pod is recreated, it is gone from the list.
#[test]
fn stale_pods_started_on_a_broken_node() {
    started_on_a_broken_node("stale_pods_started_on_a_broken_node", "stale1", Containerd::Host);
}

/// The same with containerd 2 (its tasks' state and specs, as mountprop reads them).
#[test]
fn stale_pods_started_on_a_broken_node_containerd2() {
    started_on_a_broken_node(
        "stale_pods_started_on_a_broken_node_containerd2",
        "stale1-2",
        Containerd::Two,
    );
}

fn started_on_a_broken_node(test: &str, sandbox: &str, containerd: Containerd) {
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let start = Instant::now();
    let Some(node) = boot(
        sandbox,
        containerd,
        "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-slave /var/lib/kubelet",
        "restart = \"always\"\n[[paths]]\npath = \"/\"\n[[paths]]\npath = \"/var/lib/kubelet\"\n",
        false,
    ) else {
        return;
    };
    let booted = Instant::now();
    let (pod, ctr) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, "/logs", H2C)]);
    let (_, web) = node.start_pod("default", "web", "app", &[(WEB, "/cache", PRIVATE)]);
    assert!(
        !receives(&node, &ctr, LOGS),
        "the test bed: the old container receives nothing"
    );

    let (code, before) = json(&node, &["check", "--json"]);
    assert_eq!(code, 1, "{before:#}");
    assert_eq!(labels(&before), ["kube-system/log-cleaner/cleaner"], "{before:#}");

    // apply fixes the node, not the container: it is still listed, the node is still not
    // compliant (exit 1), and the remedy is named.
    let r = node.mountprop(&["apply"]);
    eprintln!("apply on the node with the old log cleaner:\n{}", r.stdout);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.contains("make /var/lib/kubelet rshared"), "{}", r.stdout);
    assert!(r.stdout.contains("STALE CONTAINERS (1)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("kube-system/log-cleaner/cleaner (containerd "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "/logs from /var/lib/kubelet/pods/log-cleaner/volumes/logs: asked HostToContainer (rslave), gets NOTHING"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("remedy: kubectl delete pod -n kube-system log-cleaner"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("default/web"),
        "a private volume is never listed: {}",
        r.stdout
    );
    assert!(!receives(&node, &ctr, LOGS), "the fix did not reach the old container");
    let (code, after) = json(&node, &["check", "--json"]);
    assert_eq!(code, 1, "{after:#}");
    assert_eq!(status_of(&after, KUBELET), "ok", "{after:#}");
    assert_eq!(
        stale(&after),
        [(
            "kube-system/log-cleaner/cleaner".to_string(),
            "/logs".to_string(),
            "nothing".to_string(),
            false
        )],
        "{after:#}"
    );
    let line = node.mountprop(&["check", "--oneline"]).stdout;
    assert!(
        line.starts_with("DRIFT: stale container kube-system/log-cleaner/cleaner: /logs from ")
            && line
                .trim_end()
                .ends_with("kubectl delete pod -n kube-system log-cleaner"),
        "{line}"
    );
    // The live check says the same, by itself.
    let (code, probed) = json(&node, &["probe", "--json"]);
    assert_eq!(code, 1, "{probed:#}");
    assert_eq!(
        stale(&probed),
        [(
            "kube-system/log-cleaner/cleaner".to_string(),
            "/logs".to_string(),
            "nothing".to_string(),
            true
        )],
        "{probed:#}"
    );
    assert!(
        !node
            .sh(&format!("ls -a {LOGS} {WEB}"))
            .stdout
            .contains(".mountprop-probe"),
        "the live check left its scratch directory"
    );

    // Recreated (what kubectl delete pod leads to): a fresh copy of the fixed mount.
    node.remove_pod(&pod);
    let (_, ctr2) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, "/logs", H2C)]);
    assert!(receives(&node, &ctr2, LOGS), "the test bed: the new container receives");
    let (code, fresh) = json(&node, &["check", "--json"]);
    assert_eq!(stale(&fresh), [], "{fresh:#}");
    assert_eq!(fresh["containers_looked_at"], 1, "{fresh:#}");
    assert_eq!(code, 0, "{fresh:#}");
    let (_, web_after) = json(&node, &["probe", "--json"]);
    assert_eq!(stale(&web_after), [], "{web_after:#}");
    assert!(
        !receives(&node, &web, WEB),
        "the test bed: a private volume receives nothing"
    );
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
    eprintln!(
        "{test}: {:.1} s, {:.1} s of it on the node",
        start.elapsed().as_secs_f64(),
        booted.elapsed().as_secs_f64()
    );
}

fn status_of(report: &Value, subject: &str) -> String {
    sandbox::Sandbox::verdict(report, subject)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The shipped unit, with the binary where the node sees it.
fn daemon_unit() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("systemd/mountprop.service");
    text.replace("/usr/bin/mountprop", sandbox::NODE_BIN)
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A fixed node with the daemon running, a HostToContainer and a Bidirectional pod: none is
/// listed. Then `/` is made private and rshared again: `/` is shared once more, yet both pods
/// lost the host's peer group for good, and the daemon's STATUS, state.json and metric, and
/// check and probe, list both.
#[test]
fn stale_pods_after_a_flip_of_root() {
    after_a_flip_of_root("stale_pods_after_a_flip_of_root", "stale2", Containerd::Host);
}

#[test]
fn stale_pods_after_a_flip_of_root_containerd2() {
    after_a_flip_of_root(
        "stale_pods_after_a_flip_of_root_containerd2",
        "stale2-2",
        Containerd::Two,
    );
}

fn after_a_flip_of_root(test: &str, sandbox: &str, containerd: Containerd) {
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let start = Instant::now();
    let config = "restart = \"always\"\n[daemon]\nmetrics_file = \"/var/lib/node-exporter/mountprop.prom\"\n";
    let Some(node) = boot(sandbox, containerd, "mount --make-rshared /", config, true) else {
        return;
    };
    let booted = Instant::now();
    node.exec(&["systemctl", "start", "mountprop.service"]).ok();
    let (_, logs) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, "/logs", H2C)]);
    let (_, data) = node.start_pod("storage", "csi-node", "driver", &[(DATA, "/data", BIDIR)]);
    let (_, web) = node.start_pod("default", "web", "app", &[(WEB, "/cache", PRIVATE)]);
    assert!(
        receives(&node, &logs, LOGS) && receives(&node, &data, DATA),
        "the test bed"
    );
    let (code, fine) = json(&node, &["check", "--json"]);
    assert_eq!((code, stale(&fine)), (0, vec![]), "{fine:#}");
    assert_eq!(fine["containers_looked_at"], 2, "{fine:#}");
    let root_before = prop(&node, "1", "/");

    node.sh("mount --make-private / && mount --make-rshared /").ok();
    let root_after = prop(&node, "1", "/");
    assert!(root_after.starts_with("shared:"), "{root_after}");
    assert!(
        !receives(&node, &logs, LOGS) && !receives(&node, &data, DATA),
        "the test bed: both lost it"
    );
    eprintln!(
        "after the flip (/ was {root_before}, is {root_after}):\n{}",
        node.mountprop(&["check"]).stdout
    );
    let (code, flipped) = json(&node, &["check", "--json"]);
    assert_eq!(code, 1, "{flipped:#}");
    assert_eq!(status_of(&flipped, "/"), "ok", "{flipped:#}");
    let got = stale(&flipped);
    assert_eq!(
        got.iter().map(|s| (s.0.as_str(), s.2.as_str())).collect::<Vec<_>>(),
        [
            ("kube-system/log-cleaner/cleaner", "nothing"),
            ("storage/csi-node/driver", "nothing")
        ],
        "/ was {root_before}, is {root_after}; the cleaner's /logs is {}, the driver's /data {}: {flipped:#}",
        prop(&node, &pid_of(&node, &logs), "/logs"),
        prop(&node, &pid_of(&node, &data), "/data"),
    );
    let (code, probed) = json(&node, &["probe", "--json"]);
    assert_eq!(code, 1, "{probed:#}");
    let got = stale(&probed);
    assert_eq!(got.len(), 2, "{probed:#}");
    assert!(got.iter().all(|s| s.3 && s.2 == "nothing"), "{got:?}");

    // The daemon: its next full round after the flip (the paths guard saw `/` change) lists both.
    wait_for(
        "the daemon's STATUS to list the stale pods",
        Duration::from_secs(20),
        || {
            node.show("mountprop.service", "StatusText")
                .starts_with("DRIFT: stale container kube-system/log-cleaner/cleaner")
        },
    );
    let status = node.show("mountprop.service", "StatusText");
    assert!(
        status.contains("(+1 more)") && status.contains("kubectl delete pod -n kube-system log-cleaner"),
        "{status}"
    );
    let st: Value =
        serde_json::from_str(&node.read("/run/mountprop/state.json").unwrap_or_default()).expect("state.json");
    let names: Vec<&str> = st["containers"]["stale"]
        .as_array()
        .expect("containers.stale")
        .iter()
        .map(|c| c["pod_name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["log-cleaner", "csi-node"], "{st:#}");
    assert_eq!(st["status"], "drift");
    let prom = node.read("/var/lib/node-exporter/mountprop.prom").unwrap_or_default();
    assert!(prom.lines().any(|l| l == "mountprop_containers_stale 2"), "{prom}");
    // promtool lints a textfile with stale containers and drift too.
    sandbox::scenario::promtool_check_metrics(&prom);
    let human = node.mountprop(&["status"]).stdout;
    assert!(
        human.contains("STALE CONTAINERS (2)") && !human.contains("default/web"),
        "{human}"
    );
    assert!(!stale(&probed).iter().any(|s| s.0.contains("web")));
    let _ = web;
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
    eprintln!(
        "{test}: {:.1} s, {:.1} s of it on the node",
        start.elapsed().as_secs_f64(),
        booted.elapsed().as_secs_f64()
    );
}

/// containerd with `PrivateTmp=yes`: its namespace is shared in a group of its own and a slave of
/// the host's. A HostToContainer pod receives through it (the chain is followed through the
/// runtime's group) and is not listed; a Bidirectional pod, accepted by the CRI, only receives
/// and is listed as such from the start. After a flip of `/`, the runtime's group has lost its
/// master: both are listed.
#[test]
fn stale_pods_behind_a_runtime_in_a_namespace_of_its_own() {
    behind_a_runtime_in_a_namespace_of_its_own(
        "stale_pods_behind_a_runtime_in_a_namespace_of_its_own",
        "stale3",
        Containerd::Host,
    );
}

#[test]
fn stale_pods_behind_a_runtime_in_a_namespace_of_its_own_containerd2() {
    behind_a_runtime_in_a_namespace_of_its_own(
        "stale_pods_behind_a_runtime_in_a_namespace_of_its_own_containerd2",
        "stale3-2",
        Containerd::Two,
    );
}

fn behind_a_runtime_in_a_namespace_of_its_own(test: &str, sandbox: &str, containerd: Containerd) {
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let built = crinode::build();
    let Some(setup) = containerd.setup() else {
        return;
    };
    let setup = setup
        .etc("mountprop/config.toml", "restart = \"never\"\n")
        .file("containerd.service.d/10-layout.conf", "[Service]\nPrivateTmp=yes\n");
    let Some(node) = CriNode::boot_with(sandbox, containerd, setup) else {
        return;
    };
    let booted = Instant::now();
    node.copy_client(&built);
    node.sh(&format!("set -e; mount --make-rshared /; mkdir -p {LOGS} {DATA}"))
        .ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    node.import_image();
    let (_, logs) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, "/logs", H2C)]);
    let (_, data) = node.start_pod("storage", "csi-node", "driver", &[(DATA, "/data", BIDIR)]);
    assert!(
        receives(&node, &logs, LOGS) && receives(&node, &data, DATA),
        "the test bed"
    );
    let (_, before) = json(&node, &["check", "--json"]);
    assert_eq!(
        stale(&before)
            .iter()
            .map(|s| (s.0.as_str(), s.2.as_str()))
            .collect::<Vec<_>>(),
        [("storage/csi-node/driver", "receives-only")],
        "the cleaner's /logs is {}, the driver's /data {}: {before:#}",
        prop(&node, &pid_of(&node, &logs), "/logs"),
        prop(&node, &pid_of(&node, &data), "/data"),
    );
    let root_before = prop(&node, "1", "/");
    node.sh("mount --make-private / && mount --make-rshared /").ok();
    let root_after = prop(&node, "1", "/");
    assert!(
        !receives(&node, &logs, LOGS),
        "the test bed: the runtime's group lost the host"
    );
    let (code, after) = json(&node, &["check", "--json"]);
    assert_eq!(code, 1, "{after:#}");
    assert_eq!(
        stale(&after)
            .iter()
            .map(|s| (s.0.as_str(), s.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("kube-system/log-cleaner/cleaner", "nothing"),
            ("storage/csi-node/driver", "nothing")
        ],
        "{after:#}"
    );
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
    eprintln!(
        "{test}: / was {root_before}, is {root_after}; {:.1} s on the node",
        booted.elapsed().as_secs_f64()
    );
}

/// The daemon tracks containers as they come and go, with no timer round (`interval_secs` is a
/// day): a pod started after it is judged; a flip of `/` lists it as stale at once; a removed
/// pod leaves the report; and a container whose process exited is not mistaken for the process
/// that gets its pid next.
#[test]
fn containers_tracked_as_they_come_and_go() {
    tracked_as_they_come_and_go("containers_tracked_as_they_come_and_go", "stale4", Containerd::Host);
}

#[test]
fn containers_tracked_as_they_come_and_go_containerd2() {
    tracked_as_they_come_and_go(
        "containers_tracked_as_they_come_and_go_containerd2",
        "stale4-2",
        Containerd::Two,
    );
}

fn tracked_as_they_come_and_go(test: &str, sandbox: &str, containerd: Containerd) {
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let start = Instant::now();
    // CRI-O's run root exists (as on a CRI-O node) for the pid-reuse part below.
    let crio = "/run/containers/storage/overlay-containers";
    let config = "restart = \"always\"\n[daemon]\ninterval_secs = 86400\nmetrics_file = \"/var/lib/node-exporter/mountprop.prom\"\n";
    let Some(node) = boot(
        sandbox,
        containerd,
        &format!("mount --make-rshared / && mkdir -p {crio}"),
        config,
        true,
    ) else {
        return;
    };
    let booted = Instant::now();
    node.exec(&["systemctl", "start", "mountprop.service"]).ok();
    let state = || -> Value {
        serde_json::from_str(&node.read("/run/mountprop/state.json").unwrap_or_default()).unwrap_or(Value::Null)
    };
    let looked_at = || state()["containers"]["looked_at"].as_u64();
    let stale_names = || -> Vec<String> {
        state()["containers"]["stale"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["pod_name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("the daemon's first round", Duration::from_secs(10), || {
        looked_at() == Some(0)
    });

    // A pod started after the daemon: judged on its own events.
    let t = Instant::now();
    let (pod, logs) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, "/logs", H2C)]);
    let started = t.elapsed();
    wait_for("the new pod to be judged", Duration::from_secs(10), || {
        looked_at() == Some(1)
    });
    let judged = t.elapsed();
    assert!(stale_names().is_empty(), "{:#}", state());

    // A flip of `/`: reported in STATUS, state.json and the metric.
    let t = Instant::now();
    node.sh("mount --make-private / && mount --make-rshared /").ok();
    wait_for("the flip in STATUS", Duration::from_secs(10), || {
        node.show("mountprop.service", "StatusText")
            .starts_with("DRIFT: stale container kube-system/log-cleaner/cleaner")
    });
    let flip = t.elapsed();
    assert!(
        !receives(&node, &logs, LOGS),
        "the test bed: the cleaner lost the host's group"
    );
    assert_eq!(stale_names(), ["log-cleaner"], "{:#}", state());
    let prom = node.read("/var/lib/node-exporter/mountprop.prom").unwrap_or_default();
    assert!(prom.lines().any(|l| l == "mountprop_containers_stale 1"), "{prom}");

    // The pod removed: gone from the report, with no timer round.
    let t = Instant::now();
    node.remove_pod(&pod);
    wait_for("the removed pod to leave the report", Duration::from_secs(10), || {
        looked_at() == Some(0) && stale_names().is_empty()
    });
    let removed = t.elapsed();
    assert!(
        node.show("mountprop.service", "StatusText").starts_with("ok"),
        "{}",
        node.show("mountprop.service", "StatusText")
    );

    // A container in CRI-O's layout whose process is a private copy of the host's mounts: stale.
    let bundle = format!("{crio}/0123456789ab/userdata");
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "mounts": [{"destination": "/logs", "type": "bind", "source": "/var/log", "options": ["rbind", "rslave"]}],
        "annotations": {
            "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.name": "reuse",
            "io.kubernetes.container.name": "app"
        }
    });
    let spawn = "setsid unshare -m --propagation private sleep 100000 </dev/null >/dev/null 2>&1 & echo $!";
    let r = node.sh(&format!(
        "set -e; mkdir -p {bundle}; echo '{spec}' > {bundle}/config.json; p=$({spawn}); \
         echo $p > {bundle}/.pid; mv {bundle}/.pid {bundle}/pidfile; echo $p"
    ));
    let pid: u32 = r.stdout.trim().parse().unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    wait_for("the CRI-O container listed", Duration::from_secs(10), || {
        stale_names() == ["reuse"]
    });
    let t = Instant::now();
    node.sh(&format!("kill {pid}")).ok();
    wait_for(
        "the exited container to leave the report",
        Duration::from_secs(10),
        || stale_names().is_empty() && looked_at() == Some(0),
    );
    let exited = t.elapsed();
    // Its pid, given to another process in a mount namespace of its own (ns_last_pid of the
    // node's PID namespace), while the bundle stays.
    let mut reused = false;
    for _ in 0..20 {
        let r = node.sh(&format!("echo {} > /proc/sys/kernel/ns_last_pid; {spawn}", pid - 1));
        let got: u32 = r.stdout.trim().parse().unwrap_or(0);
        if got == pid {
            reused = true;
            break;
        }
        node.sh(&format!("kill {got}")).ok();
    }
    assert!(reused, "could not give pid {pid} to a new process");
    // Wake the daemon (a task directory changes) and make it go round (SIGHUP) twice.
    node.sh(&format!("mkdir {crio}/wake && rmdir {crio}/wake")).ok();
    for _ in 0..2 {
        let before = state()["checks"].clone();
        node.exec(&["systemctl", "reload", "mountprop.service"]).ok();
        wait_for("a round after the reload", Duration::from_secs(10), || {
            state()["checks"] != before
        });
    }
    assert_eq!(stale_names(), Vec::<String>::new(), "{:#}", state());
    assert_eq!(looked_at(), Some(0), "{:#}", state());
    // The one-shot check is not fooled either: the process started after the pid file.
    let (_, checked) = json(&node, &["check", "--json"]);
    assert_eq!(checked["containers_looked_at"], 0, "{checked:#}");
    node.sh(&format!("kill {pid}")).ok();

    eprintln!(
        "containers tracked: pod started in {:.2} s, judged {:.2} s after the start; flip in STATUS after {:.3} s; \
         removed pod gone after {:.2} s; exited process gone after {:.3} s",
        started.as_secs_f64(),
        judged.as_secs_f64(),
        flip.as_secs_f64(),
        removed.as_secs_f64(),
        exited.as_secs_f64()
    );
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
    eprintln!(
        "{test}: {:.1} s, {:.1} s of it on the node",
        start.elapsed().as_secs_f64(),
        booted.elapsed().as_secs_f64()
    );
}
