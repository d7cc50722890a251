//! The systemd version matrix: Debian 11 (systemd 247), 12 (252), 13 (257) and unstable (the
//! newest), each tree's own systemd booted as PID 1 (tests/sandbox/trees.rs), the static
//! mountprop build inside. Every row of the version table in docs/testing.md is one of these tests.
//!
//! The trees come from scripts/trees.sh (target/trees/<suite>); a missing tree is built first.
//! The binary is the static build: `$MOUNTPROP_STATIC_BIN`, set by scripts/test.sh, or built
//! by the first test that needs it.

mod sandbox;

use std::time::Duration;

use mountprop::config::MountFlagsMode;
use mountprop::dropin;
use sandbox::scenario::{self, OWN, SHARED};
use sandbox::trees::{self, Tree};
use sandbox::{OLD_DOCKER, Sandbox};

const SITE: &str = "/etc/systemd/system/docker.service.d/zz-site.conf";

fn boot(tree: &Tree, row: &str, setup: sandbox::Setup) -> Option<Sandbox> {
    let sb = sandbox::boot(&format!("matrix-{}-{row}", tree.suite), setup)?;
    let version = mountprop::systemd::parse_version(&sb.manager_property("Version"));
    assert_eq!(version, Some(tree.version), "booted the tree's own systemd");
    Some(sb)
}

/// Old docker (MountFlags=slave): check, apply with restart pending (Markers from 248, the
/// plain advice before), a second apply that changes nothing, the operator's restart, then a
/// site drop-in that overrides mountprop's: named, not fought.
fn core(suite: &str) {
    let Some(t) = trees::tree(suite) else { return };
    let Some(sb) = boot(&t, "core", t.setup().file("docker.service", OLD_DOCKER)) else {
        return;
    };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    scenario::check_names_the_slave_line(&sb);
    let pid = scenario::restart_pending(&sb, t.version >= 248);
    scenario::applies_change_nothing(&sb, 2, 1);
    assert_eq!(sb.main_pid("docker.service"), pid);

    sb.exec(&["systemctl", "restart", "docker.service"]).ok();
    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 0, "{check:#?}");
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(
        sb.mount_ns(&pid),
        sb.mount_ns("1"),
        "restarted into the host's namespace"
    );

    sb.write(SITE, "# site policy\n[Service]\nMountFlags=slave\n");
    sb.exec(&["systemctl", "daemon-reload"]).ok();
    scenario::later_dropin_not_fought(&sb, SITE, 0);
}

/// The shipped unit boots first and fixes the node before docker starts; STATUS; the repair
/// of `mount --make-private /`; SIGHUP; `systemd-analyze verify` and `security` of the unit
/// with the tree's own systemd-analyze.
fn daemon(suite: &str) {
    let Some(t) = trees::tree(suite) else { return };
    let setup = scenario::with_daemon(t.setup().file("docker.service", OLD_DOCKER).want("docker.service"))
        .etc("mountprop/config.toml", "[daemon]\nmax_fixes = 100\n");
    let Some(sb) = boot(&t, "daemon", setup) else { return };
    scenario::daemon_running(&sb);
    scenario::wait_until("docker running", Duration::from_secs(10), || {
        sb.main_pid("docker.service") != 0
    });
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(sb.mount_ns(&pid), sb.mount_ns("1"), "docker started after the fix");
    scenario::wait_until("STATUS to see docker running", Duration::from_secs(10), || {
        scenario::status_text(&sb).contains("docker.service MountFlags=shared, host namespace")
    });
    let status = scenario::status_text(&sb);
    assert!(status.starts_with("ok: / shared:"), "{status}");

    let exposure = scenario::analyze(&sb, "/etc/systemd/system/mountprop.service", 3.4);
    eprintln!(
        "systemd {}: systemd-analyze security mountprop.service: {exposure}",
        t.version
    );
    let delays = scenario::make_private_is_undone(&sb, 3);
    eprintln!("systemd {}: make-private -> shared again: {delays:?}", t.version);
    scenario::sighup_reload(&sb);
}

