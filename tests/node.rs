//! Every behaviour against a real systemd 252, a real bus and the real kernel: the real binary
//! runs inside a sandboxed node; the assertions read what systemd and /proc report afterwards.

mod sandbox;

use sandbox::{OLD_DOCKER, Sandbox, Setup};

const OWN: &str = "/etc/systemd/system/docker.service.d/90-mountprop.conf";
const SHARED: u64 = 1048576;
const SLAVE: u64 = 524288;

fn old_docker(test: &str) -> Option<Sandbox> {
    sandbox::boot(test, Setup::default().file("docker.service", OLD_DOCKER))
}

fn root_propagation(sb: &Sandbox, pid: &str) -> String {
    Sandbox::propagation_of(&sb.mountinfo(pid), "/")
}

/// The peer group number of a "shared:N ..." field list.
fn peer_group(fields: &str) -> Option<&str> {
    fields.split(' ').find_map(|f| f.strip_prefix("shared:"))
}

fn stat(sb: &Sandbox, path: &str) -> String {
    sb.exec(&["stat", "-c", "%i %Y.%y %Z", path]).ok().stdout
}

/// Scenario 1: Old Docker, running, restart policy "always": fixed now, and mounts really flow both ways.
#[test]
fn s1_old_docker_restart_always_gets_bidirectional_propagation() {
    let Some(sb) = old_docker("s1") else { return };
    sb.write("/etc/mountprop/config.toml", "restart = \"always\"\n");
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    let old_pid = sb.main_pid("docker.service").to_string();

    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 1, "{check:#?}");
    let line = check.line("docker.service");
    assert!(
        line.contains("DRIFT") && line.contains("MountFlags=slave (set in /etc/systemd/system/docker.service:6)"),
        "{line}"
    );

    // Negative control: / made rshared by hand, the slave runtime's own mounts stay in its
    // namespace, while the host's reach it.
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    sb.exec(&["mkdir", "-p", "/var/lib/proptest/before"]).ok();
    sb.exec(&[
        "nsenter",
        "-t",
        &old_pid,
        "-m",
        "mount",
        "-t",
        "tmpfs",
        "rt-before",
        "/var/lib/proptest/before",
    ])
    .ok();
    assert!(
        !sb.sees_mount("1", "/var/lib/proptest/before"),
        "a slave namespace does not propagate back"
    );
    sb.exec(&["nsenter", "-t", &old_pid, "-m", "umount", "/var/lib/proptest/before"])
        .ok();
    sb.exec(&["mount", "--make-rprivate", "/"]).ok();

    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    assert!(
        apply.stdout.contains("restart docker.service: done"),
        "{}",
        apply.stdout
    );
    assert_eq!(sb.mount_flags("docker.service"), SHARED);
    let pid = sb.main_pid("docker.service").to_string();
    assert_ne!(pid, old_pid, "restarted");
    let host_group = peer_group(&root_propagation(&sb, "1"))
        .map(str::to_string)
        .expect("host / is shared");
    assert_eq!(
        peer_group(&root_propagation(&sb, &pid)),
        Some(host_group.as_str()),
        "runtime's / is in the host's peer group"
    );

    for side in ["host", "runtime"] {
        let dir = format!("/var/lib/proptest/{side}");
        sb.exec(&["mkdir", "-p", &dir]).ok();
        let (mounter, watcher) = if side == "host" {
            ("1", pid.as_str())
        } else {
            (pid.as_str(), "1")
        };
        sb.exec(&[
            "nsenter",
            "-t",
            mounter,
            "-m",
            "mount",
            "-t",
            "tmpfs",
            &format!("from-{side}"),
            &dir,
        ])
        .ok();
        assert!(
            sb.sees_mount(watcher, &dir),
            "a tmpfs mounted on the {side} side is visible on the other"
        );
    }
}

/// Scenario 2: Restart policy "never" (default) with the runtime running: configured, reloaded once,
/// not restarted, reported as restart pending.
#[test]
fn s2_restart_never_leaves_the_runtime_running_and_says_restart_pending() {
    let Some(sb) = old_docker("s2") else { return };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    let pid = sb.main_pid("docker.service");
    let reloads = sb.reload_counter();
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert_eq!(reloads.count(), 1);
    assert!(sb.read(OWN).is_some_and(|c| c.ends_with("MountFlags=shared\n")));
    assert_eq!(sb.mount_flags("docker.service"), SHARED);
    assert_eq!(sb.main_pid("docker.service"), pid, "not restarted");
    assert!(
        sb.unit_property("docker.service", "Unit", "Markers")
            .contains("needs-restart")
    );

    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1);
    let v = Sandbox::verdict(&report, "docker.service");
    assert_eq!(v["status"], "restart-pending", "{v:#}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("restart pending: MountFlags=shared"),
        "{v:#}"
    );

    // The operator restarts when it suits them.
    sb.exec(&["systemctl", "reload-or-restart", "--marked"]).ok();
    assert_eq!(sb.mountprop(&["check"]).code, 0);
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(sb.mount_ns(&pid), sb.mount_ns("1"));
}

