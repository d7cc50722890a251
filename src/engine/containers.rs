//! The running containers a node fix does not reach: their volumes asked for propagation
//! (`rshared`/`rslave`: Kubernetes' Bidirectional and HostToContainer), but the mount they got
//! when they started no longer receives from the host's peer group at the volume's source (or,
//! for Bidirectional, no longer sends to it). Making `/` rshared again, or restarting the
//! runtime, cannot change a copy that was made when the container started: only a new
//! container can (`kubectl delete pod`). mountprop never restarts one.
//!
//! Found without any runtime's API, from the OCI state on disk (see [`discover`]); parsing
//! ([`parse_spec`]) and judging ([`judge`]) are pure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::KubeMode;
use crate::node::mountinfo::{self, Cap, MountInfo, MountSummary};
use crate::node::{bounded, statmount};

/// containerd's task bundles (shim v2, and v1 for old Docker), one directory per namespace:
/// `k8s.io` for the CRI, `moby` for Docker. Its own default state directory, and those of the
/// distributions that run a containerd of their own: k3s and RKE2, microk8s, k0s.
pub const CONTAINERD_TASKS: [&str; 5] = [
    "run/containerd/io.containerd.runtime.v2.task",
    "run/containerd/io.containerd.runtime.v1.linux",
    "run/k3s/containerd/io.containerd.runtime.v2.task",
    "var/snap/microk8s/common/run/containerd/io.containerd.runtime.v2.task",
    "run/k0s/containerd/io.containerd.runtime.v2.task",
];

/// The `--state` directories of the containerds discovery found running elsewhere
/// ([`crate::engine::discover`]), as absolute paths: their task bundles are looked at too.
static EXTRA_STATES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Sets the discovered containerd state directories (replacing the last ones).
pub fn set_extra_states(dirs: Vec<PathBuf>) {
    let mut v = EXTRA_STATES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *v = dirs;
}

/// Every containerd task directory, relative to the root: the well-known ones, then the
/// discovered state directories' own.
fn containerd_tasks() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = CONTAINERD_TASKS.iter().map(PathBuf::from).collect();
    let extra = EXTRA_STATES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for d in extra.iter() {
        let rel = d.strip_prefix("/").unwrap_or(d).join("io.containerd.runtime.v2.task");
        if !out.contains(&rel) {
            out.push(rel);
        }
    }
    out
}
/// CRI-O's run root: `<driver>-containers/<id>/userdata/{config.json,pidfile}`.
pub const CRIO_RUN: &str = "run/containers/storage";
/// Docker's own record of a container, for its name.
pub const DOCKER_CONTAINERS: &str = "var/lib/docker/containers";

// The parsers of what a container's runtime left on disk, pure and fuzzed, live in the node
// layer; the names stay reachable from here.
pub use crate::node::ocispec::{Container, Runtime, SpecError, Volume, docker_name, parse_pid, parse_spec, requested};

/// Where one container's state lies on disk: its spec and its pid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub runtime: Runtime,
    pub id: String,
    /// The directory whose appearance and removal mark the container's life.
    pub dir: PathBuf,
    pub spec: PathBuf,
    pub pidfile: PathBuf,
    /// Docker's own record, for the container's name.
    pub docker_v2: Option<PathBuf>,
}

/// The directories that hold one bundle per container, by runtime: what [`bundles`] lists and
/// the daemon watches for containers coming and going.
pub fn task_dirs(root: &Path) -> Vec<(Runtime, PathBuf)> {
    let mut out = Vec::new();
    for tasks in containerd_tasks() {
        let Ok(namespaces) = std::fs::read_dir(root.join(tasks)) else {
            continue;
        };
        for ns in namespaces.flatten() {
            let runtime = if ns.file_name() == "moby" {
                Runtime::Docker
            } else {
                Runtime::Containerd
            };
            out.push((runtime, ns.path()));
        }
    }
    if let Ok(drivers) = std::fs::read_dir(root.join(CRIO_RUN)) {
        for d in drivers.flatten() {
            if d.file_name().to_str().is_some_and(|n| n.ends_with("-containers")) {
                out.push((Runtime::CriO, d.path()));
            }
        }
    }
    out
}

/// The directories above [`task_dirs`] that exist before any container does: watched so that
/// a runtime's first namespace or driver directory is noticed when it is made.
pub fn task_roots(root: &Path) -> Vec<PathBuf> {
    containerd_tasks()
        .iter()
        .map(|t| root.join(t))
        .chain(std::iter::once(root.join(CRIO_RUN)))
        .collect()
}

/// Every bundle under one of [`task_dirs`]: one directory read, no file opened.
pub fn bundles_in(root: &Path, runtime: Runtime, dir: &Path) -> Vec<Bundle> {
    let Ok(ids) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    ids.flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            let dir = e.path();
            let (spec, pidfile) = match runtime {
                Runtime::CriO => (dir.join("userdata/config.json"), dir.join("userdata/pidfile")),
                _ => (dir.join("config.json"), dir.join("init.pid")),
            };
            let docker_v2 =
                (runtime == Runtime::Docker).then(|| root.join(DOCKER_CONTAINERS).join(&id).join("config.v2.json"));
            Some(Bundle {
                runtime,
                id,
                dir,
                spec,
                pidfile,
                docker_v2,
            })
        })
        .collect()
}

