//! The live propagation probe (`mountprop probe`): real mounts instead of flags.
//!
//! At each point (`/` and the kubelet's root) mountprop makes a scratch directory of its own,
//! `<point>/.mountprop-probe.<pid>`. For each running runtime it enters, from a short-lived
//! thread, a fresh copy of the runtime's mount namespace (what runc gives a container: a copy
//! of a private mount is private, a copy of a shared one a peer), mounts a tiny tmpfs on the host
//! and looks for it there (HostToContainer), then mounts one there and looks for it on the host
//! (Bidirectional). The kubelet's own namespace is entered as it is. Every mount is found by its
//! unique source name, never by path.
//!
//! Nothing is left behind: each mount and directory is held by a guard that undoes it on every
//! exit path (panic and timeout included); the copied namespace dies with its thread; a final
//! sweep unmounts anything of this run still on the host; and the next run sweeps what a killed
//! run left (its mounts and scratch directories carry its pid). A mount's source name also carries
//! a random nonce of its run, so that a container cannot forge one the probe would take for its own.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::engine::containers::{Volume, VolumeProbe};
use crate::engine::modes::ProbeResult;
use crate::engine::observe::Facts;
use crate::node::fdmount::{self, FdMount, ScratchDir};
use crate::node::mountinfo::{Cap, MountInfo};

/// How long a whole probe may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const TAG: &str = "mountprop-probe";
/// Test hook: hold still this long with the host-side mount in place (to kill a runtime then).
const PAUSE_ENV: &str = "MOUNTPROP_TEST_PROBE_PAUSE_MS";
/// What a refusal means, and the fix.
const NEEDS: &str = " (the probe needs CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SYS_PTRACE and setns: \
    under mountprop.service, add the live-probe.conf drop-in from the README)";

type Reply = Result<bool, String>;

enum Cmd {
    /// Is a mount with this source in the agent's namespace?
    Look(String),
    Mount(String, PathBuf),
    Umount(PathBuf),
}

/// A thread that lives in another mount namespace and does what it is told there.
struct Agent {
    tx: Option<Sender<(Cmd, Sender<Reply>)>>,
    handle: Option<JoinHandle<()>>,
    deadline: Instant,
}

