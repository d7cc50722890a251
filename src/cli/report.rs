//! What `check` and `apply` print: a table for people, JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::KubeMode;
use crate::engine::act::{ActionResult, Outcome};
use crate::engine::containers::{Judged, StaleContainer};
use crate::engine::modes::{ModeVerdict, ProbeResult};
use crate::engine::observe::SystemdInfo;
use crate::engine::plan::Action;
use crate::engine::summary;
use crate::engine::verdict::{Status, Verdict};
use crate::engine::{Applied, Checked};

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub command: &'static str,
    pub config: String,
    pub systemd: Option<&'a SystemdInfo>,
    pub status: Status,
    pub exit_code: u8,
    /// For apply: the state after it acted.
    pub verdicts: &'a [Verdict],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<&'a [Verdict]>,
    /// check and dry runs: what apply would do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<&'a [Action]>,
    /// apply: what was done, with each result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<&'a [Outcome]>,
    pub notes: &'a [String],
    /// `MountFlags` of each loaded unit: what systemd reports on a live node, what systemd will
    /// load in an image tree (0 unset, 1048576 shared, 524288 slave, 262144 private).
    pub mount_flags: BTreeMap<&'a str, u64>,
    /// Which Kubernetes mountPropagation modes work.
    pub modes: &'a [ModeVerdict],
    pub required_mode: KubeMode,
    /// What the live probe saw (`mountprop probe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<&'a [ProbeResult]>,
    /// Running containers whose volumes no longer propagate as they asked.
    pub stale_containers: &'a [StaleContainer],
    /// How many running containers asked for propagation on some volume.
    pub containers_looked_at: usize,
    #[serde(skip)]
    judged: &'a Judged,
}

fn mount_flags(c: &Checked) -> BTreeMap<&str, u64> {
    c.facts
        .units
        .iter()
        .filter_map(|u| u.props.mount_flags.map(|f| (u.name.as_str(), f)))
        .collect()
}

impl<'a> Report<'a> {
    pub fn for_check(c: &'a Checked, config: String) -> Self {
        let status = c.plan.status();
        Self {
            command: "check",
            config,
            systemd: Some(&c.facts.systemd),
            status,
            exit_code: status.exit_code(),
            verdicts: &c.plan.verdicts,
            before: None,
            planned: Some(&c.plan.actions),
            actions: None,
            notes: &c.plan.notes,
            mount_flags: mount_flags(c),
            modes: &c.plan.modes,
            required_mode: c.plan.required_mode,
            probe: c.facts.probe.as_deref(),
            stale_containers: &c.plan.containers.stale,
            containers_looked_at: c.plan.containers.looked_at,
            judged: &c.plan.containers,
        }
    }

    /// The same report under another command's name.
    pub fn named(mut self, command: &'static str) -> Self {
        self.command = command;
        self
    }

    pub fn one_line(&self) -> String {
        summary::one_line(self.verdicts, self.modes, self.required_mode, self.judged)
    }

