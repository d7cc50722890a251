//! No fights: a fix that something keeps undoing is made at most `max` times per window;
//! after that mountprop reports instead of fixing, and keeps checking. Pure, with time passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::plan::Action;

/// The thing an action fixes; `None` for actions that only follow others (reload, marker).
pub fn target_of(action: &Action) -> Option<String> {
    match action {
        Action::MakeShared { mount_point, .. } => Some(format!("propagation of {}", mount_point.display())),
        Action::WriteDropIn { path, .. } => Some(path.display().to_string()),
        Action::Restart { unit } => Some(format!("restart of {unit}")),
        Action::Reload { .. } | Action::MarkNeedsRestart { .. } | Action::Enable { .. } => None,
    }
}

/// A fix held back because it was made too often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    pub target: String,
    pub fixes: usize,
    /// Seconds until a fix is allowed again.
    pub retry_in_secs: u64,
}

pub struct Limiter {
    max: usize,
    window: Duration,
    history: HashMap<String, VecDeque<Instant>>,
}

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max as usize,
            window,
            history: HashMap::new(),
        }
    }

    /// Takes new limits and keeps what was recorded.
    pub fn set_limits(&mut self, max: u32, window: Duration) {
        self.max = max as usize;
        self.window = window;
    }

    fn recent(&self, target: &str, now: Instant) -> impl Iterator<Item = &Instant> {
        let window = self.window;
        self.history
            .get(target)
            .into_iter()
            .flatten()
            .filter(move |t| now.saturating_duration_since(**t) < window)
    }

    /// Notes a fix that was made.
    pub fn record(&mut self, action: &Action, now: Instant) {
        let Some(target) = target_of(action) else { return };
        let window = self.window;
        let h = self.history.entry(target).or_default();
        h.push_back(now);
        while h.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            h.pop_front();
        }
    }

    /// The actions that may run now, and the fixes held back. A held-back drop-in takes its
    /// unit out of the reload and drops that unit's restart and marker, which could not help.
    pub fn filter(&self, actions: &[Action], now: Instant) -> (Vec<Action>, Vec<Suppressed>) {
        let mut held = Vec::new();
        let mut held_units: Vec<&str> = Vec::new();
        for a in actions {
            let Some(target) = target_of(a) else { continue };
            let recent: Vec<&Instant> = self.recent(&target, now).collect();
            if recent.len() >= self.max {
                let oldest = recent.iter().min().copied().copied().unwrap_or(now);
                let retry = self.window.saturating_sub(now.saturating_duration_since(oldest));
                held.push(Suppressed {
                    target,
                    fixes: recent.len(),
                    retry_in_secs: retry.as_secs().max(1),
                });
                if let Action::WriteDropIn { unit, .. } | Action::Restart { unit } = a {
                    held_units.push(unit);
                }
            }
        }
        let held_targets: Vec<&str> = held.iter().map(|h| h.target.as_str()).collect();
        let mut out = Vec::new();
        for a in actions {
            match a {
                Action::Reload { units } => {
                    let units: Vec<String> = units
                        .iter()
                        .filter(|u| !held_units.contains(&u.as_str()))
                        .cloned()
                        .collect();
                    if !units.is_empty() {
                        out.push(Action::Reload { units });
                    }
                }
                Action::MarkNeedsRestart { unit } | Action::Restart { unit } if held_units.contains(&unit.as_str()) => {
                }
                a if target_of(a).is_some_and(|t| held_targets.contains(&t.as_str())) => {}
                a => out.push(a.clone()),
            }
        }
        (out, held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(unit: &str) -> Action {
        Action::WriteDropIn {
            unit: unit.into(),
            path: format!("/etc/systemd/system/{unit}.d/90-mountprop.conf").into(),
            content: "x".into(),
        }
    }

    fn root() -> Action {
        Action::MakeShared {
            mount_point: "/".into(),
            for_paths: vec!["/".into()],
        }
    }

    #[test]
    fn allows_max_fixes_per_window_then_holds_back_then_allows_again() {
        let t0 = Instant::now();
        let mut l = Limiter::new(3, Duration::from_secs(600));
        let plan = vec![root()];
        for i in 0..3 {
            let now = t0 + Duration::from_secs(i);
            let (ok, held) = l.filter(&plan, now);
            assert_eq!(ok, plan, "fix {i} allowed");
            assert!(held.is_empty());
            l.record(&plan[0], now);
        }
        let (ok, held) = l.filter(&plan, t0 + Duration::from_secs(10));
        assert!(ok.is_empty());
        assert_eq!(
            held,
            [Suppressed {
                target: "propagation of /".into(),
                fixes: 3,
                retry_in_secs: 590
            }]
        );
        // The first fix ages out of the window.
        let (ok, _) = l.filter(&plan, t0 + Duration::from_secs(600));
        assert_eq!(ok, plan);
    }

    #[test]
    fn a_held_back_dropin_takes_its_unit_out_of_reload_restart_and_marker() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, Duration::from_secs(60));
        l.record(&write("docker.service"), t0);
        let plan = vec![
            root(),
            write("docker.service"),
            write("crio.service"),
            Action::Reload {
                units: vec!["docker.service".into(), "crio.service".into()],
            },
            Action::Restart {
                unit: "docker.service".into(),
            },
            Action::MarkNeedsRestart {
                unit: "docker.service".into(),
            },
            Action::MarkNeedsRestart {
                unit: "crio.service".into(),
            },
        ];
        let (ok, held) = l.filter(&plan, t0 + Duration::from_secs(1));
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].target, "/etc/systemd/system/docker.service.d/90-mountprop.conf");
        assert_eq!(
            ok,
            vec![
                root(),
                write("crio.service"),
                Action::Reload {
                    units: vec!["crio.service".into()]
                },
                Action::MarkNeedsRestart {
                    unit: "crio.service".into()
                },
            ]
        );
    }

    #[test]
    fn a_reload_with_no_unit_left_is_dropped() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, Duration::from_secs(60));
        l.record(&write("docker.service"), t0);
        let plan = vec![
            write("docker.service"),
            Action::Reload {
                units: vec!["docker.service".into()],
            },
        ];
        let (ok, _) = l.filter(&plan, t0);
        assert!(ok.is_empty());
    }

    #[test]
    fn reload_and_markers_are_never_limited_themselves() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1, Duration::from_secs(60));
        let reload = Action::Reload {
            units: vec!["a.service".into()],
        };
        for _ in 0..5 {
            l.record(&reload, t0);
        }
        assert_eq!(l.filter(std::slice::from_ref(&reload), t0).0, vec![reload]);
    }
}