impl Agent {
    /// Enters `ns`, and with `copy` then a fresh copy of it, as a container runtime does.
    fn start(ns: OwnedFd, copy: bool, deadline: Instant) -> Result<Self, String> {
        let (tx, rx) = channel::<(Cmd, Sender<Reply>)>();
        let (ready_tx, ready_rx) = channel::<Result<(), String>>();
        let handle = std::thread::Builder::new()
            .name("mountprop-probe".into())
            .spawn(move || agent_main(ns, copy, &ready_tx, &rx))
            .map_err(|e| format!("cannot start the probe thread: {e}"))?;
        let agent = Self {
            tx: Some(tx),
            handle: Some(handle),
            deadline,
        };
        match ready_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(())) => Ok(agent),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("timed out entering its mount namespace".into()),
        }
    }

    fn call(&self, cmd: Cmd) -> Reply {
        let (reply_tx, reply_rx) = channel();
        let tx = self.tx.as_ref().ok_or("probe thread gone")?;
        tx.send((cmd, reply_tx)).map_err(|_| "probe thread gone".to_string())?;
        reply_rx
            .recv_timeout(self.deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| "timed out".to_string())?
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Closing the channel tells the thread to undo its mounts and end; its namespace copy
        // ends with it. Wait for that, within reason: a stuck thread must not hang the caller.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let until = Instant::now() + Duration::from_secs(2);
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

fn agent_main(ns: OwnedFd, copy: bool, ready: &Sender<Result<(), String>>, rx: &Receiver<(Cmd, Sender<Reply>)>) {
    // setns into a mount namespace needs a thread that shares no filesystem context.
    let entered = unshare(CloneFlags::CLONE_FS)
        .and_then(|()| setns(&ns, CloneFlags::CLONE_NEWNS))
        .map_err(|e| format!("cannot enter its mount namespace: {e}{NEEDS}"))
        .and_then(|()| {
            if copy {
                unshare(CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("cannot make a container-like copy of its mount namespace: {e}"))
            } else {
                Ok(())
            }
        });
    drop(ns);
    let ok = entered.is_ok();
    let _ = ready.send(entered);
    if !ok {
        return;
    }
    let mut mounted: Vec<PathBuf> = Vec::new();
    while let Ok((cmd, reply)) = rx.recv() {
        let r = match cmd {
            Cmd::Look(tag) => table_has(Path::new("/proc/thread-self/mountinfo"), &tag),
            Cmd::Mount(tag, at) => mount_tmpfs(&tag, &at).map(|()| {
                mounted.push(at);
                true
            }),
            Cmd::Umount(at) => unmount(&at).map(|()| {
                mounted.retain(|m| *m != at);
                true
            }),
        };
        let _ = reply.send(r);
    }
    for at in mounted.iter().rev() {
        let _ = umount2(at, MntFlags::MNT_DETACH);
    }
}

fn mount_tmpfs(tag: &str, at: &Path) -> Result<(), String> {
    mount(
        Some(tag),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k,mode=0700"),
    )
    .map_err(|e| format!("mount tmpfs on {}: {e}", at.display()))
}

/// A plain umount propagates to the mount's peers and slaves; detach only if that fails.
fn unmount(at: &Path) -> Result<(), String> {
    umount2(at, MntFlags::empty())
        .or_else(|_| umount2(at, MntFlags::MNT_DETACH))
        .map_err(|e| format!("umount {}: {e}", at.display()))
}

/// Whether a mount with source `tag` is in `table`. Every table but the host's is read within
/// the container cap (crate::node::mountinfo::Cap): a container, or the namespace copy a
/// runtime's containers come from, can hold as many mounts as it likes.
fn table_has(table: &Path, tag: &str) -> Reply {
    let info = if table == Path::new("/proc/self/mountinfo") {
        MountInfo::read_path(table, Vec::new())
    } else {
        MountInfo::read_path_capped(table, Vec::new(), Cap::CONTAINER)
    }
    .map_err(|e| e.to_string())?;
    Ok(info.iter().flatten().any(|m| m.source.raw() == tag.as_bytes()))
}

/// A mount on the host, taken away again when dropped: by its own descriptor where the kernel
/// has the new mount API (crate::node::fdmount), else by the path of a directory only root can
/// write (Scratch::make refuses others there).
enum HostMount {
    Fd(FdMount, PathBuf),
    Path(PathBuf),
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let (r, at) = match self {
            HostMount::Fd(m, at) => (m.unmount().map_err(|e| format!("umount {}: {e}", at.display())), at),
            HostMount::Path(at) => (unmount(at), at),
        };
        if let Err(e) = r {
            tracing::warn!(PATH = %at.display(), "probe: {e}");
        }
    }
}

/// A tmpfs with source `tag` on the scratch directory, on the host.
fn host_mount(tag: &str, scratch: &Scratch) -> Result<HostMount, String> {
    if fdmount::available() {
        FdMount::tmpfs(tag, scratch.dir.fd())
            .map(|m| HostMount::Fd(m, scratch.path.clone()))
            .map_err(|e| format!("mount tmpfs on {}: {e}", scratch.path.display()))
    } else {
        mount_tmpfs(tag, &scratch.path).map(|()| HostMount::Path(scratch.path.clone()))
    }
}

/// mountprop's scratch directory at a point, made and held by descriptor (no path a pod can
/// steer is followed), removed when dropped (only if empty: never anything else's).
struct Scratch {
    dir: ScratchDir,
    path: PathBuf,
}

