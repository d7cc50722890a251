//! `mountprop daemon` as the shipped mountprop.service, under a real systemd 252.

mod sandbox;

use std::time::{Duration, Instant};

use sandbox::scenario::{
    OWN, daemon_journal as journal, daemon_prop as prop, daemon_running as running, root_shared, status_text,
    wait_until, with_daemon,
};
use sandbox::{OLD_DOCKER, Sandbox, Setup};

fn state(sb: &Sandbox) -> serde_json::Value {
    serde_json::from_str(&sb.read("/run/mountprop/state.json").unwrap_or_default()).unwrap_or_default()
}

/// Waits until the daemon has run no check for a while: its own fixes cause a follow-up check
/// (the reload it did is a systemd signal), and a test must not race that.
fn settled(sb: &Sandbox) {
    let mut last = -1i64;
    let mut since = Instant::now();
    wait_until("the daemon to settle", Duration::from_secs(20), || {
        let n = state(sb)["checks"].as_i64().unwrap_or(-1);
        if n != last {
            last = n;
            since = Instant::now();
        }
        since.elapsed() > Duration::from_millis(400)
    });
}

/// Boot: the old-docker unit is fixed before docker starts; `systemctl status` shows the
/// STATUS line; `mountprop status` reads the state; the unit file verifies and its exposure
/// stays at what docs/daemon.md records.
#[test]
fn d1_boot_fixes_first_and_reports() {
    let setup = with_daemon(
        Setup::default()
            .file("docker.service", OLD_DOCKER)
            .want("docker.service"),
    )
    .etc(
        "mountprop/config.toml",
        "[daemon]\nmetrics_file = \"/var/lib/node-exporter/mountprop.prom\"\n",
    );
    let Some(sb) = sandbox::boot("d1", setup) else { return };
    running(&sb);
    wait_until("docker running", Duration::from_secs(10), || {
        sb.main_pid("docker.service") != 0
    });
    let pid = sb.main_pid("docker.service").to_string();
    assert_eq!(
        sb.mount_ns(&pid),
        sb.mount_ns("1"),
        "docker started after the fix, in the host's namespace"
    );
    assert!(root_shared(&sb));
    // docker's start is a systemd event: the daemon looks again well before its 60 s timer.
    wait_until("STATUS to see docker running", Duration::from_secs(10), || {
        status_text(&sb).contains("docker.service MountFlags=shared, host namespace")
    });
    let status = sb
        .exec(&["systemctl", "status", "--no-pager", "mountprop.service"])
        .stdout;
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("Status:"))
        .expect("a Status: line");
    assert!(
        line.contains("\"ok: / shared:") && line.contains("docker.service MountFlags=shared, host namespace"),
        "{line}"
    );

    let st = sb.mountprop(&["status"]);
    assert_eq!(st.code, 0, "{st:#?}");
    assert!(
        st.stdout.starts_with("mountprop daemon: running (pid "),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout
            .contains("write /etc/systemd/system/docker.service.d/90-mountprop.conf (MountFlags=shared): done"),
        "{}",
        st.stdout
    );
    let metrics = sb.read("/var/lib/node-exporter/mountprop.prom").expect("metrics file");
    for want in [
        "mountprop_compliant 1",
        "mountprop_unit_mount_flags{unit=\"docker.service\"} 1048576",
        "mountprop_path_shared{path=\"/\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == want), "{want} in\n{metrics}");
    }
    let j = journal(&sb);
    assert!(
        j.contains("made / rshared") && j.contains(&format!("wrote {OWN}")),
        "{j}"
    );

    // A runtime restart is only a systemd signal (no mount, no file change): the daemon's
    // state names the new MainPID long before its 60 s timer.
    sb.exec(&["systemctl", "restart", "docker.service"]).ok();
    let new_pid = sb.main_pid("docker.service");
    wait_until("the new MainPID in the daemon's state", Duration::from_secs(10), || {
        sb.read("/run/mountprop/state.json")
            .is_some_and(|s| s.contains(&format!("MainPID {new_pid} runs in")))
    });

    let exposure = sandbox::scenario::analyze(&sb, "/etc/systemd/system/mountprop.service", 3.4);
    eprintln!("systemd-analyze security mountprop.service: {exposure}");
}

