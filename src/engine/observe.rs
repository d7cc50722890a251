//! Gathers what is true now, from systemd, `/proc` and the unit files on disk, into plain data
//! that [`crate::engine::plan`] can judge without touching anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, PathRule};
use crate::engine::containers::{self, ContainerFacts};
pub use crate::engine::discover::Discovery;
use crate::engine::{dropin, tracker};
use crate::node::atomicfile::{Dir, Entry, FileError};
use crate::node::mountinfo::{self, MountInfo, MountInfoError, MountSummary};
use crate::node::namespacing;
pub use crate::node::ownfile::{OwnDropIn, OwnState};
use crate::node::statmount;
use crate::node::systemd::{Systemd, SystemdError, UnitProps, parse_version};
use crate::node::unitfile;
pub use crate::node::unitfiles::UnitFile;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    MountInfo(#[from] MountInfoError),
    #[error("{path}: no mount holds this path in {table}")]
    NoMount { path: PathBuf, table: PathBuf },
}

/// What a look covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// systemd, its units and the host's mounts.
    #[default]
    Everything,
    /// Only the host's mounts: systemd was not asked (a quick fix of a path, or no bus).
    Paths,
}

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub scope: Scope,
    pub systemd: SystemdInfo,
    pub host: HostFacts,
    pub units: Vec<UnitFacts>,
    pub kubelet: Option<KubeletFacts>,
    /// Set when the facts come from an image tree (`--root`), not a running node.
    pub image: Option<ImageFacts>,
    /// What the live probe saw, when one ran ([`crate::engine::probe`]).
    pub probe: Option<Vec<ProbeResult>>,
    /// Running containers whose volumes asked for propagation ([`crate::engine::containers`]).
    /// Shared with the daemon's tracker, which hands the same facts out while nothing changed.
    pub containers: std::sync::Arc<Vec<crate::engine::containers::ContainerFacts>>,
    /// Container specs that could not be read.
    pub container_errors: Vec<String>,
    /// What runs, when discovery looked (config `discover`).
    pub discovery: Option<Discovery>,
}

