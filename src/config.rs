//! `/etc/mountprop/config.toml`: every key optional, defaults that work with no file at all.
//! Anything wrong is reported as `file:line:col: what`, and nothing else happens.

use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub const DEFAULT_PATH: &str = "/etc/mountprop/config.toml";
pub const DEFAULT_DROPIN_NAME: &str = "90-mountprop.conf";
pub const DEFAULT_UNITS: &[&str] = &["docker.service", "containerd.service", "crio.service"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: refusing a config that others can change: {why}; fix: {fix}")]
    Unsafe { path: PathBuf, why: String, fix: String },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
}

/// The config says which mounts mountprop changes and which files it writes, as root: only root
/// (or the user running mountprop, who can do no more with it than they already can) may be
/// able to change it. Checked on the opened file, so a symlink is judged by what it leads to.
fn check_owner(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // /dev/null reads as empty whoever writes to it: `--config /dev/null` means the defaults.
    if meta.file_type().is_char_device() && meta.rdev() == nix::sys::stat::makedev(1, 3) {
        return Ok(());
    }
    let me = nix::unistd::geteuid().as_raw();
    let unsafe_ = |why: String, fix: String| ConfigError::Unsafe {
        path: path.to_path_buf(),
        why,
        fix,
    };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(unsafe_(
            format!("it is owned by uid {}, not root", meta.uid()),
            format!("chown root: {}", path.display()),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_(
            format!("it is writable by group or others (mode {:04o})", meta.mode() & 0o7777),
            format!("chmod go-w {}", path.display()),
        ));
    }
    Ok(())
}

/// What mountprop writes as `MountFlags=` in its drop-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MountFlagsMode {
    /// `shared`, except the empty reset on systemd 239-241, where `shared` makes the
    /// unit's namespace a one-way slave.
    #[default]
    Auto,
    Shared,
    /// The empty `MountFlags=`.
    Reset,
    /// For nodes that only need HostToContainer.
    Slave,
}

/// Whether mountprop may restart a running runtime so the drop-in takes effect now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// A restart can kill running containers: report "restart pending" instead.
    #[default]
    Never,
    Always,
}

/// Whether the daemon keeps Node Feature Discovery's feature file (node labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NodeLabels {
    /// Only where NFD's features.d directory exists: a node without NFD gets no stray file.
    #[default]
    Auto,
    /// Creating the directory if need be.
    On,
    Off,
}

/// The propagation a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Needed {
    /// A member of a peer group: Bidirectional mounts work.
    #[default]
    Shared,
    /// For HostToContainer-only paths. A slave-only mount passes nothing on (what the kubelet
    /// or the host mounts there reaches no container), so this too needs the mount shared;
    /// shared and a slave of an outer namespace is fine.
    Slave,
}

impl fmt::Display for Needed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shared => "shared",
            Self::Slave => "shared (HostToContainer only)",
        })
    }
}

/// A Kubernetes `mountPropagation` mode: written in reports as Kubernetes spells it, read
/// from the config in that spelling or in kebab-case like the other values there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum KubeMode {
    #[serde(alias = "none")]
    None,
    #[serde(alias = "host-to-container")]
    HostToContainer,
    #[serde(alias = "bidirectional")]
    Bidirectional,
}

impl fmt::Display for KubeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::HostToContainer => "HostToContainer",
            Self::Bidirectional => "Bidirectional",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathRule {
    pub path: PathBuf,
    pub propagation: Needed,
    /// Whether mountprop may fix this path with mount(2).
    pub remediate: bool,
}