/// Someone makes `/` private: the daemon notices (a propagation change does not wake a poll on
/// mountinfo; the statmount probe does) and makes it shared again. Delays are printed, not
/// asserted against a target.
#[test]
fn d2_make_private_is_undone() {
    // Ten deliberate reverts: lift the no-fight limit (3 per 10 min) out of the way.
    let setup = with_daemon(Setup::default()).etc("mountprop/config.toml", "[daemon]\nmax_fixes = 100\n");
    let Some(sb) = sandbox::boot("d2", setup) else { return };
    running(&sb);
    let delays = sandbox::scenario::make_private_is_undone(&sb, 10);
    eprintln!(
        "make-private -> shared again, 10 trials: min {:?}, median {:?}, max {:?}",
        delays[0], delays[5], delays[9]
    );
}

/// SIGHUP (systemctl reload): a broken config is rejected and the old one stays in force; a
/// good one takes effect.
#[test]
fn d3_reload_rejects_a_broken_config_and_takes_a_good_one() {
    let Some(sb) = sandbox::boot("d3", with_daemon(Setup::default())) else {
        return;
    };
    running(&sb);
    sandbox::scenario::sighup_reload(&sb);
    assert!(status_text(&sb).contains("docker.service absent"));
}

/// kill -9: systemd restarts it. systemctl stop: a clean, quick exit 0.
#[test]
fn d4_killed_is_restarted_and_stop_is_clean() {
    let Some(sb) = sandbox::boot("d4", with_daemon(Setup::default())) else {
        return;
    };
    running(&sb);
    let pid = prop(&sb, "MainPID");
    sb.exec(&["kill", "-9", &pid]).ok();
    wait_until("restarted", Duration::from_secs(15), || {
        let now = prop(&sb, "MainPID");
        now != pid && now != "0" && prop(&sb, "SubState") == "running"
    });
    assert_eq!(prop(&sb, "NRestarts"), "1");
    let t = Instant::now();
    sb.exec(&["systemctl", "stop", "mountprop.service"]).ok();
    let took = t.elapsed();
    eprintln!("systemctl stop took {took:?}");
    assert_eq!(
        prop(&sb, "Result"),
        "success",
        "exited by itself, not killed after a timeout"
    );
    assert_eq!(prop(&sb, "ExecMainStatus"), "0");
    assert_eq!(state(&sb)["running"], false);
    let st = sb.mountprop(&["status"]);
    assert_eq!(st.code, 2, "{st:#?}");
    assert!(st.stdout.starts_with("mountprop daemon: NOT RUNNING"), "{}", st.stdout);
}

/// dbus restarted under the daemon: it survives, reconnects, and works again.
#[test]
fn d5_survives_a_dbus_restart() {
    let Some(sb) = sandbox::boot("d5", with_daemon(Setup::default().file("docker.service", OLD_DOCKER))) else {
        return;
    };
    running(&sb);
    let pid = prop(&sb, "MainPID");
    sb.exec(&["systemctl", "restart", "dbus.service"]).ok();
    // Something that needs the bus to fix: a new drop-in for docker.service, after removal.
    std::thread::sleep(Duration::from_millis(500));
    sb.exec(&["rm", "-f", OWN]).ok();
    wait_until(
        "drop-in restored after the bus restart",
        Duration::from_secs(30),
        || sb.read(OWN).is_some(),
    );
    wait_until("STATUS ok again", Duration::from_secs(30), || {
        status_text(&sb).starts_with("ok: ")
    });
    assert_eq!(prop(&sb, "MainPID"), pid, "no restart of mountprop");
    assert_eq!(prop(&sb, "NRestarts"), "0");
    assert_eq!(state(&sb)["bus"]["connected"], true);
}

