//! mountprop on a real systemd 252 node (the test sandbox): one full check against the shell a
//! person would write, exec to READY=1, the reaction to `mount --make-private /`, the idle
//! footprint, and mount churn at 50,000 mounts. A benchmark, not a test: it prints medians and
//! percentiles and asserts nothing about them.
//!
//!     cargo bench --bench node                      # everything, 300 s idle
//!     ONLY=check,reaction IDLE_SECS=60 cargo bench --bench node
//!     BENCH_BINS=glibc=target/release/mountprop,musl=target/dist/x86_64/mountprop cargo bench --bench node

#[path = "../tests/sandbox/mod.rs"]
mod sandbox;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mountprop::statmount;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use sandbox::{NODE_BIN, OLD_DOCKER, Sandbox, Setup};

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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn mounts_in(sb: &Sandbox) -> usize {
    std::fs::read_to_string(format!("/proc/{}/mountinfo", sb.pid)).map_or(0, |t| t.lines().count())
}

/// Waits until the node's systemd has used no CPU for a second: after thousands of new mounts
/// it is busy making .mount units for a while, and answers D-Bus late meanwhile.
fn systemd_quiet(sb: &Sandbox) {
    let ticks = || {
        std::fs::read_to_string(format!("/proc/{}/stat", sb.pid))
            .ok()
            .and_then(|s| {
                let f: Vec<u64> = s
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                Some(f.get(10)? + f.get(11)?)
            })
            .unwrap_or(0)
    };
    let start = Instant::now();
    let mut last = ticks();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = ticks();
        if now == last {
            println!(
                "  (systemd busy for {:.1} s after the mounts were made)",
                start.elapsed().as_secs_f64()
            );
            return;
        }
        last = now;
    }
}

/// Grows the node's table to about `n` mounts, then waits for systemd and the daemon to settle.
fn grow(sb: &Sandbox, n: usize) {
    let have = mounts_in(sb);
    if have < n {
        sb.add_mounts(n - have);
        systemd_quiet(sb);
        settle(sb);
    }
}

fn prop(sb: &Sandbox, p: &str) -> String {
    sb.show("mountprop.service", p)
}

fn daemon_pid(sb: &Sandbox) -> String {
    prop(sb, "MainPID")
}

fn wait_active(sb: &Sandbox) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while prop(sb, "ActiveState") != "active" {
        assert!(
            Instant::now() < deadline,
            "mountprop.service is not active: {}",
            sb.exec(&["systemctl", "status", "--no-pager", "mountprop.service"])
                .stdout
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the daemon has done no check for a second.
fn settle(sb: &Sandbox) {
    let checks = || {
        sb.read("/run/mountprop/state.json")
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["checks"].as_u64())
            .unwrap_or(0)
    };
    let mut last = checks();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = checks();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Median wall time of running `args` in the node, over `n` runs.
fn time_in_node(sb: &Sandbox, args: &[&str], n: usize) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new("nsenter")
                .args(["-t", &sb.pid.to_string(), "-a"])
                .args(args)
                .output()
                .expect("nsenter");
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut v)
}

fn rss(sb: &Sandbox, pid: &str) -> String {
    format!("{} / {}", proc_field(sb, pid, "VmRSS:"), proc_field(sb, pid, "VmHWM:"))
}

fn ms(s: f64) -> String {
    format!("{:.1} ms", s * 1e3)
}

struct Report(Vec<(String, String)>);

impl Report {
    fn add(&mut self, what: &str, value: String) {
        println!("  {what}: {value}");
        self.0.push((what.to_string(), value));
    }
}

