//! What a check says in short: the one line `--oneline`, node-problem-detector and the daemon's
//! STATUS show, and the block on stale containers that `check` and `status` print. Both are
//! escaped (crate::escape): volume paths and names are a pod author's text.

use crate::config::KubeMode;
use crate::engine::containers::{Gets, Judged, StaleContainer};
use crate::engine::modes::{self, ModeVerdict};
use crate::engine::verdict::{Status, Verdict, worst};

/// One line a person, or node-problem-detector, can act on: the worst thing first, naming the
/// unit, file:line and setting, or the mount; when all is well, what is and what works.
pub fn one_line(verdicts: &[Verdict], modes: &[ModeVerdict], required: KubeMode, containers: &Judged) -> String {
    crate::escape::line(&unescaped(verdicts, modes, required, containers)).into_owned()
}

fn unescaped(verdicts: &[Verdict], modes: &[ModeVerdict], required: KubeMode, containers: &Judged) -> String {
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

/// The stale containers, one block each: who, each volume (asked for, gets, why), the remedy.
pub fn containers_section(s: &mut String, stale: &[StaleContainer]) {
    if stale.is_empty() {
        return;
    }
    crate::outln!(
        s,
        "  STALE CONTAINERS ({}): their volumes no longer propagate as they asked; a node fix does not reach them, a new container does",
        stale.len()
    );
    for c in stale {
        crate::outln!(
            s,
            "  {} ({} {})",
            c.label(),
            c.runtime,
            c.id.chars().take(12).collect::<String>()
        );
        for v in &c.volumes {
            let by = if v.probed { ", live check" } else { "" };
            crate::outln!(
                s,
                "    {} from {}: asked {} ({}), {}{by}: {}",
                v.destination.display(),
                v.source.display(),
                v.requested,
                v.option,
                match v.gets {
                    Gets::Nothing => "gets NOTHING",
                    Gets::ReceivesOnly => "only RECEIVES",
                    Gets::Both => "gets both ways",
                },
                v.detail
            );
        }
        crate::outln!(s, "    remedy: {}", c.remedy);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engine::containers::{Runtime, StaleVolume};

    /// A container whose volume path a pod's author chose to clear the screen and forge a line.
    fn hostile() -> Judged {
        Judged {
            stale: vec![StaleContainer {
                runtime: Runtime::Docker,
                id: "0123456789abcdef".into(),
                pod_namespace: Some("ns\u{2028}x".into()),
                pod_name: Some("pod".into()),
                container: "c\u{9b}2J".into(),
                pid: Some(1),
                volumes: vec![StaleVolume {
                    source: PathBuf::from("/var/lib/kubelet/vol2"),
                    destination: PathBuf::from("/v\x1b[2Jx\nok: all is well"),
                    requested: KubeMode::HostToContainer,
                    option: "rslave".into(),
                    gets: Gets::Nothing,
                    detail: "theirs \x07private".into(),
                    probed: false,
                }],
                remedy: "delete the pod".into(),
            }],
            unsure: Vec::new(),
            looked_at: 1,
        }
    }

    fn no_controls(s: &str) {
        assert!(
            !s.chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
            "{s:?}"
        );
    }

    #[test]
    fn the_one_line_escapes_what_a_pod_wrote() {
        let line = one_line(&[], &[], KubeMode::HostToContainer, &hostile());
        no_controls(&line);
        assert!(line.starts_with("DRIFT: stale container ns\\u{2028}x/pod/c\\u{9b}2J: /v\\x1b[2Jx\\nok: all is well from /var/lib/kubelet/vol2"), "{line}");
    }

    #[test]
    fn the_containers_block_has_only_its_own_lines() {
        let mut s = String::new();
        containers_section(&mut s, &hostile().stale);
        // A header, the container, its one volume, the remedy: four lines, whatever it wrote.
        assert_eq!(s.lines().count(), 4, "{s}");
        for l in s.lines() {
            no_controls(l);
        }
        assert!(s.contains("    /v\\x1b[2Jx\\nok: all is well from /var/lib/kubelet/vol2: asked HostToContainer (rslave), gets NOTHING: theirs \\x07private\n"), "{s}");
    }
}
