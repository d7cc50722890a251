//! The question users really ask: which Kubernetes `mountPropagation` modes work for pods on
//! this node, judged at `/` and at the kubelet's volume root, for every container runtime (and
//! the kubelet's own namespace when it runs). Pure: from facts and unit verdicts, and from the
//! live probe's results when one ran ([`crate::engine::probe`]); the probe overrides what the flags
//! suggest wherever it reached.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::KubeMode;
pub use crate::engine::observe::ProbeResult;
use crate::engine::observe::{Facts, Point, RuntimeView};
use crate::engine::verdict::{Status, Verdict};
use crate::node::mountinfo::MountSummary;
use crate::node::unitfile::MountFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decider {
    /// Propagation flags and peer groups, as systemd and /proc report them.
    Flags,
    /// Real mounts, made and looked for by `mountprop probe`.
    Probe,
}

/// Why a mode was not judged: there was nothing to judge it by. It is neither "works" nor
/// "broken", and no report may turn it into either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotJudged {
    /// `--root`: an image tree, where nothing is mounted and nothing runs.
    ImageTree,
    /// No container runtime was found on the node (none configured or discovered is
    /// installed): there is no namespace that pods would be made from.
    NoRuntime,
    /// Runtimes are installed, but not one of their namespaces could be read (each unit's own
    /// verdict says why).
    NoRuntimeSeen,
}

impl NotJudged {
    /// The reason, in words.
    pub fn why(self) -> &'static str {
        match self {
            NotJudged::ImageTree => "an image tree: nothing is mounted",
            NotJudged::NoRuntime => "no container runtime found",
            NotJudged::NoRuntimeSeen => "no container runtime's namespace could be read",
        }
    }
}

/// What was found for a mode. In JSON: `works` (true, false, or null when not judged),
/// `judged`, and `not_judged` (why, when not judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "JudgementRepr", into = "JudgementRepr")]
pub enum Judgement {
    Works,
    Broken,
    NotJudged(NotJudged),
}

