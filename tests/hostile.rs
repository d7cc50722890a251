//! Hostile pods on a real node: what a container controls (its OCI spec, its mount table, its
//! volume directories) is untrusted input to a root daemon. Debian's containerd over its CRI
//! (the CRI test bed, `tests/crinode`), as for the stale-container tests.

mod crinode;
mod sandbox;

use std::time::{Duration, Instant};

use crinode::{CriNode, KUBELET};
use serde_json::Value;

const H2C: &str = "PROPAGATION_HOST_TO_CONTAINER";
const LOGS: &str = "/var/lib/kubelet/pods/log-cleaner/volumes/logs";

/// A containerd node, `prepare` run before containerd starts; `daemon`: the shipped
/// mountprop.service installed (not started).
fn boot(test: &str, prepare: &str, config: &str, daemon: bool) -> Option<CriNode> {
    let built = crinode::build();
    let mut setup = crinode::setup().etc("mountprop/config.toml", config);
    if daemon {
        setup = setup.file("mountprop.service", &daemon_unit());
    }
    let node = CriNode::boot(test, setup)?;
    node.copy_client(&built);
    node.sh(&format!("set -e; mkdir -p {KUBELET} {LOGS}; {prepare}")).ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    node.import_image();
    Some(node)
}

/// The shipped unit, with the binary where the node sees it.
fn daemon_unit() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service"))
        .expect("systemd/mountprop.service");
    text.replace("/usr/bin/mountprop", sandbox::NODE_BIN)
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// What a terminal or NPD would act on: C0 and C1 controls, DEL, U+2028/U+2029.
fn controls(s: &str, keep_newlines: bool) -> Vec<char> {
    s.chars()
        .filter(|&c| (c.is_control() && !(keep_newlines && c == '\n')) || matches!(c, '\u{2028}' | '\u{2029}'))
        .collect()
}