/// What the live probe saw for one namespace at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub subject: String,
    pub point: PathBuf,
    /// A tmpfs mounted on the host appeared in the namespace.
    pub host_to_container: Option<bool>,
    /// A tmpfs mounted in the namespace appeared on the host.
    pub container_to_host: Option<bool>,
    /// Why a direction could not be tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageFacts {
    pub root: PathBuf,
    pub service: crate::node::image::ServiceInstall,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemdInfo {
    pub version_string: String,
    pub version: Option<u32>,
    /// systemd's `Virtualization`: empty on bare metal or a VM's own kernel.
    pub virtualization: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostFacts {
    /// Whether mountprop runs in a mount namespace other than PID 1's (`None`: unknown).
    pub own_namespace: Option<bool>,
    /// The id of the first mount in the host's table: a process whose table starts with the
    /// same mount is in the host's namespace.
    pub first_mount: Option<u64>,
    /// Set when this host is itself a container (systemd leaves `/` private there).
    pub container: Option<String>,
    pub paths: Vec<PathFacts>,
    /// Where the Kubernetes modes are judged: `/` and the kubelet's volume root.
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub path: PathBuf,
    pub mount: MountSummary,
    /// The directory exists (a probe can only work in one that does).
    pub exists: bool,
}

impl HostFacts {
    /// Whether a mount(2) by mountprop changes the host's mounts.
    pub fn can_remount(&self) -> bool {
        // Unknown (no permission to look): mount(2) will tell.
        self.own_namespace != Some(true)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PathFacts {
    pub rule: PathRule,
    /// The mount that governs the path in the host's table.
    pub mount: MountSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitFacts {
    pub name: String,
    #[serde(skip)]
    pub props: UnitProps,
    pub own: OwnDropIn,
    /// Every file that sets the unit's options once systemd reloads, in the order systemd
    /// applies them: the fragment, then the drop-ins (mountprop's own included, where it is or
    /// would be).
    pub files: Vec<UnitFile>,
    pub runtime: Option<RuntimeView>,
    /// How it was found: `None` when configured (`units`), else by discovery.
    pub found_by: Option<Found>,
}

/// How discovery found a unit that is not in `units`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Found {
    /// Its process serves this CRI socket: a runtime.
    Serves(PathBuf),
    /// The running kubelet is in it (and no runtime): judged as a unit, and in the modes as
    /// the kubelet, never as a runtime.
    Kubelet,
}

impl UnitFacts {
    /// A container runtime's unit: configured, or found serving a CRI socket.
    pub fn is_runtime(&self) -> bool {
        self.found_by != Some(Found::Kubelet)
    }

    pub fn is_running(&self) -> bool {
        self.props.main_pid != 0
    }

    /// The settings systemd has loaded now that give the unit a mount namespace of its own.
    pub fn loaded_sandboxing(&self, version: Option<u32>) -> Vec<namespacing::Setting> {
        namespacing::in_force(
            self.files.iter().filter(|f| f.loaded).map(|f| f.sandboxing.as_slice()),
            version,
        )
    }
}

/// What the runtime's main process really lives in.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeView {
    pub pid: u32,
    pub same_ns_as_host: bool,
    /// Per configured path: the mount that governs it in the runtime's own table.
    pub paths: Vec<Option<MountSummary>>,
    /// Per [`HostFacts::points`], likewise.
    pub points: Vec<Option<MountSummary>>,
    pub error: Option<String>,
    /// The id of the first mount in its table: two processes with the same one share a mount
    /// namespace (a runtime and the kubelet in one of their own, as OpenShift sets them up).
    #[serde(default)]
    pub first_mount: Option<u64>,
}

/// The kubelet, when installed: its own namespace matters for Bidirectional volumes too.
#[derive(Debug, Clone, Serialize)]
pub struct KubeletFacts {
    pub name: String,
    pub runtime: Option<RuntimeView>,
    /// The running kubelet as discovery found it (its process, unit and root).
    pub found: Option<crate::engine::discover::Kubelet>,
}

/// `/` and the kubelet's volume root: the configured one, and the one the running kubelet
/// really uses when discovery found it elsewhere.
fn points_of(cfg: &Config, found: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/")];
    for root in std::iter::once(cfg.kubelet_root.as_path()).chain(found) {
        if !v.iter().any(|p| p == root) {
            v.push(root.to_path_buf());
        }
    }
    v
}

fn first_mount(pid: &str) -> Option<u64> {
    MountInfo::first_mount_id(Path::new(&format!("/proc/{pid}/mountinfo")))
        .ok()
        .flatten()
}

/// Reads everything the planner needs. Fails only when the node cannot be checked at all.
pub fn observe(sys: &Systemd, cfg: &Config) -> Result<Facts, ObserveError> {
    let discovery = cfg.discover.then(crate::engine::discover::run);
    if let Some(d) = &discovery {
        tracing::debug!(
            "discovery: {} us; read {} processes, {} descriptors, {} bytes; {} sockets, kubelet {}",
            d.micros,
            d.reads.processes,
            d.reads.fds,
            d.reads.bytes,
            d.sockets.len(),
            d.kubelet
                .as_ref()
                .map_or("none".to_string(), |k| format!("pid {}", k.pid))
        );
    }
    // Configured units first, then those found serving a CRI socket, each once.
    let mut runtimes: Vec<(String, Option<Found>)> = cfg.units.iter().map(|u| (u.clone(), None)).collect();
    for (unit, socket) in discovery.as_ref().map(Discovery::units).unwrap_or_default() {
        if !runtimes.iter().any(|(u, _)| *u == unit) {
            runtimes.push((unit, Some(Found::Serves(socket))));
        }
    }
    let found_kubelet = discovery.as_ref().and_then(|d| d.kubelet.clone());
    // The kubelet's own unit is judged too (its MountFlags, file and line, the drop-in), as a
    // kubelet listed in `units` is.
    if let Some(u) = found_kubelet.as_ref().and_then(|k| k.unit.clone())
        && !runtimes.iter().any(|(x, _)| *x == u)
    {
        runtimes.push((u, Some(Found::Kubelet)));
    }
    // A kubelet listed among the units is judged as one of them.
    let kubelet_apart = !runtimes.iter().any(|(u, _)| *u == cfg.kubelet_unit);
    let mut names: Vec<&str> = runtimes.iter().map(|(u, _)| u.as_str()).collect();
    if kubelet_apart {
        names.push(&cfg.kubelet_unit);
    }
    let mut snap = sys.snapshot(&names)?;
    let kubelet_props = if kubelet_apart { snap.units.pop() } else { None };
    let systemd = SystemdInfo {
        version: parse_version(&snap.version),
        version_string: snap.version,
        virtualization: snap.virtualization,
    };
    let found_root = found_kubelet.as_ref().map(|k| k.root.as_path());
    let (host, mut buf) = observe_host(cfg, found_root, &systemd.virtualization, Vec::new())?;
    let mut units = Vec::with_capacity(runtimes.len());
    for ((name, found_by), props) in runtimes.iter().zip(snap.units) {
        let (mut u, b) = observe_unit(cfg, Path::new("/"), name, props, &host, buf);
        u.found_by = found_by.clone();
        buf = b;
        units.push(u);
    }
    if let Some(d) = &discovery {
        containers::set_extra_states(d.containerd_states());
    }
    let (containers, container_errors) = containers_of_node(host.own_namespace);
    let kubelet = match (found_kubelet, kubelet_props) {
        // The kubelet that runs, found by its process: its own namespace is what counts.
        (Some(k), _) => Some(KubeletFacts {
            // In a runtime's unit (k3s, k0s), named apart from that runtime.
            name: match &k.unit {
                Some(u) if units.iter().any(|r| r.name == *u && r.is_runtime()) => format!("kubelet in {u}"),
                Some(u) => u.clone(),
                None => format!("{} (pid {})", k.comm, k.pid),
            },
            runtime: Some(runtime_view(k.pid, &host, buf).0),
            found: Some(k),
        }),
        (None, Some(p)) if p.load_state == "loaded" => Some(KubeletFacts {
            name: cfg.kubelet_unit.clone(),
            runtime: (p.main_pid != 0).then(|| runtime_view(p.main_pid, &host, buf).0),
            found: None,
        }),
        _ => None,
    };
    Ok(Facts {
        scope: Scope::Everything,
        systemd,
        host,
        units,
        kubelet,
        image: None,
        probe: None,
        containers,
        container_errors,
        discovery,
    })
}

/// The host's mounts only, without asking systemd: what a quick fix of a path needs.
pub fn observe_paths(cfg: &Config) -> Result<Facts, ObserveError> {
    let (host, _) = observe_host(cfg, None, "", Vec::new())?;
    Ok(Facts {
        scope: Scope::Paths,
        systemd: SystemdInfo {
            version_string: "not asked".into(),
            version: None,
            virtualization: String::new(),
        },
        host,
        units: Vec::new(),
        kubelet: None,
        image: None,
        probe: None,
        containers: Default::default(),
        container_errors: Vec::new(),
        discovery: None,
    })
}

/// Reads an image tree at `root` the way its systemd will when it boots. Nothing is mounted in
/// a tree, so paths are not judged here; the node's daemon does that at boot.
pub fn observe_image(root: &Path, cfg: &Config) -> Facts {
    let found = crate::node::image::systemd_version(root);
    let systemd = SystemdInfo {
        version: found.as_ref().map(|(v, _)| *v),
        version_string: match &found {
            Some((v, lib)) => format!("{v} (from {})", lib.display()),
            None => format!("unknown (no libsystemd-shared-*.so under {})", root.display()),
        },
        virtualization: String::new(),
    };
    let host = HostFacts {
        own_namespace: None,
        first_mount: None,
        container: None,
        paths: Vec::new(),
        points: Vec::new(),
    };
    let units = cfg
        .units
        .iter()
        .map(|name| {
            let dir = dropin::dir_for(root, name);
            let own = OwnDropIn {
                state: read_own_beneath(root, &dir, &cfg.dropin_name),
                path: dir.join(&cfg.dropin_name),
            };
            let found = crate::node::image::unit(root, name, &own);
            UnitFacts {
                name: name.clone(),
                props: found.props,
                own,
                files: found.files,
                runtime: None,
                found_by: None,
            }
        })
        .collect();
    Facts {
        scope: Scope::Everything,
        systemd,
        host,
        units,
        kubelet: None,
        image: Some(ImageFacts {
            root: root.to_path_buf(),
            service: crate::node::image::service_install(root),
        }),
        probe: None,
        containers: Default::default(),
        container_errors: Vec::new(),
        discovery: None,
    }
}

/// [`read_own`], but walking from `root` without following any symlink on the way.
fn read_own_beneath(root: &Path, dir: &Path, name: &str) -> OwnState {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    match Dir::open_beneath(root, rel, false) {
        Ok(d) => own_state(&d, dir, name),
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => OwnState::Missing,
        Err(e) => OwnState::Refused(e.to_string()),
    }
}

fn observe_host(
    cfg: &Config,
    found_root: Option<&Path>,
    virtualization: &str,
    buf: Vec<u8>,
) -> Result<(HostFacts, Vec<u8>), ObserveError> {
    let own = first_mount("self");
    let own_namespace = match (own, first_mount("1")) {
        (Some(a), Some(b)) => Some(a != b),
        _ => None,
    };
    // If mountprop was started in a namespace of its own, judge the host by PID 1's table.
    let table = if own_namespace == Some(true) {
        Path::new("/proc/1/mountinfo")
    } else {
        Path::new("/proc/self/mountinfo")
    };
    let point_paths = points_of(cfg, found_root);
    let wanted: Vec<&Path> = cfg
        .paths
        .iter()
        .map(|r| r.path.as_path())
        .chain(point_paths.iter().map(PathBuf::as_path))
        .collect();
    // statmount answers for this process's namespace, at a cost that does not grow with the
    // table; mountinfo is the fallback (older kernels, seccomp, or another namespace's table).
    let fast = (own_namespace == Some(false) && statmount::available())
        .then(|| {
            wanted
                .iter()
                .map(|p| statmount::describe(p).map(Some))
                .collect::<Result<Vec<_>, _>>()
                .ok()
        })
        .flatten();
    let (mut found, first, buf) = match fast {
        Some(found) => (found, own, buf),
        None => {
            let info = MountInfo::read_path(table, buf)?;
            let first = info.iter().next().and_then(Result::ok).map(|m| m.id);
            // statx follows symlinks itself; mountinfo is lexical, so resolve them first.
            let resolved: Vec<PathBuf> = wanted.iter().map(|p| mountinfo::looked_up(p)).collect();
            let refs: Vec<&Path> = resolved.iter().map(PathBuf::as_path).collect();
            let found = info
                .governing_many(&refs)?
                .iter()
                .map(|m| m.as_ref().map(MountSummary::from))
                .collect();
            (found, first, info.into_buffer())
        }
    };
    let no_mount = |path: &Path| ObserveError::NoMount {
        path: path.to_path_buf(),
        table: table.to_path_buf(),
    };
    let at_points = found.split_off(cfg.paths.len());
    let mut points = Vec::with_capacity(at_points.len());
    for (path, m) in point_paths.iter().zip(at_points) {
        points.push(Point {
            exists: path.is_dir(),
            path: path.clone(),
            mount: m.ok_or_else(|| no_mount(path))?,
        });
    }
    let mut out = Vec::with_capacity(found.len());
    for (rule, m) in cfg.paths.iter().zip(found) {
        out.push(PathFacts {
            rule: rule.clone(),
            mount: m.ok_or_else(|| no_mount(&rule.path))?,
        });
    }
    let container = container_kind(virtualization);
    let host = HostFacts {
        own_namespace,
        first_mount: first,
        container,
        paths: out,
        points,
    };
    Ok((host, buf))
}

/// The containers of the node, observed. The host's table is the one the host's facts came from.
/// Here rather than in `containers`, which the tracker builds on.
fn containers_of_node(own_namespace: Option<bool>) -> (Arc<Vec<ContainerFacts>>, Vec<String>) {
    // The daemon tracks containers as they come and go; one-shot commands read them all.
    if let Some(t) = tracker::lock().as_mut() {
        return t.observe(own_namespace);
    }
    // In a namespace of its own (NPD's container with hostPID), the host's files through PID 1.
    let root = if own_namespace == Some(true) {
        Path::new("/proc/1/root")
    } else {
        Path::new("/")
    };
    let (found, errors) = containers::discover(root);
    let table = if own_namespace == Some(true) {
        Path::new("/proc/1/mountinfo")
    } else {
        Path::new("/proc/self/mountinfo")
    };
    let fast = own_namespace == Some(false) && statmount::available();
    (Arc::new(containers::observe(found, table, fast)), errors)
}

/// systemd's `Virtualization` names VMs and containers alike; only containers matter here.
fn container_kind(virtualization: &str) -> Option<String> {
    const CONTAINERS: &[&str] = &[
        "openvz",
        "lxc",
        "lxc-libvirt",
        "systemd-nspawn",
        "docker",
        "podman",
        "rkt",
        "wsl",
        "proot",
        "pouch",
        "container-other",
    ];
    if CONTAINERS.contains(&virtualization) {
        return Some(virtualization.to_string());
    }
    if virtualization.is_empty() {
        // Older systemd may not say; its own marker file does.
        let marker = std::fs::read_to_string("/run/systemd/container").ok()?;
        let m = marker.trim();
        return (!m.is_empty()).then(|| m.to_string());
    }
    None
}

fn observe_unit(
    cfg: &Config,
    root: &Path,
    name: &str,
    props: UnitProps,
    host: &HostFacts,
    buf: Vec<u8>,
) -> (UnitFacts, Vec<u8>) {
    let dir = dropin::dir_for(root, name);
    let own_path = dir.join(&cfg.dropin_name);
    let own = OwnDropIn {
        state: read_own(&dir, &cfg.dropin_name),
        path: own_path.clone(),
    };
    let files = if props.load_state == "loaded" {
        unit_files(root, name, &props, &own)
    } else {
        Vec::new()
    };
    let (runtime, buf) = if props.main_pid != 0 {
        let (v, b) = runtime_view(props.main_pid, host, buf);
        (Some(v), b)
    } else {
        (None, buf)
    };
    (
        UnitFacts {
            name: name.to_string(),
            props,
            own,
            files,
            runtime,
            found_by: None,
        },
        buf,
    )
}

fn read_own(dir: &Path, name: &str) -> OwnState {
    match Dir::open(dir, None) {
        Ok(d) => own_state(&d, dir, name),
        Err(FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => OwnState::Missing,
        Err(e) => OwnState::Refused(e.to_string()),
    }
}

fn own_state(d: &Dir, dir: &Path, name: &str) -> OwnState {
    match d.read(name) {
        Ok(Entry::Missing) => OwnState::Missing,
        Ok(Entry::File(bytes)) if dropin::is_ours(&bytes) => {
            OwnState::Ours(String::from_utf8_lossy(&bytes).into_owned())
        }
        Ok(Entry::File(_)) => OwnState::Foreign,
        Ok(Entry::Symlink) => OwnState::Refused(format!(
            "{} is a symlink; refusing to follow it",
            dir.join(name).display()
        )),
        Ok(Entry::Other) => OwnState::Refused(format!("{} is not a regular file", dir.join(name).display())),
        Err(e) => OwnState::Refused(e.to_string()),
    }
}

/// The fragment and every drop-in systemd will apply after a reload, in its order: what it has
/// loaded now, what sits on disk in the unit's drop-in directories, and mountprop's own file.
fn unit_files(root: &Path, name: &str, props: &UnitProps, own: &OwnDropIn) -> Vec<UnitFile> {
    let mut dropins: Vec<PathBuf> = props.dropin_paths.clone();
    dropins.push(own.path.clone());
    let dirs = unitfile::dropin_dirs(root, name);
    for dir in &dirs {
        let Ok(rd) = std::fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "conf") {
                dropins.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(f) = &props.fragment_path {
        out.push(UnitFile::from_read(f, std::fs::read(f), true, false));
    }
    for p in unitfile::order_dropins(&dirs, dropins) {
        let is_own = p == own.path;
        let loaded = props.dropin_paths.contains(&p);
        if is_own && own.state == OwnState::Missing {
            out.push(UnitFile::own_missing(p, loaded));
            continue;
        }
        out.push(UnitFile::from_read(&p, std::fs::read(&p), loaded, is_own));
    }
    out
}

fn runtime_view(pid: u32, host: &HostFacts, buf: Vec<u8>) -> (RuntimeView, Vec<u8>) {
    let mut view = RuntimeView {
        pid,
        same_ns_as_host: false,
        paths: Vec::new(),
        points: Vec::new(),
        error: None,
        first_mount: None,
    };
    if let Err(exe) = handover::wait(pid) {
        view.error = Some(format!(
            "systemd has not yet handed it over to its command (it still runs {exe}, so its namespace is not set up yet); look again in a moment"
        ));
        return (view, buf);
    }
    let first = first_mount(&pid.to_string());
    view.first_mount = first;
    let same = first.is_some() && first == host.first_mount;
    view.same_ns_as_host = same;
    if same {
        view.paths = host.paths.iter().map(|p| Some(p.mount.clone())).collect();
        view.points = host.points.iter().map(|p| Some(p.mount.clone())).collect();
        return (view, buf);
    }
    let table = PathBuf::from(format!("/proc/{pid}/mountinfo"));
    let info = match MountInfo::read_path(&table, buf) {
        Ok(i) => i,
        Err(e) => {
            view.error = Some(e.to_string());
            return (view, Vec::new());
        }
    };
    let wanted: Vec<PathBuf> = host
        .paths
        .iter()
        .map(|p| p.rule.path.as_path())
        .chain(host.points.iter().map(|p| p.path.as_path()))
        .map(mountinfo::looked_up)
        .collect();
    let wanted: Vec<&Path> = wanted.iter().map(PathBuf::as_path).collect();
    match info.governing_many(&wanted) {
        Ok(found) => {
            let mut all: Vec<Option<MountSummary>> = found.iter().map(|m| m.as_ref().map(MountSummary::from)).collect();
            view.points = all.split_off(host.paths.len());
            view.paths = all;
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    (view, info.into_buffer())
}

/// A MainPID that systemd has forked but not yet handed over to the unit's command. Up to
/// systemd 254 the child is a copy of PID 1 until it execs the command; from 255 on PID 1
/// spawns `systemd-executor`, which sets the namespace up and then execs the command. In that
/// window the process still sits in PID 1's mount namespace, which says nothing about the
/// namespace the command will get, so it must not be judged.
mod handover {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, Instant};

    /// Long enough for systemd's setup (0.3 s seen on 257), short enough for a check.
    const WAIT: Duration = Duration::from_secs(2);

    /// Whether an executable (the target of `/proc/<pid>/exe`) is systemd's own, not yet the
    /// unit's command: the very file PID 1 runs, or its executor.
    pub(super) fn in_systemd_setup(exe: &str, same_file_as_pid1: bool) -> bool {
        // A binary replaced by an upgrade reads "<path> (deleted)".
        let path = exe.strip_suffix(" (deleted)").unwrap_or(exe);
        same_file_as_pid1 || path.rsplit('/').next() == Some("systemd-executor")
    }

    /// The same from `argv[0]` (`/proc/<pid>/cmdline`), for when `/proc/<pid>/exe` may not be
    /// read (the shipped unit has no CAP_SYS_PTRACE, and the runtime more capabilities than
    /// mountprop): PID 1's own `argv[0]` (a fork not yet exec'd), the executor's path, or the
    /// "(command)" name systemd gives its child while it sets it up.
    pub(super) fn in_systemd_setup_by_argv0(argv0: &str, pid1_argv0: &str) -> bool {
        argv0 == pid1_argv0
            || in_systemd_setup(argv0, false)
            || (argv0.len() > 2 && argv0.starts_with('(') && argv0.ends_with(')'))
    }

    fn argv0(pid: &str) -> Option<String> {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let first = raw.split(|&b| b == 0).next()?;
        Some(String::from_utf8_lossy(first).into_owned())
    }

    /// `Some(exe)` while `pid` is still in systemd's setup; `None` once it runs its command,
    /// or when that cannot be told (gone: the rest of the look says so).
    fn still_in_setup(pid: u32) -> Option<String> {
        let link = format!("/proc/{pid}/exe");
        let Ok(exe) = std::fs::read_link(&link) else {
            let a = argv0(&pid.to_string())?;
            return in_systemd_setup_by_argv0(&a, &argv0("1")?).then_some(a);
        };
        let exe = exe.to_string_lossy().into_owned();
        // The same inode as PID 1's executable, even when that file was replaced since.
        let ino = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let same = match (ino(&link), ino("/proc/1/exe")) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        in_systemd_setup(&exe, same).then_some(exe)
    }

    /// Waits (bounded) until `pid` runs its command; `Err(exe)` if it still does not.
    pub(super) fn wait(pid: u32) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match still_in_setup(pid) {
                None => return Ok(()),
                Some(exe) if Instant::now() >= deadline => return Err(exe),
                Some(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn systemd_setup_is_pid1s_binary_or_the_executor() {
            assert!(in_systemd_setup("/usr/lib/systemd/systemd", true));
            assert!(in_systemd_setup("/usr/lib/systemd/systemd-executor", false));
            assert!(in_systemd_setup("/usr/lib/systemd/systemd-executor (deleted)", false));
            assert!(in_systemd_setup("/lib/systemd/systemd (deleted)", true));
            assert!(!in_systemd_setup("/usr/bin/dockerd", false));
            assert!(!in_systemd_setup("/usr/bin/sleep", false));
            // A name that only looks alike is a command.
            assert!(!in_systemd_setup("/opt/systemd-executor-wrapper", false));
            assert!(!in_systemd_setup("/usr/lib/systemd/systemd", false));
        }

        #[test]
        fn without_exe_argv0_tells() {
            let pid1 = "/lib/systemd/systemd";
            assert!(in_systemd_setup_by_argv0("/lib/systemd/systemd", pid1));
            assert!(in_systemd_setup_by_argv0("/usr/lib/systemd/systemd-executor", pid1));
            assert!(in_systemd_setup_by_argv0("(dockerd)", pid1));
            assert!(!in_systemd_setup_by_argv0("/usr/bin/dockerd", pid1));
            assert!(!in_systemd_setup_by_argv0("containerd", pid1));
            assert!(!in_systemd_setup_by_argv0("()", pid1));
        }

        #[test]
        fn this_process_is_handed_over_at_once() {
            let me = std::process::id();
            assert_eq!(still_in_setup(me), None);
            let t = Instant::now();
            assert_eq!(wait(me), Ok(()));
            assert!(t.elapsed() < WAIT);
        }
    }
}
