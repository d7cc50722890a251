//! Hostile pods on a real node: what a container controls (its OCI spec, its mount table, its
//! volume directories) is untrusted input to a root daemon. Debian's containerd over its CRI
//! (the CRI test bed, `tests/crinode`), as for the stale-container tests.

mod crinode;
mod sandbox;

use std::time::{Duration, Instant};

use crinode::{CriNode, KUBELET};
use serde_json::Value;

const H2C: &str = "PROPAGATION_HOST_TO_CONTAINER";
const LOGS: &str = "/var/lib/kubelet/pods/log-cleaner/volumes/logs";

/// A containerd node, `prepare` run before containerd starts; `daemon`: the shipped
/// mountprop.service installed (not started).
fn boot(test: &str, prepare: &str, config: &str, daemon: bool) -> Option<CriNode> {
    let built = crinode::build();
    let mut setup = crinode::setup().etc("mountprop/config.toml", config);
    if daemon {
        setup = setup.file("mountprop.service", &daemon_unit());
    }
    let node = CriNode::boot(test, setup)?;
    node.copy_client(&built);
    node.sh(&format!("set -e; mkdir -p {KUBELET} {LOGS}; {prepare}")).ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    node.import_image();
    Some(node)
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

/// What a terminal or NPD would act on: C0 and C1 controls, DEL, U+2028/U+2029.
fn controls(s: &str, keep_newlines: bool) -> Vec<char> {
    s.chars()
        .filter(|&c| (c.is_control() && !(keep_newlines && c == '\n')) || matches!(c, '\u{2028}' | '\u{2029}'))
        .collect()
}

/// A pod whose volume path clears the screen and then forges a line of mountprop's own
/// (`\x1b[2J`, a newline, `ok: ...`), on a node that leaves it stale: `check`, `check
/// --oneline`, `status`, `status --oneline` and the daemon's STATUS= print it escaped, each
/// volume on its one line; `--json` keeps the exact text.
#[test]
fn a_volume_path_with_control_characters_is_printed_escaped() {
    let test = "a_volume_path_with_control_characters_is_printed_escaped";
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let dest = "/v\x1b[2Jx\nok: all is well\u{2028}";
    let shown = "/v\\x1b[2Jx\\nok: all is well\\u{2028}";
    let Some(node) = boot(
        "hostile1",
        "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-slave /var/lib/kubelet",
        "restart = \"never\"\n[[paths]]\npath = \"/\"\n[[paths]]\npath = \"/var/lib/kubelet\"\n",
        true,
    ) else {
        return;
    };
    let (_, _ctr) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, dest, H2C)]);
    // The node is fixed under it: the pod keeps its old mount, and is listed.
    let apply = node.mountprop(&["apply"]);
    eprintln!("apply:\n{}", apply.stdout);
    assert_eq!(controls(&apply.stdout, true), Vec::<char>::new(), "{:?}", apply.stdout);
    assert!(apply.stdout.contains(shown), "{:?}", apply.stdout);

    // JSON: the exact text, as a machine wants it.
    let r = node.mountprop(&["check", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    assert_eq!(
        v["stale_containers"][0]["volumes"][0]["destination"], dest,
        "the test bed: the volume is listed as stale: {v:#}"
    );

    let human = node.mountprop(&["check"]);
    eprintln!("check:\n{}", human.stdout);
    assert_eq!(controls(&human.stdout, true), Vec::<char>::new(), "{:?}", human.stdout);
    assert!(
        human.stdout.contains(&format!(
            "\n    {shown} from {LOGS}: asked HostToContainer (rslave), gets NOTHING"
        )),
        "{:?}",
        human.stdout
    );
    assert!(
        !human.stdout.lines().any(|l| l.starts_with("ok: all is well")),
        "a forged line: {:?}",
        human.stdout
    );

    let line = node.mountprop(&["check", "--oneline"]).stdout;
    assert_eq!(
        controls(line.trim_end_matches('\n'), false),
        Vec::<char>::new(),
        "{line:?}"
    );
    assert_eq!(line.lines().count(), 1, "{line:?}");
    assert!(
        line.starts_with(&format!(
            "DRIFT: stale container kube-system/log-cleaner/cleaner: {shown} from {LOGS}"
        )),
        "{line:?}"
    );

    // The daemon: STATUS= (systemctl status), `status` and `status --oneline`.
    node.exec(&["systemctl", "start", "mountprop.service"]).ok();
    wait_for("the daemon to list the pod", Duration::from_secs(20), || {
        node.show("mountprop.service", "StatusText")
            .starts_with("DRIFT: stale container kube-system/log-cleaner/cleaner")
    });
    let status_text = node.show("mountprop.service", "StatusText");
    assert!(status_text.contains(shown), "{status_text:?}");
    let status = node.mountprop(&["status"]).stdout;
    assert_eq!(controls(&status, true), Vec::<char>::new(), "{status:?}");
    assert!(status.contains(&format!("    {shown} from {LOGS}")), "{status:?}");
    let status_line = node.mountprop(&["status", "--oneline"]).stdout;
    assert_eq!(
        controls(status_line.trim_end_matches('\n'), false),
        Vec::<char>::new(),
        "{status_line:?}"
    );
    assert!(status_line.contains(shown), "{status_line:?}");
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
}