/// A pod whose volume path clears the screen and then forges a line of mountprop's own
/// (`\x1b[2J`, a newline, `ok: ...`), on a node that leaves it stale: `check`, `check
/// --oneline`, `status`, `status --oneline` and the daemon's STATUS= print it escaped, each
/// volume on its one line; `--json` keeps the exact text.
#[test]
fn a_volume_path_with_control_characters_is_printed_escaped() {
    let test = "a_volume_path_with_control_characters_is_printed_escaped";
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let dest = "/v\x1b[2Jx\nok: all is well\u{2028}";
    let shown = "/v\\x1b[2Jx\\nok: all is well\\u{2028}";
    let Some(node) = boot(
        "hostile1",
        "mount --make-rshared / && mount --bind /var/lib/kubelet /var/lib/kubelet && mount --make-slave /var/lib/kubelet",
        "restart = \"never\"\n[[paths]]\npath = \"/\"\n[[paths]]\npath = \"/var/lib/kubelet\"\n",
        true,
    ) else {
        return;
    };
    let (_, _ctr) = node.start_pod("kube-system", "log-cleaner", "cleaner", &[(LOGS, dest, H2C)]);
    // The node is fixed under it: the pod keeps its old mount, and is listed.
    let apply = node.mountprop(&["apply"]);
    eprintln!("apply:\n{}", apply.stdout);
    assert_eq!(controls(&apply.stdout, true), Vec::<char>::new(), "{:?}", apply.stdout);
    assert!(apply.stdout.contains(shown), "{:?}", apply.stdout);

    // JSON: the exact text, as a machine wants it.
    let r = node.mountprop(&["check", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    assert_eq!(
        v["stale_containers"][0]["volumes"][0]["destination"], dest,
        "the test bed: the volume is listed as stale: {v:#}"
    );

    let human = node.mountprop(&["check"]);
    eprintln!("check:\n{}", human.stdout);
    assert_eq!(controls(&human.stdout, true), Vec::<char>::new(), "{:?}", human.stdout);
    assert!(
        human.stdout.contains(&format!(
            "\n    {shown} from {LOGS}: asked HostToContainer (rslave), gets NOTHING"
        )),
        "{:?}",
        human.stdout
    );
    assert!(
        !human.stdout.lines().any(|l| l.starts_with("ok: all is well")),
        "a forged line: {:?}",
        human.stdout
    );

    let line = node.mountprop(&["check", "--oneline"]).stdout;
    assert_eq!(
        controls(line.trim_end_matches('\n'), false),
        Vec::<char>::new(),
        "{line:?}"
    );
    assert_eq!(line.lines().count(), 1, "{line:?}");
    assert!(
        line.starts_with(&format!(
            "DRIFT: stale container kube-system/log-cleaner/cleaner: {shown} from {LOGS}"
        )),
        "{line:?}"
    );

    // The daemon: STATUS= (systemctl status), `status` and `status --oneline`.
    node.exec(&["systemctl", "start", "mountprop.service"]).ok();
    wait_for("the daemon to list the pod", Duration::from_secs(20), || {
        node.show("mountprop.service", "StatusText")
            .starts_with("DRIFT: stale container kube-system/log-cleaner/cleaner")
    });
    let status_text = node.show("mountprop.service", "StatusText");
    assert!(status_text.contains(shown), "{status_text:?}");
    let status = node.mountprop(&["status"]).stdout;
    assert_eq!(controls(&status, true), Vec::<char>::new(), "{status:?}");
    assert!(status.contains(&format!("    {shown} from {LOGS}")), "{status:?}");
    let status_line = node.mountprop(&["status", "--oneline"]).stdout;
    assert_eq!(
        controls(status_line.trim_end_matches('\n'), false),
        Vec::<char>::new(),
        "{status_line:?}"
    );
    assert!(status_line.contains(shown), "{status_line:?}");
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
}

/// Makes `n` bind mounts in the mount namespace of `pid` (a pid in the node), each on a
/// directory of its own under a path of about 3,000 bytes: a table of about 6 KB a line, as a
/// container with mount rights in its own namespace can make it. Done from the node (setns by
/// python's ctypes), not from the container's image (busybox has no loop fast enough).
fn many_mounts(node: &CriNode, pid: &str, n: usize) {
    let script = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def check(r, what):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what)
pid, n = sys.argv[1], int(sys.argv[2])
check(libc.setns(os.open("/proc/%s/ns/mnt" % pid, os.O_RDONLY), 0x00020000), "setns")
os.chdir("/")
os.makedirs("/tmp/many", exist_ok=True)
check(libc.mount(b"many", b"/tmp/many", b"tmpfs", 0, b"size=64m,nr_inodes=100000"), "tmpfs")
check(libc.mount(None, b"/tmp/many", None, 1 << 18, None), "private")
base = "/tmp/many/" + "/".join(["d" * 250] * 12)
os.makedirs(base)
for i in range(n):
    d = ("%s/%d" % (base, i)).encode()
    os.mkdir(d)
    check(libc.mount(d, d, None, 4096, None), "bind %d" % i)
"#;
    let r = node.exec(&[crinode::PY, "-c", script, pid, &n.to_string()]);
    assert_eq!(r.code, 0, "making {n} mounts in {pid}'s namespace: {r:#?}");
}

/// `key:` of /proc/<pid>/status in kB.
fn status_kb(node: &CriNode, pid: u32, key: &str) -> u64 {
    let s = node.read(&format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status: {s}"))
}

/// A unit setting's value in bytes (`64M`).
fn unit_bytes(unit: &str, key: &str) -> u64 {
    let v = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit sets no {key}="));
    let (num, mult) = match v.as_bytes().last() {
        Some(b'K') => (&v[..v.len() - 1], 1 << 10),
        Some(b'M') => (&v[..v.len() - 1], 1 << 20),
        Some(b'G') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().expect("a number") * mult
}

/// A container with 30,000 mounts of long paths in its own namespace (a table of about 180 MB):
/// `check` finishes and names its volume "not judged: mount table too large", as does the
/// daemon, whose peak RSS stays under the unit's MemoryMax=; the daemon is never restarted.
#[test]
fn a_container_with_tens_of_thousands_of_mounts_is_not_judged() {
    let test = "a_container_with_tens_of_thousands_of_mounts_is_not_judged";
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let Some(node) = boot("hostile2", "mount --make-rshared /", "restart = \"never\"\n", true) else {
        return;
    };
    let (_, ctr) = node.start_pod("kube-system", "mounter", "m", &[(LOGS, "/logs", H2C)]);
    let pid = node
        .read(&format!(
            "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ctr}/init.pid"
        ))
        .expect("init.pid")
        .trim()
        .to_string();
    let n = 30_000;
    let start = Instant::now();
    many_mounts(&node, &pid, n);
    let table = node.exec(&["wc", "-lc", &format!("/proc/{pid}/mountinfo")]).stdout;
    eprintln!(
        "{n} mounts made in {:.1} s; wc -lc of its table: {table}",
        start.elapsed().as_secs_f64()
    );

    // `check`, and its peak RSS (ru_maxrss of the child, in KiB).
    let start = Instant::now();
    let r = node.exec(&[
        crinode::PY,
        "-c",
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); \
         print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)",
        sandbox::NODE_BIN,
        "check",
        "--json",
    ]);
    let took = start.elapsed();
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    eprintln!(
        "check took {:.2} s (exit code and peak RSS in KiB: {}); notes: {notes:#?}",
        took.as_secs_f64(),
        r.stderr.trim()
    );
    let want = "container volume not judged: kube-system/mounter/m /logs: mount table too large (more than ";
    // The daemon, under the shipped unit's limits: its first full round, then its peak RSS.
    let unit = daemon_unit();
    let max = unit_bytes(&unit, "MemoryMax");
    node.exec(&["systemctl", "start", "mountprop.service"]).ok();
    wait_for("the daemon's first round", Duration::from_secs(60), || {
        node.read("/run/mountprop/state.json")
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .is_some_and(|st| st["checks"].as_u64().unwrap_or(0) >= 1)
    });
    let st: Value = serde_json::from_str(&node.read("/run/mountprop/state.json").unwrap_or_default()).expect("state");
    let main = node.main_pid("mountprop.service");
    let hwm = status_kb(&node, main, "VmHWM:") * 1024;
    let threads = node.read(&format!("/proc/{main}/status")).and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:").map(|t| t.trim().to_string()))
    });
    eprintln!(
        "daemon: peak RSS {} KiB, MemoryMax= {} KiB, threads {threads:?}, notes {:#}",
        hwm / 1024,
        max / 1024,
        st["notes"]
    );
    assert!(notes.iter().any(|n| n.starts_with(want)), "{notes:#?}");
    assert!(
        st["notes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with(want)))),
        "{st:#}"
    );
    assert!(hwm < max, "peak RSS {hwm} B, MemoryMax={max} B");
    assert_eq!(node.show("mountprop.service", "NRestarts"), "0");
    assert_eq!(node.show("mountprop.service", "ActiveState"), "active");
    let line = node.mountprop(&["check"]).stdout;
    assert!(
        line.contains("note: container volume not judged: kube-system/mounter/m /logs: mount table too large"),
        "{line}"
    );

    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
}

