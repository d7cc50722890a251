//! Which Kubernetes mountPropagation modes work, judged from the flags and proven by the live
//! probe, on a real systemd 252 node. The node's `/` is one overlay of the host's (as on most
//! nodes `/var/lib/kubelet` is on `/`), so the probe's scratch directory in `/` stays in the node.

mod sandbox;

use std::time::{Duration, Instant};

use sandbox::{NODE_BIN, OLD_DOCKER, Run, Sandbox, Setup};
use serde_json::Value;

const KUBELET: &str = "/var/lib/kubelet";
const PAUSE: &str = "MOUNTPROP_TEST_PROBE_PAUSE_MS";

fn node(test: &str, config: &str) -> Option<Sandbox> {
    let setup = Setup::default()
        .with_overlay_root()
        .file("docker.service", OLD_DOCKER)
        .etc("mountprop/config.toml", config);
    let sb = sandbox::boot(test, setup)?;
    sb.exec(&["mkdir", "-p", KUBELET]).ok();
    Some(sb)
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:#?}"))
}

fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mode"] == name))
        .unwrap_or_else(|| panic!("no mode {name}: {report:#}"))
}

fn reason(report: &Value, name: &str) -> String {
    mode(report, name)["reason"].as_str().unwrap_or_default().to_string()
}

fn works(report: &Value) -> [bool; 3] {
    ["None", "HostToContainer", "Bidirectional"].map(|m| mode(report, m)["works"] == true)
}

/// What the probe saw for `subject` at `point`: [host to it, it to host].
fn probed(report: &Value, subject: &str, point: &str) -> [Value; 2] {
    let r = report["probe"]
        .as_array()
        .and_then(|p| p.iter().find(|r| r["subject"] == subject && r["point"] == point))
        .unwrap_or_else(|| panic!("no probe result for {subject} at {point}: {report:#}"));
    [r["host_to_container"].clone(), r["container_to_host"].clone()]
}

/// The host's mount table, the runtime's, and what is in the probed directories.
fn snapshot(sb: &Sandbox, pid: &str) -> [String; 3] {
    [
        sb.mountinfo("1"),
        sb.mountinfo(pid),
        sb.exec(&["ls", "-a", "/", KUBELET]).ok().stdout,
    ]
}

/// `mountprop probe --json`, with the mount tables compared before and after.
fn probe_leaving_no_trace(sb: &Sandbox, pid: &str) -> (i32, Value) {
    let before = snapshot(sb, pid);
    let r = sb.mountprop(&["probe", "--json"]);
    assert_eq!(
        snapshot(sb, pid),
        before,
        "the probe left the mount table or a directory changed"
    );
    (r.code, json(&r))
}

fn start_docker(sb: &Sandbox) -> String {
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    sb.main_pid("docker.service").to_string()
}

/// Layout (a): `/` shared, old docker running in its own slave namespace.
#[test]
fn a_slave_runtime_gets_host_to_container_but_not_bidirectional() {
    let Some(sb) = node("modes_a", "") else { return };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    let pid = start_docker(&sb);

    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1);
    assert_eq!(works(&report), [true, true, false], "{report:#}");
    assert_eq!(
        reason(&report, "Bidirectional"),
        "docker.service: its namespace at / only receives from the host \
         (MountFlags=slave at /etc/systemd/system/docker.service:6)"
    );

    let (code, report) = probe_leaving_no_trace(&sb, &pid);
    assert_eq!(code, 1);
    for point in ["/", KUBELET] {
        assert_eq!(
            probed(&report, "docker.service", point),
            [Value::Bool(true), Value::Bool(false)]
        );
    }
    assert_eq!(works(&report), [true, true, false]);
    let b = mode(&report, "Bidirectional");
    assert_eq!(b["decided_by"], "probe");
    assert!(b.get("disagreement").is_none(), "{b:#}");
    assert!(
        reason(&report, "Bidirectional").ends_with(
            "the live probe agrees (docker.service at /: a tmpfs mounted in its namespace did not appear on the host)"
        ),
        "{b:#}"
    );
}

/// Layout (b): `/` private: nothing propagates, and `/` is named.
#[test]
fn b_a_private_root_breaks_both_and_is_named() {
    let Some(sb) = node("modes_b", "") else { return };
    let pid = start_docker(&sb);
    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1);
    assert_eq!(works(&report), [true, false, false], "{report:#}");
    for m in ["HostToContainer", "Bidirectional"] {
        let why = reason(&report, m);
        assert!(
            why.starts_with("/ is on mount ") && why.ends_with(" (/, overlay), which is private"),
            "{why}"
        );
    }
    let (_, report) = probe_leaving_no_trace(&sb, &pid);
    for point in ["/", KUBELET] {
        assert_eq!(
            probed(&report, "docker.service", point),
            [Value::Bool(false), Value::Bool(false)]
        );
    }
    assert_eq!(works(&report), [true, false, false]);
}