/// `apply --root` on the tree before it boots (as an image build does), then the boot: the
/// drop-in it wrote is loaded, and is exactly what the booted systemd needs, so a live apply
/// has no drop-in to write and nothing to reload.
fn root_then_boot(suite: &str) {
    let Some(t) = trees::tree(suite) else { return };
    // The image holds the shipped unit (as the package puts it); apply --root enables it.
    let setup = t
        .setup()
        .file("docker.service", OLD_DOCKER)
        .file("mountprop.service", &scenario::daemon_unit())
        .pre_boot("\"$R/mnt/harness/mountprop\" apply --root \"$R\"");
    let Some(sb) = boot(&t, "root", setup) else { return };
    assert_eq!(
        sb.exec(&["systemctl", "is-enabled", "mountprop.service"]).stdout.trim(),
        "enabled",
        "enabled by apply --root"
    );
    let text = sb.read(OWN).expect("--root wrote the drop-in into the tree");
    let version = mountprop::systemd::parse_version(&sb.manager_property("Version"));
    assert_eq!(
        text,
        dropin::render(&dropin::choose(MountFlagsMode::Auto, version)),
        "the text the booted systemd's version calls for"
    );
    assert_eq!(sb.mount_flags("docker.service"), SHARED, "loaded at boot");
    let reloads = sb.reload_counter();
    let r = sb.mountprop(&["apply", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    let kinds: Vec<&str> = v["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        !kinds.iter().any(|k| k.contains("drop-in") || k.contains("reload")),
        "the live node wanted more: {v:#}"
    );
    assert_eq!(reloads.count(), 0);
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(sb.mount_ns(&pid), sb.mount_ns("1"), "docker in the host's namespace");
    assert_eq!(sb.mountprop(&["check"]).code, 0);
}

/// `dpkg -i` of the .deb inside the tree (as an image build does), then a boot with it
/// enabled: the service runs and fixed the node.
fn deb(suite: &str) {
    let Some(t) = trees::tree(suite) else { return };
    let deb = trees::deb_path();
    if !sandbox::require(
        "matrix deb",
        deb.is_file(),
        &format!("{} missing (scripts/package.sh deb)", deb.display()),
    ) {
        return;
    }
    let name = deb.file_name().and_then(|n| n.to_str()).expect("name").to_string();
    let setup = t
        .setup()
        .file("docker.service", OLD_DOCKER)
        .want("docker.service")
        .harness_file(&deb)
        .pre_boot(&format!("chroot \"$R\" dpkg -i /mnt/harness/{name}"));
    let Some(sb) = boot(&t, "deb", setup) else { return };
    assert_eq!(
        sb.exec(&["systemctl", "is-enabled", "mountprop.service"]).stdout.trim(),
        "enabled"
    );
    scenario::wait_until("the packaged daemon ok", Duration::from_secs(20), || {
        sb.show("mountprop.service", "ActiveState") == "active" && scenario::status_text(&sb).starts_with("ok: ")
    });
    assert!(
        scenario::status_text(&sb).contains("docker.service MountFlags=shared"),
        "{}",
        scenario::status_text(&sb)
    );
    assert_eq!(
        sb.show("mountprop.service", "ExecStart")
            .split(' ')
            .find(|w| w.starts_with("path=")),
        Some("path=/usr/bin/mountprop"),
        "the packaged binary runs"
    );
    assert!(sb.read(OWN).is_some_and(|c| c.ends_with("MountFlags=shared\n")));
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(sb.mount_ns(&pid), sb.mount_ns("1"));
}

/// Right after `systemctl start` of a MountFlags=slave runtime, systemd may not have set its
/// namespace up yet (seen in most tries on 257 and newer). `check` must never judge that
/// process as running in the host's namespace, whether it may read /proc/<pid>/exe or not.
fn race(suite: &str) {
    let Some(t) = trees::tree(suite) else { return };
    let Some(sb) = boot(&t, "race", t.setup().file("docker.service", OLD_DOCKER)) else {
        return;
    };
    // The window itself, without mountprop: what the MainPID is right after the start.
    let mut in_setup = 0;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = sb.sh(
            "systemctl start docker.service; p=$(systemctl show -p MainPID --value docker.service); \
             e=$(readlink /proc/$p/exe); c=$(cat /proc/$p/comm); \
             [ \"$(readlink /proc/$p/ns/mnt)\" = \"$(readlink /proc/1/ns/mnt)\" ] && n=host || n=own; \
             echo \"$e|$c|$n\"; systemctl stop docker.service",
        );
        let line = r.stdout.trim().to_string();
        in_setup += usize::from(!line.starts_with("/usr/bin/sleep") && !line.starts_with("/bin/sleep"));
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    eprintln!(
        "systemd {}: right after start, 10 tries: {in_setup} not yet the command; seen (exe|comm|namespace): {seen:?}",
        t.version
    );
    let mut waited = 0;
    // As root, and with only the capability the shipped unit leaves (no CAP_SYS_PTRACE, so no
    // /proc/<pid>/exe of a runtime that has more).
    let tries = [
        ("", "root"),
        ("setpriv --bounding-set=-all,+sys_admin ", "CAP_SYS_ADMIN only"),
    ];
    for i in 0..20 {
        let (prefix, who) = tries[i % 2];
        let r = sb.sh(&format!(
            "systemctl start docker.service && {prefix}{} check --json; systemctl stop docker.service",
            sandbox::NODE_BIN
        ));
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("try {i}: {e}: {r:#?}"));
        let d = Sandbox::verdict(&v, "docker.service");
        let detail = d["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("runs in the host's mount namespace"),
            "try {i} ({who}): a MountFlags=slave runtime judged in the host's namespace: {d:#}"
        );
        assert!(
            detail.contains("has its own mount namespace") || detail.contains("has not yet handed it over"),
            "try {i} ({who}): {d:#}"
        );
        waited += usize::from(detail.contains("has not yet handed it over"));
    }
    eprintln!(
        "systemd {}: 20 start+check tries (half without CAP_SYS_PTRACE), {waited} still in systemd's setup after the wait",
        t.version
    );
}

/// A reload whose answer is lost, as on systemd 238 (`Manager.Reload()` answers NoReply
/// although it reloads): here dbus-daemon's own reply timeout (2 s) runs out while a generator
/// keeps the reload busy for 4 s. The reload happens; `apply` confirms it from the units and
/// goes on, instead of failing with exit 2.
fn lost_reload(suite: &str) {
    let Some(t) = trees::tree(suite) else { return };
    let setup = t.setup().file("docker.service", OLD_DOCKER).etc(
        "dbus-1/system-local.conf",
        "<busconfig>\n  <limit name=\"reply_timeout\">2000</limit>\n</busconfig>\n",
    );
    let Some(sb) = boot(&t, "lost-reload", setup) else {
        return;
    };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    sb.write(
        "/etc/systemd/system-generators/slow-reload",
        "#!/bin/sh\n# A reload that takes longer than the bus waits for its answer.\n[ -e /etc/slow-reload ] && sleep 4\nexit 0\n",
    );
    sb.exec(&["chmod", "755", "/etc/systemd/system-generators/slow-reload"])
        .ok();
    sb.exec(&["touch", "/etc/slow-reload"]).ok();
    // The answer really is lost: systemd's own client sees the bus give up on it.
    let bare = sb.exec(&[
        "busctl",
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "Reload",
    ]);
    assert_ne!(bare.code, 0, "Reload answered within the bus's timeout: {bare:#?}");
    scenario::wait_until("that reload to end", Duration::from_secs(20), || {
        sb.exec(&[
            "busctl",
            "--timeout=1",
            "get-property",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "Version",
        ])
        .code
            == 0
    });
    let reloads = sb.reload_counter();
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "restart pending, not a failure: {apply:#?}");
    assert!(
        apply.stdout.contains("reload systemd (daemon-reload): done"),
        "{}",
        apply.stdout
    );
    assert!(apply.stderr.contains("answer to Reload was lost"), "{apply:#?}");
    assert_eq!(reloads.count(), 1, "one reload, not repeated");
    assert_eq!(sb.mount_flags("docker.service"), SHARED, "the reload happened");
    eprintln!("systemd {}: bare Reload: {}", t.version, bare.stderr.trim());
}

macro_rules! matrix {
    ($($suite:ident),*) => {$(
        mod $suite {
            #[test]
            fn core() {
                super::core(stringify!($suite));
            }
            #[test]
            fn daemon() {
                super::daemon(stringify!($suite));
            }
            #[test]
            fn root_then_boot() {
                super::root_then_boot(stringify!($suite));
            }
            #[test]
            fn deb() {
                super::deb(stringify!($suite));
            }
            #[test]
            fn race() {
                super::race(stringify!($suite));
            }
            #[test]
            fn lost_reload() {
                super::lost_reload(stringify!($suite));
            }
        }
    )*};
}

matrix!(bullseye, bookworm, trixie, sid);