/// A FUSE filesystem that never answers: /dev/fuse opened and mounted on `at`, and never read,
/// so the kernel's first request (INIT) is never answered and every lookup or stat below `at`
/// waits. The holder writes its pid to `pidfile` and sleeps; killing it ends the connection.
const DEAD_FUSE: &str = r#"
import ctypes, os, sys, time
at, pidfile = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/dev/fuse", os.O_RDWR)
opts = "fd=%d,rootmode=40000,user_id=0,group_id=0" % fd
if libc.mount(b"deadfs", at.encode(), b"fuse.deadfs", 0, opts.encode()) != 0:
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e), at)
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
while True:
    time.sleep(3600)
"#;

/// Ends the dead FUSE connection on every exit path, before the node goes down: its holder is
/// killed (the kernel then fails every waiting request of that connection) and the mount, in
/// the node's namespace only, taken away.
struct Holder<'a>(&'a CriNode, std::process::Child);

impl Drop for Holder<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.0.read("/run/deadfs.pid") {
            let _ = self.0.exec(&["kill", "-9", pid.trim()]);
        }
        let _ = self.0.exec(&["umount", "-l", "-a", "-t", "fuse.deadfs"]);
        // nsenter, which waited for it.
        let _ = self.1.wait();
    }
}

/// A volume whose source lies on a FUSE filesystem that stopped answering (as on a hard NFS
/// mount whose server is gone): `check` finishes in seconds and names the volume "not judged:
/// filesystem not answering"; the daemon, with a 3 s watchdog, is never killed by it, says the
/// same, and a second full round is as quick.
#[test]
fn a_volume_on_a_filesystem_that_does_not_answer_is_not_judged() {
    let test = "a_volume_on_a_filesystem_that_does_not_answer_is_not_judged";
    if !crinode::prerequisites(test) {
        return;
    }
    if !sandbox::require(
        test,
        std::path::Path::new("/dev/fuse").exists(),
        "no /dev/fuse (modprobe fuse)",
    ) {
        return;
    }
    crinode::remove_cgroups();
    let built = crinode::build();
    let setup = crinode::setup()
        .etc("mountprop/config.toml", "restart = \"never\"\n")
        .file("mountprop.service", &daemon_unit())
        .file("mountprop.service.d/10-watchdog.conf", "[Service]\nWatchdogSec=3s\n");
    let Some(node) = CriNode::boot("hostile3", setup) else {
        return;
    };
    node.copy_client(&built);
    node.sh(&format!("set -e; mount --make-rshared /; mkdir -p {KUBELET} {LOGS}"))
        .ok();
    node.exec(&["systemctl", "start", "containerd.service"]).ok();
    node.import_image();
    let (_, _ctr) = node.start_pod("kube-system", "cleaner", "c", &[(LOGS, "/logs", H2C)]);
    let (code, fine) = {
        let r = node.mountprop(&["check", "--json"]);
        (
            r.code,
            serde_json::from_str::<Value>(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}")),
        )
    };
    assert_eq!(code, 0, "the test bed: the pod is fine before: {fine:#}");

    // Over the directory that holds the source, as a source on an NFS mount whose server is
    // gone: the lookup of the source's last component waits. (On the source itself, statx
    // for the mount id alone would not ask the filesystem.)
    let dead = std::path::Path::new(LOGS)
        .parent()
        .expect("parent")
        .to_str()
        .expect("utf-8");
    let child = node.spawn(&[], &[crinode::PY, "-c", DEAD_FUSE, dead, "/run/deadfs.pid"]);
    let holder = Holder(&node, child);
    wait_for("the dead FUSE mount", Duration::from_secs(10), || {
        node.read("/run/deadfs.pid").is_some_and(|p| !p.is_empty())
    });
    let want = format!(
        "container volume not judged: kube-system/cleaner/c /logs: filesystem not answering ({LOGS} did not answer within 1 s)"
    );

    let start = Instant::now();
    let r = node.exec(&["timeout", "30", sandbox::NODE_BIN, "check", "--json"]);
    let took = start.elapsed();
    eprintln!(
        "check with a dead FUSE source: exit {} in {:.2} s",
        r.code,
        took.as_secs_f64()
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:#?}"));
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(notes.contains(&want.as_str()), "{notes:#?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // The daemon: its first round and a second (a reload), each quick; never killed.
    node.exec(&["systemctl", "start", "mountprop.service"]).ok();
    let main = node.main_pid("mountprop.service");
    let state = || -> Value {
        serde_json::from_str(&node.read("/run/mountprop/state.json").unwrap_or_default()).unwrap_or(Value::Null)
    };
    wait_for("the daemon's first round", Duration::from_secs(20), || {
        state()["checks"].as_u64().unwrap_or(0) >= 1
    });
    let prefix = "container volume not judged: kube-system/cleaner/c /logs: filesystem not answering (";
    let says = |st: &Value| {
        st["notes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with(prefix))))
    };
    let st = state();
    assert!(says(&st), "{st:#}");
    let before = st["checks"].as_u64().unwrap_or(0);
    let start = Instant::now();
    node.exec(&["systemctl", "reload", "mountprop.service"]).ok();
    wait_for("a second round", Duration::from_secs(20), || {
        state()["checks"].as_u64().unwrap_or(0) > before
    });
    eprintln!(
        "the daemon's round after a reload: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let st = state();
    assert!(says(&st), "{st:#}");
    // Three watchdog periods more.
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(node.show("mountprop.service", "NRestarts"), "0");
    assert_eq!(node.main_pid("mountprop.service"), main, "the daemon was restarted");
    assert_eq!(node.show("mountprop.service", "ActiveState"), "active");

    drop(holder);
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
}

/// The racer: a process with write access to a volume's source (a pod's hostPath, from the host
/// side), driven by inotify on that directory. Each time a `.mountprop-probe*` entry appears it
/// renames it away and puts in its place a symlink to a host path it aims at, alternately an
/// empty directory and one holding a mount. It counts its attempts and the swaps it won.
const RACER: &str = r#"
import ctypes, os, stat, struct, sys
watched, targets, log = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
IN_CREATE, IN_MOVED_TO = 0x100, 0x80
if fd < 0 or libc.inotify_add_watch(fd, watched.encode(), IN_CREATE | IN_MOVED_TO) < 0:
    raise OSError(ctypes.get_errno(), "inotify", watched)
tries = wins = 0
with open(log + ".ready", "w"):
    pass
while True:
    buf = os.read(fd, 65536)
    off = 0
    while off < len(buf):
        _, mask, _, n = struct.unpack_from("iIII", buf, off)
        name = buf[off + 16 : off + 16 + n].rstrip(b"\0").decode(errors="replace")
        off += 16 + n
        if not name.startswith(".mountprop-probe") or name.endswith(".moved"):
            continue
        p = os.path.join(watched, name)
        try:
            if not stat.S_ISDIR(os.lstat(p).st_mode):
                continue  # its own symlink, or gone already
        except OSError:
            continue
        tries += 1
        try:
            os.rename(p, p + ".%d.moved" % tries)
            os.symlink(targets[tries % len(targets)], p)
            wins += 1
        except OSError:
            pass
        with open(log, "w") as f:
            f.write("%d %d\n" % (tries, wins))
"#;

/// A pod that races the live probe with symlink swaps on its volume: the host paths it aims
/// at never get a mount and never lose one, and each probe run ends with a verdict.
#[test]
fn a_racing_pod_cannot_steer_the_probe() {
    let test = "a_racing_pod_cannot_steer_the_probe";
    if !crinode::prerequisites(test) {
        return;
    }
    crinode::remove_cgroups();
    let Some(node) = boot(
        "hostile4",
        "mount --make-rshared / && mkdir -p /target-empty /target-mounted && mount -t tmpfs racer-kept /target-mounted",
        "restart = \"never\"\n",
        false,
    ) else {
        return;
    };
    let (_, _ctr) = node.start_pod("kube-system", "racer", "r", &[(LOGS, "/logs", H2C)]);
    // The volume as a tenant's 0777 directory.
    node.exec(&["chmod", "0777", LOGS]).ok();
    let mut racer = node.spawn(
        &[],
        &[
            crinode::PY,
            "-c",
            RACER,
            LOGS,
            "/target-empty,/target-mounted",
            "/run/racer.log",
        ],
    );
    wait_for("the racer", Duration::from_secs(10), || {
        node.read("/run/racer.log.ready").is_some()
    });
    let mounts_at = |p: &str| -> Vec<String> {
        node.read("/proc/1/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some(p))
            .map(str::to_string)
            .collect()
    };
    let kept = mounts_at("/target-mounted");
    assert_eq!(kept.len(), 1, "the test bed: one mount at /target-mounted: {kept:?}");
    let runs = 40;
    let mut verdicts = 0;
    for i in 0..runs {
        let t = Instant::now();
        let r = node.mountprop(&["probe", "--json"]);
        match serde_json::from_str::<Value>(&r.stdout) {
            Ok(v) => {
                verdicts += 1;
                if i == 0 {
                    eprintln!(
                        "probe run 0 took {:.2} s: {}",
                        t.elapsed().as_secs_f64(),
                        v.to_string().chars().take(4000).collect::<String>()
                    );
                }
            }
            Err(_) => eprintln!("probe run {i}: {r:#?}"),
        }
        assert_eq!(
            mounts_at("/target-empty"),
            Vec::<String>::new(),
            "run {i}: a mount appeared where the racer aimed"
        );
        assert_eq!(
            mounts_at("/target-mounted"),
            kept,
            "run {i}: the racer's target lost its mount"
        );
    }
    let score = node.read("/run/racer.log").unwrap_or_default();
    let (tries, wins) = score
        .split_once(' ')
        .map(|(t, w)| {
            (
                t.trim().parse::<u32>().unwrap_or(0),
                w.trim().parse::<u32>().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    eprintln!("{runs} probe runs, {verdicts} with a verdict; the racer tried {tries} times and swapped {wins}");
    if let Some(pid) = node
        .sh("pgrep -f 'inotify_init1' | head -1")
        .stdout
        .split_whitespace()
        .next()
    {
        let _ = node.exec(&["kill", pid]);
    }
    let _ = racer.kill();
    let _ = racer.wait();
    assert_eq!(verdicts, runs, "every probe run ends with a verdict");
    assert!(
        tries > 0,
        "the racer never saw the probe's directory: the test proved nothing ({score:?})"
    );
    // Nothing of mountprop's is left mounted anywhere on the node.
    let left: Vec<String> = node
        .read("/proc/1/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("mountprop-probe"))
        .map(str::to_string)
        .collect();
    assert_eq!(left, Vec::<String>::new());
    drop(node);
    assert_eq!(crinode::leftover_cgroups(), Vec::<std::path::PathBuf>::new());
}