/// How `mountprop daemon` keeps the node fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonConfig {
    /// Full check (and fix) at least this often.
    pub interval: Duration,
    /// How often the propagation of the configured paths is re-read (statmount: microseconds
    /// each; with only mountinfo to read, at least every 2 s).
    pub probe_interval: Duration,
    /// Events within this window are handled by one check.
    pub debounce: Duration,
    /// At most this many fixes of one thing within `fix_window`; past that, report instead.
    pub max_fixes: u32,
    pub fix_window: Duration,
    /// Prometheus textfile for node_exporter's textfile collector; none when unset.
    pub metrics_file: Option<PathBuf>,
    /// Run the live propagation probe (`mountprop probe`) on every full check.
    pub live_probe: bool,
    /// Each tracked container's own mount table is read again at least this often (the
    /// safety net under the events that keep them current).
    pub rejudge: Duration,
    /// Node labels through Node Feature Discovery's local source.
    pub node_labels: NodeLabels,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            probe_interval: Duration::from_millis(80),
            debounce: Duration::from_millis(100),
            max_fixes: 3,
            fix_window: Duration::from_secs(600),
            metrics_file: None,
            live_probe: false,
            rejudge: Duration::from_secs(3600),
            node_labels: NodeLabels::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The file this came from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    /// Where a config was looked for (named in messages when there was none).
    pub looked_at: PathBuf,
    pub units: Vec<String>,
    pub mount_flags: MountFlagsMode,
    pub dropin_name: String,
    pub restart: RestartPolicy,
    pub restart_timeout: Duration,
    pub remediate_paths: bool,
    pub paths: Vec<PathRule>,
    /// Where the kubelet keeps pod volumes; the modes are judged there and at `/`.
    pub kubelet_root: PathBuf,
    /// The kubelet's unit: its own mount namespace counts too when it runs.
    pub kubelet_unit: String,
    /// The mountPropagation mode this node must support; less is drift.
    pub required_mode: KubeMode,
    /// Let mountprop's drop-in undo a runtime's settings that give it a mount namespace of its
    /// own (PrivateTmp=, ProtectSystem=, ...). Off by default: it loosens the runtime's sandbox.
    pub reset_namespacing: bool,
    /// Find the runtimes and the kubelet from what runs (CRI sockets, their servers' units, the
    /// kubelet's process and root), in addition to `units` and `kubelet_root`.
    pub discover: bool,
    pub daemon: DaemonConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: None,
            looked_at: PathBuf::from(DEFAULT_PATH),
            units: DEFAULT_UNITS.iter().map(|s| s.to_string()).collect(),
            mount_flags: MountFlagsMode::Auto,
            dropin_name: DEFAULT_DROPIN_NAME.to_string(),
            restart: RestartPolicy::Never,
            restart_timeout: Duration::from_secs(90),
            remediate_paths: true,
            paths: vec![PathRule {
                path: PathBuf::from("/"),
                propagation: Needed::Shared,
                remediate: true,
            }],
            kubelet_root: PathBuf::from("/var/lib/kubelet"),
            kubelet_unit: "kubelet.service".into(),
            required_mode: KubeMode::Bidirectional,
            reset_namespacing: false,
            discover: true,
            daemon: DaemonConfig::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    units: Option<Spanned<Vec<Spanned<String>>>>,
    mount_flags: Option<MountFlagsMode>,
    dropin_name: Option<Spanned<String>>,
    restart: Option<RestartPolicy>,
    restart_timeout_secs: Option<Spanned<u64>>,
    remediate_paths: Option<bool>,
    paths: Option<Vec<RawPath>>,
    kubelet_root: Option<Spanned<String>>,
    kubelet_unit: Option<Spanned<String>>,
    required_mode: Option<KubeMode>,
    reset_namespacing: Option<bool>,
    discover: Option<bool>,
    daemon: Option<RawDaemon>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    interval_secs: Option<Spanned<u64>>,
    probe_interval_ms: Option<Spanned<u64>>,
    debounce_ms: Option<Spanned<u64>>,
    max_fixes: Option<Spanned<u32>>,
    fix_window_secs: Option<Spanned<u64>>,
    metrics_file: Option<Spanned<String>>,
    live_probe: Option<bool>,
    rejudge_secs: Option<Spanned<u64>>,
    node_labels: Option<NodeLabels>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    path: Spanned<String>,
    propagation: Option<Needed>,
    remediate: Option<bool>,
}

