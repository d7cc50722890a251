//! Judges observed facts against the config: a verdict per unit and per path, and the actions
//! that would fix what can be fixed. A pure function: no I/O, so every branch has a unit test.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, KubeMode, MountFlagsMode, Needed, RestartPolicy};
use crate::engine::dropin::{self, Choice};
use crate::engine::modes::{self, ModeVerdict, Relation};
use crate::engine::observe::{Facts, Found, HostFacts, ImageFacts, PathFacts, RuntimeView, Scope, UnitFacts};
pub use crate::engine::verdict::{Blame, Status, Verdict, worst};
use crate::node::image::WantsLink;
use crate::node::mountinfo::MountSummary;
use crate::node::namespacing;
use crate::node::ownfile::OwnState;
use crate::node::unitfile::{MountFlags, MountFlagsSetting};

/// systemd gained unit markers (`systemctl reload-or-restart --marked`) in 248.
const MARKERS_SINCE: u32 = 248;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// `mount --make-rshared` on the mount point that holds the listed paths.
    MakeShared {
        mount_point: PathBuf,
        for_paths: Vec<PathBuf>,
    },
    WriteDropIn {
        unit: String,
        path: PathBuf,
        content: String,
    },
    /// One daemon-reload, for the listed units' drop-ins.
    Reload {
        units: Vec<String>,
    },
    Restart {
        unit: String,
    },
    MarkNeedsRestart {
        unit: String,
    },
    /// Image trees: the `.wants` link `systemctl --root DIR enable` would make.
    Enable {
        dir: PathBuf,
        name: String,
        target: PathBuf,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::MakeShared { mount_point, .. } => {
                write!(f, "make {} rshared (mount --make-rshared)", mount_point.display())
            }
            Action::WriteDropIn { path, content, .. } => {
                let value = content.lines().rfind(|l| l.starts_with("MountFlags=")).unwrap_or("");
                write!(f, "write {} ({value})", path.display())
            }
            Action::Reload { .. } => f.write_str("reload systemd (daemon-reload)"),
            Action::Restart { unit } => write!(f, "restart {unit}"),
            Action::MarkNeedsRestart { unit } => write!(
                f,
                "mark {unit} needs-restart (for systemctl reload-or-restart --marked)"
            ),
            Action::Enable { dir, name, target } => {
                write!(
                    f,
                    "enable {name} (link {} -> {})",
                    dir.join(name).display(),
                    target.display()
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub verdicts: Vec<Verdict>,
    pub actions: Vec<Action>,
    pub notes: Vec<String>,
    /// Which Kubernetes mountPropagation modes work, and why not.
    pub modes: Vec<ModeVerdict>,
    /// The mode this node must support (config `required_mode`).
    pub required_mode: KubeMode,
    /// Running containers whose volumes no longer propagate as they asked: a fix of the node
    /// does not reach them (only a new container does), so they count as drift until then.
    pub containers: crate::engine::containers::Judged,
}

impl Plan {
    /// The node's overall status: the worst verdict (a unit that is not installed counts as
    /// ok), and drift if the required Kubernetes mode does not work for a reason no verdict
    /// already gives.
    pub fn status(&self) -> Status {
        let stale = if self.containers.stale.is_empty() {
            Status::Ok
        } else {
            Status::Drift
        };
        worst(&self.verdicts)
            .max(modes::status(&self.modes, self.required_mode, &self.verdicts))
            .max(stale)
    }
}

pub fn plan(facts: &Facts, cfg: &Config) -> Plan {
    let mut p = Plan {
        verdicts: Vec::new(),
        actions: Vec::new(),
        notes: Vec::new(),
        modes: Vec::new(),
        required_mode: cfg.required_mode,
        containers: crate::engine::containers::judge(&facts.containers),
    };
    p.notes.extend(facts.container_errors.iter().cloned());
    for u in &p.containers.unsure {
        p.notes.push(format!("container volume not judged: {u}"));
    }
    if facts.scope == Scope::Paths {
        plan_paths(&facts.host, &mut p);
        return p;
    }
    let version = facts.systemd.version;
    if version.is_none() {
        p.notes.push(format!(
            "could not tell the systemd version from {:?}; assuming MountFlags=shared is right",
            facts.systemd.version_string
        ));
    }
    plan_paths(&facts.host, &mut p);
    let image = facts.image.is_some();
    if let Some(img) = &facts.image {
        p.notes.push(format!(
            "image tree {}: paths are not checked (nothing is mounted in a tree); the node's daemon checks them at boot",
            img.root.display()
        ));
        plan_service(img, &mut p);
    }
    let choice = dropin::choose(cfg.mount_flags, version);
    let mut reload_for = Vec::new();
    let mut after_reload = Vec::new();
    for u in &facts.units {
        let up = plan_unit(u, &facts.host, cfg, &choice, version, image);
        if up.reload {
            reload_for.push(u.name.clone());
        }
        if let Some(a) = up.write {
            p.actions.push(a);
        }
        after_reload.extend(up.then);
        p.notes.extend(up.notes);
        p.verdicts.push(up.verdict);
    }
    if !reload_for.is_empty() {
        p.actions.push(Action::Reload { units: reload_for });
    }
    p.actions.extend(after_reload);
    plan_found(facts, cfg, &mut p);
    p.modes = modes::judge(facts, &p.verdicts);
    p
}

/// What discovery found, in the report: how each unit was found, what a restart of a unit that
/// also runs the kubelet does, the kubelet's real root, and the sockets it could not place.
fn plan_found(facts: &Facts, cfg: &Config, p: &mut Plan) {
    let kubelet = facts.kubelet.as_ref().and_then(|k| k.found.as_ref());
    let mut how = Vec::new();
    for u in &facts.units {
        let Some(v) = p.verdicts.iter_mut().find(|v| v.subject == u.name) else {
            continue;
        };
        if u.found_by == Some(Found::Kubelet) {
            v.detail = format!("{}; found running the kubelet (not in `units`)", v.detail);
        } else if let Some(Found::Serves(sock)) = &u.found_by {
            v.detail = format!("{}; found serving {} (not in `units`)", v.detail, sock.display());
            let by_name = facts
                .discovery
                .iter()
                .flat_map(|d| &d.sockets)
                .filter(|s| s.path == *sock)
                .find_map(|s| s.server.as_ref().filter(|sv| !sv.by_descriptor));
            let by = by_name.map_or(String::new(), |sv| {
                format!(
                    " (known by the command line of {}, pid {}: its descriptors could not be read)",
                    sv.comm, sv.pid
                )
            });
            how.push(format!("{} serves {}{by}", u.name, sock.display()));
        } else if facts.discovery.is_some() && v.status != Status::NotInstalled {
            let serves: Vec<String> = facts
                .discovery
                .iter()
                .flat_map(|d| &d.sockets)
                .filter(|s| s.server.as_ref().and_then(|sv| sv.unit.as_deref()) == Some(u.name.as_str()))
                .map(|s| format!(", serves {}", s.path.display()))
                .collect();
            how.push(format!("{} configured{}", u.name, serves.concat()));
        }
        // A runtime that entered the kubelet's own namespace (OpenShift's layout): restarting it
        // enters that namespace again.
        let kubelet_ns = facts
            .kubelet
            .as_ref()
            .and_then(|k| k.runtime.as_ref())
            .filter(|k| !k.same_ns_as_host)
            .and_then(|k| k.first_mount);
        let ns = u
            .runtime
            .as_ref()
            .filter(|r| !r.same_ns_as_host)
            .and_then(|r| r.first_mount);
        // Entered on purpose: another unit than the kubelet's own shares it (for the kubelet's
        // unit: some runtime's unit does). A runtime in the kubelet's very unit (k3s) has the
        // unit's own namespace, which is judged as such.
        let kubelet_unit = kubelet
            .and_then(|k| k.unit.as_deref())
            .or(facts.kubelet.as_ref().map(|k| k.name.as_str()));
        let ns_of = |x: &UnitFacts| {
            x.runtime
                .as_ref()
                .filter(|r| !r.same_ns_as_host)
                .and_then(|r| r.first_mount)
        };
        let entered = if u.is_runtime() {
            kubelet_unit != Some(u.name.as_str())
        } else {
            facts
                .units
                .iter()
                .any(|r| r.is_runtime() && Some(r.name.as_str()) != kubelet_unit && ns_of(r) == kubelet_ns)
        };
        if entered && kubelet_ns.is_some() && ns == kubelet_ns {
            // Not a pending restart: a restart enters the same namespace again. Said so, and no
            // restart is planned or marked for it.
            let detail = v.detail.strip_prefix("restart pending: ").unwrap_or(&v.detail);
            let detail = match detail.find("; restart it when safe: ") {
                Some(i) => {
                    let rest = &detail[i + 2..];
                    let end = rest.find("; ").map_or(rest.len(), |j| j);
                    format!("{}{}", &detail[..i], &rest[end..])
                }
                None => detail.to_string(),
            };
            let with = if u.is_runtime() { "the kubelet" } else { "the runtimes" };
            v.detail = format!(
                "{detail}; it shares this mount namespace with {with} (a layout such as OpenShift's container-mount-namespace.service, whose units enter it): a restart enters it again"
            );
            if v.status == Status::RestartPending {
                v.status = Status::Drift;
                v.short = "shares the kubelet's own mount namespace".to_string();
            }
            p.actions.retain(
                |a| !matches!(a, Action::Restart { unit } | Action::MarkNeedsRestart { unit } if *unit == u.name),
            );
        }
        if !u.is_runtime() {
            continue;
        }
        let kubelet_here = kubelet.is_some_and(|k| k.unit.as_deref() == Some(u.name.as_str()));
        let embeds = u.name.starts_with("k3s") || u.name.starts_with("rke2-");
        if (kubelet_here || embeds) && matches!(v.status, Status::Drift | Status::RestartPending) {
            let why = if kubelet_here {
                "it runs in that unit"
            } else {
                "k3s and RKE2 run it in that unit"
            };
            v.detail = format!(
                "{}; a restart of {} also restarts the kubelet ({why})",
                v.detail, u.name
            );
        }
    }
    let Some(d) = &facts.discovery else { return };
    if !how.is_empty() {
        p.notes.push(format!("runtimes: {}", how.join("; ")));
    }
    for s in &d.sockets {
        match (&s.server, s.listening) {
            (_, false) => p.notes.push(format!(
                "{} exists ({}), but nothing listens on it",
                s.path.display(),
                s.source
            )),
            (None, true) if d.unreadable > 0 => p.notes.push(format!(
                "{} is listening, but which process serves it is not known: {} processes' descriptors could not be read (CAP_SYS_PTRACE is needed); name its unit in `units`",
                s.path.display(),
                d.unreadable
            )),
            (None, true) => p.notes.push(format!("{} is listening, but no process holds it", s.path.display())),
            (Some(sv), true) if sv.unit.is_none() => p.notes.push(format!(
                "{} is served by {} (pid {}), which runs in no systemd service: it is not judged as a unit",
                s.path.display(),
                sv.comm,
                sv.pid
            )),
            (Some(_), true) => {}
        }
    }
    if let Some(k) = kubelet {
        let unit = k.unit.as_deref().map_or(String::new(), |u| format!(" in {u}"));
        p.notes.push(format!(
            "kubelet: {} (pid {}){unit}, root {} ({})",
            k.comm,
            k.pid,
            k.root.display(),
            k.root_from
        ));
        if k.root != cfg.kubelet_root {
            p.notes.push(format!(
                "the running kubelet's root {} is not kubelet_root {}: the modes are judged at both",
                k.root.display(),
                cfg.kubelet_root.display()
            ));
        }
        if let Some(real) = &k.resolved {
            p.notes.push(format!(
                "the kubelet's root {} is reached through a symlink: it is {}",
                k.root.display(),
                real.display()
            ));
        }
    }
}

fn plan_paths(host: &HostFacts, p: &mut Plan) {
    let mut fixes: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for pf in &host.paths {
        let m = &pf.mount;
        if satisfied(pf) {
            p.verdicts.push(Verdict {
                subject: pf.rule.path.display().to_string(),
                status: Status::Ok,
                detail: format!("{} ({})", m.propagation, mount_label(m)),
                short: m.propagation.to_string(),
                blame: None,
            });
            continue;
        }
        let mut detail = format!("{} ({}); needs {}", m.propagation, mount_label(m), pf.rule.propagation);
        if let Some(c) = &host.container {
            detail.push_str(&format!(
                "; this host is a container ({c}), where systemd leaves / private on purpose"
            ));
        }
        if !pf.rule.remediate {
            detail.push_str("; fixing it is off (remediate_paths = false)");
        } else if !host.can_remount() {
            detail.push_str("; mountprop runs in its own mount namespace and cannot change the host's (run it without ProtectSystem=/PrivateMounts=)");
        } else {
            match fixes.iter_mut().find(|(mp, _)| *mp == m.mount_point) {
                Some((_, paths)) => paths.push(pf.rule.path.clone()),
                None => fixes.push((m.mount_point.clone(), vec![pf.rule.path.clone()])),
            }
        }
        p.verdicts.push(Verdict {
            subject: pf.rule.path.display().to_string(),
            status: Status::Drift,
            short: format!("{}, needs {}", m.propagation, pf.rule.propagation),
            detail,
            blame: None,
        });
    }
    // A recursive make-shared of a mount point covers every mount below it.
    fixes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for (mp, paths) in fixes {
        match kept.iter_mut().find(|(k, _)| mp.starts_with(k)) {
            Some((_, ps)) => ps.extend(paths),
            None => kept.push((mp, paths)),
        }
    }
    for (mount_point, for_paths) in kept {
        p.actions.push(Action::MakeShared { mount_point, for_paths });
    }
}

/// Both needs want the mount shared (perhaps also a slave): a slave-only mount receives from
/// its master but passes nothing on, so what the kubelet or the host mounts there reaches no
/// container, not even for HostToContainer.
fn satisfied(pf: &PathFacts) -> bool {
    pf.mount.propagation.is_shared()
}

fn mount_label(m: &MountSummary) -> String {
    format!("mount {} on {}, {}", m.id, m.mount_point.display(), m.fstype)
}

struct UnitPlan {
    verdict: Verdict,
    write: Option<Action>,
    reload: bool,
    then: Vec<Action>,
    notes: Vec<String>,
}

/// mountprop.service in an image tree: installed, and enabled as `systemctl enable` would.
fn plan_service(img: &ImageFacts, p: &mut Plan) {
    let svc = &img.service;
    let (status, detail) = match &svc.fragment {
        None => (
            Status::Drift,
            "not installed in the image: install the mountprop package into it (or its unit file), then run apply --root again".to_string(),
        ),
        Some(_) if svc.links.is_empty() => (Status::Drift, "its unit file has no [Install] WantedBy=, so it cannot be enabled".to_string()),
        Some(target) => {
            let missing: Vec<&WantsLink> = svc.links.iter().filter(|l| l.target.is_none()).collect();
            for l in &missing {
                p.actions.push(Action::Enable {
                    dir: img.root.join(&l.dir),
                    name: svc.unit.clone(),
                    target: target.clone(),
                });
            }
            let wants: Vec<String> = svc.links.iter().map(|l| l.dir.display().to_string()).collect();
            if missing.is_empty() {
                (Status::Ok, format!("enabled ({})", wants.join(", ")))
            } else {
                (Status::Drift, "installed but not enabled; apply enables it as systemctl --root would".to_string())
            }
        }
    };
    p.verdicts.push(Verdict {
        subject: svc.unit.clone(),
        status,
        short: if status == Status::Ok {
            "enabled".into()
        } else {
            "not enabled".into()
        },
        detail,
        blame: None,
    });
}

fn plan_unit(
    u: &UnitFacts,
    host: &HostFacts,
    cfg: &Config,
    choice: &Choice,
    version: Option<u32>,
    image: bool,
) -> UnitPlan {
    let c = UnitCase {
        u,
        host,
        cfg,
        choice,
        version,
        image,
    };
    let mut out = UnitPlan::new(&u.name);
    if u.props.load_state != "loaded" {
        c.not_loaded(&mut out);
        return out;
    }
    let d = c.drop_in();
    if d.will_write {
        out.write = Some(Action::WriteDropIn {
            unit: u.name.clone(),
            path: u.own.path.clone(),
            content: d.desired.clone(),
        });
    }
    // What systemd has loaded now.
    let Some(loaded) = u.props.mount_flags.and_then(MountFlags::from_bits) else {
        let detail = format!(
            "systemd reports MountFlags={:?}, which mountprop does not understand",
            u.props.mount_flags
        );
        out.set(Status::Unknown, detail, None);
        return out;
    };
    c.plan_reload(&d, loaded, &mut out);
    if let Some(why) = &d.blocked {
        c.blocked(&d, loaded, why, &mut out);
    } else if !d.flags_ok {
        c.overridden(&d, &mut out);
    } else if let Some(first) = d.sandboxing.first().filter(|_| c.bidirectional()) {
        // A restart cannot help here: the unit's settings, not its past, give it the namespace.
        let detail = sandboxed_detail(&d.sandboxing, &d.resets, cfg);
        out.set(Status::Drift, detail, Some(Blame::from(first)));
        out.verdict.short = format!("{}: own mount namespace", first.assignment());
    } else {
        c.configured(&d, loaded, &mut out);
    }
    out
}

impl UnitPlan {
    fn new(unit: &str) -> Self {
        Self {
            verdict: Verdict {
                subject: unit.to_string(),
                status: Status::Ok,
                detail: String::new(),
                short: String::new(),
                blame: None,
            },
            write: None,
            reload: false,
            then: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn set(&mut self, status: Status, detail: String, blame: Option<Blame>) {
        self.verdict.status = status;
        self.verdict.short = detail.split("; ").next().unwrap_or_default().to_string();
        self.verdict.detail = detail;
        self.verdict.blame = blame;
    }
}

/// One runtime unit to plan, and what it is planned against.
struct UnitCase<'a> {
    u: &'a UnitFacts,
    host: &'a HostFacts,
    cfg: &'a Config,
    choice: &'a Choice,
    version: Option<u32>,
    image: bool,
}

/// mountprop's drop-in as it is about to be, and what systemd will apply after a reload.
struct DropInPlan<'a> {
    desired: String,
    /// The reset lines in it (`reset_namespacing`).
    resets: Vec<String>,
    /// Why mountprop may not write its file, if it may not.
    blocked: Option<String>,
    will_write: bool,
    /// The `MountFlags=` line that wins after a reload, and whether it is what is wanted.
    winner: Option<MountFlagsSetting>,
    flags_ok: bool,
    /// The settings still giving the unit a namespace of its own after a reload.
    sandboxing: Vec<namespacing::Setting>,
    /// The `MountFlags=` line systemd has loaded now.
    loaded_blame: Option<&'a MountFlagsSetting>,
}

impl<'a> UnitCase<'a> {
    /// A HostToContainer-only node (mount_flags = "slave") does not need mounts sent back.
    fn bidirectional(&self) -> bool {
        self.cfg.mount_flags != MountFlagsMode::Slave
    }

    /// Not installed, masked, or failed to load. An image may get the runtime later: its
    /// drop-in is written ahead.
    fn not_loaded(&self, out: &mut UnitPlan) {
        let u = self.u;
        let (status, detail) = match u.props.load_state.as_str() {
            "not-found" if self.image => {
                let desired = dropin::render(self.choice);
                match &u.own.state {
                    OwnState::Ours(c) if *c == desired => (
                        Status::NotInstalled,
                        "not installed in the image; mountprop's drop-in is in place ahead".to_string(),
                    ),
                    OwnState::Missing | OwnState::Ours(_) => {
                        out.write = Some(Action::WriteDropIn {
                            unit: u.name.clone(),
                            path: u.own.path.clone(),
                            content: desired,
                        });
                        (
                            Status::NotInstalled,
                            "not installed in the image; apply writes mountprop's drop-in ahead".to_string(),
                        )
                    }
                    OwnState::Foreign => (
                        Status::Drift,
                        format!(
                            "{} exists and was not written by mountprop; left alone",
                            u.own.path.display()
                        ),
                    ),
                    OwnState::Refused(why) => (Status::Drift, format!("cannot write its drop-in: {why}")),
                }
            }
            "not-found" => (Status::NotInstalled, "not installed".into()),
            "masked" => (Status::NotInstalled, "masked (systemctl unmask to use it)".into()),
            other => {
                let why = u.props.load_error.clone().unwrap_or_else(|| "no reason given".into());
                (Status::Drift, format!("unit failed to load ({other}): {why}"))
            }
        };
        out.set(status, detail, None);
    }

    /// What mountprop's drop-in will say and what systemd will apply with it.
    fn drop_in(&self) -> DropInPlan<'a> {
        let (u, choice, version) = (self.u, self.choice, self.version);
        // Settings of the other files that give the unit a namespace of its own; with
        // reset_namespacing, mountprop's drop-in undoes them.
        let others = namespacing::in_force(
            u.files.iter().filter(|f| !f.own).map(|f| f.sandboxing.as_slice()),
            version,
        );
        let resets = if self.cfg.reset_namespacing && self.bidirectional() {
            namespacing::resets(&others)
        } else {
            Vec::new()
        };
        let desired = dropin::render_resetting(choice, &resets);
        let blocked = match &u.own.state {
            OwnState::Missing | OwnState::Ours(_) => None,
            OwnState::Foreign => Some(format!(
                "{} exists and was not written by mountprop; left alone (rename it, or set dropin_name)",
                u.own.path.display()
            )),
            OwnState::Refused(why) => Some(format!("cannot write its drop-in: {why}")),
        };
        let will_write = blocked.is_none() && u.own.state != OwnState::Ours(desired.clone());
        // mountprop's file as it is about to be; one it may not write sets nothing of ours.
        let own_flags = blocked.is_none().then(|| MountFlagsSetting {
            path: u.own.path.clone(),
            line: 4,
            value: choice.value,
        });
        let own_sandboxing = namespacing::settings(&u.own.path, &desired);
        let winner = u
            .files
            .iter()
            .filter_map(|f| if f.own { own_flags.as_ref() } else { f.settings.last() })
            .next_back()
            .cloned();
        let flags_ok = dropin::satisfies(winner.as_ref().map_or(MountFlags::Unset, |s| s.value), choice, version);
        let sandboxing = namespacing::in_force(
            u.files.iter().map(|f| {
                if f.own && blocked.is_none() {
                    own_sandboxing.as_slice()
                } else {
                    f.sandboxing.as_slice()
                }
            }),
            version,
        );
        let loaded_blame = u
            .files
            .iter()
            .filter(|f| f.loaded)
            .filter_map(|f| f.settings.last())
            .next_back();
        DropInPlan {
            desired,
            resets,
            blocked,
            will_write,
            winner,
            flags_ok,
            sandboxing,
            loaded_blame,
        }
    }

    /// One reload when mountprop writes its file or it is on disk but not loaded; an image
    /// tree has no running systemd to reload.
    fn plan_reload(&self, d: &DropInPlan<'_>, loaded: MountFlags, out: &mut UnitPlan) {
        let u = self.u;
        let own_loaded = u.props.dropin_paths.contains(&u.own.path);
        let predicted = d.winner.as_ref().map_or(MountFlags::Unset, |s| s.value);
        out.reload = !self.image
            && (d.will_write
                || (d.blocked.is_none() && !own_loaded)
                || (u.props.need_daemon_reload && loaded != predicted && d.flags_ok));
        if u.props.need_daemon_reload && !out.reload {
            out.notes.push(format!("{}: unit files changed on disk since systemd loaded them (NeedDaemonReload); mountprop leaves that reload to you", u.name));
        }
    }

    /// mountprop may not write its file: say why, and fail only if the node is broken now.
    fn blocked(&self, d: &DropInPlan<'_>, loaded: MountFlags, why: &str, out: &mut UnitPlan) {
        let loaded_ok = dropin::satisfies(loaded, self.choice, self.version);
        let blame = d.loaded_blame.filter(|_| !loaded_ok).map(Blame::from);
        if loaded_ok {
            out.set(Status::Ok, format!("{loaded}; but {why}"), blame);
            // The node works now, so this is worth saying but not failing over.
            out.notes.push(format!("{}: {why}", self.u.name));
        } else {
            out.set(Status::Drift, format!("{loaded}; {why}"), blame);
        }
    }

    /// Someone else's setting comes after mountprop's and wins: report it, do not fight it.
    fn overridden(&self, d: &DropInPlan<'_>, out: &mut UnitPlan) {
        let (detail, blame) = match &d.winner {
            Some(s) => (
                format!(
                    "overridden by {}:{} (MountFlags={}), which systemd applies after {}",
                    s.path.display(),
                    s.line,
                    s.value.as_value(),
                    self.u.own.path.display()
                ),
                Some(Blame::from(s)),
            ),
            None => (
                format!("MountFlags stays unset, but {} is wanted", self.choice.value),
                None,
            ),
        };
        out.set(Status::Drift, detail, blame);
    }

    /// The configuration will be right after a reload: what is loaded now, then where the
    /// runtime runs.
    fn configured(&self, d: &DropInPlan<'_>, loaded: MountFlags, out: &mut UnitPlan) {
        let loaded_ok = dropin::satisfies(loaded, self.choice, self.version);
        let loaded_sandboxing = if self.bidirectional() {
            self.u.loaded_sandboxing(self.version)
        } else {
            Vec::new()
        };
        let mut status = Status::Ok;
        let mut parts: Vec<String> = Vec::new();
        let mut blame = None;
        if let Some(first) = loaded_sandboxing.first() {
            // Undone by mountprop's drop-in (reset_namespacing), once systemd loads it.
            status = Status::Drift;
            let fix = if d.will_write {
                "apply writes mountprop's drop-in, which resets it (reset_namespacing = true), and reloads"
            } else {
                "mountprop's drop-in resets it (reset_namespacing = true), waiting for daemon-reload"
            };
            parts.push(format!(
                "{loaded}; {first} gives it a mount namespace of its own; {fix}"
            ));
            blame = Some(Blame::from(first));
        } else if !loaded_ok {
            status = Status::Drift;
            let from = d
                .loaded_blame
                .map_or(String::new(), |s| format!(" (set in {}:{})", s.path.display(), s.line));
            let fix = match (d.will_write, self.image) {
                (true, true) => "apply writes mountprop's drop-in",
                (true, false) => "apply writes mountprop's drop-in and reloads",
                (false, _) => "drop-in in place, waiting for daemon-reload",
            };
            parts.push(format!("{loaded}{from}; {fix}"));
            blame = d.loaded_blame.map(Blame::from);
        } else {
            parts.push(loaded.to_string());
        }
        let pin = (d.will_write && loaded_ok).then(|| "apply pins it with mountprop's drop-in".to_string());
        let fixed_now = loaded_ok && loaded_sandboxing.is_empty();
        let short_where = self.where_it_runs(fixed_now, pin, &mut status, &mut parts, out);
        out.set(status, parts.join("; "), blame);
        out.verdict.short = format!("{loaded}, {short_where}");
    }

    /// Where the runtime runs now; a process that predates a configuration that is right is
    /// restart pending. Returns the few words for summaries.
    fn where_it_runs(
        &self,
        fixed_now: bool,
        pin: Option<String>,
        status: &mut Status,
        parts: &mut Vec<String>,
        out: &mut UnitPlan,
    ) -> &'static str {
        let u = self.u;
        let Some(rt) = &u.runtime else {
            if self.image {
                parts.push("takes effect when the image boots".to_string());
            } else {
                parts.push(format!(
                    "{}, not running: takes effect at its next start",
                    u.props.active_state
                ));
            }
            parts.extend(pin);
            return if self.image { "image" } else { "not running" };
        };
        let slave_ok = !self.bidirectional();
        let needs = |n: Needed| if slave_ok { Needed::Slave } else { n };
        match effective(rt, self.host, needs) {
            Effective::Fine(how, label) => {
                parts.push(format!("MainPID {} {how}", rt.pid));
                parts.extend(pin);
                label
            }
            Effective::Unknown(why) => {
                *status = (*status).max(Status::Unknown);
                parts.push(format!("cannot inspect MainPID {}: {why}", rt.pid));
                "runtime not inspectable"
            }
            Effective::Broken(how) => {
                let todo = restart_or_mark(u, self.cfg, self.version, &mut out.then);
                if fixed_now {
                    *status = Status::RestartPending;
                    parts[0] = format!("restart pending: {}", parts[0]);
                }
                parts.push(format!("but MainPID {} {how}", rt.pid));
                parts.push(todo);
                "restart pending"
            }
        }
    }
}

