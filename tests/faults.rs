//! Bad input and faults on a real node: each must end in a clear line, the documented exit
//! code, and nothing half-done.

mod sandbox;

use std::time::{Duration, Instant};

use sandbox::{NODE_BIN, OLD_DOCKER, Run, Sandbox, Setup};

const DIR: &str = "/etc/systemd/system/docker.service.d";
const OWN: &str = "/etc/systemd/system/docker.service.d/90-mountprop.conf";

fn node(test: &str) -> Option<Sandbox> {
    let sb = sandbox::boot(test, Setup::default().file("docker.service", OLD_DOCKER))?;
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    Some(sb)
}

/// The shipped unit, at the node's path of the binary under test.
fn daemon_unit() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("systemd/mountprop.service")
        .replace("/usr/bin/mountprop", NODE_BIN)
}

fn daemon_prop(sb: &Sandbox, p: &str) -> String {
    sb.show("mountprop.service", p)
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shipped daemon's unit, installed before a fault makes that impossible.
fn install_daemon(sb: &Sandbox) {
    sb.write("/etc/systemd/system/mountprop.service", &daemon_unit());
    sb.exec(&["systemctl", "daemon-reload"]).ok();
}

/// Starts the daemon (checking every second) on the faulty node: it must become ready, say
/// what is wrong in its STATUS line, and keep running, same process, no restarts.
fn daemon_survives(sb: &Sandbox, status_says: &str) {
    sb.write("/etc/mountprop/config.toml", "[daemon]\ninterval_secs = 1\n");
    sb.exec(&["systemctl", "start", "mountprop.service"]).ok();
    let pid = daemon_prop(sb, "MainPID");
    wait_for(&format!("STATUS to say {status_says:?}"), 10, || {
        daemon_prop(sb, "StatusText").contains(status_says)
    });
    // A few more checks, each meeting the fault again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daemon_prop(sb, "ActiveState"), "active", "{}", sb.journal());
    assert_eq!(daemon_prop(sb, "MainPID"), pid, "same process");
    assert_eq!(daemon_prop(sb, "NRestarts"), "0");
}

fn root_propagation(sb: &Sandbox) -> String {
    Sandbox::propagation_of(&sb.mountinfo("self"), "/")
}

/// Everything in the drop-in directory, hidden files included.
fn listing(sb: &Sandbox, dir: &str) -> String {
    sb.exec(&["ls", "-A", dir]).stdout
}

#[test]
fn malformed_config_touches_nothing() {
    let Some(sb) = node("malformed_config_touches_nothing") else {
        return;
    };
    sb.write(
        "/etc/mountprop/config.toml",
        "units = [\"docker.service\"]\n[[paths]]\npath = \"relative/path\"\n",
    );
    let reloads = sb.reload_counter();
    let out = sb.mountprop(&["apply"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert_eq!(
        out.stderr.trim(),
        "mountprop: /etc/mountprop/config.toml:3:8: paths: \"relative/path\" is not absolute"
    );
    assert!(sb.read(OWN).is_none());
    assert_eq!(root_propagation(&sb), "", "/ left private");
    assert_eq!(reloads.count(), 0);
    assert_eq!(sb.mount_flags("docker.service"), 524288);
}

#[test]
fn dbus_stopped_check_says_so_and_apply_writes_nothing() {
    let Some(sb) = node("dbus_stopped_check_says_so_and_apply_writes_nothing") else {
        return;
    };
    sb.exec(&["systemctl", "stop", "dbus.socket", "dbus.service"]).ok();
    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 2, "{check:#?}");
    assert_eq!(check.stderr.lines().count(), 1, "{}", check.stderr);
    assert!(
        check
            .stderr
            .starts_with("mountprop: cannot check: no system bus at /run/dbus/system_bus_socket ("),
        "{}",
        check.stderr
    );
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 2, "{apply:#?}");
    assert!(
        apply.stderr.starts_with("mountprop: nothing changed: no system bus"),
        "{}",
        apply.stderr
    );
    assert!(sb.read(OWN).is_none());
    assert_eq!(root_propagation(&sb), "", "/ left private: apply stops before acting");
}

#[test]
fn read_only_etc_is_a_clear_error_and_leaves_no_files() {
    let Some(sb) = node("read_only_etc_is_a_clear_error_and_leaves_no_files") else {
        return;
    };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    sb.exec(&["mount", "-o", "remount,ro", "/etc"]).ok();
    let reloads = sb.reload_counter();
    let out = sb.mountprop(&["apply"]);
    assert_eq!(out.code, 2, "{out:#?}");
    let line = out.stdout.lines().find(|l| l.contains("write ")).expect("a write line");
    assert!(
        line.contains(&format!("FAILED: create directory {DIR}: Read-only file system")),
        "{line}"
    );
    assert!(
        out.stdout
            .contains("reload systemd (daemon-reload): skipped (no drop-in was written)"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains(DIR), "logged too: {}", out.stderr);
    assert_eq!(sb.exec(&["test", "-e", DIR]).code, 1, "no directory left behind");
    assert_eq!(reloads.count(), 0, "nothing changed, so no reload");
    // Nothing can be written to /etc now: unit and config go in while it is writable.
    sb.exec(&["mount", "-o", "remount,rw", "/etc"]).ok();
    install_daemon(&sb);
    sb.write("/etc/mountprop/config.toml", "[daemon]\ninterval_secs = 1\n");
    sb.exec(&["mount", "-o", "remount,ro", "/etc"]).ok();
    sb.exec(&["systemctl", "start", "mountprop.service"]).ok();
    let pid = daemon_prop(&sb, "MainPID");
    wait_for("a failed write in the state", 10, || {
        sb.read("/run/mountprop/state.json")
            .is_some_and(|s| s.contains("Read-only file system"))
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daemon_prop(&sb, "ActiveState"), "active");
    assert_eq!(
        (daemon_prop(&sb, "MainPID"), daemon_prop(&sb, "NRestarts")),
        (pid, "0".to_string())
    );
    assert_eq!(sb.exec(&["test", "-e", DIR]).code, 1, "still nothing left behind");
}

#[test]
fn full_disk_leaves_no_partial_or_temp_file() {
    let Some(sb) = node("full_disk_leaves_no_partial_or_temp_file") else {
        return;
    };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    // A one-page tmpfs as the drop-in directory, already full.
    sb.sh(&format!("mkdir -p {DIR} && mount -t tmpfs -o size=4k tiny {DIR} && (dd if=/dev/zero of={DIR}/fill bs=4096 count=2 2>/dev/null; true)"))
        .ok();
    assert_eq!(listing(&sb, DIR).trim(), "fill");
    install_daemon(&sb);
    let out = sb.mountprop(&["apply"]);
    assert_eq!(out.code, 2, "{out:#?}");
    let line = out.stdout.lines().find(|l| l.contains("write ")).expect("a write line");
    assert!(
        line.contains("FAILED: ") && line.contains("No space left on device") && line.contains(DIR),
        "{line}"
    );
    assert_eq!(listing(&sb, DIR).trim(), "fill", "no partial drop-in, no temp file");
    daemon_survives(&sb, "DRIFT: docker.service MountFlags=slave");
    assert_eq!(
        listing(&sb, DIR).trim(),
        "fill",
        "the daemon's retries leave nothing either"
    );
}

/// systemd itself answers Reload with an error: it refuses to reload when /run has less than
/// 16 MiB free (it serializes its state there).
#[test]
fn systemd_refusing_to_reload_is_said_and_nothing_runs_half_configured() {
    let Some(sb) = node("systemd_refusing_to_reload") else {
        return;
    };
    sb.write("/etc/mountprop/config.toml", "restart = \"always\"\n");
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    install_daemon(&sb);
    let pid = sb.main_pid("docker.service");
    sb.sh("mount -o remount,size=20M /run && fallocate -l $(( $(df --output=avail -B1 /run | tail -1) - 8*1024*1024 )) /run/fill")
        .ok();
    let out = sb.mountprop(&["apply"]);
    assert_eq!(out.code, 2, "{out:#?}");
    let reload = out
        .stdout
        .lines()
        .find(|l| l.contains("reload systemd"))
        .expect("a reload line");
    assert!(
        reload.contains("FAILED: systemd Reload: ") && reload.contains("not enough space available on /run/systemd"),
        "{reload}"
    );
    assert!(
        out.stdout
            .contains("restart docker.service: skipped (its drop-in is not in effect)"),
        "no restart into the old setting: {}",
        out.stdout
    );
    // The drop-in is whole, just not loaded; docker was left alone.
    assert!(sb.read(OWN).is_some_and(|c| c.ends_with("MountFlags=shared\n")));
    assert_eq!(sb.mount_flags("docker.service"), 524288);
    assert_eq!(sb.main_pid("docker.service"), pid);
    daemon_survives(&sb, "drop-in in place, waiting for daemon-reload");
    // Room again: the daemon's next check finishes the job.
    sb.sh("rm /run/fill && mount -o remount,size=1G /run").ok();
    wait_for("the reload once there is room", 10, || {
        sb.mount_flags("docker.service") == 1048576
    });
}

/// The system bus restarts while apply waits for a runtime's restart job.
#[test]
fn dbus_restarting_mid_apply_is_a_clear_error_and_the_next_apply_finishes() {
    let slow = "[Unit]\nDescription=old docker, slow to start\n\n[Service]\nExecStartPre=/bin/sleep 2\nExecStart=/bin/sleep infinity\nMountFlags=slave\n";
    let Some(sb) = sandbox::boot(
        "dbus_restarting_mid_apply",
        Setup::default().file("docker.service", slow),
    ) else {
        return;
    };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    sb.write("/etc/mountprop/config.toml", "restart = \"always\"\n");
    let apply = sb.spawn(&[], &[NODE_BIN, "apply"]);
    std::thread::sleep(Duration::from_millis(800));
    sb.exec(&["systemctl", "restart", "dbus.service"]).ok();
    let out = Run::from(apply.wait_with_output().expect("apply ran"));
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stdout.contains("FAILED: docker.service: the system bus went away while mountprop waited for the restart; systemd carries the job on"),
        "{}",
        out.stdout
    );
    assert!(
        sb.read(OWN).is_some_and(|c| c.ends_with("MountFlags=shared\n")),
        "drop-in whole"
    );
    wait_for("docker running again", 10, || sb.main_pid("docker.service") != 0);
    let again = sb.mountprop(&["apply"]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert_eq!(sb.mount_flags("docker.service"), 1048576);
}

/// A runtime unit that systemd cannot load: named with systemd's reason, nothing written for it.
#[test]
fn a_unit_that_fails_to_load_is_named_and_left_alone() {
    let broken = "[Unit]\nDescription=docker without a command\n\n[Service]\nMountFlags=slave\n";
    let Some(sb) = sandbox::boot(
        "a_unit_that_fails_to_load",
        Setup::default().file("docker.service", broken),
    ) else {
        return;
    };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 1, "{check:#?}");
    let line = check.line("docker.service");
    assert!(
        line.contains("DRIFT") && line.contains("unit failed to load (bad-setting)"),
        "{line}"
    );
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert!(sb.read(OWN).is_none(), "nothing written for a unit systemd cannot load");
    install_daemon(&sb);
    daemon_survives(&sb, "DRIFT: docker.service unit failed to load (bad-setting)");
}

#[test]
fn symlinked_dropin_dir_is_refused() {
    let Some(sb) = node("symlinked_dropin_dir_is_refused") else {
        return;
    };
    sb.exec(&["mkdir", "-p", "/var/lib/elsewhere"]).ok();
    sb.exec(&["ln", "-s", "/var/lib/elsewhere", DIR]).ok();
    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 1, "{check:#?}");
    let line = check.line("docker.service");
    assert!(
        line.contains(&format!("{DIR} is a symlink; refusing to follow it")),
        "{line}"
    );
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert!(
        !apply.stdout.contains("write /etc"),
        "no write planned: {}",
        apply.stdout
    );
    assert_eq!(
        listing(&sb, "/var/lib/elsewhere"),
        "",
        "nothing written through the link"
    );
}

#[test]
fn foreign_file_with_our_name_is_never_touched() {
    let Some(sb) = node("foreign_file_with_our_name_is_never_touched") else {
        return;
    };
    sb.write(OWN, "[Service]\n# the site's own file\nMountFlags=slave\n");
    sb.exec(&["systemctl", "daemon-reload"]).ok();
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert!(
        apply.stdout.contains("was not written by mountprop; left alone"),
        "{}",
        apply.stdout
    );
    assert_eq!(
        sb.read(OWN).as_deref(),
        Some("[Service]\n# the site's own file\nMountFlags=slave\n")
    );
}
