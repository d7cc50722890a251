//! observe → plan → act → verify: the one engine that `check`, `apply` and (later) the daemon
//! and the offline mode drive.

pub mod act;
pub mod containers;
pub mod discover;
pub mod dropin;
pub mod modes;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod summary;
pub mod tracker;
pub mod verdict;

pub use crate::engine::act::Node;
use std::time::Duration;

use crate::config::Config;
use crate::engine::act::{Host, Outcome};
use crate::engine::observe::{Facts, ObserveError};
use crate::engine::plan::{Action, Plan, Status};

/// A read-only look: facts and what they mean.
pub struct Checked {
    pub facts: Facts,
    pub plan: Plan,
}

/// How much a look takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    Everything,
    /// Everything, and the live propagation probe (real mounts, each taken away again),
    /// within this time.
    Probe(Duration),
    /// The host's mounts only: no D-Bus, so a path is fixed even while systemd is busy or gone.
    Paths,
}

/// Observes and plans.
pub fn check(node: Node<'_>, cfg: &Config, look: Look) -> Result<Checked, ObserveError> {
    let facts = match (node, look) {
        (Node::Image(root), _) => observe::observe_image(root, cfg),
        (Node::Host, _) | (Node::Live(_), Look::Paths) => observe::observe_paths(cfg)?,
        (Node::Live(sys), Look::Everything) => observe::observe(sys, cfg)?,
        (Node::Live(sys), Look::Probe(limit)) => {
            let mut f = observe::observe(sys, cfg)?;
            f.probe = Some(probe::run(&f, limit));
            probe::containers(&mut f, limit);
            f
        }
    };
    let plan = plan::plan(&facts, cfg);
    Ok(Checked { facts, plan })
}

/// The result of an apply: the plan before, what was done, and a fresh look afterwards.
pub struct Applied {
    pub before: Checked,
    pub outcomes: Vec<Outcome>,
    /// The look after acting; `None` for a dry run or when nothing was done.
    pub after: Option<Checked>,
    /// Set when the look after acting failed (e.g. the bus went away meanwhile).
    pub verify_error: Option<String>,
}

impl Applied {
    pub fn final_plan(&self) -> &Plan {
        self.after.as_ref().map_or(&self.before.plan, |c| &c.plan)
    }

    pub fn status(&self) -> Status {
        if self.verify_error.is_some() || self.outcomes.iter().any(Outcome::failed) {
            return Status::Unknown;
        }
        self.final_plan().status()
    }
}

pub fn apply(node: Node<'_>, cfg: &Config, dry_run: bool) -> Result<Applied, ObserveError> {
    let before = check(node, cfg, Look::Everything)?;
    if dry_run {
        return Ok(Applied {
            before,
            outcomes: Vec::new(),
            after: None,
            verify_error: None,
        });
    }
    let actions = before.plan.actions.clone();
    Ok(carry_out(node, cfg, before, &actions, Look::Everything, &|| true))
}

/// act and verify: runs `actions` (the plan's, or a subset of them) and looks again, as far
/// as `look` says. `keepalive` is called during long waits; returning false abandons the wait.
pub fn carry_out(
    node: Node<'_>,
    cfg: &Config,
    before: Checked,
    actions: &[Action],
    look: Look,
    keepalive: &dyn Fn() -> bool,
) -> Applied {
    if actions.is_empty() {
        return Applied {
            before,
            outcomes: Vec::new(),
            after: None,
            verify_error: None,
        };
    }
    let outcomes = act::act(
        &Host {
            node,
            config: cfg,
            keepalive,
        },
        actions,
    );
    // Verify: what matters is what systemd and the kernel say now, not what was attempted.
    let (after, verify_error) = match check(node, cfg, look) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Applied {
        before,
        outcomes,
        after,
        verify_error,
    }
}
