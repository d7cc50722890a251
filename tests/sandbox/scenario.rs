//! Scenarios and helpers shared by the host's systemd tests (tests/node.rs, tests/daemon.rs)
//! and the systemd version matrix (tests/matrix.rs), which runs them on each tree's systemd.

use std::time::{Duration, Instant};

use super::{NODE_BIN, Sandbox, Setup};

pub const OWN: &str = "/etc/systemd/system/docker.service.d/90-mountprop.conf";
pub const SHARED: u64 = 1048576;
pub const SLAVE: u64 = 524288;

pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub fn root_propagation(sb: &Sandbox, pid: &str) -> String {
    Sandbox::propagation_of(&sb.mountinfo(pid), "/")
}

/// The peer group number of a "shared:N ..." field list.
pub fn peer_group(fields: &str) -> Option<&str> {
    fields.split(' ').find_map(|f| f.strip_prefix("shared:"))
}

pub fn root_shared(sb: &Sandbox) -> bool {
    root_propagation(sb, "1").starts_with("shared:")
}

/// The shipped unit, with only the binary's path changed to where the node sees it.
pub fn daemon_unit() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("systemd/mountprop.service");
    assert!(text.contains("ExecStart=/usr/bin/mountprop daemon"));
    text.replace("/usr/bin/mountprop", NODE_BIN)
}

/// The node boots with the shipped unit, started by its target.
pub fn with_daemon(setup: Setup) -> Setup {
    setup
        .file("mountprop.service", &daemon_unit())
        .want("mountprop.service")
}

pub fn daemon_prop(sb: &Sandbox, p: &str) -> String {
    sb.show("mountprop.service", p)
}

pub fn status_text(sb: &Sandbox) -> String {
    daemon_prop(sb, "StatusText")
}

pub fn daemon_running(sb: &Sandbox) {
    wait_until("mountprop.service active (running)", Duration::from_secs(20), || {
        daemon_prop(sb, "ActiveState") == "active" && daemon_prop(sb, "SubState") == "running"
    });
}

pub fn daemon_journal(sb: &Sandbox) -> String {
    sb.exec(&["journalctl", "--no-pager", "-u", "mountprop.service"]).stdout
}

/// `check` on the running old docker (OLD_DOCKER): drift, exit 1, naming its unit file's line.
pub fn check_names_the_slave_line(sb: &Sandbox) {
    let check = sb.mountprop(&["check"]);
    assert_eq!(check.code, 1, "{check:#?}");
    let line = check.line("docker.service");
    assert!(
        line.contains("DRIFT") && line.contains("MountFlags=slave (set in /etc/systemd/system/docker.service:6)"),
        "{line}"
    );
}