/// Every bundle on the node.
pub fn bundles(root: &Path) -> Vec<Bundle> {
    task_dirs(root)
        .into_iter()
        .flat_map(|(runtime, dir)| bundles_in(root, runtime, &dir))
        .collect()
}

/// What a bundle holds now.
#[derive(Debug)]
pub enum Loaded {
    /// A running container with at least one volume that asked for propagation.
    Running(Container),
    /// Nothing to judge: a pod sandbox, or no volume asked for propagation.
    Uninteresting,
    /// Not (or no longer, or not yet) running: no spec, no pid file, or no such process.
    NotRunning,
}

/// Reads one bundle: its spec, and its pid file.
pub fn load(b: &Bundle) -> Result<Loaded, SpecError> {
    let Ok(text) = std::fs::read(&b.spec) else {
        return Ok(Loaded::NotRunning);
    };
    let c = match parse_spec(&b.spec, &text, b.runtime, &b.id)? {
        Some(c) if !c.volumes.is_empty() => c,
        _ => return Ok(Loaded::Uninteresting),
    };
    let pid = std::fs::read_to_string(&b.pidfile).ok().as_deref().and_then(parse_pid);
    // A task whose process is gone is not running: nothing holds its mounts. Nor is one whose
    // number now names a process that started after the pid file was written (pid reuse).
    let Some(p) = pid else {
        return Ok(Loaded::NotRunning);
    };
    let Some(start) = start_time(p) else {
        return Ok(Loaded::NotRunning);
    };
    if let (Some(boot), Some(written)) = (boot_time(), mtime(&b.pidfile))
        && !started_before(start, boot, clock_ticks(), written)
    {
        return Ok(Loaded::NotRunning);
    }
    let name = b
        .docker_v2
        .as_ref()
        .and_then(|v2| std::fs::read(v2).ok())
        .as_deref()
        .and_then(docker_name)
        .unwrap_or(c.name);
    Ok(Loaded::Running(Container {
        pid: Some(p),
        name,
        ..c
    }))
}

/// The start time of `pid` (clock ticks after boot), read from /proc/PID/stat.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; fields counted after the parenthesised command name, which may hold spaces.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The wall-clock time of boot, to compare a process's start (counted from boot) with a file's
/// time: the clock now less CLOCK_BOOTTIME now, which is finer than /proc/stat's whole seconds.
fn boot_time() -> Option<Duration> {
    let mut ts = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into the struct we own.
    if unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return None;
    }
    let up = Duration::new(u64::try_from(ts.tv_sec).ok()?, u32::try_from(ts.tv_nsec).ok()?);
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .checked_sub(up)
}

/// The kernel's clock ticks a second, in which /proc/PID/stat gives start times.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }).unwrap_or(100)
}

pub fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// Whether a process that started at `start` (ticks after boot) can be the one a pid file
/// written at `written` names: the runtime writes the file after starting the process, so a
/// process that started later is another one that got the same number.
pub fn started_before(start: u64, boot: Duration, ticks: u64, written: SystemTime) -> bool {
    let started = boot + Duration::from_millis(start.saturating_mul(1000) / ticks.max(1));
    let written = written.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    // Slack for the clock's tick (the start time is rounded down to one) and the coarse
    // timestamps of files.
    started <= written + Duration::from_millis(100)
}