/// Why a unit whose settings give it a mount namespace of its own breaks Bidirectional, and
/// what to do about it.
fn sandboxed_detail(found: &[namespacing::Setting], resets: &[String], cfg: &Config) -> String {
    let first = &found[0];
    let mut detail = format!(
        "{first} gives it a mount namespace of its own, which receives the host's mounts but sends none back: Bidirectional volumes cannot work, and a restart does not help"
    );
    if found.len() > 1 {
        let rest: Vec<String> = found[1..].iter().map(ToString::to_string).collect();
        detail.push_str(&format!(" (so do {})", rest.join(", ")));
    }
    let key = first.spec();
    let fix = if key.reset.is_none() {
        format!(
            "mountprop does not reset {}=; remove it from {}",
            key.name,
            first.path.display()
        )
    } else if resets.iter().any(|r| r.starts_with(&format!("{}=", key.name))) {
        format!(
            "it is set again after mountprop's drop-in resets it; remove it from {}",
            first.path.display()
        )
    } else if !cfg.reset_namespacing {
        format!(
            "remove it from {}, or set reset_namespacing = true in the config so that mountprop's drop-in resets it (that loosens the runtime's sandboxing)",
            first.path.display()
        )
    } else {
        format!("remove it from {}", first.path.display())
    };
    format!("{detail}; {fix}")
}

