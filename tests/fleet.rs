//! What a fleet loads from deploy/: the Prometheus rules pass `promtool check rules`, and each
//! alert fires when it should and not before (`promtool test rules` on
//! tests/fixtures/prometheus-rules-test.yaml). The daemon's textfile is linted by promtool in
//! tests/daemon.rs and tests/stale.rs, on files the real daemon wrote.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// promtool, or a loud SKIP where it cannot be (not root, so scripts/deps.sh did not run).
fn promtool(test: &str) -> Option<Command> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(Command::new("promtool"));
    }
    assert!(
        !nix::unistd::Uid::effective().is_root(),
        "promtool missing: scripts/deps.sh installs Debian's prometheus for it"
    );
    eprintln!("SKIP {test}: promtool is not installed (scripts/deps.sh installs it as root)");
    None
}

fn run(mut cmd: Command, dir: &Path) -> String {
    let out = cmd.current_dir(dir).output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}:\n{said}");
    said
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(mut cmd) = promtool("alert_rules_pass_promtool") else {
        return;
    };
    cmd.args(["check", "rules", "deploy/prometheus-rules.yaml"]);
    let said = run(cmd, Path::new(ROOT));
    assert!(said.contains("SUCCESS: 5 rules found"), "{said}");
}

#[test]
fn each_alert_fires_when_it_should() {
    let Some(mut cmd) = promtool("each_alert_fires_when_it_should") else {
        return;
    };
    cmd.args(["test", "rules", "prometheus-rules-test.yaml"]);
    let said = run(cmd, &Path::new(ROOT).join("tests/fixtures"));
    assert!(said.contains("SUCCESS"), "{said}");
    // Every alert of the rules file has a test.
    let rules = std::fs::read_to_string(Path::new(ROOT).join("deploy/prometheus-rules.yaml")).expect("rules");
    let tests =
        std::fs::read_to_string(Path::new(ROOT).join("tests/fixtures/prometheus-rules-test.yaml")).expect("tests");
    for alert in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "{alert} has no firing test"
        );
    }
}
