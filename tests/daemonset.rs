//! The DaemonSet delivery on a real node: the OCI image that `scripts/package.sh image` builds,
//! imported into the node's containerd and run over the CRI with deploy/daemonset.yaml's
//! settings (hostPID, hostNetwork, privileged, its command, env and probes), as the kubelet
//! would run it. On a broken node (containerd with MountFlags=slave, `/` private) the pod
//! enters the host's mount namespace, writes the host's drop-in and makes the host's `/`
//! rshared, answers its probes, and leaves the node fixed and nothing of its own behind when
//! the pod is removed.

mod crinode;
mod sandbox;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crinode::{CGROUP_PARENT, CriNode, LABEL, PY};
use sandbox::scenario::{root_propagation, wait_until};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const DROPIN: &str = "/etc/systemd/system/containerd.service.d/90-mountprop.conf";

fn archive() -> Option<PathBuf> {
    let a = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/packages/mountprop_{VERSION}_oci.tar"));
    if a.is_file() {
        return Some(a);
    }
    assert!(
        std::env::var_os("MOUNTPROP_REQUIRE_PACKAGES").is_none(),
        "no image archive {} (scripts/package.sh image builds it)",
        a.display()
    );
    eprintln!(
        "\n*** SKIP daemonset: no {}; run scripts/package.sh image (scripts/test.sh does) ***\n",
        a.display()
    );
    None
}