/// Something keeps deleting the drop-in every 100 ms: the daemon fixes it max_fixes (3)
/// times, then stops fighting, says so, and keeps running.
#[test]
fn d6_stops_fighting_and_says_so() {
    let Some(sb) = sandbox::boot("d6", with_daemon(Setup::default().file("docker.service", OLD_DOCKER))) else {
        return;
    };
    running(&sb);
    wait_until("drop-in written", Duration::from_secs(10), || sb.read(OWN).is_some());
    settled(&sb);
    // One removal while idle, with no reload: only the watch on the drop-in directory sees it.
    sb.exec(&["rm", "-f", OWN]).ok();
    wait_until("drop-in restored", Duration::from_secs(10), || sb.read(OWN).is_some());
    let j = journal(&sb);
    assert!(j.contains(&format!("acting on drop-in files: write {OWN}")), "{j}");
    sb.exec(&[
        "sh",
        "-c",
        &format!("for i in $(seq 30); do rm -f {OWN}; sleep 0.1; done"),
    ])
    .ok();
    wait_until("REVERTED in STATUS", Duration::from_secs(10), || {
        status_text(&sb).starts_with("REVERTED: ")
    });
    let st = status_text(&sb);
    assert!(
        st.starts_with(&format!("REVERTED: something keeps reverting {OWN} (3 fixes")),
        "{st}"
    );
    let j = journal(&sb);
    assert!(
        j.contains(&format!("something keeps reverting {OWN}: fixed 3 times within 600 s")),
        "{j}"
    );
    assert_eq!(
        j.matches(&format!("wrote {OWN}")).count(),
        3,
        "the first write plus two re-writes: {j}"
    );
    assert_eq!(prop(&sb, "ActiveState"), "active");
    let status = sb.mountprop(&["status"]);
    assert_eq!(status.code, 1);
    assert!(
        status.stdout.contains(&format!("held back: {OWN} (3 fixes")),
        "{}",
        status.stdout
    );
}

/// The watchdog is fed from the working loop while idle.
#[test]
fn d7_watchdog_is_fed_while_idle() {
    let setup = with_daemon(Setup::default()).file("mountprop.service.d/watchdog.conf", "[Service]\nWatchdogSec=1s\n");
    let Some(sb) = sandbox::boot("d7", setup) else { return };
    running(&sb);
    assert_eq!(prop(&sb, "WatchdogUSec"), "1s");
    let pid = prop(&sb, "MainPID");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(prop(&sb, "MainPID"), pid);
    assert_eq!(prop(&sb, "NRestarts"), "0");
    assert!(!journal(&sb).contains("Watchdog timeout"));
}

/// No system bus at all at start: the first round fails, the daemon still becomes ready (a
/// broken node must not hold the boot up), says why, and does not crash-loop.
#[test]
fn d8_ready_without_a_bus_and_no_crash_loop() {
    let Some(sb) = sandbox::boot("d8", Setup::default()) else {
        return;
    };
    // Install the unit only now, with the bus gone, so nothing pulls dbus back in.
    sb.exec(&["systemctl", "stop", "dbus.socket", "dbus.service"]).ok();
    sb.exec(&["systemctl", "mask", "--runtime", "dbus.socket", "dbus.service"])
        .ok();
    sb.write(
        "/etc/systemd/system/mountprop.service",
        &sandbox::scenario::daemon_unit(),
    );
    sb.exec(&["systemctl", "daemon-reload"]).ok();
    sb.exec(&["systemctl", "start", "mountprop.service"]).ok();
    assert_eq!(
        prop(&sb, "ActiveState"),
        "active",
        "ready despite the failed first round"
    );
    let st = status_text(&sb);
    assert!(
        st.starts_with("NO BUS since ") && st.contains("no system bus at /run/dbus/system_bus_socket"),
        "{st}"
    );
    let pid = prop(&sb, "MainPID");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(prop(&sb, "MainPID"), pid);
    assert_eq!(prop(&sb, "NRestarts"), "0");
}

/// `live_probe = true`: with the shipped hardening the probe cannot enter a namespace, and the
/// daemon says so; with the drop-in docs/modes.md gives, the modes are decided by real mounts,
/// and nothing is left on the mount table.
#[test]
fn d9_live_probe_refused_by_the_shipped_hardening_then_allowed_by_the_dropin() {
    let setup = with_daemon(
        Setup::default()
            .with_overlay_root()
            .file("docker.service", OLD_DOCKER)
            .want("docker.service"),
    )
    .etc("mountprop/config.toml", "[daemon]\nlive_probe = true\n");
    let Some(sb) = sandbox::boot("d9", setup) else { return };
    running(&sb);
    let bidirectional = |sb: &Sandbox| {
        state(sb)["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mode"] == "Bidirectional").cloned())
            .unwrap_or_default()
    };
    wait_until("a check with docker running", Duration::from_secs(10), || {
        bidirectional(&sb)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("docker.service in the host's namespace"))
    });
    let b = bidirectional(&sb);
    assert_eq!(b["decided_by"], "flags", "{b:#}");
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("add the live-probe.conf drop-in"),
        "{b:#}"
    );
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("(live probe inconclusive: cannot open /proc/"),
        "{b:#}"
    );

    let dropin = include_str!("../packaging/mountprop.service.d/live-probe.conf");
    sb.write("/etc/systemd/system/mountprop.service.d/live-probe.conf", dropin);
    sb.exec(&["systemctl", "daemon-reload"]).ok();
    sb.exec(&["systemctl", "restart", "mountprop.service"]).ok();
    running(&sb);
    wait_until("the modes decided by the probe", Duration::from_secs(10), || {
        bidirectional(&sb)["decided_by"] == "probe"
    });
    settled(&sb);
    let b = bidirectional(&sb);
    assert_eq!(b["works"], true, "{b:#}");
    assert!(
        status_text(&sb).ends_with("; Bidirectional works (live probe); next check 60s"),
        "{}",
        status_text(&sb)
    );
    assert!(!sb.mountinfo("1").contains("mountprop-probe"), "no probe mount left");
    assert_ne!(
        sb.exec(&["sh", "-c", "ls -d /.mountprop-probe.*"]).code,
        0,
        "no scratch directory left"
    );
}

