//! The one-line summary of a check: what `--oneline`, node-problem-detector and the daemon's
//! STATUS show.

use crate::config::KubeMode;
use crate::engine::containers::Judged;
use crate::engine::modes::{self, ModeVerdict};
use crate::engine::verdict::{Status, Verdict, worst};

/// One line a person, or node-problem-detector, can act on: the worst thing first, naming the
/// unit, file:line and setting, or the mount; when all is well, what is and what works.
pub fn one_line(verdicts: &[Verdict], modes: &[ModeVerdict], required: KubeMode, containers: &Judged) -> String {
    let node = node_line(verdicts, modes, required);
    let stale = &containers.stale;
    match stale.first() {
        None if node.starts_with("ok: ") && containers.looked_at > 0 => {
            format!(
                "{node}; {} container(s) with propagated volumes, none stale",
                containers.looked_at
            )
        }
        None => node,
        Some(_) if !node.starts_with("ok: ") => format!("{node}; and {} stale container(s)", stale.len()),
        Some(first) => {
            let more = if stale.len() > 1 {
                format!(" (+{} more)", stale.len() - 1)
            } else {
                String::new()
            };
            format!("DRIFT: stale container {}{more}", first.line())
        }
    }
}

/// [`one_line`] for the node alone.
fn node_line(verdicts: &[Verdict], modes: &[ModeVerdict], required: KubeMode) -> String {
    let worst = worst(verdicts);
    if worst != Status::Ok {
        let bad: Vec<&Verdict> = verdicts.iter().filter(|v| v.status == worst).collect();
        let more = if bad.len() > 1 {
            format!(" (+{} more)", bad.len() - 1)
        } else {
            String::new()
        };
        return format!("{}: {} {}{more}", worst.label(), bad[0].subject, bad[0].detail);
    }
    let mode = modes::required(modes, required);
    if let Some(m) = mode.filter(|m| m.broken()) {
        return format!("DRIFT: {m}");
    }
    let mut parts: Vec<String> = verdicts
        .iter()
        .map(|v| match v.status {
            Status::NotInstalled => format!("{} absent", v.subject),
            _ => format!("{} {}", v.subject, v.short),
        })
        .collect();
    match mode {
        Some(m) if m.works() => {
            let by = if m.decided_by == modes::Decider::Probe {
                " (live probe)"
            } else {
                ""
            };
            parts.push(format!("{} works{by}", m.mode));
        }
        // Never "works" for what was not looked at.
        Some(m) => parts.push(format!("{} not judged ({})", m.mode, m.reason)),
        None => {}
    }
    format!("ok: {}", parts.join("; "))
}