/// Scenario 3: Runtime not running: the drop-in waits for its next start, which gets a shared namespace.
#[test]
fn s3_stopped_runtime_picks_the_dropin_up_at_next_start() {
    let Some(sb) = old_docker("s3") else { return };
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    assert!(
        apply
            .line("docker.service")
            .contains("not running: takes effect at its next start"),
        "{}",
        apply.stdout
    );
    assert_eq!(
        sb.unit_property("docker.service", "Unit", "ActiveState"),
        "s \"inactive\""
    );
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(sb.mount_ns(&pid), sb.mount_ns("1"), "no namespace of its own");
    assert!(root_propagation(&sb, &pid).starts_with("shared:"));
    assert_eq!(sb.mountprop(&["check"]).code, 0);
}

/// Scenario 4: Idempotency: 20 applies write once and reload once.
#[test]
fn s4_twenty_applies_write_once_and_reload_once() {
    let Some(sb) = old_docker("s4") else { return };
    let reloads = sb.reload_counter();
    assert_eq!(sb.mountprop(&["apply"]).code, 0);
    let first = stat(&sb, OWN);
    let dir = stat(&sb, "/etc/systemd/system/docker.service.d");
    let mounts = sb.mountinfo("1");
    for i in 2..=20 {
        let r = sb.mountprop(&["apply", "--json"]);
        assert_eq!(r.code, 0, "run {i}: {r:#?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["actions"], serde_json::json!([]), "run {i} did something: {v:#}");
    }
    assert_eq!(stat(&sb, OWN), first, "inode and times of the drop-in unchanged");
    assert_eq!(
        stat(&sb, "/etc/systemd/system/docker.service.d"),
        dir,
        "no temp files came and went"
    );
    assert_eq!(sb.mountinfo("1"), mounts, "mount table unchanged");
    assert_eq!(reloads.count(), 1, "systemd reloaded exactly once over 20 runs");
}

/// Scenario 5: A drop-in that sorts after mountprop's and sets MountFlags=slave: named by file and line,
/// not fought.
#[test]
fn s5_a_later_site_dropin_is_named_and_not_fought() {
    let site = "/etc/systemd/system/docker.service.d/zz-site.conf";
    let setup = Setup::default()
        .file("docker.service", OLD_DOCKER)
        .file(
            "docker.service.d/zz-site.conf",
            "# site policy\n[Service]\nMountFlags=slave\n",
        )
        .etc("mountprop/config.toml", "restart = \"always\"\n");
    let Some(sb) = sandbox::boot("s5", setup) else { return };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    let pid = sb.main_pid("docker.service");

    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1);
    let v = Sandbox::verdict(&report, "docker.service");
    assert_eq!(
        v["blame"],
        serde_json::json!({"file": site, "line": 3, "setting": "MountFlags=slave"}),
        "{v:#}"
    );
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("overridden by {site}:3 (MountFlags=slave)")),
        "{v:#}"
    );

    let reloads = sb.reload_counter();
    for _ in 0..3 {
        let apply = sb.mountprop(&["apply"]);
        assert_eq!(apply.code, 1, "{apply:#?}");
        assert!(
            apply
                .line("docker.service")
                .contains(&format!("overridden by {site}:3")),
            "{}",
            apply.stdout
        );
    }
    assert_eq!(reloads.count(), 1, "its own drop-in is loaded once, then nothing more");
    assert_eq!(sb.main_pid("docker.service"), pid, "no restart that could not help");
    assert_eq!(sb.mount_flags("docker.service"), SLAVE, "the site's setting stands");
    assert_eq!(
        sb.read(site).as_deref(),
        Some("# site policy\n[Service]\nMountFlags=slave\n")
    );
}

/// Scenario 6: No container runtime installed at all: reported as not installed, which is not drift.
#[test]
fn s6_units_that_are_not_installed_are_reported_not_failed() {
    let Some(sb) = sandbox::boot("s6", Setup::default()) else {
        return;
    };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 0, "{check:#?}");
    for unit in ["docker.service", "containerd.service", "crio.service"] {
        let line = check.line(unit);
        assert!(line.contains("absent") && line.ends_with("not installed"), "{line}");
    }
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    assert_eq!(
        sb.exec(&["ls", "/etc/systemd/system/docker.service.d"]).code,
        2,
        "no drop-in for a unit that is not there"
    );
}

/// Scenario 7: `/` private: reported but left alone with remediation off; made rshared with it on.
#[test]
fn s7_private_root_reported_when_remediation_is_off_fixed_when_on() {
    let Some(sb) = sandbox::boot("s7", Setup::default()) else {
        return;
    };
    sb.write("/etc/mountprop/off.toml", "remediate_paths = false\n");
    let check = sb.mountprop(&["--config", "/etc/mountprop/off.toml", "check"]);
    assert_eq!(check.code, 1, "{check:#?}");
    let line = check.line("/");
    assert!(
        line.contains("DRIFT") && line.contains("private") && line.contains("remediate_paths = false"),
        "{line}"
    );
    let apply = sb.mountprop(&["--config", "/etc/mountprop/off.toml", "apply"]);
    assert_eq!(apply.code, 1);
    assert_eq!(root_propagation(&sb, "1"), "", "left private");

    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    let table = sb.mountinfo("1");
    assert!(peer_group(&Sandbox::propagation_of(&table, "/")).is_some());
    for below in ["/var", "/etc", "/proc", "/run"] {
        assert!(
            Sandbox::propagation_of(&table, below).starts_with("shared:"),
            "{below} shared too (recursive)"
        );
    }
}