/// Every running container under `root` (`/` on a node) whose spec asks for propagation on at
/// least one volume, and the specs that could not be read. Costs one directory walk and one
/// small file read per container; nothing is asked of a runtime.
pub fn discover(root: &Path) -> (Vec<Container>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for b in bundles(root) {
        match load(&b) {
            Ok(Loaded::Running(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    sort(&mut out);
    (out, errors)
}

/// The order containers are reported in.
pub fn sort(containers: &mut [Container]) {
    containers.sort_by_cached_key(|c| (c.label(), c.id.clone()));
}

/// What one volume's mount looked like, on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeFacts {
    pub volume: Volume,
    /// The host's mount that holds the source.
    pub host: Option<MountSummary>,
    /// Why the source could not be looked at (its filesystem does not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_error: Option<String>,
    /// The container's mount at the destination.
    pub theirs: Option<MountSummary>,
    /// When the container's mount is a slave of a group other than the host's: a member of that
    /// group (from another container's table, or the namespace the container was made from: its
    /// runtime's, when that is a namespace of its own), to follow the chain one step. Peers are
    /// clones of one another and share their master, so one member speaks for the group.
    pub via: Option<MountSummary>,
    /// What a live check saw (`mountprop probe`).
    pub probe: Option<VolumeProbe>,
}

/// A live check of one volume: a tmpfs mounted on the host under the source and looked for in
/// the container's table, and, for Bidirectional, one mounted in the container's namespace
/// under the destination and looked for on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeProbe {
    pub host_to_container: Option<bool>,
    pub container_to_host: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerFacts {
    pub container: Container,
    pub volumes: Vec<VolumeFacts>,
    /// Why its mounts could not be read.
    pub error: Option<String>,
}

/// What a container's own mount table says about its volumes, read once.
#[derive(Debug, Clone)]
pub struct Theirs {
    /// Per volume, the mount that governs its destination in the container.
    pub mounts: Vec<Option<MountSummary>>,
    /// Why the table could not be read or searched.
    pub error: Option<String>,
    /// One member of each peer group seen in the table, for following chains through it.
    pub groups: Vec<MountSummary>,
    /// The first mount of the table: the namespace's identity, readable without ptrace rights.
    pub first_mount: Option<u64>,
}

/// Reads `c`'s mount table. `None` when its pid now names a process in the host's namespace
/// (`host_first`): a stale pid file (pid reuse), not a container, since a container always has
/// a mount namespace of its own.
pub fn read_theirs(c: &Container, host_first: Option<u64>, buf: &mut Vec<u8>) -> Option<Theirs> {
    let table = PathBuf::from(format!("/proc/{}/mountinfo", c.pid.unwrap_or(0)));
    match MountInfo::read_path_capped(&table, std::mem::take(buf), Cap::CONTAINER) {
        Ok(info) => {
            let first = info.iter().next().and_then(Result::ok).map(|m| m.id);
            if host_first.is_some() && first == host_first {
                *buf = info.into_buffer();
                return None;
            }
            let dests: Vec<&Path> = c.volumes.iter().map(|v| v.destination.as_path()).collect();
            let (mounts, error) = match info.governing_many(&dests) {
                Ok(found) => (found.iter().map(|m| m.as_ref().map(MountSummary::from)).collect(), None),
                Err(e) => (vec![None; dests.len()], Some(e.to_string())),
            };
            let mut seen = std::collections::HashSet::new();
            let groups = info
                .iter()
                .flatten()
                .filter(|m| m.propagation.shared.is_some_and(|g| seen.insert(g)))
                .map(|m| MountSummary::from(&m))
                .collect();
            *buf = info.into_buffer();
            Some(Theirs {
                mounts,
                error,
                groups,
                first_mount: first,
            })
        }
        Err(e) => Some(Theirs {
            mounts: vec![None; c.volumes.len()],
            error: Some(e.to_string()),
            groups: Vec::new(),
            first_mount: None,
        }),
    }
}

/// One container's facts from both sides: per volume the host's mount at its source, or why
/// it could not be looked at.
pub fn facts_of(c: Container, hosts: Vec<Result<Option<MountSummary>, String>>, theirs: &Theirs) -> ContainerFacts {
    let volumes = c
        .volumes
        .iter()
        .zip(hosts)
        .zip(theirs.mounts.iter().cloned())
        .map(|((v, h), t)| VolumeFacts {
            volume: v.clone(),
            host_error: h.as_ref().err().cloned(),
            host: h.unwrap_or(None),
            theirs: t,
            via: None,
            probe: None,
        })
        .collect();
    ContainerFacts {
        container: c,
        volumes,
        error: theirs.error.clone(),
    }
}

/// Reads each container's mount table once, the host's mount at each source, and, only where
/// the flags need the next link of a chain, the table of the namespace the container was made
/// from. Every peer group seen in the containers' tables is remembered on the way (one member
/// each), so a chain through another container's mount costs nothing more.
pub fn observe(containers: Vec<Container>, host_table: &Path, fast: bool) -> Vec<ContainerFacts> {
    if containers.is_empty() {
        return Vec::new();
    }
    let sources: Vec<PathBuf> = containers
        .iter()
        .flat_map(|c| c.volumes.iter().map(|v| v.source.clone()))
        .collect();
    let mut host = host_mounts(&sources, host_table, fast).into_iter();
    let mut groups: HashMap<u64, MountSummary> = HashMap::new();
    let mut buf = Vec::new();
    let host_first = MountInfo::first_mount_id(host_table).ok().flatten();
    let mut out: Vec<ContainerFacts> = containers
        .into_iter()
        .filter_map(|c| {
            let hosts: Vec<Result<Option<MountSummary>, String>> = host.by_ref().take(c.volumes.len()).collect();
            let theirs = read_theirs(&c, host_first, &mut buf)?;
            for g in &theirs.groups {
                if let Some(id) = g.propagation.shared {
                    groups.entry(id).or_insert_with(|| g.clone());
                }
            }
            Some(facts_of(c, hosts, &theirs))
        })
        .collect();
    link(&mut out, &groups, &mut HashMap::new());
    out
}

/// Follows one step of each chain the flags need (see [`VolumeFacts::via`]): through `groups`
/// (members seen in containers' tables), else through the table of the namespace the
/// container was made from, read at most once each (`parents`, keyed by that namespace).
pub fn link(
    out: &mut [ContainerFacts],
    groups: &HashMap<u64, MountSummary>,
    parents: &mut HashMap<u64, Option<MountInfo>>,
) {
    for c in out {
        let pid = c.container.pid.unwrap_or(0);
        for v in &mut c.volumes {
            v.via = None;
            let (Some(h), Some(t)) = (&v.host, &v.theirs) else {
                continue;
            };
            if !needs_chain(h, t) {
                continue;
            }
            let Some(master) = t.propagation.master else { continue };
            v.via = groups
                .get(&master)
                .cloned()
                .or_else(|| group_in_parent(pid, master, parents));
        }
    }
}

/// The container's mount is a slave of a group other than the host's: only the next link of
/// the chain can tell whether that group still receives from the host.
fn needs_chain(host: &MountSummary, theirs: &MountSummary) -> bool {
    let p = &theirs.propagation;
    host.propagation
        .shared
        .is_some_and(|g| !p.receives_from(g) && p.propagate_from != Some(g))
        && p.master.is_some()
}

/// A mount of peer group `group` in the namespace of `pid`'s parent (the runtime's shim, which
/// lives where the runtime was when the container started).
fn group_in_parent(pid: u32, group: u64, cache: &mut HashMap<u64, Option<MountInfo>>) -> Option<MountSummary> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fourth field, after the parenthesised command name (which may hold spaces).
    let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
    // The namespace told apart by its first mount, which needs no ptrace access to the shim
    // (the daemon has no CAP_SYS_PTRACE).
    let table = PathBuf::from(format!("/proc/{ppid}/mountinfo"));
    let ns = MountInfo::first_mount_id(&table).ok().flatten()?;
    let info = cache
        .entry(ns)
        .or_insert_with(|| MountInfo::read_path_capped(&table, Vec::new(), Cap::CONTAINER).ok())
        .as_ref()?;
    info.iter()
        .flatten()
        .find(|m| m.propagation.shared == Some(group))
        .map(|m| MountSummary::from(&m))
}

/// The host's mount at each source: statmount where it works (a cost that does not grow with
/// the table), else one read of the host's table. A source is looked up (statx, symlinks
/// resolved) only within a deadline (crate::node::bounded): it may be on a network or FUSE
/// filesystem that no longer answers; then its `Err` says so.
pub fn host_mounts(sources: &[PathBuf], table: &Path, fast: bool) -> Vec<Result<Option<MountSummary>, String>> {
    // Per source: statmount's answer, or the path resolved for a look in the table.
    let looked = bounded::each(sources, bounded::DEADLINE, move |s| {
        if fast && let Ok(d) = statmount::describe(s) {
            return Ok(d);
        }
        Err(mountinfo::looked_up(s))
    });
    let info = if looked.iter().any(|l| matches!(l, Ok(Err(_)))) {
        MountInfo::read_path(table, Vec::new()).ok()
    } else {
        None
    };
    // The table answers for the sources statmount did not; a source that did not answer stands
    // in as written (its answer is the error anyway).
    let resolved: Vec<&Path> = looked
        .iter()
        .zip(sources)
        .map(|(l, s)| match l {
            Ok(Err(r)) => r.as_path(),
            _ => s.as_path(),
        })
        .collect();
    let in_table: Vec<Option<MountSummary>> = match info.as_ref().map(|i| i.governing_many(&resolved)) {
        Some(Ok(ms)) => ms.iter().map(|m| m.as_ref().map(MountSummary::from)).collect(),
        _ => vec![None; sources.len()],
    };
    looked
        .into_iter()
        .zip(in_table)
        .map(|(l, t)| match l {
            Ok(Ok(d)) => Ok(Some(d)),
            Ok(Err(_)) => Ok(t),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

/// What a volume's mount really gets from the host's current peer group at its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gets {
    /// Nothing: a copy of a private mount, or a slave whose master left the host's group.
    Nothing,
    /// The host's mounts, and nothing goes back: a slave of the group (perhaps through the
    /// runtime's namespace), or a peer group of its own that is such a slave.
    ReceivesOnly,
    /// A peer of the host's group: both ways.
    Both,
}

impl Gets {
    fn enough_for(self, mode: KubeMode) -> bool {
        match mode {
            KubeMode::None => true,
            KubeMode::HostToContainer => self >= Gets::ReceivesOnly,
            KubeMode::Bidirectional => self == Gets::Both,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Gets::Nothing => "receives nothing from the host",
            Gets::ReceivesOnly => "only receives from the host (mounts made inside do not reach it)",
            Gets::Both => "a peer of the host's mounts",
        }
    }
}

/// One volume that no longer propagates as it asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleVolume {
    pub source: PathBuf,
    pub destination: PathBuf,
    /// The mode the volume asked for, and the spec's option.
    pub requested: KubeMode,
    pub option: String,
    pub gets: Gets,
    /// Why, in words: both sides' propagation, or what the live check saw.
    pub detail: String,
    /// The live check decided, not the flags.
    #[serde(default)]
    pub probed: bool,
}

/// A running container with at least one stale volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleContainer {
    pub runtime: Runtime,
    pub id: String,
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub container: String,
    pub pid: Option<u32>,
    pub volumes: Vec<StaleVolume>,
    /// What to run: mountprop never restarts a container.
    pub remedy: String,
}

impl StaleContainer {
    pub fn label(&self) -> String {
        match (&self.pod_namespace, &self.pod_name) {
            (Some(ns), Some(p)) => format!("{ns}/{p}/{}", self.container),
            _ => format!("{} {}", self.runtime, self.container),
        }
    }

    /// One line: who, where, what it asked for and what it gets, and the remedy.
    pub fn line(&self) -> String {
        let vols: Vec<String> = self
            .volumes
            .iter()
            .map(|v| {
                format!(
                    "{} from {} ({}, {}): {}",
                    v.destination.display(),
                    v.source.display(),
                    v.requested,
                    v.option,
                    v.gets.words()
                )
            })
            .collect();
        format!("{}: {}; {}", self.label(), vols.join("; "), self.remedy)
    }
}

/// The judgement of all containers: the stale ones, and what could not be told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judged {
    pub stale: Vec<StaleContainer>,
    /// Volumes the flags could not settle and no live check reached (`mountprop probe` does).
    pub unsure: Vec<String>,
    /// How many running containers asked for propagation on some volume.
    pub looked_at: usize,
}

/// Which rule of [`by_flags`] decided, for the words: formatted only for what is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    HostNotShared,
    Peer,
    Slave,
    NoMaster,
    ViaReceives(u64),
    ViaLost(u64),
}