impl Scratch {
    fn make(point: &Path) -> Result<Self, String> {
        let path = point.join(scratch_name(std::process::id()));
        let parent = fdmount::open_dir(point).map_err(|e| format!("cannot open {}: {e}", point.display()))?;
        if !fdmount::available() && fdmount::writable_by_others(&parent).unwrap_or(true) {
            return Err(format!(
                "not probed: {} can be written by others than root, and this kernel lacks the new mount \
                 API (fsopen, statx mount ids, Linux 6.8) that mounting there safely needs",
                point.display()
            ));
        }
        let dir = ScratchDir::make(parent, &scratch_name(std::process::id()))
            .map_err(|e| format!("cannot make the scratch directory {}: {e}", path.display()))?;
        Ok(Self { dir, path })
    }
}

/// The prefix of every mount source of one probe run: `mountprop-probe.<pid>.<nonce>.<kind>`, a
/// counter appended for each mount. The pid lets the next run sweep what a killed one left; the
/// random nonce makes the name one a container cannot know in advance, so it cannot mount a
/// forged "probe" tmpfs in its own namespace for the probe to find.
fn run_prefix(kind: &str) -> Result<String, String> {
    Ok(format!("{TAG}.{}.{:016x}.{kind}", std::process::id(), nonce()?))
}

/// 64 random bits from getrandom(2): no file to open (the unit's DevicePolicy=strict allows no
/// /dev/urandom), and no crate beyond nix's libc.
fn nonce() -> Result<u64, String> {
    let mut b = [0u8; 8];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `b`.
        let n = unsafe { nix::libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("getrandom: {e}"));
        }
        got += n as usize;
    }
    Ok(u64::from_ne_bytes(b))
}

fn scratch_name(pid: u32) -> String {
    format!(".{TAG}.{pid}")
}

/// The pid in a probe mount's source or scratch directory name.
fn pid_of(name: &str) -> Option<u32> {
    name.trim_start_matches('.')
        .strip_prefix(TAG)?
        .strip_prefix('.')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Whether `pid` is a mountprop that is still running (its probe is its own business).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "mountprop")
}