/// One full check against the shell a person would write, in the node.
fn full_check(sb: &Sandbox, r: &mut Report) {
    println!("\n== one full check vs the shell ({} mounts)", mounts_in(sb));
    // A check that fails fast would time the error: it must give a verdict (exit 0 or 1).
    let once = sb.exec(&[NODE_BIN, "check"]);
    assert!(
        once.code == 0 || once.code == 1,
        "mountprop check fails in the node: {once:#?}"
    );
    let n = 41;
    let base = time_in_node(sb, &["true"], n);
    let ours = time_in_node(sb, &[NODE_BIN, "check"], n) - base;
    let shell = time_in_node(
        sb,
        &[
            "sh",
            "-c",
            "systemctl show -p MountFlags docker.service containerd.service crio.service; findmnt -no PROPAGATION /",
        ],
        n,
    ) - base;
    r.add("mountprop check (3 units, kubelet, paths)", ms(ours));
    r.add("shell: systemctl show + findmnt", ms(shell));
    r.add("mountprop check / shell", format!("{:.2}", ours / shell));
}

/// exec of `mountprop daemon` to READY=1, from systemd's own timestamps, over `n` restarts.
fn boot_path(sb: &Sandbox, r: &mut Report, n: usize) {
    let mounts = mounts_in(sb);
    println!("\n== exec to READY=1 ({mounts} mounts)");
    let mono = |p: &str| prop(sb, p).parse::<u64>().unwrap_or(0);
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            // Many restarts in a row would hit systemd's start rate limit.
            sb.exec(&["systemctl", "reset-failed", "mountprop.service"]);
            sb.exec(&["systemctl", "restart", "mountprop.service"]);
            wait_active(sb);
            (mono("ActiveEnterTimestampMonotonic") - mono("ExecMainStartTimestampMonotonic")) as f64 / 1e6
        })
        .collect();
    let p50 = median(&mut v);
    r.add(&format!("exec to READY=1 at {mounts} mounts, median of {n}"), ms(p50));
    settle(sb);
}

/// `mount --make-private /` in the node, then the time until `/` is shared again, `n` trials
/// at random phases of the daemon's timer.
fn reactions(sb: &Sandbox, n: usize, stop: Option<Arc<AtomicBool>>) -> Vec<f64> {
    sb.in_mount_ns(move || {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                break;
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(300 + seed % 400));
            let shared = || statmount::mount_of(Path::new("/")).is_ok_and(|m| m.propagation.is_shared());
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_PRIVATE, None::<&str>).expect("make-private /");
            let t = Instant::now();
            while !shared() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_micros(200));
            }
            let took = t.elapsed().as_secs_f64();
            if took > 0.3 {
                // Where in the node's time (the journal's monotonic clock) a slow one happened.
                let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                    .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
                    .unwrap_or(0.0);
                println!("  slow trial: {:.0} ms, ended at monotonic {now:.3}", took * 1e3);
            }
            out.push(took);
        }
        out
    })
}

fn reaction(sb: &Sandbox, r: &mut Report, n: usize) {
    let mounts = mounts_in(sb);
    println!("\n== make-private / -> shared again ({mounts} mounts, {n} trials)");

    let mut v = reactions(sb, n, None);
    let (p50, p99, max) = (
        percentile(&mut v, 0.5),
        percentile(&mut v, 0.99),
        percentile(&mut v, 1.0),
    );
    r.add(
        &format!("reaction at {mounts} mounts, p50 / p99 / max of {}", v.len()),
        format!("{} / {} / {}", ms(p50), ms(p99), ms(max)),
    );
    settle(sb);
}