/// [`by_flags`] without the words: what the volume gets and which rule said so. Formats only
/// when the facts cannot tell.
fn decide(v: &VolumeFacts) -> Result<(Gets, Rule), String> {
    if let Some(e) = &v.host_error {
        return Err(e.clone());
    }
    let Some(h) = &v.host else {
        return Err(format!("no host mount found for {}", v.volume.source.display()));
    };
    let Some(t) = &v.theirs else {
        return Err(format!(
            "no mount at {} in the container",
            v.volume.destination.display()
        ));
    };
    let hp = &h.propagation;
    let tp = &t.propagation;
    let Some(group) = hp.shared else {
        // A host mount that is not shared passes nothing on: the node is to be fixed first.
        return Ok((Gets::Nothing, Rule::HostNotShared));
    };
    if tp.shared == Some(group) {
        return Ok((Gets::Both, Rule::Peer));
    }
    if tp.master == Some(group) || tp.propagate_from == Some(group) {
        return Ok((Gets::ReceivesOnly, Rule::Slave));
    }
    let Some(master) = tp.master else {
        // No master at all: a private copy, or a peer group of its own that left the host's.
        return Ok((Gets::Nothing, Rule::NoMaster));
    };
    match &v.via {
        Some(m) if m.propagation.receives_from(group) => Ok((Gets::ReceivesOnly, Rule::ViaReceives(master))),
        Some(_) => Ok((Gets::Nothing, Rule::ViaLost(master))),
        None => Err(format!(
            "{}; its master group {master} was not found where it was made",
            sides(v, h, t)
        )),
    }
}

