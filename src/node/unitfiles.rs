//! A unit's fragment and drop-ins as read from disk: what each says about `MountFlags=` and
//! about the settings that give the unit a mount namespace of its own.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::node::namespacing;
use crate::node::unitfile::{self, MountFlagsSetting};

/// One unit file or drop-in.
#[derive(Debug, Clone, Serialize)]
pub struct UnitFile {
    pub path: PathBuf,
    /// systemd has it loaded now (fragment or in `DropInPaths`).
    pub loaded: bool,
    pub own: bool,
    pub settings: Vec<MountFlagsSetting>,
    /// Its lines that give the unit a mount namespace of its own, whatever `MountFlags=` says.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sandboxing: Vec<namespacing::Setting>,
    pub error: Option<String>,
}

impl UnitFile {
    /// A unit file or drop-in as read from disk (`shown` is the path reports give).
    pub fn from_read(shown: &Path, read: std::io::Result<Vec<u8>>, loaded: bool, own: bool) -> Self {
        let (settings, sandboxing, error) = match read {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                (
                    unitfile::mount_flags_settings(shown, &text),
                    namespacing::settings(shown, &text),
                    None,
                )
            }
            Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
        };
        Self {
            path: shown.to_path_buf(),
            loaded,
            own,
            settings,
            sandboxing,
            error,
        }
    }

    /// Where mountprop's own drop-in goes, before it exists.
    pub fn own_missing(path: PathBuf, loaded: bool) -> Self {
        Self {
            path,
            loaded,
            own: true,
            settings: Vec::new(),
            sandboxing: Vec::new(),
            error: None,
        }
    }
}
