//! Bad input and faults on a real node: each must end in a clear line, the documented exit
//! code, and nothing half-done.

mod sandbox;

use sandbox::{OLD_DOCKER, Sandbox, Setup};

const DIR: &str = "/etc/systemd/system/docker.service.d";
const OWN: &str = "/etc/systemd/system/docker.service.d/90-mountprop.conf";

fn node(test: &str) -> Option<Sandbox> {
    let sb = sandbox::boot(test, Setup::default().file("docker.service", OLD_DOCKER))?;
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    Some(sb)
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
    let out = sb.mountprop(&["apply"]);
    assert_eq!(out.code, 2, "{out:#?}");
    let line = out.stdout.lines().find(|l| l.contains("write ")).expect("a write line");
    assert!(
        line.contains("FAILED: ") && line.contains("No space left on device") && line.contains(DIR),
        "{line}"
    );
    assert_eq!(listing(&sb, DIR).trim(), "fill", "no partial drop-in, no temp file");
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