    pub fn for_apply(a: &'a Applied, config: String, dry_run: bool) -> Self {
        let status = a.status();
        let (command, planned, actions, before) = if dry_run {
            ("apply --dry-run", Some(a.before.plan.actions.as_slice()), None, None)
        } else {
            let before = a.after.as_ref().map(|_| a.before.plan.verdicts.as_slice());
            ("apply", None, Some(a.outcomes.as_slice()), before)
        };
        let last = a.after.as_ref().unwrap_or(&a.before);
        Self {
            command,
            config,
            systemd: Some(&last.facts.systemd),
            status,
            exit_code: status.exit_code(),
            verdicts: &last.plan.verdicts,
            before,
            planned,
            actions,
            notes: &last.plan.notes,
            mount_flags: mount_flags(last),
            modes: &last.plan.modes,
            required_mode: last.plan.required_mode,
            probe: last.facts.probe.as_deref(),
            stale_containers: &last.plan.containers.stale,
            containers_looked_at: last.plan.containers.looked_at,
            judged: &last.plan.containers,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"cannot encode report: {e}\"}}"))
    }

    pub fn human(&self) -> String {
        let mut s = String::new();
        let sd = self
            .systemd
            .map_or("systemd ?".to_string(), |sd| format!("systemd {}", sd.version_string));
        crate::outln!(&mut s, "mountprop {}: {sd}; config: {}", self.command, self.config);
        if let Some(outcomes) = self.actions {
            for o in outcomes {
                let r = match &o.result {
                    ActionResult::Done => "done".to_string(),
                    ActionResult::Unchanged => "unchanged".to_string(),
                    ActionResult::Skipped(why) => format!("skipped ({why})"),
                    ActionResult::Failed(why) => format!("FAILED: {why}"),
                };
                crate::outln!(&mut s, "  {}: {r}", o.description);
            }
        }
        let w = self
            .verdicts
            .iter()
            .map(|v| v.subject.len())
            .max()
            .unwrap_or(0)
            .max("SUBJECT".len());
        match self.before {
            Some(before) => {
                crate::outln!(&mut s, "  {:w$}  {:7}  {:7}  DETAIL", "SUBJECT", "BEFORE", "AFTER");
                for v in self.verdicts {
                    let was = before
                        .iter()
                        .find(|b| b.subject == v.subject)
                        .map_or("-", |b| b.status.label());
                    crate::outln!(
                        &mut s,
                        "  {:w$}  {:7}  {:7}  {}",
                        v.subject,
                        was,
                        v.status.label(),
                        v.detail
                    );
                }
            }
            None => {
                crate::outln!(&mut s, "  {:w$}  {:7}  DETAIL", "SUBJECT", "STATUS");
                for v in self.verdicts {
                    crate::outln!(&mut s, "  {:w$}  {:7}  {}", v.subject, v.status.label(), v.detail);
                }
            }
        }
        if let Some(results) = self.probe {
            let yes = |b: Option<bool>| match b {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "?",
            };
            if results.is_empty() {
                crate::outln!(&mut s, "  live probe: no running runtime to probe");
            }
            for r in results {
                let why = r.error.as_ref().map_or(String::new(), |e| format!(" ({e})"));
                crate::outln!(
                    &mut s,
                    "  live probe: {} at {}: host to it {}, it to host {}{why}",
                    r.subject,
                    r.point.display(),
                    yes(r.host_to_container),
                    yes(r.container_to_host)
                );
            }
        }
        if !self.modes.is_empty() {
            // "not judged" is wider than the other words; the column grows only when it shows.
            let rw = self
                .modes
                .iter()
                .map(|m| m.judgement.word().len())
                .max()
                .unwrap_or(0)
                .max(7);
            crate::outln!(&mut s, "  {:26}  {:rw$}  WHY", "KUBERNETES MODE", "RESULT");
            for m in self.modes {
                let result = m.judgement.word();
                let name = if m.mode == self.required_mode {
                    format!("{} (required)", m.mode)
                } else {
                    m.mode.to_string()
                };
                crate::outln!(&mut s, "  {name:26}  {result:rw$}  {}", m.reason);
                if let Some(d) = &m.disagreement {
                    crate::outln!(&mut s, "  {:26}  {:rw$}  note: {d}", "", "");
                }
            }
        }
        summary::containers_section(&mut s, self.stale_containers);
        for n in self.notes {
            crate::outln!(&mut s, "  note: {n}");
        }
        if let Some(planned) = self.planned {
            if planned.is_empty() {
                crate::outln!(&mut s, "  apply would change nothing");
            } else {
                let verb = if self.command == "check" {
                    "apply would"
                } else {
                    "would"
                };
                for a in planned {
                    crate::outln!(&mut s, "  {verb}: {a}");
                }
            }
        }
        let word = match self.status {
            Status::Ok | Status::NotInstalled => "compliant",
            Status::RestartPending => "restart pending",
            Status::Drift => "drift",
            Status::Unknown => "could not finish",
        };
        crate::outln!(&mut s, "result: {word} (exit {})", self.exit_code);
        s
    }
}
