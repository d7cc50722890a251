//! observe → plan → act → verify: the one engine that `check`, `apply` and (later) the daemon
//! and the offline mode drive.

use crate::act::{self, Host, Outcome};
use crate::config::Config;
use crate::observe::{self, Facts, ObserveError};
use crate::plan::{self, Plan, Status};
use crate::systemd::Systemd;

/// A read-only look: facts and what they mean.
pub struct Checked {
    pub facts: Facts,
    pub plan: Plan,
}

pub fn check(sys: &Systemd, cfg: &Config) -> Result<Checked, ObserveError> {
    let facts = observe::observe(sys, cfg)?;
    let plan = plan::plan(&facts, cfg);
    Ok(Checked { facts, plan })
}

/// The result of an apply: the plan before, what was done, and a fresh look afterwards.
pub struct Applied {
    pub before: Checked,
    pub outcomes: Vec<Outcome>,
    /// `None` for a dry run, or when nothing was done (then `before` still holds).
    pub after: Option<Checked>,
}

impl Applied {
    pub fn final_plan(&self) -> &Plan {
        self.after.as_ref().map_or(&self.before.plan, |c| &c.plan)
    }

    pub fn status(&self) -> Status {
        if self.outcomes.iter().any(Outcome::failed) {
            return Status::Unknown;
        }
        self.final_plan().status()
    }
}

pub fn apply(sys: &Systemd, cfg: &Config, dry_run: bool) -> Result<Applied, ObserveError> {
    let before = check(sys, cfg)?;
    if dry_run || before.plan.actions.is_empty() {
        return Ok(Applied {
            before,
            outcomes: Vec::new(),
            after: None,
        });
    }
    let outcomes = act::act(
        &Host {
            systemd: sys,
            config: cfg,
        },
        &before.plan.actions,
    );
    // Verify: what matters is what systemd and the kernel say now, not what was attempted.
    let after = check(sys, cfg)?;
    Ok(Applied {
        before,
        outcomes,
        after: Some(after),
    })
}