/// Scenario 8: /var/lib/kubelet as a separate private mount: named, and fixed only when allowed.
#[test]
fn s8_a_private_kubelet_mount_is_named_and_fixed_when_allowed() {
    let Some(sb) = sandbox::boot("s8", Setup::default()) else {
        return;
    };
    sb.sh("mount --make-rshared / && mkdir -p /var/lib/kubelet && mount -t tmpfs kubelet /var/lib/kubelet && mount --make-private /var/lib/kubelet")
        .ok();
    let cfg = |remediate: bool| {
        format!("[[paths]]\npath = \"/\"\n[[paths]]\npath = \"/var/lib/kubelet\"\nremediate = {remediate}\n")
    };
    sb.write("/etc/mountprop/off.toml", &cfg(false));
    sb.write("/etc/mountprop/on.toml", &cfg(true));

    let (code, report) = sb.check_json(Some("/etc/mountprop/off.toml"));
    assert_eq!(code, 1);
    assert_eq!(Sandbox::verdict(&report, "/")["status"], "ok");
    let v = Sandbox::verdict(&report, "/var/lib/kubelet");
    assert_eq!(v["status"], "drift");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("private (mount ") && detail.contains(" on /var/lib/kubelet, tmpfs)"),
        "{detail}"
    );
    assert_eq!(sb.mountprop(&["--config", "/etc/mountprop/off.toml", "apply"]).code, 1);
    assert_eq!(Sandbox::propagation_of(&sb.mountinfo("1"), "/var/lib/kubelet"), "");

    let apply = sb.mountprop(&["--config", "/etc/mountprop/on.toml", "apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    assert!(
        apply.stdout.contains("make /var/lib/kubelet rshared"),
        "{}",
        apply.stdout
    );
    assert!(Sandbox::propagation_of(&sb.mountinfo("1"), "/var/lib/kubelet").starts_with("shared:"));
}

/// Scenario 11: a runtime whose unit asks for sandboxing (`PrivateTmp=yes`) gets a mount
/// namespace of its own whatever MountFlags says: shared and a slave of the host, one way.
/// mountprop names the line, plans no restart (it would not help), and with
/// `reset_namespacing = true` its drop-in undoes the setting, after which a restart does help.
#[test]
fn s11_a_sandboxing_setting_is_named_and_reset_namespacing_undoes_it() {
    let unit = "[Service]\nExecStart=/bin/sleep infinity\nPrivateTmp=yes\n";
    let Some(sb) = sandbox::boot("s11", Setup::default().file("docker.service", unit)) else {
        return;
    };
    sb.write("/etc/mountprop/config.toml", "restart = \"always\"\n");
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    let pid = sb.main_pid("docker.service").to_string();
    let fields = root_propagation(&sb, &pid);
    let host = peer_group(&root_propagation(&sb, "1"))
        .map(str::to_string)
        .expect("host / shared");
    assert!(
        fields.contains(&format!("master:{host}")) && peer_group(&fields).is_some_and(|g| g != host),
        "PrivateTmp= gives a shared-and-slave namespace: {fields}"
    );

    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    let line = apply.line("docker.service");
    assert!(
        line.contains("DRIFT")
            && line.contains(
                "PrivateTmp=yes (/etc/systemd/system/docker.service:3) gives it a mount namespace of its own"
            )
            && line.contains("a restart does not help")
            && !line.contains("PENDING"),
        "{line}"
    );
    assert_eq!(
        sb.main_pid("docker.service").to_string(),
        pid,
        "not restarted: it would not help"
    );
    let (_, report) = sb.check_json(None);
    let blame = &Sandbox::verdict(&report, "docker.service")["blame"];
    assert_eq!(blame["setting"], "PrivateTmp=yes");
    assert_eq!(blame["line"], 3);

    sb.write(
        "/etc/mountprop/config.toml",
        "restart = \"always\"\nreset_namespacing = true\n",
    );
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    let dropin = sb.read(OWN).expect("drop-in written");
    assert!(dropin.ends_with("\nPrivateTmp=no\n"), "{dropin}");
    assert_eq!(sb.show("docker.service", "PrivateTmp"), "no");
    let new_pid = sb.main_pid("docker.service").to_string();
    assert_ne!(new_pid, pid, "restarted, since now it helps");
    assert_eq!(sb.mount_ns(&new_pid), sb.mount_ns("1"), "in the host's namespace");
    let again = sb.mountprop(&["apply"]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert!(
        !again.stdout.contains("write "),
        "a second apply changes nothing: {}",
        again.stdout
    );
}
