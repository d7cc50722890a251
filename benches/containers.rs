//! The cost of finding and judging running containers, at 100 and 500 containers with 20
//! propagated volumes each. A benchmark, not a test: it prints medians and asserts nothing
//! about them.
//!
//! In a private mount namespace of its own (nothing reaches the host), the bench lays out what
//! containerd leaves on disk for each container (a task bundle with `config.json` and
//! `init.pid`, below a scratch root given to `containers::discover`) and starts a real process
//! for each: in a mount namespace of its own, with its 20 volumes bind-mounted (half rslave,
//! half rshared) into a root directory it chroots into, as runc does. So every table read is a
//! real `/proc/<pid>/mountinfo` of a real namespace.
//!
//! Then the daemon's idle cost on a real systemd node (the test sandbox), with no container and
//! with 500 (the same bundles, each with a real process in a mount namespace of its own): its
//! CPU time over `IDLE_SECS` (default 30) between full rounds, and the CPU one full round costs.
//!
//!     sudo cargo bench --bench containers

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/sandbox/mod.rs"]
mod sandbox;

use mountprop::containers;
use mountprop::engine::tracker;
use mountprop::statmount;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

const BASE: &str = "/var/tmp/mountprop-bench-containers";
const VOLUMES: usize = 20;
const RUNS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One container: its volumes' sources, its root, its bundle, and a process holding its mounts.
fn start(n: usize, base: &Path) -> Child {
    let root = base.join(format!("rootfs/c{n}"));
    let id = format!("{n:064x}");
    let bundle = base.join(format!("root/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}"));
    fs::create_dir_all(root.join("bin")).expect("rootfs");
    fs::create_dir_all(&bundle).expect("bundle");
    fs::hard_link(base.join("busybox"), root.join("bin/sleep")).expect("busybox link");
    let mut mounts = Vec::new();
    let mut binds = Vec::new();
    for i in 0..VOLUMES {
        let src = base.join(format!("vols/c{n}/v{i}"));
        fs::create_dir_all(&src).expect("source");
        fs::create_dir_all(root.join(format!("v{i}"))).expect("destination");
        let option = if i % 2 == 0 { "rshared" } else { "rslave" };
        mounts.push(serde_json::json!({
            "destination": format!("/v{i}"), "type": "bind", "source": src,
            "options": ["rbind", option, "rw"],
        }));
        binds.push((src, root.join(format!("v{i}")), i % 2 == 1));
    }
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "mounts": mounts,
        "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": "c",
            "io.kubernetes.cri.sandbox-name": format!("pod-{n}"),
            "io.kubernetes.cri.sandbox-namespace": "bench",
        },
    });
    fs::write(bundle.join("config.json"), spec.to_string()).expect("config.json");
    // The volumes are mounted where the container's root will be, from this namespace (a bind
    // of a shared mount is a peer of it; rslave ones are then made slaves), under a private
    // mount so that nothing propagates elsewhere. The container's process takes a copy, then
    // this namespace lets go of them: each container's table holds its own volumes only, as
    // after runc's pivot_root.
    let private = |p: &Path| mount(None::<&str>, p, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>).expect("private");
    mount(
        Some(root.as_path()),
        root.as_path(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .expect("root bind");
    private(&root);
    for (src, dst, slave) in &binds {
        mount(
            Some(src.as_path()),
            dst.as_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .expect("volume");
        if *slave {
            mount(
                None::<&str>,
                dst.as_path(),
                None::<&str>,
                MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .expect("slave");
        }
    }
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let inner = root.clone();
    // SAFETY: only system calls between fork and exec (the paths are built beforehand).
    unsafe {
        cmd.pre_exec(move || {
            unshare(CloneFlags::CLONE_NEWNS)?;
            nix::unistd::chroot(&inner)?;
            nix::unistd::chdir("/")?;
            Ok(())
        });
    }
    let child = cmd.spawn().expect("container process");
    fs::write(bundle.join("init.pid"), child.id().to_string()).expect("init.pid");
    // The copy is taken once the process has exec'd (spawn waits for that).
    let _ = umount2(&root, MntFlags::MNT_DETACH);
    child
}

/// discover + observe + judge, as a full round does, and the parts.
fn measure(root: &Path, expect: usize) -> (Duration, Duration, Duration, containers::Judged) {
    let fast = statmount::available();
    let table = Path::new("/proc/self/mountinfo");
    let mut all = Vec::new();
    let mut disc = Vec::new();
    let mut obs = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let (found, errors) = containers::discover(root);
        let t1 = Instant::now();
        let facts = containers::observe(found, table, fast);
        let t2 = Instant::now();
        let j = containers::judge(&facts);
        let t3 = Instant::now();
        assert!(errors.is_empty(), "{errors:?}");
        disc.push(t1 - t0);
        obs.push(t2 - t1);
        all.push(t3 - t0);
        last = Some(j);
    }
    let j = last.expect("runs");
    assert_eq!(j.looked_at, expect, "every container found");
    (median(all), median(disc), median(obs), j)
}

fn rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Time on CPU of all of a process's threads, in ns (schedstat).
fn cpu_ns(sb: &sandbox::Sandbox, pid: &str) -> u64 {
    sb.sh(&format!("cat /proc/{pid}/task/*/schedstat"))
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn state(sb: &sandbox::Sandbox) -> serde_json::Value {
    serde_json::from_str(&sb.read("/run/mountprop/state.json").unwrap_or_default()).unwrap_or_default()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Shell that starts container `n` in the node: a containerd task bundle with `VOLUMES`
/// rslave volumes under `src` (`%n` replaced by n), each at the same path inside, and a
/// process in a mount namespace of its own whose copy of the host's mounts stays in the
/// host's peer groups, as an rslave bind mount of a shared mount does.
fn container_sh(n: &str, src: &str) -> String {
    format!(
        r#"d=/run/containerd/io.containerd.runtime.v2.task/k8s.io/$(printf %064x {n}); mkdir -p $d
  m=""
  for i in $(seq 1 {VOLUMES}); do
    s={src}/v$i; mkdir -p $s
    m="$m"'{{"destination": "'$s'", "type": "bind", "source": "'$s'", "options": ["rbind", "rslave"]}},'
  done
  printf '{{"mounts": [%s], "annotations": {{"io.kubernetes.cri.sandbox-namespace": "bench", "io.kubernetes.cri.sandbox-name": "p%s", "io.kubernetes.cri.container-name": "c"}}}}' "${{m%,}}" {n} > $d/config.json
  setsid unshare --mount --propagation unchanged sleep 3600 </dev/null >/dev/null 2>&1 &
  echo $! > $d/.pid; mv $d/.pid $d/init.pid"#,
        src = src.replace("%n", n)
    )
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_of(sb: &sandbox::Sandbox, pid: &str) -> u64 {
    sb.read(&format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The daemon on a real node at the shipped defaults (`interval_secs = 60`,
/// `probe_interval_ms = 80`): idle with 0 and with 500 containers, the time from a flip of a
/// volume source's mount to STATUS, and pod churn. `BENCH_DAEMON_BIN` runs another build (an
/// older one, for a before/after within one run).
fn idle() {
    let secs: u64 = std::env::var("IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let unit = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("systemd/mountprop.service")
        .replace("/usr/bin/mountprop", sandbox::NODE_BIN);
    let mut setup = sandbox::Setup::default().file("mountprop.service", &unit);
    let bin = std::env::var("BENCH_DAEMON_BIN").ok();
    if let Some(b) = &bin {
        setup = setup.with_bin(Path::new(b));
    }
    let Some(sb) = sandbox::boot("bench-containers-idle", setup) else {
        return;
    };
    sb.sh("mount --make-rshared /; systemctl start mountprop.service").ok();
    let looked_at = |sb: &sandbox::Sandbox| state(sb)["containers"]["looked_at"].as_i64().unwrap_or(-1);
    let stale = |sb: &sandbox::Sandbox| state(sb)["containers"]["stale"].as_array().map_or(0, Vec::len);
    wait_for("the daemon's first round", || {
        state(&sb)["checks"].as_i64().unwrap_or(0) > 0
    });
    let pid = sb.show("mountprop.service", "MainPID");
    let measure = |sb: &sandbox::Sandbox| {
        let a = cpu_ns(sb, &pid);
        std::thread::sleep(Duration::from_secs(secs));
        cpu_ns(sb, &pid) - a
    };
    let checks0 = state(&sb)["checks"].as_i64().unwrap_or(0);
    let idle0 = measure(&sb);
    let rounds0 = state(&sb)["checks"].as_i64().unwrap_or(0) - checks0;
    let made = Instant::now();
    let script = format!(
        "set -e; for n in $(seq 1 500); do {}; done",
        container_sh("$n", "/var/lib/kubelet/pods/p%n/volumes")
    );
    sb.sh(&script).ok();
    let made = made.elapsed();
    // The build before tracking judges containers on full rounds only: a reload runs one.
    sb.exec(&["systemctl", "reload", "mountprop.service"]).ok();
    wait_for("a round that saw 500 containers", || looked_at(&sb) == 500);
    std::thread::sleep(Duration::from_secs(2));
    let checks500 = state(&sb)["checks"].as_i64().unwrap_or(0);
    let idle500 = measure(&sb);
    let rounds500 = state(&sb)["checks"].as_i64().unwrap_or(0) - checks500;
    let rss500 = rss_of(&sb, &pid);

    // The flip: a volume source's mount (not a configured path) made private and shared again
    // cuts a running container off; from the flip to state.json, written with STATUS.
    sb.sh("mkdir -p /srv/flip && mount -t tmpfs flip /srv/flip && mount --make-shared /srv/flip")
        .ok();
    let trials: usize = std::env::var("FLIP_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut flips = Vec::new();
    for trial in 0..trials {
        let n = 1000 + trial;
        sb.sh(&format!("set -e; {}", container_sh(&n.to_string(), "/srv/flip/t%n")))
            .ok();
        sb.exec(&["systemctl", "reload", "mountprop.service"]).ok();
        wait_for("the flip container judged", || looked_at(&sb) == 501 && stale(&sb) == 0);
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        sb.sh("mount --make-private /srv/flip && mount --make-shared /srv/flip")
            .ok();
        wait_for("the flip reported", || stale(&sb) == 1);
        flips.push(t.elapsed());
        sb.sh(&format!(
            "d=/run/containerd/io.containerd.runtime.v2.task/k8s.io/$(printf %064x {n}); kill $(cat $d/init.pid); rm -rf $d"
        ))
        .ok();
        sb.exec(&["systemctl", "reload", "mountprop.service"]).ok();
        wait_for("the flip container gone", || looked_at(&sb) == 500 && stale(&sb) == 0);
    }
    let p50 = percentile(&mut flips, 0.5);
    let p99 = percentile(&mut flips, 0.99);

    // Pod churn: 10 containers a second start and exit for 60 s, with the 500 running.
    let rss_before = rss_of(&sb, &pid);
    let c0 = cpu_ns(&sb, &pid);
    let churn = format!(
        "set -e; for n in $(seq 2000 2599); do {}; sleep 0.1; \
         d=/run/containerd/io.containerd.runtime.v2.task/k8s.io/$(printf %064x $n); kill $(cat $d/init.pid); rm -rf $d; done",
        container_sh("$n", "/var/lib/kubelet/pods/churn%n")
    );
    let t = Instant::now();
    sb.sh(&churn).ok();
    let churn_secs = t.elapsed().as_secs_f64();
    let churn_cpu = cpu_ns(&sb, &pid) - c0;
    sb.exec(&["systemctl", "reload", "mountprop.service"]).ok();
    wait_for("the churn dropped", || looked_at(&sb) == 500);
    let rss_after = rss_of(&sb, &pid);

    let per_s = |ns: u64, s: f64| format!("{:.1} µs/s", ns as f64 / 1e3 / s);
    println!(
        "\ndaemon on a real node (systemd 252, shipped defaults: interval 60 s, probe 80 ms; {}; 500 containers made in {:.1} s):",
        bin.as_deref().unwrap_or("this build"),
        made.as_secs_f64()
    );
    println!("| containers | CPU over {secs} s | per second | share of a core | full rounds in the window |");
    println!("|---:|---:|---:|---:|---:|");
    for (n, ns, rounds) in [("0", idle0, rounds0), ("500 × 20 volumes", idle500, rounds500)] {
        println!(
            "| {n} | {:.1} ms | {} | {:.3} % | {rounds} |",
            ns as f64 / 1e6,
            per_s(ns, secs as f64),
            ns as f64 / 1e9 / secs as f64 * 100.0
        );
    }
    println!(
        "500 containers cost {:.2}× the empty node; daemon RSS with 500: {rss500} kB",
        idle500 as f64 / idle0.max(1) as f64
    );
    println!(
        "flip of a volume source's mount to state.json/STATUS, {trials} trials: p50 {}, p99 {}",
        ms(p50),
        ms(p99)
    );
    println!(
        "churn: 600 containers started and exited in {churn_secs:.1} s with 500 running: daemon CPU {:.1} ms ({}); RSS {rss_before} → {rss_after} kB; tracked after: {}",
        churn_cpu as f64 / 1e6,
        per_s(churn_cpu, churn_secs),
        looked_at(&sb)
    );
}

/// Finding and judging 0, 100 and 500 containers in a private mount namespace of this process.
fn judging() {
    // Single-threaded here, as unshare(CLONE_NEWNS) wants. Private first, so that nothing made
    // below reaches the host; then shared again inside, as on a node.
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare");
    let rec = |flags| mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | flags, None::<&str>).expect("remount /");
    rec(MsFlags::MS_PRIVATE);
    rec(MsFlags::MS_SHARED);
    let base = PathBuf::from(BASE);
    fs::create_dir_all(&base).expect("base");
    mount(
        Some("mpbench-ctr"),
        &base,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=256m,nr_inodes=400000"),
    )
    .expect("tmpfs");
    fs::copy("/bin/busybox", base.join("busybox")).expect("/bin/busybox (busybox-static)");
    let root = base.join("root");
    let host_mounts = fs::read_to_string("/proc/self/mountinfo").map_or(0, |t| t.lines().count());
    println!(
        "containers bench: {VOLUMES} propagated volumes each, statmount {}, {host_mounts} mounts in the host's table, medians of {RUNS} runs",
        if statmount::available() { "yes" } else { "no" }
    );
    println!(
        "| containers | volumes | full round (discover + observe + judge) | discover | observe | per container | stale |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut children = Vec::new();
    let started = Instant::now();
    for target in [0usize, 100, 500] {
        while children.len() < target {
            let n = children.len();
            children.push(start(n, &base));
        }
        let (all, disc, obs, j) = measure(&root, target);
        let per = if target == 0 {
            "-".to_string()
        } else {
            format!("{:.1} µs", all.as_secs_f64() * 1e6 / target as f64)
        };
        println!(
            "| {target} | {} | {} | {} | {} | {per} | {} |",
            target * VOLUMES,
            ms(all),
            ms(disc),
            ms(obs),
            j.stale.len()
        );
    }
    // The daemon's tracker on the same 500: its first round reads every table, a quiet round
    // reads none (and the judging, as plan does it).
    let mut t = tracker::Tracker::at(
        Some(false),
        root.clone(),
        PathBuf::from("/proc/self/mountinfo"),
        statmount::available(),
        Duration::from_secs(3600),
    );
    let t0 = Instant::now();
    let (facts, _) = t.observe(Some(false));
    let first = t0.elapsed();
    assert_eq!(facts.len(), children.len(), "the tracker found every container");
    let mut quiet = Vec::new();
    let mut judging = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let (facts, _) = t.observe(Some(false));
        let t1 = Instant::now();
        let j = containers::judge(&facts);
        judging.push(t1.elapsed());
        quiet.push(t1 - t0);
        assert_eq!(t.last.tables_read, 0, "a quiet round reads no table");
        assert_eq!(j.looked_at, children.len());
    }
    println!(
        "tracker at {} containers: first round {} ({} tables read), quiet round {} (tables read: 0, host queries: {}), judging {}",
        children.len(),
        ms(first),
        children.len(),
        ms(median(quiet)),
        t.last.host_queries,
        ms(median(judging))
    );
    // A container's own table, both ways (item 2 of the tracking issue): /proc/<pid>/mountinfo
    // as the checks read it, and listmount/statmount in its namespace (Linux >= 6.11, ptrace
    // read access: the bench runs as full root), parsed alike. Buffers kept, as the tracker does.
    let (found, _) = containers::discover(&root);
    let pids: Vec<u32> = found.iter().filter_map(|c| c.pid).collect();
    let mut buf = Vec::new();
    let mut by_info = Vec::new();
    let mut by_list = Vec::new();
    let (mut n_info, mut n_list) = (0, 0);
    let dest = Path::new("/v0");
    for _ in 0..RUNS {
        let t0 = Instant::now();
        for &p in &pids {
            let table = mountprop::mountinfo::MountInfo::read_path(
                Path::new(&format!("/proc/{p}/mountinfo")),
                std::mem::take(&mut buf),
            )
            .expect("mountinfo");
            n_info += usize::from(table.governing(dest).ok().flatten().is_some());
            buf = table.into_buffer();
        }
        let t1 = Instant::now();
        for &p in &pids {
            match statmount::namespace_table(p, 20_000, std::mem::take(&mut buf)) {
                Ok(Some(b)) => {
                    let table = mountprop::mountinfo::MountInfo::from_bytes("listed", b);
                    n_list += usize::from(table.governing(dest).ok().flatten().is_some());
                    buf = table.into_buffer();
                }
                other => panic!("listmount/statmount of {p}: {:?}", other.map(|_| ())),
            }
        }
        by_info.push(t1 - t0);
        by_list.push(t1.elapsed());
    }
    assert_eq!(n_info, n_list, "both ways find the volume mounts");
    let (slow, quick) = (median(by_info), median(by_list));
    println!(
        "reading the {} containers' own tables and finding a volume's mount: mountinfo {} ({:.1} µs each), listmount/statmount {} ({:.1} µs each)",
        pids.len(),
        ms(slow),
        slow.as_secs_f64() * 1e6 / pids.len() as f64,
        ms(quick),
        quick.as_secs_f64() * 1e6 / pids.len() as f64,
    );
    println!(
        "(starting 500 container processes took {:.1} s; bench peak RSS {} kB)",
        started.elapsed().as_secs_f64(),
        rss_kb()
    );
    // The flip, at scale: the sources' mount made private and shared again. Every volume lost
    // the host's group; all 500 must be listed.
    mount(None::<&str>, &base, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>).expect("private");
    mount(None::<&str>, &base, None::<&str>, MsFlags::MS_SHARED, None::<&str>).expect("shared");
    let (all, _, _, j) = measure(&root, children.len());
    println!(
        "after a flip of the sources' mount: {} of {} containers listed stale, in {}",
        j.stale.len(),
        children.len(),
        ms(all)
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = umount2(&base, MntFlags::MNT_DETACH);
    let _ = fs::remove_dir(&base);
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "\n*** SKIP containers bench: needs root (a private mount namespace and real container namespaces) ***\n"
        );
        return;
    }
    // BENCH_ONLY=daemon or BENCH_ONLY=judge runs one half.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "daemon" {
        judging();
    }
    if only != "judge" {
        idle();
    }
}