/// Layout (c): after `apply` with restarts allowed, both work and the probe sees both directions.
#[test]
fn c_after_apply_both_work_and_the_probe_confirms_both_directions() {
    let Some(sb) = node("modes_c", "restart = \"always\"\n") else {
        return;
    };
    start_docker(&sb);
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    let pid = sb.main_pid("docker.service").to_string();
    let (code, report) = probe_leaving_no_trace(&sb, &pid);
    assert_eq!(code, 0, "{report:#}");
    for point in ["/", KUBELET] {
        assert_eq!(
            probed(&report, "docker.service", point),
            [Value::Bool(true), Value::Bool(true)]
        );
    }
    assert_eq!(works(&report), [true, true, true]);
    for m in ["HostToContainer", "Bidirectional"] {
        assert_eq!(mode(&report, m)["decided_by"], "probe");
        assert!(
            reason(&report, m).ends_with("the live probe saw mounts cross as needed (1 namespace at 2 points)"),
            "{report:#}"
        );
    }
    let human = sb.mountprop(&["probe"]);
    assert!(
        human
            .stdout
            .contains("live probe: docker.service at /var/lib/kubelet: host to it yes, it to host yes"),
        "{}",
        human.stdout
    );
}

/// Layout (d): the kubelet's root is a separate private mount; everything else is fine.
#[test]
fn d_a_private_kubelet_mount_is_named() {
    let Some(sb) = node("modes_d", "restart = \"always\"\n") else {
        return;
    };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    start_docker(&sb);
    assert_eq!(sb.mountprop(&["apply"]).code, 0);
    sb.exec(&["mount", "-t", "tmpfs", "kubelet", KUBELET]).ok();
    sb.exec(&["mount", "--make-private", KUBELET]).ok();
    let pid = sb.main_pid("docker.service").to_string();

    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1, "drift although every unit and path verdict is ok: {report:#}");
    assert!(
        report["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["status"] != "drift")
    );
    assert_eq!(works(&report), [true, false, false]);
    let why = reason(&report, "Bidirectional");
    assert!(
        why.starts_with("/var/lib/kubelet is on mount ")
            && why.contains(" (/var/lib/kubelet, tmpfs), which is private; no kubelet runs: "),
        "{why}"
    );
    let line = sb.mountprop(&["check", "--oneline"]);
    assert_eq!(line.code, 1);
    assert_eq!(line.stdout, format!("DRIFT: Bidirectional broken: {why}\n"));

    let (_, report) = probe_leaving_no_trace(&sb, &pid);
    assert_eq!(
        probed(&report, "docker.service", "/"),
        [Value::Bool(true), Value::Bool(true)]
    );
    assert_eq!(
        probed(&report, "docker.service", KUBELET),
        [Value::Bool(false), Value::Bool(false)]
    );
    assert_eq!(works(&report), [true, false, false]);
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn probe_mounted(sb: &Sandbox) -> bool {
    sb.mountinfo("1").contains(" mountprop-probe.")
}

/// The runtime dies while the probe holds a mount; then the probe itself is killed: nothing is
/// left behind by the first, and the next run takes away what the killed one left.
#[test]
fn the_probe_leaves_nothing_behind_when_things_die_under_it() {
    let Some(sb) = node("modes_probe_deaths", "") else {
        return;
    };
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    let pid = start_docker(&sb);
    let host_before = sb.mountinfo("1");
    let dirs_before = sb.exec(&["ls", "-a", "/", KUBELET]).ok().stdout;

    let probe = sb.spawn(&[&format!("{PAUSE}=1500")], &[NODE_BIN, "probe", "--json"]);
    wait_for("the probe's mount on the host", || probe_mounted(&sb));
    sb.exec(&["kill", "-KILL", &pid]).ok();
    wait_for("docker to die", || {
        sb.exec(&["test", "-d", &format!("/proc/{pid}")]).code != 0
    });
    let out = Run::from(probe.wait_with_output().expect("probe ran"));
    let report = json(&out);
    // It finished what it had started in the namespace it held, and could not start the rest.
    assert_eq!(
        probed(&report, "docker.service", "/")[0],
        Value::Bool(true),
        "{report:#}"
    );
    let later = report["probe"][1]["error"].as_str().unwrap_or_default();
    assert!(later.contains("has MainPID") && later.contains("exited?"), "{report:#}");
    assert_eq!(sb.mountinfo("1"), host_before, "mount table as before");
    assert_eq!(sb.exec(&["ls", "-a", "/", KUBELET]).ok().stdout, dirs_before);

    // SIGKILL the probe itself while its mount is up: nothing can clean up then...
    start_docker(&sb);
    let mut probe = sb.spawn(&[&format!("{PAUSE}=5000")], &[NODE_BIN, "probe"]);
    wait_for("the probe's mount on the host", || probe_mounted(&sb));
    sb.exec(&["pkill", "-KILL", "-x", "mountprop"]).ok();
    let _ = probe.wait();
    assert!(probe_mounted(&sb), "a killed probe leaves its mount");
    assert!(sb.exec(&["sh", "-c", "ls -d /.mountprop-probe.*"]).code == 0);
    // ...so the next run does.
    let r = sb.mountprop(&["probe"]);
    assert!(r.code == 0 || r.code == 1, "{r:#?}");
    assert!(!probe_mounted(&sb), "{}", sb.mountinfo("1"));
    assert_ne!(
        sb.exec(&["sh", "-c", "ls -d /.mountprop-probe.*"]).code,
        0,
        "stale scratch directory removed"
    );
    assert_eq!(sb.mountinfo("1"), host_before);
}

// ---- node-problem-detector ----

const NPD_CONFIG: &str = include_str!("../packaging/npd/mountprop-plugin-monitor.json");

/// The plugin rule of the shipped monitor config, checked the way NPD validates it.
struct Rule {
    args: Vec<String>,
    timeout_secs: u64,
    max_output: usize,
}

fn secs(v: &Value) -> u64 {
    let s = v.as_str().expect("a duration string");
    s.strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("duration {s}"))
}

