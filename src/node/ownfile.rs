//! mountprop's own files as they are on disk: how it knows a drop-in as its own (it never
//! touches any other), where a unit's drop-in goes, and what it found there.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// First line of every drop-in mountprop writes; the mark by which it knows its own files.
pub const HEADER: &str = "# Managed by mountprop.";

/// Whether `content` is a file mountprop wrote.
pub fn is_ours(content: &[u8]) -> bool {
    content.starts_with(HEADER.as_bytes())
}

/// `<root>/etc/systemd/system/<unit>.d`.
pub fn dir_for(root: &Path, unit: &str) -> PathBuf {
    root.join("etc/systemd/system").join(format!("{unit}.d"))
}

/// mountprop's drop-in for one unit: where it goes, and what is there now.
#[derive(Debug, Clone, Serialize)]
pub struct OwnDropIn {
    pub path: PathBuf,
    pub state: OwnState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum OwnState {
    Missing,
    /// A file with mountprop's header, and its content.
    Ours(String),
    /// A file by that name that mountprop did not write.
    Foreign,
    /// The `.d` directory or the file is a symlink, or not what it should be.
    Refused(String),
}