/// ExecSync in the pod's container: (exit code, stdout).
fn exec_in(node: &CriNode, ctr: &str, cmd: &serde_json::Value) -> (i64, String) {
    let r = node.exec(&[PY, "/mnt/harness/cri.py", "exec", ctr, &cmd.to_string()]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    (
        v["code"].as_i64().unwrap_or(-1),
        format!(
            "{}{}",
            v["stdout"].as_str().unwrap_or(""),
            v["stderr"].as_str().unwrap_or("")
        ),
    )
}

#[test]
fn the_image_as_a_hostpid_pod_fixes_the_host() {
    let test = "daemonset_pod_fixes_the_host";
    if !crinode::prerequisites(test) {
        return;
    }
    let Some(archive) = archive() else { return };
    crinode::remove_cgroups();
    let built = crinode::build();
    // A broken node: containerd in a slave namespace, and `/` private.
    let setup = crinode::setup().etc(
        "systemd/system/containerd.service.d/10-site.conf",
        "[Service]\nMountFlags=slave\n",
    );
    let Some(node) = CriNode::boot("daemonset", setup) else {
        return;
    };
    node.copy_client(&built);
    let image = node.copy_in(&archive);
    let manifest = node.copy_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/daemonset.yaml"));
    node.sh("mount --make-private /").ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    node.import_image();
    let import = node.exec(&[
        "ctr",
        "-n",
        "k8s.io",
        "images",
        "import",
        "--snapshotter",
        "native",
        &image,
    ]);
    assert_eq!(import.code, 0, "{import:#?}");
    assert!(root_propagation(&node, "1").is_empty(), "the test bed: / private");
    assert!(node.exec(&["test", "-e", DROPIN]).code != 0);

    let spec = serde_json::json!({
        "manifest": manifest,
        "label": LABEL,
        "cgroup_parent": format!("/{CGROUP_PARENT}"),
    });
    let started = Instant::now();
    let r = node.exec(&[PY, "/mnt/harness/cri.py", "daemonset", &spec.to_string()]);
    assert_eq!(r.code, 0, "{r:#?}");
    let pod: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    let ctr = pod["container_id"].as_str().expect("container id").to_string();

    let fixed = wait_until("the host's drop-in and / rshared", Duration::from_secs(20), || {
        node.exec(&["test", "-f", DROPIN]).code == 0 && root_propagation(&node, "1").starts_with("shared:")
    });
    eprintln!(
        "pod start to node fixed: {:?} (RunPodSandbox to the drop-in written and / rshared, within {:?} of polling)",
        started.elapsed(),
        fixed
    );
    assert!(
        node.read(DROPIN).unwrap_or_default().contains("MountFlags=shared"),
        "{:?}",
        node.read(DROPIN)
    );
    // Two processes: the container's first stays in its namespace (where `runc exec` puts the
    // probes, and where /usr/bin/mountprop is), the daemon is in the host's.
    let mut pid = String::new();
    wait_until("the daemon's state file", Duration::from_secs(10), || {
        let state: serde_json::Value =
            serde_json::from_str(&node.read("/run/mountprop/state.json").unwrap_or_default()).unwrap_or_default();
        pid = state["pid"].as_u64().map(|p| p.to_string()).unwrap_or_default();
        !pid.is_empty()
    });
    let first = node.sh(&format!("ps -o ppid= -p {pid}")).stdout.trim().to_string();
    let both = node.exec(&["pgrep", "-x", "mountprop"]).stdout;
    assert_eq!(both.split_whitespace().count(), 2, "{both}");
    assert!(both.split_whitespace().any(|p| p == first), "{both} vs parent {first}");
    assert_eq!(
        node.mount_ns(&pid),
        node.mount_ns("1"),
        "the daemon runs in the host's mount namespace"
    );
    assert_ne!(
        node.mount_ns(&first),
        node.mount_ns("1"),
        "its parent stays in the container's"
    );

    // The manifest's probes, as the kubelet runs them (in the container, with its env).
    wait_until("the readiness probe to pass", Duration::from_secs(10), || {
        exec_in(&node, &ctr, &pod["readiness"]).0 == 0
    });
    let (code, said) = exec_in(&node, &ctr, &pod["liveness"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains(" alive: last check "), "{said}");
    // `status` in the pod reads the host's state: containerd waits for a restart (the default
    // policy never restarts a runtime), so the node is not compliant yet: exit 1.
    let (code, status) = exec_in(&node, &ctr, &serde_json::json!(["/usr/bin/mountprop", "status"]));
    eprintln!("mountprop status in the pod:\n{status}");
    assert_eq!(code, 1, "{status}");
    assert!(
        status.contains("containerd.service") && status.contains("restart pending"),
        "{status}"
    );
    // ... and the host's own `mountprop status` sees the same daemon.
    let host = node.mountprop(&["status", "--alive"]);
    assert_eq!(host.code, 0, "{host:#?}");
    assert!(host.stdout.contains(&format!("(pid {pid}) alive")), "{host:#?}");
    // A second daemon on the same node (the package's, say) refuses to run beside it.
    let second = node.mountprop(&["daemon"]);
    assert_eq!(second.code, 2, "{second:#?}");
    assert!(
        second.stdout.contains(&format!(
            "another mountprop daemon already runs on this node (pid {pid})"
        )),
        "{second:#?}"
    );
    let log = node.read(pod["log"].as_str().expect("log path")).unwrap_or_default();
    eprintln!("the pod's log:\n{log}");
    assert!(log.contains("entered the host's mount namespace (PID 1's"), "{log}");
    assert!(log.contains("made / rshared"), "{log}");

    // The DaemonSet removed, as the kubelet does it: the container stopped within the grace
    // period (SIGTERM first), then the pod. The daemon stops cleanly; the node stays fixed;
    // nothing of mountprop's is left running, mounted or half-written.
    let grace = pod["grace"].as_u64().expect("grace period").to_string();
    let stopping = Instant::now();
    node.exec(&[PY, "/mnt/harness/cri.py", "stop", &ctr, &grace]).ok();
    eprintln!("StopContainer took {:?} (grace period {grace} s)", stopping.elapsed());
    node.exec(&[
        PY,
        "/mnt/harness/cri.py",
        "remove",
        pod["pod_id"].as_str().expect("pod id"),
    ])
    .ok();
    wait_until("the daemon gone", Duration::from_secs(15), || {
        node.exec(&["pgrep", "-x", "mountprop"]).code != 0
    });
    let after = node.mountprop(&["status"]);
    assert_eq!(after.code, 2, "{after:#?}");
    assert!(
        after.stdout.starts_with("mountprop daemon: NOT RUNNING"),
        "{}",
        after.stdout
    );
    let st: serde_json::Value =
        serde_json::from_str(&node.read("/run/mountprop/state.json").unwrap_or_default()).unwrap_or_default();
    assert_eq!(st["running"], false, "a clean stop: {st:#}");
    assert!(node.exec(&["test", "-f", DROPIN]).code == 0, "the fix stays");
    assert!(root_propagation(&node, "1").starts_with("shared:"));
    let leftovers =
        node.sh("grep -c mountprop-probe /proc/1/mountinfo; find /etc/systemd /run/mountprop -name '*mountprop-tmp*'");
    assert_eq!(leftovers.stdout.trim(), "0", "{leftovers:#?}");
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<PathBuf>::new());
}