/// `apply` with restart = "never" on a running old docker: one reload, the drop-in, docker left
/// running and reported restart pending. Markers=needs-restart is set where systemd has the
/// property (>= 248); before that only the advice to restart, and no Markers asked for.
/// Returns docker's MainPID.
pub fn restart_pending(sb: &Sandbox, markers: bool) -> u32 {
    let pid = sb.main_pid("docker.service");
    let reloads = sb.reload_counter();
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert_eq!(reloads.count(), 1);
    assert!(sb.read(OWN).is_some_and(|c| c.ends_with("MountFlags=shared\n")));
    assert_eq!(sb.mount_flags("docker.service"), SHARED);
    assert_eq!(sb.main_pid("docker.service"), pid, "not restarted");
    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1);
    let v = Sandbox::verdict(&report, "docker.service");
    assert_eq!(v["status"], "restart-pending", "{v:#}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("restart pending: MountFlags=shared"), "{v:#}");
    assert!(
        detail.contains("restart it when safe: systemctl restart docker.service"),
        "{v:#}"
    );
    if markers {
        assert!(detail.contains("reload-or-restart --marked"), "{v:#}");
        assert!(
            sb.unit_property("docker.service", "Unit", "Markers")
                .contains("needs-restart")
        );
    } else {
        assert!(!detail.contains("--marked"), "no Markers before systemd 248: {v:#}");
        assert!(
            !apply.stdout.contains("needs-restart"),
            "no Markers asked for: {}",
            apply.stdout
        );
        let markers = sb.exec(&[
            "busctl",
            "get-property",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1/unit/docker_2eservice",
            "org.freedesktop.systemd1.Unit",
            "Markers",
        ]);
        assert_ne!(markers.code, 0, "this systemd has no Markers property: {markers:#?}");
    }
    pid
}

/// `runs` more applies after the first: none does anything, none reloads, the drop-in keeps
/// its inode and times; each exits `code` (1 while a restart is pending).
pub fn applies_change_nothing(sb: &Sandbox, runs: usize, code: i32) {
    let stat = |p: &str| sb.exec(&["stat", "-c", "%i %Y.%y %Z", p]).ok().stdout;
    let first = stat(OWN);
    let dir = stat("/etc/systemd/system/docker.service.d");
    let mounts = sb.mountinfo("1");
    let reloads = sb.reload_counter();
    for i in 1..=runs {
        let r = sb.mountprop(&["apply", "--json"]);
        assert_eq!(r.code, code, "run {i}: {r:#?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("apply --json");
        assert_eq!(v["actions"], serde_json::json!([]), "run {i} did something: {v:#}");
    }
    assert_eq!(stat(OWN), first, "inode and times of the drop-in unchanged");
    assert_eq!(
        stat("/etc/systemd/system/docker.service.d"),
        dir,
        "no temp files came and went"
    );
    assert_eq!(sb.mountinfo("1"), mounts, "mount table unchanged");
    assert_eq!(reloads.count(), 0, "no reload");
}

/// A site drop-in at `site` that sorts after mountprop's sets MountFlags=slave (on line 3):
/// named by file and line, not fought (at most the one reload for mountprop's own file, no
/// restart), and left as it is.
pub fn later_dropin_not_fought(sb: &Sandbox, site: &str, reloads_allowed: usize) {
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
            .unwrap_or_default()
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
    assert_eq!(
        reloads.count(),
        reloads_allowed,
        "its own drop-in loaded at most once, then nothing more"
    );
    assert_eq!(sb.main_pid("docker.service"), pid, "no restart that could not help");
    assert_eq!(sb.mount_flags("docker.service"), SLAVE, "the site's setting stands");
}

/// With the daemon running: `mount --make-private /` is undone, `trials` times. Returns the
/// delays, sorted.
pub fn make_private_is_undone(sb: &Sandbox, trials: usize) -> Vec<Duration> {
    wait_until("/ shared", Duration::from_secs(10), || root_shared(sb));
    let mut delays = Vec::new();
    for _ in 0..trials {
        sb.exec(&["mount", "--make-private", "/"]).ok();
        let t = Instant::now();
        wait_until("/ shared again", Duration::from_secs(10), || root_shared(sb));
        delays.push(t.elapsed());
    }
    delays.sort();
    assert!(
        daemon_journal(sb).matches("made / rshared").count() > trials / 2,
        "the daemon did the fixing"
    );
    delays
}

/// With the daemon running on the default config: SIGHUP (systemctl reload) with a broken
/// config is rejected and the old one stays in force; a good one takes effect; same process.
pub fn sighup_reload(sb: &Sandbox) {
    let pid = daemon_prop(sb, "MainPID");
    sb.write(
        "/etc/mountprop/config.toml",
        "units = [\"docker.service\"]\nrestart = \"sometimes\"\n",
    );
    sb.exec(&["systemctl", "reload", "mountprop.service"]).ok();
    wait_until("rejection in STATUS", Duration::from_secs(10), || {
        status_text(sb).contains("config reload rejected")
    });
    assert_eq!(daemon_prop(sb, "MainPID"), pid, "still the same process");
    assert_eq!(daemon_prop(sb, "ActiveState"), "active");
    let st = status_text(sb);
    assert!(
        st.contains("crio.service absent"),
        "old config (default units) still in force: {st}"
    );
    assert!(
        st.contains("/etc/mountprop/config.toml:2:11: unknown variant `sometimes`"),
        "{st}"
    );
    assert!(
        daemon_journal(sb)
            .contains("config reload rejected; the previous config stays in force: /etc/mountprop/config.toml:2:11")
    );
    sb.write("/etc/mountprop/config.toml", "units = [\"docker.service\"]\n");
    sb.exec(&["systemctl", "reload", "mountprop.service"]).ok();
    wait_until("new config in force", Duration::from_secs(10), || {
        let st = status_text(sb);
        !st.contains("rejected") && !st.contains("crio.service")
    });
    assert_eq!(daemon_prop(sb, "MainPID"), pid);
}

/// `systemd-analyze verify` of the unit file at `path` is clean, and `security` of the loaded
/// unit gives at most `max` (the figure the README records). Returns the exposure.
pub fn analyze(sb: &Sandbox, path: &str, max: f64) -> f64 {
    let verify = sb.exec(&["systemd-analyze", "verify", path]);
    // Older versions also talk about the sandbox itself (247: "Couldn't move remaining
    // userspace processes"); nothing may be about this unit.
    let about_it: Vec<&str> = verify.stderr.lines().filter(|l| l.contains("mountprop")).collect();
    assert_eq!(
        (verify.code, about_it),
        (0, Vec::<&str>::new()),
        "systemd-analyze verify {path} is clean: {verify:#?}"
    );
    let sec = sb
        .exec(&["systemd-analyze", "security", "--no-pager", "mountprop.service"])
        .stdout;
    let exposure: f64 = sec
        .lines()
        .find_map(|l| l.split("Overall exposure level for mountprop.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure figure in {sec}"));
    assert!(exposure <= max, "hardening lost: exposure {exposure}");
    exposure
}

/// `promtool check metrics` (Debian's prometheus package) on a textfile the daemon wrote: no
/// lint, no error.
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/deps.sh installs Debian's prometheus for it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool's stdin");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}\non\n{text}"
    );
}