impl Config {
    /// Loads `path`; a missing file at the default location means defaults, a missing file
    /// that was asked for by name is an error.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p, true),
            None => (Path::new(DEFAULT_PATH), false),
        };
        let read = std::fs::File::open(path).and_then(|mut f| {
            let meta = f.metadata()?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes)?;
            Ok((meta, bytes))
        });
        match read {
            Ok((meta, bytes)) => {
                check_owner(path, &meta)?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    let (line, col) = line_col_bytes(e.as_bytes(), e.utf8_error().valid_up_to());
                    ConfigError::Invalid {
                        path: path.to_path_buf(),
                        line,
                        col,
                        message: "not valid UTF-8".into(),
                    }
                })?;
                Self::parse(&text, path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses and validates TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let err = |span: Option<Range<usize>>, message: String| {
            let (line, col) = span.map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Invalid {
                path: origin.to_path_buf(),
                line,
                col,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.span(), e.message().trim().to_string()))?;
        let mut cfg = Config {
            source: Some(origin.to_path_buf()),
            looked_at: origin.to_path_buf(),
            ..Config::default()
        };
        if let Some(units) = raw.units {
            let span = units.span();
            let units = units.into_inner();
            if units.is_empty() {
                return Err(err(Some(span), "units: list is empty; name at least one unit".into()));
            }
            let mut seen = Vec::new();
            for u in units {
                let span = u.span();
                let name = u.into_inner();
                if let Err(why) = check_unit_name(&name) {
                    return Err(err(Some(span), format!("units: {name:?} {why}")));
                }
                if seen.contains(&name) {
                    return Err(err(Some(span), format!("units: {name:?} is listed twice")));
                }
                seen.push(name);
            }
            cfg.units = seen;
        }
        if let Some(m) = raw.mount_flags {
            cfg.mount_flags = m;
        }
        if let Some(name) = raw.dropin_name {
            let span = name.span();
            let name = name.into_inner();
            if let Err(why) = check_dropin_name(&name) {
                return Err(err(Some(span), format!("dropin_name: {name:?} {why}")));
            }
            cfg.dropin_name = name;
        }
        if let Some(r) = raw.restart {
            cfg.restart = r;
        }
        if let Some(t) = raw.restart_timeout_secs {
            let span = t.span();
            let secs = t.into_inner();
            if !(1..=3600).contains(&secs) {
                return Err(err(
                    Some(span),
                    format!("restart_timeout_secs: {secs} is outside 1..=3600"),
                ));
            }
            cfg.restart_timeout = Duration::from_secs(secs);
        }
        if let Some(r) = raw.remediate_paths {
            cfg.remediate_paths = r;
        }
        if let Some(d) = raw.discover {
            cfg.discover = d;
        }
        if let Some(r) = raw.reset_namespacing {
            cfg.reset_namespacing = r;
        }
        let default_remediate = cfg.remediate_paths;
        match raw.paths {
            Some(paths) => {
                let mut out: Vec<PathRule> = Vec::new();
                for p in paths {
                    let span = p.path.span();
                    let s = p.path.into_inner();
                    if let Err(why) = check_path(&s) {
                        return Err(err(Some(span), format!("paths: {s:?} {why}")));
                    }
                    if out.iter().any(|o| o.path == Path::new(&s)) {
                        return Err(err(Some(span), format!("paths: {s:?} is listed twice")));
                    }
                    out.push(PathRule {
                        path: PathBuf::from(s),
                        propagation: p.propagation.unwrap_or_default(),
                        remediate: p.remediate.unwrap_or(default_remediate),
                    });
                }
                cfg.paths = out;
            }
            None => {
                for p in &mut cfg.paths {
                    p.remediate = default_remediate;
                }
            }
        }
        if let Some(p) = raw.kubelet_root {
            let span = p.span();
            let p = p.into_inner();
            if let Err(why) = check_path(&p) {
                return Err(err(Some(span), format!("kubelet_root: {p:?} {why}")));
            }
            cfg.kubelet_root = PathBuf::from(p);
        }
        if let Some(u) = raw.kubelet_unit {
            let span = u.span();
            let u = u.into_inner();
            if let Err(why) = check_unit_name(&u) {
                return Err(err(Some(span), format!("kubelet_unit: {u:?} {why}")));
            }
            cfg.kubelet_unit = u;
        }
        // A HostToContainer-only node (mount_flags = "slave") needs no more than that, unless
        // the config says otherwise.
        cfg.required_mode = match (raw.required_mode, cfg.mount_flags) {
            (Some(m), _) => m,
            (None, MountFlagsMode::Slave) => KubeMode::HostToContainer,
            (None, _) => KubeMode::Bidirectional,
        };
        if let Some(d) = raw.daemon {
            let range = |v: Option<Spanned<u64>>, key: &str, lo: u64, hi: u64| -> Result<Option<u64>, ConfigError> {
                match v {
                    None => Ok(None),
                    Some(v) if (lo..=hi).contains(v.get_ref()) => Ok(Some(v.into_inner())),
                    Some(v) => Err(err(
                        Some(v.span()),
                        format!("daemon.{key}: {} is outside {lo}..={hi}", v.get_ref()),
                    )),
                }
            };
            if let Some(v) = range(d.interval_secs, "interval_secs", 1, 86_400)? {
                cfg.daemon.interval = Duration::from_secs(v);
            }
            if let Some(v) = range(d.probe_interval_ms, "probe_interval_ms", 10, 600_000)? {
                cfg.daemon.probe_interval = Duration::from_millis(v);
            }
            if let Some(v) = range(d.debounce_ms, "debounce_ms", 0, 60_000)? {
                cfg.daemon.debounce = Duration::from_millis(v);
            }
            if let Some(v) = range(
                d.max_fixes.map(|v| Spanned::new(v.span(), u64::from(v.into_inner()))),
                "max_fixes",
                1,
                1000,
            )? {
                cfg.daemon.max_fixes = v as u32;
            }
            if let Some(v) = range(d.fix_window_secs, "fix_window_secs", 1, 86_400)? {
                cfg.daemon.fix_window = Duration::from_secs(v);
            }
            if let Some(f) = d.metrics_file {
                let span = f.span();
                let f = f.into_inner();
                if let Err(why) = check_path(&f) {
                    return Err(err(Some(span), format!("daemon.metrics_file: {f:?} {why}")));
                }
                if !f.ends_with(".prom") {
                    return Err(err(
                        Some(span),
                        format!("daemon.metrics_file: {f:?} must end in .prom (node_exporter reads only those)"),
                    ));
                }
                cfg.daemon.metrics_file = Some(PathBuf::from(f));
            }
            if let Some(p) = d.live_probe {
                cfg.daemon.live_probe = p;
            }
            if let Some(v) = range(d.rejudge_secs, "rejudge_secs", 60, 7 * 86_400)? {
                cfg.daemon.rejudge = Duration::from_secs(v);
            }
            if let Some(l) = d.node_labels {
                cfg.daemon.node_labels = l;
            }
        }
        Ok(cfg)
    }

    /// Where this config came from, for messages.
    pub fn origin(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => format!("built-in defaults ({} absent)", self.looked_at.display()),
        }
    }
}

