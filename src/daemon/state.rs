//! What the daemon knows, kept in /run/mountprop/state.json for people (`mountprop status`) and
//! tools, and condensed into the one STATUS line that `systemctl status mountprop` shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::KubeMode;
use crate::daemon::ratelimit::Suppressed;
use crate::engine::Checked;
use crate::engine::act::{ActionResult, Outcome};
use crate::engine::containers::Judged;
use crate::engine::modes::ModeVerdict;
use crate::engine::verdict::{Status, Verdict};
use crate::node::atomicfile::{Dir, FileError};

pub const STATE_DIR: &str = "/run/mountprop";
pub const STATE_FILE: &str = "state.json";
/// How many recent remediations the state keeps.
const KEEP: usize = 20;

pub fn state_path() -> PathBuf {
    Path::new(STATE_DIR).join(STATE_FILE)
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bus {
    pub connected: bool,
    /// When it connected or was lost.
    pub since_unix: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    pub unix: u64,
    pub action: String,
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub pid: u32,
    pub running: bool,
    pub started_unix: u64,
    pub config: String,
    pub status: Status,
    pub status_line: String,
    pub checks: u64,
    pub last_check_unix: Option<u64>,
    /// What caused the last check: boot, timer, mount table, drop-in files, systemd, config.
    pub last_trigger: String,
    pub interval_secs: u64,
    pub bus: Bus,
    pub verdicts: Vec<Verdict>,
    pub notes: Vec<String>,
    /// Fixes mountprop holds back because something keeps undoing them.
    pub held_back: Vec<Suppressed>,
    /// Newest last.
    pub remediations: Vec<Remediation>,
    pub remediations_total: u64,
    /// Why the last check could not finish.
    pub error: Option<String>,
    /// A config reload that was rejected; the previous config stays in force.
    pub config_error: Option<String>,
    pub unit_mount_flags: BTreeMap<String, u64>,
    pub path_shared: BTreeMap<String, bool>,
    /// Which Kubernetes mountPropagation modes work, and why not.
    #[serde(default)]
    pub modes: Vec<ModeVerdict>,
    #[serde(default = "default_mode")]
    pub required_mode: KubeMode,
    /// Running containers whose volumes no longer propagate as they asked, from the last full
    /// round (a quick round of the paths guard keeps them).
    #[serde(default)]
    pub containers: Judged,
}

fn default_mode() -> KubeMode {
    KubeMode::Bidirectional
}

impl State {
    /// Every path and runtime unit as needed at the last check, and the check could run.
    pub fn compliant(&self) -> bool {
        self.error.is_none() && matches!(self.status, Status::Ok | Status::NotInstalled)
    }

    pub fn new(config: String, interval_secs: u64) -> Self {
        let now = unix_now();
        Self {
            pid: std::process::id(),
            running: true,
            started_unix: now,
            config,
            status: Status::Unknown,
            status_line: "starting".into(),
            checks: 0,
            last_check_unix: None,
            last_trigger: String::new(),
            interval_secs,
            bus: Bus {
                connected: false,
                since_unix: now,
                error: None,
            },
            verdicts: Vec::new(),
            notes: Vec::new(),
            held_back: Vec::new(),
            remediations: Vec::new(),
            remediations_total: 0,
            error: None,
            config_error: None,
            unit_mount_flags: BTreeMap::new(),
            path_shared: BTreeMap::new(),
            modes: Vec::new(),
            required_mode: KubeMode::Bidirectional,
            containers: Judged::default(),
        }
    }

    /// Records a finished check: the look after acting, or before if nothing was done.
    pub fn checked(&mut self, last: &Checked, status: Status, outcomes: &[Outcome], held_back: Vec<Suppressed>) {
        self.checks += 1;
        self.last_check_unix = Some(unix_now());
        self.status = status;
        self.verdicts = last.plan.verdicts.clone();
        self.notes = last.plan.notes.clone();
        self.modes = last.plan.modes.clone();
        self.required_mode = last.plan.required_mode;
        self.containers = last.plan.containers.clone();
        self.held_back = held_back;
        self.error = None;
        self.set_bus(true, None);
        self.record(outcomes);
        self.unit_mount_flags = last
            .facts
            .units
            .iter()
            .filter_map(|u| u.props.mount_flags.map(|f| (u.name.clone(), f)))
            .collect();
        self.path_shared = last
            .facts
            .host
            .paths
            .iter()
            .map(|p| (p.rule.path.display().to_string(), p.mount.propagation.is_shared()))
            .collect();
        self.status_line = self.compose_status_line();
    }

    /// Records a quick round that looked at the paths alone: their verdicts replace the old
    /// ones; the units' and the modes' stay until the full round that follows.
    pub fn paths_checked(&mut self, last: &Checked, outcomes: &[Outcome], held_back: Vec<Suppressed>) {
        for v in &last.plan.verdicts {
            match self.verdicts.iter_mut().find(|o| o.subject == v.subject) {
                Some(o) => *o = v.clone(),
                None => self.verdicts.push(v.clone()),
            }
        }
        for p in &last.facts.host.paths {
            self.path_shared
                .insert(p.rule.path.display().to_string(), p.mount.propagation.is_shared());
        }
        for h in held_back {
            self.held_back.retain(|o| o.target != h.target);
            self.held_back.push(h);
        }
        // Until the full round: the worst of the verdicts as they now stand.
        self.status = if outcomes.iter().any(Outcome::failed) {
            Status::Unknown
        } else if self.containers.stale.is_empty() {
            crate::engine::verdict::worst(&self.verdicts)
        } else {
            crate::engine::verdict::worst(&self.verdicts).max(Status::Drift)
        };
        self.record(outcomes);
        self.status_line = self.compose_status_line();
    }

    /// Keeps what was done (not what turned out unchanged), the newest [`KEEP`].
    fn record(&mut self, outcomes: &[Outcome]) {
        let now = unix_now();
        for o in outcomes {
            let result = match &o.result {
                ActionResult::Unchanged => continue,
                ActionResult::Done => "done".to_string(),
                ActionResult::Skipped(w) => format!("skipped: {w}"),
                ActionResult::Failed(w) => format!("FAILED: {w}"),
            };
            if matches!(o.result, ActionResult::Done) {
                self.remediations_total += 1;
            }
            self.remediations.push(Remediation {
                unix: now,
                action: o.description.clone(),
                result,
            });
        }
        let excess = self.remediations.len().saturating_sub(KEEP);
        self.remediations.drain(..excess);
    }

    /// Records a check that could not run; the last verdicts stay as they were.
    pub fn failed(&mut self, error: String, bus_lost: bool) {
        self.last_check_unix = Some(unix_now());
        self.checks += 1;
        self.status = Status::Unknown;
        if bus_lost {
            self.set_bus(false, Some(error.clone()));
        }
        self.error = Some(error);
        self.status_line = self.compose_status_line();
    }

    pub fn set_bus(&mut self, connected: bool, error: Option<String>) {
        if self.bus.connected != connected || self.bus.error.is_some() != error.is_some() {
            self.bus.since_unix = unix_now();
        }
        self.bus.connected = connected;
        self.bus.error = error;
    }

    pub fn set_config_error(&mut self, e: Option<String>) {
        self.config_error = e;
        self.status_line = self.compose_status_line();
    }

    /// One line a person can act on.
    pub fn compose_status_line(&self) -> String {
        let mut line = if let (false, Some(e)) = (self.bus.connected, &self.bus.error) {
            format!(
                "NO BUS since {}: {e}; retrying; last verdicts kept",
                clock(self.bus.since_unix)
            )
        } else if let Some(e) = &self.error {
            format!("ERROR: {e}")
        } else if let Some(h) = self.held_back.first() {
            format!(
                "REVERTED: something keeps reverting {} ({} fixes in a row); not fixing it again for {} s, still checking",
                h.target, h.fixes, h.retry_in_secs
            )
        } else {
            self.verdict_summary()
        };
        if let Some(e) = &self.config_error {
            let _ = write!(line, " | config reload rejected, previous config in force: {e}");
        }
        // What `status --oneline`, STATUS= and the state file show: errors quote outside text.
        crate::escape::line(&line).into_owned()
    }

    fn verdict_summary(&self) -> String {
        let line = crate::engine::summary::one_line(&self.verdicts, &self.modes, self.required_mode, &self.containers);
        if line.starts_with("ok: ") {
            format!("{line}; next check {}s", self.interval_secs)
        } else {
            line
        }
    }

    pub fn write(&self) -> Result<(), FileError> {
        write_json(Path::new(STATE_DIR), STATE_FILE, self)
    }

    /// One daemon a node: the package's unit and a DaemonSet's pod would fight over the same
    /// node and state file. The lock is held for as long as the returned file is open.
    pub fn lock_single() -> Result<nix::fcntl::Flock<std::fs::File>, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = Path::new(STATE_DIR).join("daemon.lock");
        // Created as the state file's directory is (0755 whatever the umask), not by whoever
        // comes first: `mountprop status` must read the state without root.
        Dir::open(Path::new(STATE_DIR), Some(0o755)).map_err(|e| e.to_string())?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            if e == nix::errno::Errno::EWOULDBLOCK {
                let other = Self::read(&state_path()).map(|s| format!(" (pid {})", s.pid)).unwrap_or_default();
                format!(
                    "another mountprop daemon already runs on this node{other}: run either the package's mountprop.service or the DaemonSet, not both"
                )
            } else {
                format!("cannot lock {}: {e}", path.display())
            }
        })
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a mountprop state file: {e}", path.display()))
    }

    /// Whether the daemon that wrote this is still running.
    pub fn daemon_alive(&self) -> bool {
        self.running
            && std::fs::read_to_string(format!("/proc/{}/comm", self.pid)).is_ok_and(|c| c.trim() == "mountprop")
    }

    /// `mountprop status --alive`: the daemon runs and has checked (or tried to) within three
    /// intervals; the node's state does not count. With why, in words.
    pub fn alive(&self, now_unix: u64) -> (bool, String) {
        if !self.daemon_alive() {
            return (false, format!("mountprop daemon (pid {}) is not running", self.pid));
        }
        let Some(last) = self.last_check_unix else {
            return (
                false,
                format!("mountprop daemon (pid {}) has not checked yet", self.pid),
            );
        };
        let age = now_unix.saturating_sub(last);
        let ok = age <= 3 * self.interval_secs.max(1);
        let word = if ok { "alive" } else { "STUCK" };
        (
            ok,
            format!(
                "mountprop daemon (pid {}) {word}: last check {} ago, every {} s",
                self.pid,
                ago(age),
                self.interval_secs
            ),
        )
    }

    /// What `mountprop status` prints.
    pub fn human(&self) -> String {
        let now = unix_now();
        let mut s = String::new();
        let alive = self.daemon_alive();
        if alive {
            crate::outln!(
                &mut s,
                "mountprop daemon: running (pid {}), up {}; config: {}",
                self.pid,
                ago(now.saturating_sub(self.started_unix)),
                self.config
            );
        } else {
            crate::outln!(
                &mut s,
                "mountprop daemon: NOT RUNNING (last seen as pid {}); what it last knew:",
                self.pid
            );
        }
        let last = self
            .last_check_unix
            .map_or("never".to_string(), |t| format!("{} ago", ago(now.saturating_sub(t))));
        let bus = if self.bus.connected {
            "connected".to_string()
        } else {
            format!("LOST since {}", clock(self.bus.since_unix))
        };
        crate::outln!(
            &mut s,
            "last check: {last} ({}); {} checks; D-Bus {bus}",
            self.last_trigger,
            self.checks
        );
        crate::outln!(&mut s, "status: {}", self.status_line);
        let w = self.verdicts.iter().map(|v| v.subject.len()).max().unwrap_or(0).max(7);
        for v in &self.verdicts {
            crate::outln!(&mut s, "  {:w$}  {:7}  {}", v.subject, v.status.label(), v.detail);
        }
        for m in &self.modes {
            let req = if m.mode == self.required_mode {
                " (required)"
            } else {
                ""
            };
            let word = m.judgement.word();
            crate::outln!(&mut s, "  {}{req}: {word}: {}", m.mode, m.reason);
        }
        crate::engine::summary::containers_section(&mut s, &self.containers.stale);
        for h in &self.held_back {
            crate::outln!(
                &mut s,
                "  held back: {} ({} fixes; retry in {} s)",
                h.target,
                h.fixes,
                h.retry_in_secs
            );
        }
        if !self.remediations.is_empty() {
            crate::outln!(&mut s, "recent remediations ({} since start):", self.remediations_total);
            for r in self.remediations.iter().rev().take(10) {
                crate::outln!(
                    &mut s,
                    "  {} ago  {}: {}",
                    ago(now.saturating_sub(r.unix)),
                    r.action,
                    r.result
                );
            }
        }
        s
    }

    /// `mountprop status` exit code: the verdicts' code, 2 when the daemon is not running.
    pub fn exit_code(&self) -> u8 {
        if !self.daemon_alive() {
            return 2;
        }
        if self.held_back.is_empty() {
            self.status.exit_code()
        } else {
            1
        }
    }
}

