//! End-to-end: the real binary against a real systemd 252 and the real kernel.

mod sandbox;

use sandbox::{OLD_DOCKER, Sandbox, Setup};

const OWN: &str = "/etc/systemd/system/docker.service.d/90-mountprop.conf";

/// The core promise: an old Docker unit (`MountFlags=slave`) on a node whose `/` is private is
/// found, fixed, verified, and left alone on the next run.
#[test]
fn old_docker_is_found_fixed_and_left_alone() {
    let Some(sb) = sandbox::boot(
        "old_docker_is_found_fixed_and_left_alone",
        Setup::default().file("docker.service", OLD_DOCKER),
    ) else {
        return;
    };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    assert_eq!(sb.mount_flags("docker.service"), 524288);
    let root_before = Sandbox::propagation_of(&sb.mountinfo("self"), "/");
    assert!(
        !root_before.contains("shared:"),
        "the node starts with / private: {root_before:?}"
    );

    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 1, "{check:#?}");
    let line = check.line("docker.service");
    assert!(
        line.contains("DRIFT") && line.contains("MountFlags=slave (set in /etc/systemd/system/docker.service:6)"),
        "{line}"
    );
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("/ ") && l.contains("DRIFT") && l.contains("private")),
        "{}",
        check.stdout
    );
    assert!(sb.read(OWN).is_none(), "check writes nothing");

    let reloads = sb.reload_counter();
    let apply = sb.mountprop(&["apply"]);
    // Restart policy "never": the running runtime keeps its old namespace, so exit 1.
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert!(apply.stdout.contains("restart pending"), "{}", apply.stdout);
    assert_eq!(reloads.count(), 1, "one daemon-reload");
    assert_eq!(
        sb.mount_flags("docker.service"),
        1048576,
        "systemd now reports MountFlags=shared"
    );
    let dropins = sb.unit_property("docker.service", "Unit", "DropInPaths");
    assert!(dropins.contains(OWN), "{dropins}");
    let root_after = Sandbox::propagation_of(&sb.mountinfo("self"), "/");
    assert!(root_after.starts_with("shared:"), "/ is shared now: {root_after:?}");
    let content = sb.read(OWN).expect("drop-in written");
    assert!(
        content.starts_with("# Managed by mountprop.") && content.ends_with("[Service]\nMountFlags=shared\n"),
        "{content}"
    );
    let markers = sb.unit_property("docker.service", "Unit", "Markers");
    assert!(markers.contains("needs-restart"), "{markers}");

    let stat = |sb: &Sandbox| sb.exec(&["stat", "-c", "%i %Y %Z", OWN]).ok().stdout;
    let before = stat(&sb);
    let again = sb.mountprop(&["apply", "--json"]);
    assert_eq!(again.code, 1, "{again:#?}");
    let report: serde_json::Value = serde_json::from_str(&again.stdout).expect("json report");
    assert_eq!(
        report["actions"],
        serde_json::json!([]),
        "second apply does nothing: {report:#}"
    );
    assert_eq!(stat(&sb), before, "drop-in untouched on the second run");
    assert_eq!(reloads.count(), 1, "no second reload");

    // The operator restarts when it suits them; then the node is compliant.
    sb.exec(&["systemctl", "reload-or-restart", "--marked"]).ok();
    let done = sb.mountprop(&["check"]);
    assert_eq!(done.code, 0, "{done:#?}");
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(
        sb.mount_ns(&pid),
        sb.mount_ns("1"),
        "the restarted runtime shares the host's mount namespace"
    );
}