fn sides(v: &VolumeFacts, h: &MountSummary, t: &MountSummary) -> String {
    format!(
        "its mount at {} is {}, the host's at {} is {}",
        v.volume.destination.display(),
        t.propagation,
        h.mount_point.display(),
        h.propagation
    )
}

/// The words for what [`decide`] found.
fn words(v: &VolumeFacts, rule: Rule) -> String {
    let (Some(h), Some(t)) = (&v.host, &v.theirs) else {
        return String::new();
    };
    let sides = sides(v, h, t);
    let via = v.via.as_ref().map(|m| m.propagation.to_string()).unwrap_or_default();
    match rule {
        Rule::ViaReceives(master) => format!("{sides}; group {master} is {via} in its runtime's namespace"),
        Rule::ViaLost(master) => format!(
            "{sides}; its master, group {master}, is {via} in its runtime's namespace and no longer receives from the host"
        ),
        Rule::HostNotShared | Rule::Peer | Rule::Slave | Rule::NoMaster => sides,
    }
}

/// What a volume gets, by the flags, at one instant: equal peer group numbers in one reading
/// are the same group (a group's id is freed only when its last member leaves), so a mount that
/// is a peer or a slave of the host's group at the source receives from it. A slave of another
/// group receives only if that group does (`via`, one step up the chain). `None`: cannot tell.
pub fn by_flags(v: &VolumeFacts) -> Result<(Gets, String), String> {
    decide(v).map(|(g, rule)| (g, words(v, rule)))
}

/// What the live check says a volume gets, where it was conclusive.
fn by_probe(p: &VolumeProbe, mode: KubeMode) -> Option<Gets> {
    match (p.host_to_container, p.container_to_host, mode) {
        (Some(false), _, _) => Some(Gets::Nothing),
        (Some(true), Some(true), _) => Some(Gets::Both),
        (Some(true), Some(false), _) => Some(Gets::ReceivesOnly),
        (Some(true), None, KubeMode::HostToContainer) => Some(Gets::ReceivesOnly),
        _ => None,
    }
}