/// Queues what the restart policy allows for a runtime whose namespace predates the fix, and
/// says what happens next.
fn restart_or_mark(u: &UnitFacts, cfg: &Config, version: Option<u32>, then: &mut Vec<Action>) -> String {
    match cfg.restart {
        RestartPolicy::Always => {
            then.push(Action::Restart { unit: u.name.clone() });
            "apply restarts it (restart = \"always\")".to_string()
        }
        RestartPolicy::Never => {
            let can_mark = version.is_some_and(|v| v >= MARKERS_SINCE);
            if can_mark && !u.props.markers.iter().any(|m| m == "needs-restart") {
                then.push(Action::MarkNeedsRestart { unit: u.name.clone() });
            }
            if can_mark {
                format!(
                    "restart it when safe: systemctl restart {} (or systemctl reload-or-restart --marked)",
                    u.name
                )
            } else {
                format!("restart it when safe: systemctl restart {}", u.name)
            }
        }
    }
}

enum Effective {
    /// What it gets, and a few words for summaries.
    Fine(String, &'static str),
    Broken(String),
    Unknown(String),
}

/// Whether the runtime's own namespace gets what each path needs from the host.
fn effective(rt: &RuntimeView, host: &HostFacts, needs: impl Fn(Needed) -> Needed) -> Effective {
    if let Some(e) = &rt.error {
        return Effective::Unknown(e.clone());
    }
    if rt.same_ns_as_host {
        return Effective::Fine("runs in the host's mount namespace".into(), "host namespace");
    }
    let mut fine = Vec::new();
    let mut only_receives = false;
    for (pf, theirs) in host.paths.iter().zip(&rt.paths) {
        let path = pf.rule.path.display();
        let Some(theirs) = theirs else {
            return Effective::Broken(format!("has its own mount namespace where {path} is not visible"));
        };
        let ours = &pf.mount.propagation;
        let rel = modes::relation(&pf.mount, Some(theirs), rt);
        match (rel, needs(pf.rule.propagation), ours.shared) {
            (Relation::Same | Relation::Peer, _, Some(group)) => {
                fine.push(format!("{path} is a peer of the host's (shared:{group})"))
            }
            (Relation::Slave, Needed::Slave, _) => {
                only_receives = true;
                fine.push(format!("{path} receives the host's mounts ({})", theirs.propagation))
            }
            (_, _, None) => {
                return Effective::Broken(format!(
                    "has its own mount namespace, and the host's {path} is {ours}, so nothing can propagate into it"
                ));
            }
            (rel, need, Some(group)) => {
                let what = if rel == Relation::Slave {
                    "only receives from the host"
                } else {
                    "is cut off from the host"
                };
                return Effective::Broken(format!(
                    "has its own mount namespace where {path} is {} ({what}; needs {need} with the host's peer group {group})",
                    theirs.propagation
                ));
            }
        }
    }
    // A namespace that only receives is never called a peer.
    let label = if only_receives {
        "slave namespace"
    } else {
        "peer namespace"
    };
    Effective::Fine(format!("has its own mount namespace; {}", fine.join("; ")), label)
}

#[cfg(test)]
mod tests;
