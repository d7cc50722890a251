//! Footprint of `mountprop daemon` on an idle node: RSS, threads, CPU over a quiet period.
//! A benchmark, not a test: it prints figures and asserts nothing about them.
//!
//!     cargo bench --bench daemon            # 60 s idle
//!     IDLE_SECS=10 cargo bench --bench daemon

#[path = "../tests/sandbox/mod.rs"]
mod sandbox;

use std::time::{Duration, Instant};

use sandbox::{OLD_DOCKER, Sandbox, Setup};

fn proc_field(sb: &Sandbox, pid: &str, key: &str) -> String {
    let status = sb.read(&format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

/// Time on CPU of all of a process's threads, in ns, from schedstat: exact, unlike utime and
/// stime, which are sampled at the scheduler tick and overcharge a process that wakes on timers.
fn cpu_ns(sb: &Sandbox, pid: &str) -> u64 {
    let out = sb.sh(&format!("cat /proc/{pid}/task/*/schedstat")).stdout;
    out.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// utime + stime, in clock ticks, for comparison.
fn cpu_ticks(sb: &Sandbox, pid: &str) -> u64 {
    let stat = sb.read(&format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// Voluntary context switches of all threads: how often the daemon woke up.
fn wakeups(sb: &Sandbox, pid: &str) -> u64 {
    let out = sb.sh(&format!("cat /proc/{pid}/task/*/status")).stdout;
    out.lines()
        .filter_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// CPU a thread spends per timer wake-up doing nothing else, at the daemon's default probe
/// period (the cost grows with the sleep: deeper idle states): the machine's floor.
fn wakeup_floor() -> f64 {
    let stat = || -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let n = 20;
    let t0 = stat();
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(250));
    }
    (stat() - t0) as f64 / 1e3 / n as f64
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let secs: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("unit file")
        .replace("/usr/bin/mountprop", sandbox::NODE_BIN);
    let setup = Setup::default()
        .file("docker.service", OLD_DOCKER)
        .want("docker.service")
        .file("mountprop.service", &unit)
        .want("mountprop.service");
    let Some(sb) = sandbox::boot("bench-daemon-idle", setup) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sb.exec(&["systemctl", "is-active", "mountprop.service"]).stdout.trim() != "active"
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = sb
        .exec(&["systemctl", "show", "-p", "MainPID", "--value", "mountprop.service"])
        .stdout
        .trim()
        .to_string();
    // Let boot-time work finish, then measure a quiet period.
    std::thread::sleep(Duration::from_secs(2));
    let (n0, t0, w0) = (cpu_ns(&sb, &pid), cpu_ticks(&sb, &pid), wakeups(&sb, &pid));
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = start.elapsed();
    let (n1, t1, w1) = (cpu_ns(&sb, &pid), cpu_ticks(&sb, &pid), wakeups(&sb, &pid));
    let cpu_s = (n1 - n0) as f64 / 1e9;
    let ticks_s = (t1 - t0) as f64 / 100.0; // USER_HZ
    let size = std::fs::metadata(sandbox::BIN).map(|m| m.len()).unwrap_or(0);
    println!(
        "mountprop daemon, idle {} s on a node (docker.service running, / shared):",
        wall.as_secs()
    );
    println!("  binary          {} ({:.2} MB)", sandbox::BIN, size as f64 / 1e6);
    println!("  VmRSS           {}", proc_field(&sb, &pid, "VmRSS:"));
    println!("  VmHWM           {}", proc_field(&sb, &pid, "VmHWM:"));
    println!("  threads         {}", proc_field(&sb, &pid, "Threads:"));
    println!(
        "  CPU (schedstat) {:.1} ms = {:.4} % of one core",
        cpu_s * 1e3,
        100.0 * cpu_s / wall.as_secs_f64()
    );
    println!("  CPU (utime+stime, tick-sampled) {ticks_s:.2} s");
    println!(
        "  wake-ups        {} ({:.1}/s), {:.1} us of CPU each",
        w1 - w0,
        (w1 - w0) as f64 / wall.as_secs_f64(),
        cpu_s * 1e6 / (w1 - w0).max(1) as f64
    );
    println!(
        "  machine floor   {:.1} us of CPU per timer wake-up (a thread that only sleeps 250 ms at a time)",
        wakeup_floor()
    );
    println!(
        "  checks          {}",
        sb.read("/run/mountprop/state.json")
            .and_then(|s| {
                serde_json::from_str::<serde_json::Value>(&s)
                    .ok()
                    .map(|v| v["checks"].to_string())
            })
            .unwrap_or_default()
    );
}