/// Judges every container: the live check decides where it was conclusive, the flags elsewhere.
pub fn judge(facts: &[ContainerFacts]) -> Judged {
    let mut out = Judged {
        looked_at: facts.len(),
        ..Judged::default()
    };
    for c in facts {
        let mut stale = Vec::new();
        for v in &c.volumes {
            let mode = v.volume.mode;
            let probed = v.probe.as_ref().and_then(|p| by_probe(p, mode));
            // The common case, a volume that gets what it asked for, costs no words.
            if probed.is_none()
                && let Ok((g, _)) = decide(v)
                && g.enough_for(mode)
            {
                continue;
            }
            let (gets, detail, probed) = match (probed, by_flags(v)) {
                (Some(g), flags) => {
                    let seen = match g {
                        Gets::Nothing => "a tmpfs mounted on the host under its source did not appear in it",
                        Gets::ReceivesOnly => {
                            "a tmpfs mounted on the host appeared in it, one mounted in it did not reach the host"
                        }
                        Gets::Both => "mounts crossed both ways",
                    };
                    let flags = flags.map_or_else(|e| e, |(_, d)| d);
                    (g, format!("live check: {seen} ({flags})"), true)
                }
                (None, Ok((g, d))) => (g, d, false),
                (None, Err(why)) => {
                    // Its table could not be read (or was too large to): that is the reason.
                    let why = match (&c.error, &v.theirs) {
                        (Some(e), None) => e.clone(),
                        _ => why,
                    };
                    let why = match v.probe.as_ref().and_then(|p| p.error.as_deref()) {
                        Some(e) => format!("{why}; live check: {e}"),
                        None => why,
                    };
                    out.unsure.push(format!(
                        "{} {}: {why}",
                        c.container.label(),
                        v.volume.destination.display()
                    ));
                    continue;
                }
            };
            if !gets.enough_for(mode) {
                stale.push(StaleVolume {
                    source: v.volume.source.clone(),
                    destination: v.volume.destination.clone(),
                    requested: mode,
                    option: v.volume.option.clone(),
                    gets,
                    detail,
                    probed,
                });
            }
        }
        if let Some(e) = &c.error
            && c.volumes.is_empty()
        {
            out.unsure.push(format!("{}: {e}", c.container.label()));
        }
        if !stale.is_empty() {
            let k = &c.container;
            out.stale.push(StaleContainer {
                runtime: k.runtime,
                id: k.id.clone(),
                pod_namespace: k.pod.as_ref().map(|p| p.0.clone()),
                pod_name: k.pod.as_ref().map(|p| p.1.clone()),
                container: k.name.clone(),
                pid: k.pid,
                volumes: stale,
                remedy: k.remedy(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::mountinfo::Propagation;

    #[test]
    fn a_process_started_after_its_pid_file_is_another() {
        let boot = Duration::from_secs(1_000_000);
        let written = SystemTime::UNIX_EPOCH + boot + Duration::from_secs(50);
        // Started 49.5 s after boot: before the file was written.
        assert!(started_before(4950, boot, 100, written));
        // Within the slack of a tick and of the file's timestamp.
        assert!(started_before(5005, boot, 100, written));
        // A quarter of a second later: a reused pid.
        assert!(!started_before(5025, boot, 100, written));
    }

    #[test]
    fn start_time_of_this_process() {
        let me = std::process::id();
        let s = start_time(me).expect("own stat");
        let boot = boot_time().expect("btime");
        let ticks = clock_ticks();
        assert!(started_before(s, boot, ticks, SystemTime::now()));
    }

    const CRI_SPEC: &str = r#"{
      "ociVersion": "1.0.2-dev",
      "process": {"args": ["/bin/sleep", "86400"]},
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
        {"destination": "/var/log/pods", "type": "bind", "source": "/var/log/pods", "options": ["rbind", "rslave", "ro"]},
        {"destination": "/data", "type": "bind", "source": "/var/lib/kubelet/pods/u/volumes/d", "options": ["rbind", "rshared", "rw"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/kubelet/pods/u/etc-hosts", "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/cache", "type": "bind", "source": "/var/cache", "options": ["rbind", "rw"]}
      ],
      "annotations": {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "cleaner",
        "io.kubernetes.cri.sandbox-name": "log-cleaner-x7k2p",
        "io.kubernetes.cri.sandbox-namespace": "kube-system"
      }
    }"#;

    #[test]
    fn cri_spec_gives_names_and_only_the_volumes_that_asked() {
        let c = parse_spec(Path::new("c.json"), CRI_SPEC.as_bytes(), Runtime::Containerd, "abc")
            .unwrap()
            .unwrap();
        assert_eq!(c.pod, Some(("kube-system".into(), "log-cleaner-x7k2p".into())));
        assert_eq!(c.name, "cleaner");
        assert_eq!(c.label(), "kube-system/log-cleaner-x7k2p/cleaner");
        assert_eq!(c.remedy(), "kubectl delete pod -n kube-system log-cleaner-x7k2p");
        let got: Vec<(&str, KubeMode, &str)> = c
            .volumes
            .iter()
            .map(|v| (v.destination.to_str().unwrap(), v.mode, v.option.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/var/log/pods", KubeMode::HostToContainer, "rslave"),
                ("/data", KubeMode::Bidirectional, "rshared")
            ]
        );
    }

    #[test]
    fn sandbox_containers_and_bad_specs() {
        let pause = r#"{"mounts": [], "annotations": {"io.kubernetes.cri.container-type": "sandbox"}}"#;
        assert_eq!(
            parse_spec(Path::new("p"), pause.as_bytes(), Runtime::Containerd, "p").unwrap(),
            None
        );
        let crio_pause = r#"{"annotations": {"io.kubernetes.cri-o.ContainerType": "sandbox"}}"#;
        assert_eq!(
            parse_spec(Path::new("p"), crio_pause.as_bytes(), Runtime::CriO, "p").unwrap(),
            None
        );
        let e = parse_spec(Path::new("/run/x/config.json"), b"{not json", Runtime::Containerd, "x").unwrap_err();
        assert!(
            e.to_string().starts_with("/run/x/config.json: not an OCI runtime spec"),
            "{e}"
        );
    }

    #[test]
    fn crio_and_docker_names() {
        let crio = r#"{"mounts": [{"destination": "/v", "type": "bind", "source": "/s", "options": ["rbind", "rslave"]}],
          "annotations": {"io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.name": "p", "io.kubernetes.container.name": "c"}}"#;
        let c = parse_spec(Path::new("c"), crio.as_bytes(), Runtime::CriO, "id")
            .unwrap()
            .unwrap();
        assert_eq!(c.label(), "ns/p/c");
        // Docker's spec carries no name: the id until config.v2.json names it; -v x:y:rslave
        // without a "type" field.
        let docker = r#"{"mounts": [{"destination": "/v", "source": "/s", "options": ["rbind", "rslave"]}]}"#;
        let d = parse_spec(Path::new("d"), docker.as_bytes(), Runtime::Docker, "0123456789abcdef")
            .unwrap()
            .unwrap();
        assert_eq!(d.name, "0123456789ab");
        assert_eq!(d.volumes.len(), 1);
        assert_eq!(docker_name(br#"{"Name": "/web", "ID": "x"}"#), Some("web".into()));
        assert_eq!(docker_name(b"{}"), None);
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid("0"), None);
        assert_eq!(parse_pid(""), None);
    }

    #[test]
    fn requested_mode_is_the_last_propagation_option() {
        let o = |v: &[&str]| requested(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(|r| r.0);
        assert_eq!(o(&["rbind", "rslave"]), Some(KubeMode::HostToContainer));
        assert_eq!(o(&["rbind", "slave"]), Some(KubeMode::HostToContainer));
        assert_eq!(o(&["rbind", "shared"]), Some(KubeMode::Bidirectional));
        assert_eq!(o(&["rbind", "rprivate"]), None);
        assert_eq!(o(&["rbind", "rshared", "rprivate"]), None);
        assert_eq!(o(&["rbind"]), None);
    }

    fn m(point: &str, shared: Option<u64>, master: Option<u64>) -> MountSummary {
        MountSummary {
            id: 1,
            mount_point: point.into(),
            fstype: "ext4".into(),
            propagation: Propagation {
                shared,
                master,
                propagate_from: None,
                unbindable: false,
            },
        }
    }

    fn vf(mode: KubeMode, host: MountSummary, theirs: MountSummary, via: Option<MountSummary>) -> VolumeFacts {
        VolumeFacts {
            volume: Volume {
                source: "/var/log".into(),
                destination: "/logs".into(),
                mode,
                option: if mode == KubeMode::Bidirectional {
                    "rshared"
                } else {
                    "rslave"
                }
                .into(),
            },
            host: Some(host),
            host_error: None,
            theirs: Some(theirs),
            via,
            probe: None,
        }
    }

    fn one(v: VolumeFacts) -> Judged {
        let (c, _) = (
            Container {
                runtime: Runtime::Containerd,
                id: "id".into(),
                pod: Some(("ns".into(), "pod".into())),
                name: "c".into(),
                pid: Some(7),
                volumes: vec![v.volume.clone()],
            },
            (),
        );
        judge(&[ContainerFacts {
            container: c,
            volumes: vec![v],
            error: None,
        }])
    }

    use KubeMode::{Bidirectional as Bi, HostToContainer as H2c};

    #[test]
    fn judging_by_flags() {
        let host = || m("/", Some(1), None);
        // A slave of the host's group, and a peer: fine for what they asked.
        assert!(one(vf(H2c, host(), m("/logs", None, Some(1)), None)).stale.is_empty());
        assert!(one(vf(Bi, host(), m("/logs", Some(1), None), None)).stale.is_empty());
        assert!(one(vf(H2c, host(), m("/logs", Some(1), None), None)).stale.is_empty());
        // After a flip: the host is shared:1 again, the old copy lost its master.
        let j = one(vf(H2c, host(), m("/logs", None, None), None));
        assert_eq!(j.stale.len(), 1);
        assert_eq!(j.stale[0].volumes[0].gets, Gets::Nothing);
        assert_eq!(j.stale[0].remedy, "kubectl delete pod -n ns pod");
        // A peer group of its own that left the host's: receives nothing.
        let j = one(vf(Bi, host(), m("/logs", Some(40), None), None));
        assert_eq!(j.stale[0].volumes[0].gets, Gets::Nothing);
        // Bidirectional that only receives (a runtime in a slave namespace): stale.
        let j = one(vf(Bi, host(), m("/logs", None, Some(1)), None));
        assert_eq!(j.stale[0].volumes[0].gets, Gets::ReceivesOnly);
        // A private host mount passes nothing on.
        let j = one(vf(H2c, m("/", None, None), m("/logs", None, Some(1)), None));
        assert_eq!(j.stale[0].volumes[0].gets, Gets::Nothing);
    }

    #[test]
    fn judging_through_the_runtimes_namespace() {
        let host = || m("/", Some(1), None);
        // The runtime's namespace is shared:34 and a slave of the host's group: fine.
        let ok = one(vf(
            H2c,
            host(),
            m("/logs", None, Some(34)),
            Some(m("/", Some(34), Some(1))),
        ));
        assert!(ok.stale.is_empty() && ok.unsure.is_empty(), "{ok:?}");
        // ... after the flip, group 34 has no master: nothing comes through.
        let j = one(vf(
            H2c,
            host(),
            m("/logs", None, Some(34)),
            Some(m("/", Some(34), None)),
        ));
        assert_eq!(j.stale[0].volumes[0].gets, Gets::Nothing);
        // Group 34 not found: not listed, said to be unsure.
        let j = one(vf(H2c, host(), m("/logs", None, Some(34)), None));
        assert!(j.stale.is_empty());
        assert_eq!(j.unsure.len(), 1, "{j:?}");
    }

    #[test]
    fn a_table_too_large_leaves_each_volume_not_judged_and_says_why() {
        let mut v = vf(H2c, m("/", Some(1), None), m("/logs", None, Some(1)), None);
        v.theirs = None;
        let why = "mount table too large (30001 mounts) in /proc/7/mountinfo";
        let j = judge(&[ContainerFacts {
            container: Container {
                runtime: Runtime::Containerd,
                id: "id".into(),
                pod: Some(("ns".into(), "pod".into())),
                name: "c".into(),
                pid: Some(7),
                volumes: vec![v.volume.clone()],
            },
            volumes: vec![v],
            error: Some(why.into()),
        }]);
        assert!(j.stale.is_empty(), "{j:?}");
        assert_eq!(j.unsure, [format!("ns/pod/c /logs: {why}")]);
    }

    #[test]
    fn the_live_check_decides() {
        let host = || m("/", Some(1), None);
        let mut v = vf(H2c, host(), m("/logs", None, Some(1)), None);
        v.probe = Some(VolumeProbe {
            host_to_container: Some(false),
            container_to_host: None,
            error: None,
        });
        let j = one(v);
        assert!(j.stale[0].volumes[0].probed);
        let mut v = vf(H2c, host(), m("/logs", None, Some(34)), None);
        v.probe = Some(VolumeProbe {
            host_to_container: Some(true),
            container_to_host: None,
            error: None,
        });
        let j = one(v);
        assert!(j.stale.is_empty() && j.unsure.is_empty(), "{j:?}");
        let mut v = vf(Bi, host(), m("/logs", Some(1), None), None);
        v.probe = Some(VolumeProbe {
            host_to_container: Some(true),
            container_to_host: Some(false),
            error: None,
        });
        assert_eq!(one(v).stale[0].volumes[0].gets, Gets::ReceivesOnly);
    }
}

#[cfg(test)]
mod distribution_tests {
    use super::*;

    #[test]
    fn the_distributions_and_a_discovered_state_directory_are_looked_in() {
        let root = std::env::temp_dir().join(format!("mountprop-tasks-{}", std::process::id()));
        for d in [
            "run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io",
            "var/snap/microk8s/common/run/containerd/io.containerd.runtime.v2.task/k8s.io",
            "run/k0s/containerd/io.containerd.runtime.v2.task/k8s.io",
            "srv/state/io.containerd.runtime.v2.task/k8s.io",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let dirs = |root: &Path| -> Vec<PathBuf> { task_dirs(root).into_iter().map(|(_, d)| d).collect() };
        let found = dirs(&root);
        for d in ["run/k3s", "var/snap/microk8s", "run/k0s"] {
            assert!(found.iter().any(|f| f.starts_with(root.join(d))), "{d}: {found:?}");
        }
        assert!(!found.iter().any(|f| f.starts_with(root.join("srv"))), "{found:?}");
        // A containerd found running with `--state /srv/state`.
        set_extra_states(vec![PathBuf::from("/srv/state")]);
        let found = dirs(&root);
        set_extra_states(Vec::new());
        assert!(
            found.contains(&root.join("srv/state/io.containerd.runtime.v2.task/k8s.io")),
            "{found:?}"
        );
        assert!(task_roots(&root).contains(&root.join("run/k3s/containerd/io.containerd.runtime.v2.task")));
        std::fs::remove_dir_all(&root).ok();
    }
}