/// Mount churn (about 1,000 mount/umount events a second, on a table of 5,000 mounts): the
/// daemon stays the same process, is never restarted (watchdog), and still undoes a
/// make-private of / while it lasts, whatever systemd is busy with.
#[test]
fn d10_stays_responsive_under_mount_churn() {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // Four fixes of / in a row (boot and three trials): above the default no-fight limit.
    let setup = with_daemon(
        Setup::default()
            .file("docker.service", OLD_DOCKER)
            .want("docker.service"),
    )
    .etc("mountprop/config.toml", "[daemon]\nmax_fixes = 10\n");
    let Some(sb) = sandbox::boot("d10", setup) else { return };
    running(&sb);
    sb.add_mounts(5000);
    settled(&sb);
    let pid = prop(&sb, "MainPID");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let node = sb.pid;
    let churn = std::thread::spawn(move || {
        sandbox::in_mount_ns_of(node, move || {
            let d = std::path::Path::new("/mnt/many/churn");
            let _ = std::fs::create_dir(d);
            let start = Instant::now();
            let mut events = 0u64;
            while !flag.load(Ordering::SeqCst) {
                mount(Some("churn"), d, Some("tmpfs"), MsFlags::empty(), Some("size=4k")).expect("mount");
                umount2(d, MntFlags::empty()).expect("umount");
                events += 2;
                let due = start + Duration::from_micros(events * 1000);
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
            events
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        sb.exec(&["mount", "--make-private", "/"]).ok();
        let took = wait_until("/ shared again during the churn", Duration::from_secs(10), || {
            root_shared(&sb)
        });
        eprintln!("during churn: make-private / undone in {took:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    let events = churn.join().expect("churn ran");
    assert!(events > 1000, "the churn really ran: {events} events");
    assert_eq!(prop(&sb, "ActiveState"), "active");
    assert_eq!(prop(&sb, "MainPID"), pid, "same process");
    assert_eq!(
        prop(&sb, "NRestarts"),
        "0",
        "never restarted, by the watchdog or otherwise"
    );
}

/// Node Feature Discovery's feature file follows the node: a runtime in a slave namespace gives
/// `bidirectional=false`; restarted into the host's namespace (with mountprop's drop-in), `true`.
/// A reader polling the file all the while never sees a half-written one; a quiet round does
/// not rewrite it; the daemon's metrics textfile passes `promtool check metrics`.
#[test]
fn d11_node_labels_follow_the_node() {
    const DIR: &str = "/etc/kubernetes/node-feature-discovery/features.d";
    const FILE: &str = "/etc/kubernetes/node-feature-discovery/features.d/mountprop";
    const P: &str = "feature.node.kubernetes.io/mountprop.";
    // The daemon is started by hand, after docker has started in its slave namespace.
    let setup = Setup::default()
        .file("docker.service", OLD_DOCKER)
        .want("docker.service")
        .file("mountprop.service", &sandbox::scenario::daemon_unit())
        // NFD's directory exists (nfd-worker's host mount); a file of NFD's own is in it.
        .etc(
            "kubernetes/node-feature-discovery/features.d/other",
            "example.com/other=1\n",
        )
        .etc(
            "mountprop/config.toml",
            "[daemon]\nmetrics_file = \"/var/lib/node-exporter/mountprop.prom\"\n",
        );
    let Some(sb) = sandbox::boot("d11", setup) else { return };
    wait_until("docker running", Duration::from_secs(10), || {
        sb.main_pid("docker.service") != 0
    });
    // Reads the file as fast as it can until told to stop; a read that is not a whole file
    // (mountprop's header first, the last label last) is counted and kept.
    sb.write(
        "/root/reader.py",
        &format!(
            r##"import os, sys
whole = bad = 0
seen = set()
first_bad = ""
while not os.path.exists("/root/stop"):
    try:
        with open("{FILE}") as f:
            t = f.read()
    except FileNotFoundError:
        continue
    if t.startswith("# Managed by mountprop.") and t.endswith("\n") and "{P}stale-containers=" in t.splitlines()[-1]:
        whole += 1
        seen.update(l for l in t.splitlines() if l.startswith("{P}bidirectional="))
    else:
        bad += 1
        first_bad = first_bad or repr(t)
print(whole, bad, sorted(seen), first_bad)
"##
        ),
    );
    let reader = sb.spawn(&[], &["python3", "/root/reader.py"]);
    sb.exec(&["systemctl", "start", "mountprop.service"]).ok();
    running(&sb);
    let label = |name: &str| {
        sb.read(FILE).and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(&format!("{P}{name}=")).map(String::from))
        })
    };
    wait_until("bidirectional=false", Duration::from_secs(10), || {
        label("bidirectional").as_deref() == Some("false")
    });
    let broken = sb.read(FILE).unwrap_or_default();
    eprintln!("with docker in a slave namespace:\n{broken}");
    assert_eq!(label("compliant").as_deref(), Some("false"), "{broken}");
    assert_eq!(label("none").as_deref(), Some("true"), "{broken}");
    assert_eq!(label("stale-containers").as_deref(), Some("0"), "{broken}");

    // The expiry: RFC 3339 UTC, four intervals (60 s) ahead of the node's clock.
    let expiry = broken
        .lines()
        .find_map(|l| l.strip_prefix("# +expiry-time="))
        .expect("an expiry line");
    let now: i64 = sb.sh("date -u +%s").stdout.trim().parse().expect("date");
    let at: i64 = sb
        .exec(&["date", "-u", "-d", expiry, "+%s"])
        .stdout
        .trim()
        .parse()
        .expect("an expiry date(1) reads");
    assert!(
        (now + 180..=now + 245).contains(&at),
        "expiry {expiry} ({at}) vs now {now}"
    );

    // The fix: restarted, docker runs in the host's namespace with mountprop's drop-in.
    sb.exec(&["systemctl", "restart", "docker.service"]).ok();
    wait_until("bidirectional=true", Duration::from_secs(10), || {
        label("bidirectional").as_deref() == Some("true")
    });
    let fixed = sb.read(FILE).unwrap_or_default();
    eprintln!("after docker's restart:\n{fixed}");
    assert_eq!(label("compliant").as_deref(), Some("true"), "{fixed}");

    // Quiet rounds (a daemon-reload is a systemd event, each gives a full round) keep the file.
    settled(&sb);
    let inode = sb.exec(&["stat", "-c", "%i", FILE]).stdout;
    let checks = state(&sb)["checks"].as_i64().unwrap_or(0);
    for _ in 0..3 {
        sb.exec(&["systemctl", "daemon-reload"]).ok();
        settled(&sb);
    }
    assert!(
        state(&sb)["checks"].as_i64().unwrap_or(0) > checks,
        "the reloads gave rounds"
    );
    assert_eq!(
        sb.exec(&["stat", "-c", "%i", FILE]).stdout,
        inode,
        "rewritten with no change"
    );

    sb.write("/root/stop", "");
    let out = reader.wait_with_output().expect("the reader");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("reader: whole reads, bad reads, values seen, first bad: {said}");
    let mut words = said.split_whitespace();
    let whole: u64 = words.next().and_then(|w| w.parse().ok()).expect("reader output");
    let bad: u64 = words.next().and_then(|w| w.parse().ok()).expect("reader output");
    assert!(whole > 100 && bad == 0, "{said}");
    assert!(
        said.contains(&format!("'{P}bidirectional=false', '{P}bidirectional=true'")),
        "the reader saw both: {said}"
    );
    // Nothing else in NFD's directory changed: no temp file left, NFD's own file untouched.
    let listing = sb.exec(&["ls", "-A", DIR]).stdout;
    assert_eq!(listing, "mountprop\nother\n");
    assert_eq!(
        sb.read(&format!("{DIR}/other")).as_deref(),
        Some("example.com/other=1\n")
    );

    let metrics = sb.read("/var/lib/node-exporter/mountprop.prom").expect("metrics file");
    sandbox::scenario::promtool_check_metrics(&metrics);
}
