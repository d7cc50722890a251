//! A Prometheus textfile for node_exporter's textfile collector, written atomically (the
//! collector may read at any moment).

use std::fmt::Write as _;
use std::path::Path;

use crate::daemon::state::State;
use crate::engine::verdict::Status;
use crate::node::atomicfile::{Dir, FileError};

/// Label values escaped per the text exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(s: &State) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let compliant = s.compliant();
    metric(
        "mountprop_compliant",
        "gauge",
        "1 if every path and runtime unit was as needed at the last check.",
        vec![(String::new(), u8::from(compliant).to_string())],
    );
    metric(
        "mountprop_check_ok",
        "gauge",
        "1 if the last check could run (system bus and systemd reachable).",
        vec![(String::new(), u8::from(s.error.is_none()).to_string())],
    );
    metric(
        "mountprop_unit_mount_flags",
        "gauge",
        "MountFlags systemd reports for the unit: 0 unset, 1048576 shared, 524288 slave, 262144 private.",
        s.unit_mount_flags
            .iter()
            .map(|(u, f)| (format!("{{unit=\"{}\"}}", label(u)), f.to_string()))
            .collect(),
    );
    metric(
        "mountprop_unit_ok",
        "gauge",
        "1 if the unit's verdict is ok or the unit is not installed.",
        s.verdicts
            .iter()
            .filter(|v| v.subject.ends_with(".service"))
            .map(|v| {
                let ok = matches!(v.status, Status::Ok | Status::NotInstalled);
                (format!("{{unit=\"{}\"}}", label(&v.subject)), u8::from(ok).to_string())
            })
            .collect(),
    );
    metric(
        "mountprop_path_shared",
        "gauge",
        "1 if the mount holding the path is shared.",
        s.path_shared
            .iter()
            .map(|(p, sh)| (format!("{{path=\"{}\"}}", label(p)), u8::from(*sh).to_string()))
            .collect(),
    );
    metric(
        "mountprop_containers_stale",
        "gauge",
        "Running containers whose volumes no longer propagate as they asked (restart those pods).",
        vec![(String::new(), s.containers.stale.len().to_string())],
    );
    metric(
        "mountprop_remediations_total",
        "counter",
        "Fixes mountprop made since the daemon started.",
        vec![(String::new(), s.remediations_total.to_string())],
    );
    metric(
        "mountprop_held_back",
        "gauge",
        "Fixes held back because something keeps undoing them.",
        vec![(String::new(), s.held_back.len().to_string())],
    );
    metric(
        "mountprop_last_check_timestamp_seconds",
        "gauge",
        "When the last check ran (Unix time).",
        vec![(String::new(), s.last_check_unix.unwrap_or(0).to_string())],
    );
    metric(
        "mountprop_check_interval_seconds",
        "gauge",
        "The daemon's interval_secs: a full check runs at least this often.",
        vec![(String::new(), s.interval_secs.to_string())],
    );
    out
}

pub fn write(path: &Path, s: &State) -> Result<(), FileError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(FileError::WrongType {
            path: path.to_path_buf(),
            expected: "file path",
        });
    };
    Dir::open(dir, Some(0o755))?.write_atomic(name, render(s).as_bytes(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::verdict::Verdict;

    #[test]
    fn renders_the_documented_metrics() {
        let mut s = State::new("cfg".into(), 60);
        s.status = Status::Ok;
        s.remediations_total = 3;
        s.last_check_unix = Some(1_800_000_000);
        s.unit_mount_flags.insert("docker.service".into(), 1_048_576);
        s.path_shared.insert("/".into(), true);
        s.path_shared.insert("/var/lib/\"odd\"".into(), false);
        s.verdicts = vec![Verdict {
            subject: "docker.service".into(),
            status: Status::Ok,
            detail: String::new(),
            short: String::new(),
            blame: None,
        }];
        let text = render(&s);
        for line in [
            "mountprop_compliant 1",
            "mountprop_check_ok 1",
            "mountprop_unit_mount_flags{unit=\"docker.service\"} 1048576",
            "mountprop_unit_ok{unit=\"docker.service\"} 1",
            "mountprop_path_shared{path=\"/\"} 1",
            "mountprop_path_shared{path=\"/var/lib/\\\"odd\\\"\"} 0",
            "mountprop_remediations_total 3",
            "mountprop_held_back 0",
            "mountprop_containers_stale 0",
            "mountprop_last_check_timestamp_seconds 1800000000",
            "mountprop_check_interval_seconds 60",
            "# TYPE mountprop_remediations_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