fn footprint(sb: &Sandbox, r: &mut Report, secs: u64) {
    let pid = daemon_pid(sb);
    println!("\n== idle footprint ({} mounts, {secs} s)", mounts_in(sb));
    settle(sb);
    let (n0, t0, w0) = (cpu_ns(sb, &pid), cpu_ticks(sb, &pid), wakeups(sb, &pid));
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = start.elapsed().as_secs_f64();
    let (n1, t1, w1) = (cpu_ns(sb, &pid), cpu_ticks(sb, &pid), wakeups(sb, &pid));
    let cpu = (n1 - n0) as f64 / 1e9;
    r.add("idle RSS (VmRSS / VmHWM)", rss(sb, &pid));
    r.add("threads", proc_field(sb, &pid, "Threads:"));
    r.add(
        &format!("idle CPU over {secs} s (schedstat)"),
        format!("{:.1} ms = {:.4} % of one core", cpu * 1e3, 100.0 * cpu / wall),
    );
    r.add(
        "idle CPU, tick-sampled utime+stime",
        format!("{:.2} s", (t1 - t0) as f64 / 100.0),
    );
    r.add(
        "wake-ups",
        format!(
            "{:.1}/s, {:.1} us of CPU each (machine floor {:.1} us)",
            (w1 - w0) as f64 / wall,
            cpu * 1e6 / (w1 - w0).max(1) as f64,
            wakeup_floor()
        ),
    );
}

/// 1,000 mount/umount events a second for `secs` at the current table size: the daemon's CPU,
/// RSS, restarts, and its reaction while it lasts.
fn churn(sb: &Sandbox, r: &mut Report, secs: u64) {
    let mounts = mounts_in(sb);
    println!("\n== churn: 1,000 mount/umount events a second for {secs} s ({mounts} mounts)");
    settle(sb);
    let pid = daemon_pid(sb);
    let restarts0 = prop(sb, "NRestarts");
    let (n0, c0) = (
        cpu_ns(sb, &pid),
        sb.read("/run/mountprop/state.json").unwrap_or_default(),
    );
    let events = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (ev, st) = (events.clone(), stop.clone());
    let node = sb.pid;
    let churner = std::thread::spawn(move || {
        sandbox::in_mount_ns_of(node, move || {
            let d = Path::new("/mnt/many/churn");
            let _ = std::fs::create_dir(d);
            let start = Instant::now();
            let mut i: u64 = 0;
            while start.elapsed() < Duration::from_secs(secs) {
                if i.is_multiple_of(2) {
                    mount(Some("churn"), d, Some("tmpfs"), MsFlags::empty(), Some("size=4k")).expect("churn mount");
                } else {
                    umount2(d, MntFlags::empty()).expect("churn umount");
                }
                i += 1;
                ev.store(i, Ordering::SeqCst);
                // Paced to 1,000 events a second.
                let due = start + Duration::from_micros(i * 1000);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            if !i.is_multiple_of(2) {
                let _ = umount2(d, MntFlags::empty());
            }
            st.store(true, Ordering::SeqCst);
        })
    });
    // While it churns: the daemon must still notice a make-private / and undo it.
    std::thread::sleep(Duration::from_secs(2));
    let mut during = reactions(sb, 30, Some(stop.clone()));
    churner.join().expect("churn");
    let wall = secs as f64;
    let cpu = (cpu_ns(sb, &pid) - n0) as f64 / 1e9;
    let checks = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .and_then(|v| v["checks"].as_u64())
            .unwrap_or(0)
    };
    let c1 = sb.read("/run/mountprop/state.json").unwrap_or_default();
    r.add(
        &format!("churn at {mounts} mounts: events"),
        format!("{} in {secs} s", events.load(Ordering::SeqCst)),
    );
    r.add(
        "churn: daemon CPU",
        format!("{:.2} s = {:.2} % of one core", cpu, 100.0 * cpu / wall),
    );
    r.add("churn: daemon RSS (VmRSS / VmHWM)", rss(sb, &pid));
    r.add("churn: full checks run", format!("{}", checks(&c1) - checks(&c0)));
    r.add(
        "churn: restarts (watchdog or crash)",
        format!(
            "{} (before: {restarts0}); same pid: {}",
            prop(sb, "NRestarts"),
            daemon_pid(sb) == pid
        ),
    );
    let n = during.len();
    r.add(
        &format!("churn: reaction to make-private /, p50 / p99 of {n}"),
        format!(
            "{} / {}",
            ms(percentile(&mut during, 0.5)),
            ms(percentile(&mut during, 0.99))
        ),
    );
}