/// Takes away what a killed probe left: its mounts on the host and its scratch directories.
fn sweep_stale(points: &[PathBuf]) {
    let host = Path::new("/proc/self/mountinfo");
    if let Ok(info) = MountInfo::read_path(host, Vec::new()) {
        let mut stale: Vec<(PathBuf, u64)> = info
            .iter()
            .flatten()
            .filter(|m| {
                let src = String::from_utf8_lossy(m.source.raw());
                pid_of(&src).is_some_and(|p| !alive(p))
            })
            .map(|m| (m.mount_point_path(), m.id))
            .collect();
        // Deepest first.
        stale.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (at, id) in stale {
            tracing::info!(PATH = %at.display(), ACTION = "probe-sweep", "removing a mount left by an earlier probe");
            // Only the mount the table named, reached with no symlink on the way.
            if let Err(e) = fdmount::unmount_checked(&at, id, true) {
                tracing::warn!(PATH = %at.display(), "probe sweep: {e}");
            }
        }
    }
    for point in points {
        let Ok(rd) = std::fs::read_dir(point) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(pid_of) else {
                continue;
            };
            if !alive(pid) && e.file_type().is_ok_and(|t| t.is_dir()) {
                tracing::info!(PATH = %e.path().display(), ACTION = "probe-sweep", "removing a scratch directory left by an earlier probe");
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// Unmounts whatever of this run is still on the host; says what it had to take away.
fn sweep_own(run: &str) -> Option<String> {
    let info = MountInfo::read_path(Path::new("/proc/self/mountinfo"), Vec::new()).ok()?;
    let left: Vec<(PathBuf, u64)> = info
        .iter()
        .flatten()
        .filter(|m| m.source.raw().starts_with(run.as_bytes()))
        .map(|m| (m.mount_point_path(), m.id))
        .collect();
    if left.is_empty() {
        return None;
    }
    for (at, id) in left.iter().rev() {
        if let Err(e) = fdmount::unmount_checked(at, *id, true) {
            tracing::warn!(PATH = %at.display(), "probe sweep: {e}");
        }
    }
    Some(format!(
        "{} probe mount(s) lingered on the host and were detached",
        left.len()
    ))
}

/// A namespace to probe.
struct Target<'a> {
    subject: &'a str,
    pid: u32,
    /// A container-like copy of it (runtimes), or itself (the kubelet).
    copy: bool,
}

/// Probes every running runtime (and the kubelet) at every point. Never fails: what could not
/// be tested is said in each result.
pub fn run(facts: &Facts, timeout: Duration) -> Vec<ProbeResult> {
    let deadline = Instant::now() + timeout;
    let mut targets: Vec<Target<'_>> = facts
        .units
        .iter()
        .filter(|u| u.is_runtime())
        .filter_map(|u| {
            u.runtime.as_ref().map(|rt| Target {
                subject: &u.name,
                pid: rt.pid,
                copy: true,
            })
        })
        .collect();
    if let Some(k) = &facts.kubelet
        && let Some(rt) = &k.runtime
    {
        targets.push(Target {
            subject: &k.name,
            pid: rt.pid,
            copy: false,
        });
    }
    let points: Vec<PathBuf> = facts.host.points.iter().map(|p| p.path.clone()).collect();
    let mut out = Vec::new();
    let all_fail = |out: &mut Vec<ProbeResult>, point: &Path, why: &str| {
        for t in &targets {
            out.push(ProbeResult {
                subject: t.subject.to_string(),
                point: point.to_path_buf(),
                host_to_container: None,
                container_to_host: None,
                error: Some(why.to_string()),
            });
        }
    };
    if facts.host.own_namespace == Some(true) {
        for p in &points {
            all_fail(
                &mut out,
                p,
                "mountprop runs in a mount namespace of its own; probe from the host's",
            );
        }
        return out;
    }
    // What a killed probe left goes first, whether or not there is anything to probe now.
    sweep_stale(&points);
    if targets.is_empty() {
        return out;
    }
    let run = match run_prefix("") {
        Ok(r) => r,
        Err(e) => {
            for p in &facts.host.points {
                all_fail(&mut out, &p.path, &e);
            }
            return out;
        }
    };
    let mut n = 0u32;
    for p in &facts.host.points {
        if !p.exists {
            all_fail(&mut out, &p.path, &format!("{} does not exist", p.path.display()));
            continue;
        }
        let scratch = match Scratch::make(&p.path) {
            Ok(s) => s,
            Err(e) => {
                all_fail(&mut out, &p.path, &e);
                continue;
            }
        };
        for t in &targets {
            let mut r = probe_one(t, &p.path, &scratch, &run, &mut n, deadline);
            if let Some(lingered) = sweep_own(&run) {
                r.error = Some(r.error.map_or(lingered.clone(), |e| format!("{e}; {lingered}")));
            }
            out.push(r);
        }
    }
    out
}

fn probe_one(
    t: &Target<'_>,
    point: &Path,
    scratch: &Scratch,
    run: &str,
    n: &mut u32,
    deadline: Instant,
) -> ProbeResult {
    let mut r = ProbeResult {
        subject: t.subject.to_string(),
        point: point.to_path_buf(),
        host_to_container: None,
        container_to_host: None,
        error: None,
    };
    let ns_path = format!("/proc/{}/ns/mnt", t.pid);
    let agent = match File::open(&ns_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("cannot open {ns_path} (has MainPID {} exited?): {e}", t.pid),
            _ => format!("cannot open {ns_path}: {e}{NEEDS}"),
        })
        .and_then(|f| Agent::start(OwnedFd::from(f), t.copy, deadline))
    {
        Ok(a) => a,
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    };
    let mut tag = || {
        *n += 1;
        format!("{run}{n}")
    };
    let mut errors = Vec::new();

    // Host to container: mounted here, looked for there.
    let t1 = tag();
    match host_mount(&t1, scratch) {
        Ok(held) => {
            if let Some(ms) = std::env::var(PAUSE_ENV).ok().and_then(|v| v.parse().ok()) {
                std::thread::sleep(Duration::from_millis(ms));
            }
            match agent.call(Cmd::Look(t1)) {
                Ok(seen) => r.host_to_container = Some(seen),
                Err(e) => errors.push(format!("host to container: {e}")),
            }
            drop(held);
        }
        Err(e) => errors.push(format!("host to container: {e}")),
    }

    // Container to host: mounted there, looked for here.
    let t2 = tag();
    match agent.call(Cmd::Mount(t2.clone(), scratch.path.clone())) {
        Ok(_) => {
            match table_has(Path::new("/proc/self/mountinfo"), &t2) {
                Ok(seen) => r.container_to_host = Some(seen),
                Err(e) => errors.push(format!("container to host: {e}")),
            }
            if let Err(e) = agent.call(Cmd::Umount(scratch.path.clone())) {
                errors.push(format!("cleanup: {e}"));
            }
        }
        Err(e) => errors.push(format!("container to host: {e}")),
    }
    drop(agent);
    if !errors.is_empty() {
        r.error = Some(errors.join("; "));
    }
    r
}

/// The live check of each running container's volumes that asked for propagation: a scratch
/// directory of mountprop's under the volume's source on the host (the same directory the
/// container sees at its destination), a tmpfs mounted there on the host and looked for in the
/// container's own table by its unique source name; for Bidirectional, one mounted there from a
/// thread in the container's own namespace (not a copy: the question is this container's
/// mounts) and looked for on the host. Everything is taken away again on every path.
pub fn containers(facts: &mut Facts, timeout: Duration) {
    if facts.host.own_namespace == Some(true) {
        for c in std::sync::Arc::make_mut(&mut facts.containers).iter_mut() {
            for v in &mut c.volumes {
                v.probe = Some(VolumeProbe {
                    host_to_container: None,
                    container_to_host: None,
                    error: Some("mountprop runs in a mount namespace of its own; probe from the host's".into()),
                });
            }
        }
        return;
    }
    let deadline = Instant::now() + timeout;
    // What a killed probe left in the volumes' sources goes first (its host mounts too).
    let sources: Vec<PathBuf> = facts
        .containers
        .iter()
        .flat_map(|c| {
            c.volumes
                .iter()
                .filter(|v| v.host_error.is_none())
                .map(|v| v.volume.source.clone())
        })
        .collect();
    sweep_stale(&sources);
    let run = match run_prefix("c") {
        Ok(r) => r,
        Err(e) => {
            for c in std::sync::Arc::make_mut(&mut facts.containers).iter_mut() {
                for v in &mut c.volumes {
                    v.probe = Some(VolumeProbe {
                        host_to_container: None,
                        container_to_host: None,
                        error: Some(e.clone()),
                    });
                }
            }
            return;
        }
    };
    let mut n = 0u32;
    // The tracker's shared facts are copied here: a probed round is not a quiet one.
    for c in std::sync::Arc::make_mut(&mut facts.containers).iter_mut() {
        let Some(pid) = c.container.pid else { continue };
        for v in &mut c.volumes {
            // A source whose filesystem did not answer is not touched again (a mkdir there
            // would block without a bound).
            if let Some(e) = &v.host_error {
                v.probe = Some(VolumeProbe {
                    host_to_container: None,
                    container_to_host: None,
                    error: Some(format!("not probed: {e}")),
                });
                continue;
            }
            let mut r = volume_probe(pid, &v.volume, &run, &mut n, deadline);
            if let Some(lingered) = sweep_own(&run) {
                r.error = Some(r.error.map_or(lingered.clone(), |e| format!("{e}; {lingered}")));
            }
            v.probe = Some(r);
        }
    }
}

fn volume_probe(pid: u32, vol: &Volume, run: &str, n: &mut u32, deadline: Instant) -> VolumeProbe {
    let mut r = VolumeProbe {
        host_to_container: None,
        container_to_host: None,
        error: None,
    };
    if Instant::now() >= deadline {
        r.error = Some("timed out".into());
        return r;
    }
    if !vol.source.is_dir() {
        r.error = Some(format!(
            "{} is not a directory: nothing can be mounted under it",
            vol.source.display()
        ));
        return r;
    }
    let scratch = match Scratch::make(&vol.source) {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    };
    let name = scratch.path.file_name().map(PathBuf::from).unwrap_or_default();
    let mut tag = || {
        *n += 1;
        format!("{run}{n}")
    };
    let mut errors = Vec::new();
    let theirs = PathBuf::from(format!("/proc/{pid}/mountinfo"));
    let t1 = tag();
    match host_mount(&t1, &scratch) {
        Ok(held) => {
            match table_has(&theirs, &t1) {
                Ok(seen) => r.host_to_container = Some(seen),
                Err(e) => errors.push(format!("host to container: {e}")),
            }
            drop(held);
        }
        Err(e) => errors.push(format!("host to container: {e}")),
    }
    if vol.mode == crate::config::KubeMode::Bidirectional {
        let inside = vol.destination.join(&name);
        let t2 = tag();
        let agent = File::open(format!("/proc/{pid}/ns/mnt"))
            .map_err(|e| format!("cannot open the container's mount namespace: {e}{NEEDS}"))
            .and_then(|f| Agent::start(OwnedFd::from(f), false, deadline));
        match agent {
            Ok(agent) => {
                match agent.call(Cmd::Mount(t2.clone(), inside.clone())) {
                    Ok(_) => {
                        match table_has(Path::new("/proc/self/mountinfo"), &t2) {
                            Ok(seen) => r.container_to_host = Some(seen),
                            Err(e) => errors.push(format!("container to host: {e}")),
                        }
                        if let Err(e) = agent.call(Cmd::Umount(inside)) {
                            errors.push(format!("cleanup: {e}"));
                        }
                    }
                    Err(e) => errors.push(format!("container to host: {e}")),
                }
                drop(agent);
            }
            Err(e) => errors.push(format!("container to host: {e}")),
        }
    }
    drop(scratch);
    if !errors.is_empty() {
        r.error = Some(errors.join("; "));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_s_names_cannot_be_guessed() {
        // Two runs of the same process: different names, 16 hex digits of nonce between the pid
        // and the kind.
        let (a, b) = (run_prefix("c").expect("getrandom"), run_prefix("c").expect("getrandom"));
        assert_ne!(a, b);
        let pid = std::process::id();
        for r in [&a, &b] {
            let nonce = r
                .strip_prefix(&format!("mountprop-probe.{pid}."))
                .and_then(|r| r.strip_suffix(".c"))
                .unwrap_or_else(|| panic!("{r}"));
            assert!(nonce.len() == 16 && nonce.chars().all(|c| c.is_ascii_hexdigit()), "{r}");
        }
    }

    #[test]
    fn names_carry_the_pid() {
        assert_eq!(scratch_name(42), ".mountprop-probe.42");
        let pid = std::process::id();
        assert_eq!(pid_of("mountprop-probe.42.0123456789abcdef.c7"), Some(42));
        let run = run_prefix("c").expect("getrandom");
        assert_eq!(pid_of(&format!("{run}1")), Some(pid));
        assert_eq!(pid_of(".mountprop-probe.42"), Some(42));
        assert_eq!(pid_of("mountprop-probe.42.7"), Some(42));
        assert_eq!(pid_of("mountprop-probe.x.7"), None);
        assert_eq!(pid_of("mountprop-prober.42"), None);
        assert_eq!(pid_of("tmpfs"), None);
    }
}