fn npd_rule() -> Rule {
    let c: Value = serde_json::from_str(NPD_CONFIG).expect("the monitor config is JSON");
    assert_eq!(c["plugin"], "custom");
    let global = secs(&c["pluginConfig"]["timeout"]);
    let rules = c["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(r["type"], "permanent");
    assert_eq!(r["condition"], "MountPropagationBroken");
    let cond = c["conditions"].as_array().expect("conditions");
    assert!(
        cond.iter().any(|d| d["type"] == r["condition"]),
        "a permanent rule needs its default condition"
    );
    let timeout_secs = secs(&r["timeout"]);
    assert!(
        timeout_secs <= global,
        "NPD refuses a rule timeout above the global one"
    );
    Rule {
        args: r["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect(),
        timeout_secs,
        max_output: c["pluginConfig"]["max_output_length"]
            .as_u64()
            .expect("max_output_length") as usize,
    }
}

#[test]
fn the_npd_monitor_config_is_one_npd_accepts() {
    let r = npd_rule();
    assert_eq!(r.args, ["check", "--oneline"]);
}

/// What NPD makes of one run: (status, message). NPD's own rules: stdout trimmed and cut at
/// max_output_length; exit 0 OK, 1 NonOK, anything else Unknown.
fn run_as_npd(sb: &Sandbox, rule: &Rule) -> (&'static str, String) {
    // NPD runs the plugin in its own container, whose mount namespace is not the host's.
    let timeout = rule.timeout_secs.to_string();
    let mut cmd = vec!["unshare", "--mount", "timeout", &timeout, NODE_BIN];
    cmd.extend(rule.args.iter().map(String::as_str));
    let r = sb.exec(&cmd);
    let mut msg = r.stdout.trim().to_string();
    msg.truncate(rule.max_output);
    let status = match r.code {
        0 => "OK",
        1 => "NonOK",
        _ => "Unknown",
    };
    (status, msg)
}

#[test]
fn the_npd_plugin_reports_a_broken_node_then_a_fixed_one() {
    let rule = npd_rule();
    let Some(sb) = node("modes_npd", "restart = \"always\"\n") else {
        return;
    };
    start_docker(&sb);
    let (status, msg) = run_as_npd(&sb, &rule);
    assert_eq!(status, "NonOK", "{msg}");
    assert!(
        msg.starts_with("DRIFT: / private (mount ") || msg.starts_with("DRIFT: docker.service MountFlags=slave"),
        "{msg}"
    );
    assert!(msg.contains("(+1 more)"), "both / and docker.service: {msg}");

    assert_eq!(sb.mountprop(&["apply"]).code, 0);
    let (status, msg) = run_as_npd(&sb, &rule);
    assert_eq!(status, "OK", "{msg}");
    assert!(
        msg.starts_with("ok: / shared:") && msg.ends_with("; Bidirectional works"),
        "{msg}"
    );

    // No bus: Unknown, and the reason is the message.
    sb.exec(&["systemctl", "stop", "dbus.socket", "dbus.service"]).ok();
    let (status, msg) = run_as_npd(&sb, &rule);
    assert_eq!(status, "Unknown", "{msg}");
    assert!(msg.starts_with("UNKNOWN: cannot check: no system bus"), "{msg}");
}
