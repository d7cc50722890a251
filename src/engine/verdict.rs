//! The words every part of mountprop judges in: a verdict per unit or path, its status, and
//! the file, line and setting to blame. Plain data, used by the planner, the Kubernetes modes,
//! reports and the daemon alike.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::node::namespacing;
use crate::node::unitfile::MountFlagsSetting;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    NotInstalled,
    /// Fixed in the configuration; the running runtime still has the old namespace.
    RestartPending,
    Drift,
    /// Could not be judged.
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok | Status::NotInstalled => 0,
            Status::Drift | Status::RestartPending => 1,
            Status::Unknown => 2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotInstalled => "absent",
            Status::RestartPending => "PENDING",
            Status::Drift => "DRIFT",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// The file, line and setting to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blame {
    pub file: PathBuf,
    pub line: usize,
    pub setting: String,
}

impl From<&namespacing::Setting> for Blame {
    fn from(s: &namespacing::Setting) -> Self {
        Self {
            file: s.path.clone(),
            line: s.line,
            setting: s.assignment(),
        }
    }
}

impl From<&MountFlagsSetting> for Blame {
    fn from(s: &MountFlagsSetting) -> Self {
        Self {
            file: s.path.clone(),
            line: s.line,
            setting: format!("MountFlags={}", s.value.as_value()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// A unit name or a path.
    pub subject: String,
    pub status: Status,
    /// One line a person can act on.
    pub detail: String,
    /// A few words for summaries such as the daemon's STATUS line.
    #[serde(default)]
    pub short: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blame: Option<Blame>,
}

/// The worst of some verdicts; a unit that is not installed counts as ok.
pub fn worst(verdicts: &[Verdict]) -> Status {
    verdicts
        .iter()
        .map(|v| {
            if v.status == Status::NotInstalled {
                Status::Ok
            } else {
                v.status
            }
        })
        .max()
        .unwrap_or(Status::Ok)
}