fn check_unit_name(name: &str) -> Result<(), &'static str> {
    let Some(stem) = name.strip_suffix(".service") else {
        return Err("is not a .service unit");
    };
    if stem.is_empty() || name.len() > 255 {
        return Err("is not a valid unit name");
    }
    if stem.ends_with('@') {
        return Err("is a template; name an instance such as foo@bar.service");
    }
    let ok = stem
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'-' | b'\\' | b'@'));
    if !ok || stem.matches('@').count() > 1 {
        return Err("has characters systemd does not allow in unit names");
    }
    Ok(())
}

fn check_dropin_name(name: &str) -> Result<(), &'static str> {
    if !name.ends_with(".conf") || name.len() <= ".conf".len() {
        return Err("must end in .conf, or systemd ignores it");
    }
    if name.starts_with('.') {
        return Err("must not start with a dot");
    }
    if name.len() > 255
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("may only hold letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn check_path(s: &str) -> Result<(), &'static str> {
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err("is not absolute");
    }
    if s.contains('\0') {
        return Err("contains a NUL byte");
    }
    let normal = p
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let rebuilt: PathBuf = p.components().collect();
    if !normal || rebuilt.as_os_str() != p.as_os_str() {
        return Err("is not normalized (no '.', '..', '//' or trailing '/')");
    }
    Ok(())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    line_col_bytes(text.as_bytes(), offset)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col_bytes(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

/// What `mountprop config default` prints: every key, commented out, at its default.
pub const DEFAULT_TOML: &str = r#"# mountprop configuration (/etc/mountprop/config.toml).
# Every key is optional; the commented values below are the defaults.
# Check a change with: mountprop config check /etc/mountprop/config.toml

# Container-runtime units to keep in the host's mount propagation. Units that are not
# installed are skipped and reported as such.
#units = ["docker.service", "containerd.service", "crio.service"]

# What mountprop's drop-in sets: "auto" writes MountFlags=shared, except on systemd 239-241
# where it writes the empty reset "MountFlags=" (there, shared makes a one-way slave
# namespace). "shared", "reset" and "slave" force a value; "slave" is for nodes that only
# need HostToContainer.
#mount_flags = "auto"

# File name of mountprop's drop-in in /etc/systemd/system/<unit>.d/. It should sort late.
#dropin_name = "90-mountprop.conf"

# "never": a running runtime keeps running and is reported as "restart pending" (on
# systemd >= 248 it is also marked, so `systemctl reload-or-restart --marked` applies it).
# "always": restart running runtimes so the fix takes effect now. A restart can stop
# running containers; use it where that is safe (e.g. Docker with live-restore).
#restart = "never"

# How long to wait for a runtime's restart job to finish.
#restart_timeout_secs = 90

# A runtime unit with settings that give it a mount namespace of its own (PrivateTmp=,
# ProtectSystem=, ReadOnlyPaths=, BindPaths=, ... as systemd.exec(5) lists them) receives the
# host's mounts but sends none back, so Bidirectional volumes cannot work, whatever MountFlags
# says. mountprop names such a setting and its file:line. With true, mountprop's drop-in also
# resets each one it finds (PrivateTmp=no, ReadOnlyPaths=, ...). Off by default: that loosens
# the runtime's sandboxing.
#reset_namespacing = false

# Whether mountprop may fix a path that lacks the propagation it needs, with
# mount --make-rshared on the mount that holds it. Each [[paths]] entry can override this.
#remediate_paths = true

# Where the kubelet keeps pod volumes. The Kubernetes mountPropagation modes (None,
# HostToContainer, Bidirectional) are judged there and at /.
#kubelet_root = "/var/lib/kubelet"

# The kubelet's unit: when it runs in a mount namespace of its own, that counts too.
#kubelet_unit = "kubelet.service"

# Find the runtimes and the kubelet from what runs, in addition to `units` and
# `kubelet_root`: the CRI sockets (the distributions' well-known paths and the running
# kubelet's endpoint), the unit of the process serving each, the running kubelet (or k3s or
# kubelite embedding it) and its --root-dir. Each unit found is judged and fixed like one in
# `units`; the modes are judged at the root the kubelet really uses too. false: only the
# config counts.
#discover = true

# The mode this node must support; a node that supports less is reported as drift. The default
# is "bidirectional", or "host-to-container" when mount_flags = "slave".
#required_mode = "bidirectional"

# Paths to verify, with the propagation each needs: "shared" (Bidirectional works) or
# "slave" (HostToContainer only). Both need the mount shared (shared and a slave of an outer
# namespace is fine): a slave-only mount passes nothing on, so what the kubelet or the host
# mounts there reaches no container. Listing any [[paths]] replaces the default list.
#[[paths]]
#path = "/"
#propagation = "shared"
#remediate = true

# `mountprop daemon` (the mountprop.service):
#[daemon]
# Full check, and fix, at least this often; events (mount table, systemd, drop-in files)
# trigger one sooner.
#interval_secs = 60
# How often the propagation of the paths above is re-read, to catch e.g. a
# `mount --make-private /`, which no event announces: one statmount(2) a path (Linux >= 6.8);
# with only /proc/self/mountinfo to read, at most every 2 s. At 80 ms such a change is undone
# within 90 ms (p99 measured: 81 ms). Each wake-up costs the machine's timer overhead, so an
# idle daemon uses about 0.1 % of a core on a small VM at 80 ms, about 0.035 % at 250 ms.
#probe_interval_ms = 80
# Events within this window are handled by one check.
#debounce_ms = 100
# Something that keeps undoing a fix: after max_fixes fixes of one thing within
# fix_window_secs, mountprop stops fixing it, says so, and keeps checking.
#max_fixes = 3
#fix_window_secs = 600
# Prometheus textfile for node_exporter's textfile collector; off unless set, for example
# to metrics_file = "/var/lib/prometheus/node-exporter/mountprop.prom".
#
# Run the live propagation probe (mountprop probe: a tiny tmpfs mounted and looked for on
# each side) on every full check. The shipped unit's hardening does not allow it: add the
# drop-in /usr/share/doc/mountprop/live-probe.conf (see docs/modes.md).
#live_probe = false
# Running containers are tracked as they come and go (the runtimes' task directories, each
# container's pidfd) and judged again when the host's mount at one of their volume sources
# changes, so a quiet round reads no container's table. As a safety net, each container's
# own mount table is read again this often anyway, spread over time, never all at once.
#rejudge_secs = 3600
# Node labels for the scheduler: the daemon keeps Node Feature Discovery's feature file
# /etc/kubernetes/node-feature-discovery/features.d/mountprop (labels
# feature.node.kubernetes.io/mountprop.bidirectional=true and the like, with an expiry a few
# intervals ahead, so a dead daemon's labels lapse). "auto": only where that directory exists;
# "on": create it if need be; "off": never.
#node_labels = "auto"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/mountprop/config.toml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(Config { source: None, ..c }, Config::default());
    }

    #[test]
    fn the_printed_default_config_means_the_defaults() {
        let c = parse(DEFAULT_TOML).unwrap();
        assert_eq!(Config { source: None, ..c }, Config::default());
        // Uncommenting every key must give the same thing, so the comments tell the truth.
        let uncommented: String = DEFAULT_TOML
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(uncommented.contains("\nunits = ["), "{uncommented}");
        let c = parse(&uncommented).unwrap();
        assert_eq!(Config { source: None, ..c }, Config::default());
    }

    #[test]
    fn all_keys() {
        let c = parse(
            r#"
units = ["docker.service", "kubelet.service"]
mount_flags = "reset"
dropin_name = "99-zz.conf"
restart = "always"
restart_timeout_secs = 30
remediate_paths = false
[[paths]]
path = "/"
[[paths]]
path = "/var/lib/kubelet"
propagation = "slave"
remediate = true
"#,
        )
        .unwrap();
        assert_eq!(c.units, ["docker.service", "kubelet.service"]);
        assert_eq!(c.mount_flags, MountFlagsMode::Reset);
        assert_eq!(c.dropin_name, "99-zz.conf");
        assert_eq!(c.restart, RestartPolicy::Always);
        assert_eq!(c.restart_timeout, Duration::from_secs(30));
        assert_eq!(c.paths.len(), 2);
        assert_eq!((c.paths[0].propagation, c.paths[0].remediate), (Needed::Shared, false));
        assert_eq!((c.paths[1].propagation, c.paths[1].remediate), (Needed::Slave, true));
        assert_eq!(c.daemon, DaemonConfig::default());
    }

    #[test]
    fn kubernetes_keys() {
        let c = parse(
            "kubelet_root = \"/srv/kubelet\"\nkubelet_unit = \"k3s.service\"\nrequired_mode = \"host-to-container\"\n",
        )
        .unwrap();
        assert_eq!(c.kubelet_root, Path::new("/srv/kubelet"));
        assert_eq!(c.kubelet_unit, "k3s.service");
        assert!(c.discover, "discovery is on unless turned off");
        let off = parse("discover = false\n");
        assert!(!off.unwrap().discover);
        assert_eq!(c.required_mode, KubeMode::HostToContainer);
        assert_eq!(
            parse("required_mode = \"HostToContainer\"\n").unwrap().required_mode,
            KubeMode::HostToContainer
        );
        assert_eq!(
            parse("mount_flags = \"slave\"\n").unwrap().required_mode,
            KubeMode::HostToContainer
        );
        assert_eq!(parse("").unwrap().required_mode, KubeMode::Bidirectional);
        assert!(err("required_mode = \"both\"\n").contains("unknown variant `both`"));
        assert!(err("kubelet_root = \"kubelet\"\n").contains("kubelet_root: \"kubelet\" is not absolute"));
    }

    #[test]
    fn daemon_keys() {
        let c = parse("[daemon]\ninterval_secs = 5\nprobe_interval_ms = 50\ndebounce_ms = 0\nmax_fixes = 2\nfix_window_secs = 60\nmetrics_file = \"/var/lib/x/mountprop.prom\"\n").unwrap();
        assert_eq!(c.daemon.interval, Duration::from_secs(5));
        assert_eq!(c.daemon.probe_interval, Duration::from_millis(50));
        assert_eq!(c.daemon.debounce, Duration::ZERO);
        assert_eq!(c.daemon.max_fixes, 2);
        assert_eq!(c.daemon.fix_window, Duration::from_secs(60));
        assert_eq!(
            c.daemon.metrics_file.as_deref(),
            Some(Path::new("/var/lib/x/mountprop.prom"))
        );
        let e = err("[daemon]\nmax_fixes = 0\n");
        assert!(
            e.starts_with("/etc/mountprop/config.toml:2:13: daemon.max_fixes: 0 is outside 1..=1000"),
            "{e}"
        );
        let e = err("[daemon]\nmetrics_file = \"/tmp/x.txt\"\n");
        assert!(e.contains("must end in .prom"), "{e}");
        let e = err("[daemon]\nintervall_secs = 5\n");
        assert!(e.contains(":2:1: unknown field `intervall_secs`"), "{e}");
    }

    #[test]
    fn remediate_paths_false_applies_to_the_default_path_too() {
        let c = parse("remediate_paths = false\n").unwrap();
        assert!(!c.paths[0].remediate);
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let e = err("units = [\"docker.service\"]\nbogus = 1\n");
        assert!(e.starts_with("/etc/mountprop/config.toml:2:1: "), "{e}");
        assert!(e.contains("bogus"), "{e}");

        let e = err("restart = \"sometimes\"\n");
        assert!(e.starts_with("/etc/mountprop/config.toml:1:11: "), "{e}");
        assert!(e.contains("sometimes"), "{e}");

        let e = err("remediate_paths = \"yes\"\n");
        assert!(e.starts_with("/etc/mountprop/config.toml:1:19: "), "{e}");

        let e = err("units = [\"docker.service\",\n  \"docker.socket\"]\n");
        assert!(
            e.starts_with("/etc/mountprop/config.toml:2:3: units: \"docker.socket\" is not a .service unit"),
            "{e}"
        );

        let e = err("[[paths]]\npath = \"var/lib\"\n");
        assert!(
            e.starts_with("/etc/mountprop/config.toml:2:8: paths: \"var/lib\" is not absolute"),
            "{e}"
        );

        let e = err("units = [\n");
        assert!(e.starts_with("/etc/mountprop/config.toml:"), "{e}");
    }

    #[test]
    fn validation_rejects_what_would_misbehave() {
        for (text, want) in [
            ("units = []", "list is empty"),
            ("units = [\"a.service\", \"a.service\"]", "listed twice"),
            ("units = [\"foo@.service\"]", "template"),
            ("units = [\"a/b.service\"]", "characters"),
            ("units = [\".service\"]", "not a valid unit name"),
            ("dropin_name = \"x.txt\"", "must end in .conf"),
            ("dropin_name = \".hidden.conf\"", "dot"),
            ("dropin_name = \"../x.conf\"", "dot"),
            ("dropin_name = \"a/b.conf\"", "may only hold"),
            ("restart_timeout_secs = 0", "outside"),
            ("mount_flags = \"rshared\"", "rshared"),
            ("[[paths]]\npath = \"/var/lib/\"", "not normalized"),
            ("[[paths]]\npath = \"/var/../etc\"", "not normalized"),
            ("[[paths]]\npath = \"/var//lib\"", "not normalized"),
            ("[[paths]]\npath = \"/x\"\n[[paths]]\npath = \"/x\"", "listed twice"),
            ("[[paths]]\npropagation = \"shared\"", "path"),
            ("[[paths]]\npath = \"/\"\nextra = 1", "extra"),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn missing_default_file_means_defaults_but_missing_named_file_is_an_error() {
        let missing = Path::new("/nonexistent/mountprop.toml");
        assert!(matches!(Config::load(Some(missing)), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn non_utf8_file_is_reported_with_position() {
        let dir = std::env::temp_dir().join(format!("mountprop-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, b"units = [\"a\xff.service\"]\n").unwrap();
        let e = Config::load(Some(&f)).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.ends_with(":1:12: not valid UTF-8"), "{e}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé f", 9), (2, 6));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