fn main() {
    let only: Vec<String> = std::env::var("ONLY")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| {
            ["check", "idle", "boot", "reaction", "churn"]
                .map(String::from)
                .to_vec()
        });
    let want = |s: &str| only.iter().any(|o| o == s);
    let secs: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let churn_secs: u64 = std::env::var("CHURN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("unit file")
        .replace("/usr/bin/mountprop", sandbox::NODE_BIN);
    // Fixes of / are what the reaction trials measure: the no-fight limit must not stop them.
    // Otherwise the defaults, unless PROBE_MS asks for another probe_interval_ms.
    let mut config = "[daemon]\nmax_fixes = 1000\nfix_window_secs = 1\n".to_string();
    if let Ok(ms) = std::env::var("PROBE_MS") {
        config.push_str(&format!("probe_interval_ms = {ms}\n"));
    }
    let setup = Setup::default()
        .file("docker.service", OLD_DOCKER)
        .want("docker.service")
        .file("mountprop.service", &unit)
        .want("mountprop.service")
        .etc("mountprop/config.toml", &config);
    let mut reports: Vec<(String, Report)> = Vec::new();
    for (label, bin) in builds() {
        let Some(sb) = sandbox::boot("bench-node", setup.clone()) else {
            return;
        };
        // The harness binds this bench's own build at NODE_BIN. Another build goes over it in
        // the node's mount namespace, and the daemon is restarted on it.
        if bin != sandbox::BIN {
            sb.exec(&["mount", "--bind", &bin, NODE_BIN]).ok();
            sb.exec(&["systemctl", "restart", "mountprop.service"]).ok();
        }
        wait_active(&sb);
        settle(&sb);
        let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
        let mut r = Report(Vec::new());
        println!(
            "\n#### {label}: {bin}\nmountprop on a real systemd 252 node; docker.service running; binary {:.2} MB",
            size as f64 / 1e6
        );
        r.add("stripped binary", format!("{:.2} MB", size as f64 / 1e6));
        if want("check") {
            full_check(&sb, &mut r);
        }
        if want("idle") {
            footprint(&sb, &mut r, secs);
        }
        if want("boot") {
            boot_path(&sb, &mut r, 21);
            grow(&sb, 10_000);
            boot_path(&sb, &mut r, 21);
        }
        if want("reaction") {
            grow(&sb, 10_000);
            reaction(&sb, &mut r, 100);
        }
        if want("churn") {
            grow(&sb, 50_000);
            churn(&sb, &mut r, churn_secs);
        }
        reports.push((label, r));
    }
    let labels: Vec<&str> = reports.iter().map(|(l, _)| l.as_str()).collect();
    println!(
        "\n| measure | {} |\n|---|{}",
        labels.join(" | "),
        "---|".repeat(labels.len())
    );
    for (i, (k, _)) in reports[0].1.0.iter().enumerate() {
        let row: Vec<&str> = reports
            .iter()
            .map(|(_, r)| r.0.get(i).map_or("", |m| m.1.as_str()))
            .collect();
        println!("| {k} | {} |", row.join(" | "));
    }
}

/// The builds compared, in one run: BENCH_BINS="label=path,..." (scripts/bench.sh passes the
/// glibc build and the static musl build that the packages ship); by default the binary cargo
/// built for this bench.
fn builds() -> Vec<(String, String)> {
    match std::env::var("BENCH_BINS") {
        Ok(v) => v
            .split(',')
            .filter_map(|b| b.split_once('='))
            .map(|(l, p)| {
                let p = std::fs::canonicalize(p).unwrap_or_else(|e| panic!("BENCH_BINS: {p}: {e}"));
                (l.to_string(), p.to_string_lossy().into_owned())
            })
            .collect(),
        Err(_) => vec![("this build".to_string(), sandbox::BIN.to_string())],
    }
}