/// "12 s", "3 min", "2 h 5 min", "4 d".
pub fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d", secs / 86400),
    }
}

/// UTC wall-clock time of day, enough to match a journal line.
fn clock(unix: u64) -> String {
    let t = unix % 86400;
    format!("{:02}:{:02}:{:02} UTC", t / 3600, t % 3600 / 60, t % 60)
}

/// `value` as JSON in `dir/name`, atomically. A value that cannot be encoded is an error and
/// the file is left as it was: never an empty state file where the last good one was.
fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<(), FileError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| FileError::Io {
        op: "encode",
        path: dir.join(name),
        source: std::io::Error::other(e),
    })?;
    Dir::open(dir, Some(0o755))?.write_atomic(name, &json, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::modes::Judgement;

    #[test]
    fn an_encoding_error_leaves_the_last_state_file() {
        let dir = std::env::temp_dir().join(format!("mountprop-state-test.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        write_json(&dir, "state.json", &State::new("c".into(), 60)).expect("write");
        let good = std::fs::read(dir.join("state.json")).expect("read");
        // JSON has no map keys but strings: this cannot be encoded.
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let e = write_json(&dir, "state.json", &bad).expect_err("encoding must fail");
        assert!(
            e.to_string()
                .starts_with(&format!("encode {}/state.json: ", dir.display())),
            "{e}"
        );
        assert_eq!(std::fs::read(dir.join("state.json")).expect("read"), good);
        assert!(!good.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn v(subject: &str, status: Status, short: &str, detail: &str) -> Verdict {
        Verdict {
            subject: subject.into(),
            status,
            detail: detail.into(),
            short: short.into(),
            blame: None,
        }
    }

    #[test]
    fn status_line_when_all_is_well() {
        let mut s = State::new("cfg".into(), 60);
        s.bus.connected = true;
        s.verdicts = vec![
            v("/", Status::Ok, "shared:1", "shared:1 (mount 43 on /, ext4)"),
            v("docker.service", Status::Ok, "MountFlags=shared, host namespace", "..."),
            v("crio.service", Status::NotInstalled, "not installed", "not installed"),
        ];
        assert_eq!(
            s.compose_status_line(),
            "ok: / shared:1; docker.service MountFlags=shared, host namespace; crio.service absent; next check 60s"
        );
    }

    #[test]
    fn status_line_names_the_worst_thing_first() {
        let mut s = State::new("cfg".into(), 60);
        s.bus.connected = true;
        s.verdicts = vec![
            v("/", Status::Ok, "shared:1", "shared:1"),
            v(
                "docker.service",
                Status::Drift,
                "x",
                "overridden by /etc/systemd/system/docker.service.d/zz-site.conf:3 (MountFlags=slave)",
            ),
            v("containerd.service", Status::RestartPending, "y", "restart pending"),
            v("crio.service", Status::Drift, "z", "MountFlags=slave"),
        ];
        assert_eq!(
            s.compose_status_line(),
            "DRIFT: docker.service overridden by /etc/systemd/system/docker.service.d/zz-site.conf:3 (MountFlags=slave) (+1 more)"
        );
        s.held_back = vec![Suppressed {
            target: "/etc/systemd/system/docker.service.d/90-mountprop.conf".into(),
            fixes: 3,
            retry_in_secs: 590,
        }];
        assert!(s.compose_status_line().starts_with(
            "REVERTED: something keeps reverting /etc/systemd/system/docker.service.d/90-mountprop.conf (3 fixes"
        ));
        s.set_config_error(Some("/etc/mountprop/config.toml:2:11: unknown variant".into()));
        assert!(s.status_line.ends_with(
            "| config reload rejected, previous config in force: /etc/mountprop/config.toml:2:11: unknown variant"
        ));
    }

    #[test]
    fn status_line_says_which_mode_works_and_names_what_breaks_it() {
        let mode = |works, reason: &str| ModeVerdict {
            mode: KubeMode::Bidirectional,
            judgement: if works { Judgement::Works } else { Judgement::Broken },
            reason: reason.into(),
            decided_by: crate::engine::modes::Decider::Flags,
            blame: None,
            disagreement: None,
        };
        let mut s = State::new("cfg".into(), 60);
        s.bus.connected = true;
        s.verdicts = vec![v("/", Status::Ok, "shared:1", "shared:1")];
        s.modes = vec![mode(true, "/ shared:1")];
        assert_eq!(
            s.compose_status_line(),
            "ok: / shared:1; Bidirectional works; next check 60s"
        );
        s.modes = vec![mode(
            false,
            "/var/lib/kubelet is on mount 90 (/var/lib/kubelet, tmpfs), which is private",
        )];
        assert_eq!(
            s.compose_status_line(),
            "DRIFT: Bidirectional broken: /var/lib/kubelet is on mount 90 (/var/lib/kubelet, tmpfs), which is private"
        );
        // A required mode that is not this one does not count.
        s.required_mode = KubeMode::HostToContainer;
        assert_eq!(s.compose_status_line(), "ok: / shared:1; next check 60s");
        // A mode that was not judged says so in STATUS, `mountprop status` and state.json:
        // never "works", and not drift either.
        s.required_mode = KubeMode::Bidirectional;
        let why = crate::engine::modes::NotJudged::ImageTree;
        s.modes = vec![ModeVerdict {
            judgement: Judgement::NotJudged(why),
            ..mode(true, why.why())
        }];
        assert_eq!(
            s.compose_status_line(),
            "ok: / shared:1; Bidirectional not judged (an image tree: nothing is mounted); next check 60s"
        );
        assert!(
            s.human()
                .contains("Bidirectional (required): not judged: an image tree"),
            "{}",
            s.human()
        );
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["modes"][0]["works"].is_null(), "{json}");
        assert_eq!(json["modes"][0]["judged"], false);
        let back: State = serde_json::from_value(json).unwrap();
        assert_eq!(back.modes, s.modes);
    }

    #[test]
    fn a_paths_round_replaces_path_verdicts_and_keeps_the_rest() {
        use crate::engine::Checked;
        use crate::engine::observe::{Facts, HostFacts, Scope, SystemdInfo};
        use crate::node::mountinfo::{MountSummary, Propagation};
        let mut s = State::new("cfg".into(), 60);
        s.bus.connected = true;
        s.verdicts = vec![
            v("/", Status::Drift, "private, needs shared", "private"),
            v("docker.service", Status::Ok, "MountFlags=shared, host namespace", "..."),
        ];
        s.status = Status::Drift;
        let shared = MountSummary {
            id: 43,
            mount_point: "/".into(),
            fstype: "ext4".into(),
            propagation: Propagation {
                shared: Some(1),
                ..Default::default()
            },
        };
        let facts = Facts {
            scope: Scope::Paths,
            systemd: SystemdInfo {
                version_string: "not asked".into(),
                version: None,
                virtualization: String::new(),
            },
            host: HostFacts {
                own_namespace: Some(false),
                first_mount: Some(43),
                container: None,
                paths: vec![crate::engine::observe::PathFacts {
                    rule: crate::config::PathRule {
                        path: "/".into(),
                        propagation: crate::config::Needed::Shared,
                        remediate: true,
                    },
                    mount: shared,
                }],
                points: Vec::new(),
            },
            units: Vec::new(),
            kubelet: None,
            image: None,
            probe: None,
            containers: Default::default(),
            container_errors: Vec::new(),
            discovery: None,
        };
        let plan = crate::engine::plan::plan(&facts, &crate::config::Config::default());
        s.paths_checked(&Checked { facts, plan }, &[], Vec::new());
        assert_eq!(s.verdicts.len(), 2);
        assert_eq!(s.verdicts[0].status, Status::Ok);
        assert_eq!(s.verdicts[1].subject, "docker.service", "the unit's verdict kept");
        assert_eq!(s.status, Status::Ok, "recomputed, not kept at the old drift");
        assert_eq!(s.path_shared.get("/"), Some(&true));
    }

    #[test]
    fn a_lost_bus_keeps_the_last_verdicts() {
        let mut s = State::new("cfg".into(), 60);
        s.verdicts = vec![v("/", Status::Ok, "shared:1", "shared:1")];
        s.failed("no system bus at /run/dbus/system_bus_socket".into(), true);
        assert!(!s.bus.connected);
        assert_eq!(s.verdicts.len(), 1);
        assert!(s.status_line.starts_with("NO BUS since "), "{}", s.status_line);
        assert!(
            s.status_line
                .contains("no system bus at /run/dbus/system_bus_socket; retrying")
        );
    }

    #[test]
    fn round_trips_as_json() {
        let mut s = State::new("cfg".into(), 60);
        s.verdicts = vec![v("/", Status::Ok, "shared:1", "shared:1")];
        let json = serde_json::to_string(&s).unwrap();
        let back: State = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn ages() {
        assert_eq!(ago(5), "5 s");
        assert_eq!(ago(125), "2 min");
        assert_eq!(ago(7500), "2 h 5 min");
        assert_eq!(ago(200000), "2 d");
        assert_eq!(clock(3661), "01:01:01 UTC");
    }
}