impl Judgement {
    /// The word reports show: never "works" for a mode that was not judged.
    pub fn word(self) -> &'static str {
        match self {
            Judgement::Works => "works",
            Judgement::Broken => "BROKEN",
            Judgement::NotJudged(_) => "not judged",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct JudgementRepr {
    works: Option<bool>,
    /// Absent in state files written before `judged` existed: there `works` was always set.
    #[serde(default)]
    judged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_judged: Option<NotJudged>,
}

impl From<Judgement> for JudgementRepr {
    fn from(j: Judgement) -> Self {
        let (works, not_judged) = match j {
            Judgement::Works => (Some(true), None),
            Judgement::Broken => (Some(false), None),
            Judgement::NotJudged(why) => (None, Some(why)),
        };
        JudgementRepr {
            works,
            judged: Some(works.is_some()),
            not_judged,
        }
    }
}

impl TryFrom<JudgementRepr> for Judgement {
    type Error = String;
    fn try_from(r: JudgementRepr) -> Result<Self, String> {
        match (r.works, r.judged, r.not_judged) {
            (None, Some(false) | None, Some(why)) => Ok(Judgement::NotJudged(why)),
            (Some(true), Some(true) | None, None) => Ok(Judgement::Works),
            (Some(false), Some(true) | None, None) => Ok(Judgement::Broken),
            (works, judged, not_judged) => Err(format!(
                "inconsistent mode verdict: works {works:?}, judged {judged:?}, not_judged {not_judged:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeVerdict {
    pub mode: KubeMode,
    #[serde(flatten)]
    pub judgement: Judgement,
    /// One line: what makes it work, or the unit, file:line and setting, or the mount, to blame.
    pub reason: String,
    pub decided_by: Decider,
    /// What breaks it: a unit, or a path whose mount is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blame: Option<ModeBlame>,
    /// Set when the probe and the flags disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disagreement: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeBlame {
    /// A unit name, or the path whose host mount is to blame.
    pub subject: String,
    /// Where it was judged: `/` or the kubelet's root.
    pub point: PathBuf,
    /// Judged from where a stopped unit will start, not from a running process.
    #[serde(default)]
    pub predicted: bool,
}

/// How a namespace relates to the host's at one point: who receives a mount made there.
/// Ordered from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Relation {
    /// Nothing propagates either way.
    CutOff,
    /// Its mount receives what is mounted in the host's peer group and sends nothing back: a
    /// slave of that group (perhaps also shared in a group of its own, as the namespace systemd
    /// sets up for a unit's sandboxing is).
    Slave,
    /// Its mount is in the host's peer group: both ways.
    Peer,
    /// The host's own namespace: exactly what the host has.
    Same,
}

/// How the mount `theirs` (in the namespace of `view`) relates to the host's mount `host`.
///
/// Propagation runs from a peer group to its members and on to their slaves, never from a
/// slave back. So a host mount that is not shared (private, or only a slave) passes nothing
/// on, and whatever the other side looks like, it is cut off from mounts made there.
pub(crate) fn relation(host: &MountSummary, theirs: Option<&MountSummary>, view: &RuntimeView) -> Relation {
    if view.same_ns_as_host {
        return Relation::Same;
    }
    let (Some(t), Some(group)) = (theirs, host.propagation.shared) else {
        return Relation::CutOff;
    };
    let p = &t.propagation;
    if p.shared == Some(group) {
        Relation::Peer
    } else if p.master == Some(group) || p.propagate_from == Some(group) {
        Relation::Slave
    } else {
        Relation::CutOff
    }
}

/// What a namespace does for pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A container runtime: its containers' namespaces are copies of its own.
    Runtime,
    /// The kubelet: it mounts pod volumes in its own namespace, under its root.
    Kubelet,
}

/// One namespace to judge: a runtime (running, or predicted from its config) or the kubelet.
struct Subject<'a> {
    name: &'a str,
    role: Role,
    /// Per point, when running.
    view: Option<&'a RuntimeView>,
    /// When not running: where it will start, from its loaded settings.
    predicted: Option<Relation>,
    /// The unit's verdict, for its file:line and setting.
    verdict: Option<&'a Verdict>,
}

/// Where a stopped runtime will start: without a namespace of its own on unset/shared (except
/// on 239-241, where shared means a slave namespace), a slave on slave, cut off on private.
/// Settings that force a namespace (`sandboxed`) make unset/shared a shared-and-slave one,
/// which only receives.
fn predict(bits: Option<u64>, version: Option<u32>, sandboxed: bool) -> Option<Relation> {
    match MountFlags::from_bits(bits?)? {
        MountFlags::Unset | MountFlags::Shared if sandboxed => Some(Relation::Slave),
        MountFlags::Unset => Some(Relation::Same),
        MountFlags::Shared if matches!(version, Some(239..=241)) => Some(Relation::Slave),
        MountFlags::Shared => Some(Relation::Same),
        MountFlags::Slave => Some(Relation::Slave),
        MountFlags::Private => Some(Relation::CutOff),
    }
}

/// Whether the host's own mount lets the mode work. The kubelet mounts pod volumes there and
/// the host mounts devices and logs there, and only a shared mount passes those on: a slave
/// only receives from its master, so a mount made on it reaches no container, although the
/// CRI accepts it for HostToContainer. (A container's namespace is a copy of the runtime's,
/// and a copy of a private mount is private.)
fn host_ok(mode: KubeMode, m: &MountSummary) -> bool {
    mode == KubeMode::None || m.propagation.is_shared()
}

/// Why a host mount that is not shared breaks the modes. At a kubelet root it also matters
/// whether the kubelet runs: it makes its root rshared each time it starts (in its own
/// namespace), so a root that is private before it starts is a different finding from one
/// that is so under a running kubelet.
fn host_reason(p: &Point, kubelet_root: bool, kubelet: Option<u32>) -> String {
    let m = &p.mount;
    let what = match (m.propagation.master, m.propagation.unbindable) {
        (Some(master), _) => format!(
            "which is only a slave (master:{master}): it receives from its master and passes nothing on, so a mount the kubelet or the host makes there reaches no container"
        ),
        (None, true) => "which is unbindable".to_string(),
        (None, false) => "which is private".to_string(),
    };
    let when = match (kubelet_root, kubelet) {
        (false, _) => String::new(),
        (true, Some(pid)) => format!(
            "; so under the running kubelet (pid {pid}), which made its root rshared when it started: it was changed since, or the kubelet's namespace is not the host's"
        ),
        (true, None) => "; no kubelet runs: the kubelet makes its root rshared when it starts, in its own namespace, which reaches the host's mount only if that is the host's".to_string(),
    };
    format!(
        "{} is on mount {} ({}, {}), {what}{when}",
        p.path.display(),
        m.id,
        m.mount_point.display(),
        m.fstype
    )
}

/// What a subject at `rel` needs for `mode`. A runtime's containers are copies of its
/// namespace: they receive host mounts as long as it does, and send mounts back only from the
/// host's own group. Pod volumes are mounted by the kubelet: unless it is in the host's group,
/// what it mounts reaches no runtime, in either mode.
fn rel_ok(mode: KubeMode, role: Role, r: Relation) -> bool {
    match (mode, role) {
        (KubeMode::None, _) => true,
        (KubeMode::HostToContainer, Role::Runtime) => r >= Relation::Slave,
        (KubeMode::HostToContainer, Role::Kubelet) | (KubeMode::Bidirectional, _) => r >= Relation::Peer,
    }
}

/// A subject's relation in words: a slave is never called a peer.
fn relation_words(r: Relation, predicted: bool) -> &'static str {
    match (r, predicted) {
        (Relation::Same, false) => "in the host's namespace",
        (Relation::Same, true) => "will start in the host's namespace",
        (Relation::Peer, _) => "a peer of the host's mounts",
        (Relation::Slave, false) => "receives the host's mounts (a slave)",
        (Relation::Slave, true) => "will start as a slave of the host's mounts",
        (Relation::CutOff, false) => "cut off from the host's mounts",
        (Relation::CutOff, true) => "will start cut off from the host's mounts",
    }
}

const MODES: [KubeMode; 3] = [KubeMode::None, KubeMode::HostToContainer, KubeMode::Bidirectional];

/// The three modes, judged from the flags and then, where it reached, from the probe.
pub fn judge(facts: &Facts, verdicts: &[Verdict]) -> Vec<ModeVerdict> {
    let version = facts.systemd.version;
    let mut subjects: Vec<Subject<'_>> = Vec::new();
    for u in &facts.units {
        if u.props.load_state != "loaded" || !u.is_runtime() {
            continue;
        }
        subjects.push(Subject {
            name: &u.name,
            role: Role::Runtime,
            view: u.runtime.as_ref(),
            predicted: if u.runtime.is_none() {
                predict(u.props.mount_flags, version, !u.loaded_sandboxing(version).is_empty())
            } else {
                None
            },
            verdict: verdicts.iter().find(|v| v.subject == u.name),
        });
    }
    if let Some(k) = &facts.kubelet
        && let Some(view) = &k.runtime
    {
        subjects.push(Subject {
            name: &k.name,
            role: Role::Kubelet,
            view: Some(view),
            predicted: None,
            // Its unit's verdict, when that unit is judged (found running it, or listed).
            verdict: verdicts.iter().find(|v| v.subject == k.name),
        });
    }
    let points = &facts.host.points;
    MODES
        .into_iter()
        .map(|mode| {
            let kubelet = facts.kubelet.as_ref().and_then(|k| k.runtime.as_ref()).map(|v| v.pid);
            let kubelet_unit = facts.kubelet.as_ref().map(|k| {
                k.found
                    .as_ref()
                    .and_then(|f| f.unit.as_deref())
                    .unwrap_or(k.name.as_str())
            });
            let mut v = by_flags(mode, points, &subjects, kubelet, kubelet_unit);
            if let Some(results) = &facts.probe
                && mode != KubeMode::None
            {
                let kubelet = facts.kubelet.as_ref().map(|k| k.name.as_str());
                apply_probe(&mut v, results, kubelet);
            }
            v
        })
        .collect()
}

impl ModeVerdict {
    /// Judged, and works.
    pub fn works(&self) -> bool {
        self.judgement == Judgement::Works
    }

    /// Judged, and broken.
    pub fn broken(&self) -> bool {
        self.judgement == Judgement::Broken
    }
}

fn verdict(mode: KubeMode, works: bool, reason: String, blame: Option<ModeBlame>) -> ModeVerdict {
    let judgement = if works { Judgement::Works } else { Judgement::Broken };
    ModeVerdict {
        mode,
        judgement,
        reason,
        decided_by: Decider::Flags,
        blame,
        disagreement: None,
    }
}

fn not_judged(mode: KubeMode, why: NotJudged) -> ModeVerdict {
    ModeVerdict {
        mode,
        judgement: Judgement::NotJudged(why),
        reason: why.why().to_string(),
        decided_by: Decider::Flags,
        blame: None,
        disagreement: None,
    }
}

fn by_flags(
    mode: KubeMode,
    points: &[Point],
    subjects: &[Subject<'_>],
    kubelet: Option<u32>,
    kubelet_unit: Option<&str>,
) -> ModeVerdict {
    if mode == KubeMode::None {
        return verdict(mode, true, "needs no propagation".into(), None);
    }
    if points.is_empty() {
        return not_judged(mode, NotJudged::ImageTree);
    }
    if let Some(p) = points.iter().find(|p| !host_ok(mode, &p.mount)) {
        let blame = ModeBlame {
            subject: p.path.display().to_string(),
            point: p.path.clone(),
            predicted: false,
        };
        // Every point but `/` is a kubelet root.
        let at_kubelet_root = p.path != Path::new("/");
        return verdict(mode, false, host_reason(p, at_kubelet_root, kubelet), Some(blame));
    }
    let shared_ns = SharedNamespace::of(subjects, kubelet_unit);
    // Per subject, its weakest relation over the points, for the summary when all is well.
    let mut weakest: Vec<Option<(Relation, bool)>> = vec![None; subjects.len()];
    for (si, s) in subjects.iter().enumerate() {
        for (i, p) in points.iter().enumerate() {
            let (rel, predicted) = match (s.view, s.predicted) {
                // Unknown: the unit's own verdict says so.
                (Some(view), _) if view.error.is_some() => continue,
                (Some(view), _) => (
                    relation(&p.mount, view.points.get(i).and_then(Option::as_ref), view),
                    false,
                ),
                (None, Some(r)) => (r, true),
                (None, None) => continue,
            };
            if weakest[si].is_none_or(|(w, _)| rel < w) {
                weakest[si] = Some((rel, predicted));
            }
            if rel_ok(mode, s.role, rel) {
                continue;
            }
            if let Some(ns) = &shared_ns
                && ns.members.contains(&si)
            {
                // The kubelet's volumes reach the containers inside the namespace it shares
                // with every runtime, as long as its mount there passes them on.
                let theirs_shared = s
                    .view
                    .and_then(|v| v.points.get(i))
                    .and_then(Option::as_ref)
                    .is_some_and(|m| m.propagation.is_shared());
                if mode == KubeMode::HostToContainer && rel == Relation::Slave && theirs_shared {
                    continue;
                }
                let names: Vec<&str> = ns.members.iter().map(|&m| subjects[m].name).collect();
                let what = if mode == KubeMode::Bidirectional && rel == Relation::Slave {
                    "Bidirectional mounts reach the pods and the kubelet, not the host OS"
                } else {
                    "mounts the host OS makes there do not reach the pods"
                };
                let reason = format!(
                    "{} share a mount namespace of their own, not the host's (a layout such as OpenShift's container-mount-namespace.service): at {} {what}",
                    names.join(" and "),
                    p.path.display()
                );
                let blame = ModeBlame {
                    subject: s.name.to_string(),
                    point: p.path.clone(),
                    predicted: false,
                };
                return verdict(mode, false, reason, Some(blame));
            }
            let how = match (rel, s.role, mode) {
                (Relation::Slave, Role::Kubelet, _) => {
                    "only receives from the host, so the volumes the kubelet mounts there reach no container"
                }
                (Relation::Slave, Role::Runtime, _) => "only receives from the host",
                _ => "is cut off from the host",
            };
            let when = if predicted {
                "when it starts, its namespace"
            } else {
                "its namespace"
            };
            let cause = s.verdict.and_then(|v| v.blame.as_ref()).map_or(String::new(), |b| {
                format!(" ({} at {}:{})", b.setting, b.file.display(), b.line)
            });
            let blame = ModeBlame {
                subject: s.name.to_string(),
                point: p.path.clone(),
                predicted,
            };
            let reason = format!("{}: {when} at {} {how}{cause}", s.name, p.path.display());
            return verdict(mode, false, reason, Some(blame));
        }
    }
    let where_: Vec<String> = points
        .iter()
        .map(|p| {
            let missing = if p.exists { "" } else { ", not created yet" };
            format!("{} {}{missing}", p.path.display(), p.mount.propagation)
        })
        .collect();
    let who: Vec<String> = subjects
        .iter()
        .zip(&weakest)
        .filter_map(|(s, w)| w.map(|(rel, predicted)| format!("{} {}", s.name, relation_words(rel, predicted))))
        .collect();
    // Never "works" for what was not looked at: the host's mounts alone say nothing about the
    // namespace pods are made from.
    let mut runtimes = subjects
        .iter()
        .zip(&weakest)
        .filter(|(s, _)| s.role == Role::Runtime)
        .peekable();
    if runtimes.peek().is_none() {
        return not_judged(mode, NotJudged::NoRuntime);
    }
    if runtimes.all(|(_, w)| w.is_none()) {
        return not_judged(mode, NotJudged::NoRuntimeSeen);
    }
    verdict(mode, true, format!("{}; {}", where_.join(", "), who.join(", ")), None)
}

/// The runtimes and the kubelet, all running in one mount namespace that is not the host's:
/// a deliberate layout (OpenShift's `container-mount-namespace.service`, which `crio.service`
/// and `kubelet.service` enter), named for what it is rather than as a plain break.
struct SharedNamespace {
    /// Indices into the subjects: every running runtime, and the kubelet.
    members: Vec<usize>,
}

impl SharedNamespace {
    /// `kubelet_unit`: the unit the kubelet runs in. A runtime in that very unit (k3s, RKE2)
    /// shares its namespace because it is the unit's own, not one entered on purpose.
    fn of(subjects: &[Subject<'_>], kubelet_unit: Option<&str>) -> Option<Self> {
        let ns_of = |s: &Subject<'_>| {
            s.view
                .filter(|v| !v.same_ns_as_host && v.error.is_none())
                .and_then(|v| v.first_mount)
        };
        let (ki, kubelet) = subjects.iter().enumerate().find(|(_, s)| s.role == Role::Kubelet)?;
        let ns = ns_of(kubelet)?;
        let runtimes: Vec<usize> = subjects
            .iter()
            .enumerate()
            .filter(|(_, s)| s.role == Role::Runtime && s.view.is_some())
            .map(|(i, _)| i)
            .collect();
        if runtimes.is_empty()
            || !runtimes
                .iter()
                .all(|&i| ns_of(&subjects[i]) == Some(ns) && Some(subjects[i].name) != kubelet_unit)
        {
            return None;
        }
        let mut members = runtimes;
        members.push(ki);
        Some(Self { members })
    }
}

/// What a probe result says about `mode`: `None` where it could not tell. For a runtime,
/// HostToContainer needs host mounts to reach a copy of its namespace; for the kubelet, the
/// volumes it mounts must reach the host (and so the runtimes), so that is the direction.
fn probed(mode: KubeMode, r: &ProbeResult, kubelet: Option<&str>) -> Option<bool> {
    match mode {
        KubeMode::None => Some(true),
        KubeMode::HostToContainer if kubelet == Some(r.subject.as_str()) => r.container_to_host,
        KubeMode::HostToContainer => r.host_to_container,
        KubeMode::Bidirectional => match (r.host_to_container, r.container_to_host) {
            (Some(a), Some(b)) => Some(a && b),
            (Some(false), None) | (None, Some(false)) => Some(false),
            _ => None,
        },
    }
}

/// Whether a conclusive probe result speaks about what the flags blamed.
fn covers(r: &ProbeResult, b: &ModeBlame) -> bool {
    r.point == b.point && (r.subject == b.subject || Path::new(&b.subject) == b.point)
}

/// The probe decides where it reached; where it disagrees with the flags, both are said.
fn apply_probe(v: &mut ModeVerdict, results: &[ProbeResult], kubelet: Option<&str>) {
    let conclusive: Vec<(&ProbeResult, bool)> = results
        .iter()
        .filter_map(|r| probed(v.mode, r, kubelet).map(|ok| (r, ok)))
        .collect();
    if conclusive.is_empty() {
        let why = results
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_else(|| "no running runtime to probe".into());
        v.reason = format!("{} (live probe inconclusive: {why})", v.reason);
        return;
    }
    if let Some((r, _)) = conclusive.iter().find(|(_, ok)| !ok) {
        let dir = if r.host_to_container == Some(false)
            && !(v.mode == KubeMode::HostToContainer && kubelet == Some(r.subject.as_str()))
        {
            "a tmpfs mounted on the host did not appear in its namespace"
        } else {
            "a tmpfs mounted in its namespace did not appear on the host"
        };
        let probe_reason = format!("{} at {}: {dir}", r.subject, r.point.display());
        let blame = ModeBlame {
            subject: r.subject.clone(),
            point: r.point.clone(),
            predicted: false,
        };
        match v.judgement {
            Judgement::Works => {
                v.disagreement = Some(format!(
                    "the flags say it works ({}); the live probe says it does not",
                    v.reason
                ));
                v.reason = format!("{probe_reason} (live probe)");
                v.blame = Some(blame);
            }
            // The flags could not tell; the probe can.
            Judgement::NotJudged(_) => {
                v.reason = format!("{probe_reason} (live probe)");
                v.blame = Some(blame);
            }
            // Both say broken: the flags' reason names the file or mount to blame.
            Judgement::Broken => v.reason = format!("{}; the live probe agrees ({probe_reason})", v.reason),
        }
        v.judgement = Judgement::Broken;
        v.decided_by = Decider::Probe;
        return;
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut subjects: Vec<&str> = conclusive.iter().map(|(r, _)| r.subject.as_str()).collect();
    let mut points: Vec<&Path> = conclusive.iter().map(|(r, _)| r.point.as_path()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    points.sort_unstable();
    points.dedup();
    let seen = format!(
        "the live probe saw mounts cross as needed ({} at {})",
        count(subjects.len(), "namespace"),
        count(points.len(), "point")
    );
    match &v.blame {
        None if matches!(v.judgement, Judgement::NotJudged(_)) => {
            v.judgement = Judgement::Works;
            v.reason = seen;
        }
        None => v.reason = format!("{}; {seen}", v.reason),
        Some(b) if conclusive.iter().any(|(r, _)| covers(r, b)) => {
            v.disagreement = Some(format!(
                "the flags say it is broken ({}); the live probe says it works",
                v.reason
            ));
            v.judgement = Judgement::Works;
            v.reason = seen;
            v.blame = None;
        }
        // What the flags blame (a stopped runtime, say) is not something the probe reached.
        Some(_) => {
            v.reason = format!(
                "{}; the live probe could not reach that, and found nothing else",
                v.reason
            );
            return;
        }
    }
    v.decided_by = Decider::Probe;
}

/// The node's status as far as the required mode goes: what the culprit's own verdict already
/// says (so a pending restart stays "restart pending"), else drift.
pub fn status(modes: &[ModeVerdict], required: KubeMode, verdicts: &[Verdict]) -> Status {
    // A mode that was not judged is not broken either: the report says "not judged".
    let Some(m) = modes.iter().find(|m| m.mode == required && m.broken()) else {
        return Status::Ok;
    };
    let own = m
        .blame
        .as_ref()
        .and_then(|b| verdicts.iter().find(|v| v.subject == b.subject))
        .map(|v| v.status)
        .filter(|s| !matches!(s, Status::Ok | Status::NotInstalled));
    own.unwrap_or(Status::Drift)
}

/// The required mode's verdict, for one-line summaries.
pub fn required(modes: &[ModeVerdict], required: KubeMode) -> Option<&ModeVerdict> {
    modes.iter().find(|m| m.mode == required)
}

impl fmt::Display for ModeVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.judgement {
            Judgement::Works => "works",
            Judgement::Broken => "broken",
            Judgement::NotJudged(_) => "not judged",
        };
        write!(f, "{} {word}: {}", self.mode, self.reason)
    }
}
