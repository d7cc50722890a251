//! Unit settings other than `MountFlags=` that give a service a mount namespace of its own
//! (systemd's `exec_needs_mount_namespace()`), read from unit files with their file and line.
//!
//! Such a namespace is set up with `/` made a slave first, then shared again: it receives the
//! host's mounts but sends none back, so Bidirectional volumes cannot work in a runtime that
//! has one, whatever `MountFlags=` says, and a restart does not change that.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::node::unitfile;

/// How a setting's value decides whether it asks for a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A boolean (some take extra words that also sandbox, e.g. `ProtectSystem=strict`).
    Bool(&'static [&'static str]),
    /// An enumeration whose one listed value is the default that needs no namespace.
    Default(&'static str),
    /// A list: each non-empty assignment adds to it, an empty one empties it.
    List,
    /// One path or name: non-empty sets it, empty unsets it.
    Value,
}

/// One setting of the table.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The name systemd documents.
    pub name: &'static str,
    /// Older spellings systemd still reads as the same setting.
    aliases: &'static [&'static str],
    kind: Kind,
    /// First systemd version that knows it; older ones ignore the line with a warning.
    since: u32,
    /// What mountprop's drop-in writes to undo it (`reset_namespacing = true`), if it may.
    pub reset: Option<&'static str>,
}

const fn key(name: &'static str, kind: Kind, since: u32, reset: Option<&'static str>) -> Key {
    Key {
        name,
        aliases: &[],
        kind,
        since,
        reset,
    }
}

const NO: Option<&str> = Some("no");
const EMPTY: Option<&str> = Some("");

/// The settings of systemd.exec(5) that make `exec_needs_mount_namespace()` true, in the order
/// mountprop reports and resets them. Left out: `RootDirectory=` (only with `MountAPIVFS=` or
/// `*Directory=`) and `PrivateNetwork=` (only on newer systemd, with `PrivateMounts=` unset).
pub const KEYS: &[Key] = &[
    key("PrivateTmp", Kind::Bool(&["disconnected"]), 1, NO),
    key("PrivateDevices", Kind::Bool(&[]), 209, NO),
    key("PrivateMounts", Kind::Bool(&[]), 239, NO),
    key("PrivateIPC", Kind::Bool(&[]), 248, NO),
    key("ProtectSystem", Kind::Bool(&["full", "strict"]), 214, NO),
    key("ProtectHome", Kind::Bool(&["read-only", "tmpfs"]), 214, NO),
    key("ProtectKernelTunables", Kind::Bool(&[]), 232, NO),
    key("ProtectKernelModules", Kind::Bool(&[]), 232, NO),
    key("ProtectKernelLogs", Kind::Bool(&[]), 244, NO),
    key("ProtectControlGroups", Kind::Bool(&["private", "strict"]), 232, NO),
    key("ProtectProc", Kind::Default("default"), 247, Some("default")),
    key("ProcSubset", Kind::Default("all"), 247, Some("all")),
    Key {
        aliases: &["ReadWriteDirectories"],
        ..key("ReadWritePaths", Kind::List, 231, EMPTY)
    },
    Key {
        aliases: &["ReadOnlyDirectories"],
        ..key("ReadOnlyPaths", Kind::List, 231, EMPTY)
    },
    Key {
        aliases: &["InaccessibleDirectories"],
        ..key("InaccessiblePaths", Kind::List, 231, EMPTY)
    },
    key("ExecPaths", Kind::List, 248, EMPTY),
    key("NoExecPaths", Kind::List, 248, EMPTY),
    key("BindPaths", Kind::List, 233, EMPTY),
    key("BindReadOnlyPaths", Kind::List, 233, EMPTY),
    key("TemporaryFileSystem", Kind::List, 238, EMPTY),
    key("MountImages", Kind::List, 247, EMPTY),
    key("ExtensionImages", Kind::List, 248, EMPTY),
    key("ExtensionDirectories", Kind::List, 251, EMPTY),
    key("IPCNamespacePath", Kind::Value, 248, EMPTY),
    key("LogNamespace", Kind::Value, 245, EMPTY),
    // These change what the unit is, not only how it is sandboxed: named, never reset.
    key("RootImage", Kind::Value, 233, None),
    // DynamicUser= implies PrivateTmp= and ProtectSystem=strict.
    key("DynamicUser", Kind::Bool(&[]), 235, None),
];

fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name || k.aliases.contains(&name))
}

/// A line that sets one of [`KEYS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub path: PathBuf,
    pub line: usize,
    /// The documented name, whatever spelling the line used.
    pub key: &'static str,
    pub value: String,
}

impl Setting {
    /// `Key=value` as it would be written.
    pub fn assignment(&self) -> String {
        format!("{}={}", self.key, self.value)
    }

    /// The table's entry for this setting.
    pub fn spec(&self) -> &'static Key {
        lookup(self.key).expect("settings are only made for keys of the table")
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.assignment(), self.path.display(), self.line)
    }
}

/// The lines of one file's `[Service]` section that set one of [`KEYS`], in order.
pub fn settings(path: &Path, text: &str) -> Vec<Setting> {
    unitfile::parse(text)
        .into_iter()
        .filter(|a| a.section == "Service")
        .filter_map(|a| {
            lookup(&a.key).map(|k| Setting {
                path: path.to_path_buf(),
                line: a.line,
                key: k.name,
                value: a.value,
            })
        })
        .collect()
}

/// What one assignment does to its setting.
#[derive(Debug, PartialEq, Eq)]
enum Effect {
    Sandboxes,
    Clears,
    /// systemd rejects the value and keeps what it had.
    Ignored,
}

fn effect(k: &Key, value: &str) -> Effect {
    const TRUE: &[&str] = &["1", "yes", "y", "true", "t", "on"];
    const FALSE: &[&str] = &["0", "no", "n", "false", "f", "off"];
    let v = value.to_ascii_lowercase();
    match k.kind {
        Kind::Bool(extra) if TRUE.contains(&v.as_str()) || extra.contains(&v.as_str()) => Effect::Sandboxes,
        Kind::Bool(_) if FALSE.contains(&v.as_str()) => Effect::Clears,
        Kind::Bool(_) => Effect::Ignored,
        Kind::Default(_) if v.is_empty() => Effect::Ignored,
        Kind::Default(default) if v == default => Effect::Clears,
        Kind::Default(_) => Effect::Sandboxes,
        Kind::List | Kind::Value if v.is_empty() => Effect::Clears,
        Kind::List | Kind::Value => Effect::Sandboxes,
    }
}

/// The settings still asking for a namespace once `files` (each one's settings, in the order
/// systemd applies the files) are applied, one per key: the line that last set it. `version`
/// drops keys that systemd does not know yet (`None`: all are known).
pub fn in_force<'a, I>(files: I, version: Option<u32>) -> Vec<Setting>
where
    I: IntoIterator<Item = &'a [Setting]>,
{
    let mut state: Vec<Option<&Setting>> = vec![None; KEYS.len()];
    for s in files.into_iter().flatten() {
        let Some(i) = KEYS.iter().position(|k| k.name == s.key) else {
            continue;
        };
        let k = &KEYS[i];
        if version.is_some_and(|v| v < k.since) {
            continue;
        }
        match effect(k, &s.value) {
            Effect::Sandboxes => state[i] = Some(s),
            Effect::Clears => state[i] = None,
            Effect::Ignored => {}
        }
    }
    state.into_iter().flatten().cloned().collect()
}

/// The lines mountprop's drop-in adds to undo `found` (settings in force from other files), as
/// `Key=value`, in table order; settings it may not reset are left out.
pub fn resets(found: &[Setting]) -> Vec<String> {
    KEYS.iter()
        .filter(|k| found.iter().any(|s| s.key == k.name))
        .filter_map(|k| k.reset.map(|r| format!("{}={r}", k.name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Vec<Setting> {
        settings(Path::new("/x.service"), text)
    }

    fn keys(v: &[Setting]) -> Vec<&str> {
        v.iter().map(|s| s.key).collect()
    }

    #[test]
    fn each_kind_of_value_sandboxes_or_not_as_systemd_reads_it() {
        let cases = [
            ("PrivateTmp=yes", true),
            ("PrivateTmp=no", false),
            ("PrivateTmp=disconnected", true),
            ("PrivateTmp=maybe", false),
            ("ProtectSystem=strict", true),
            ("ProtectSystem=full", true),
            ("ProtectSystem=true", true),
            ("ProtectSystem=false", false),
            ("ProtectHome=read-only", true),
            ("ProtectHome=tmpfs", true),
            ("ProtectProc=invisible", true),
            ("ProtectProc=default", false),
            ("ProcSubset=pid", true),
            ("ProcSubset=all", false),
            ("ReadOnlyPaths=/etc", true),
            ("ReadOnlyDirectories=/etc", true),
            ("BindPaths=/a:/b", true),
            ("TemporaryFileSystem=/var", true),
            ("ReadOnlyPaths=", false),
            ("LogNamespace=foo", true),
            ("ProtectControlGroups=private", true),
            ("DynamicUser=yes", true),
            ("NoNewPrivileges=yes", false),
            ("ProtectHostname=yes", false),
            ("PrivateNetwork=yes", false),
        ];
        for (line, sandboxes) in cases {
            let f = of(&format!("[Service]\n{line}\n"));
            assert_eq!(!in_force([f.as_slice()], None).is_empty(), sandboxes, "{line}");
        }
    }

    #[test]
    fn only_the_service_section_counts_and_aliases_take_the_documented_name() {
        let f = of("[Unit]\nPrivateTmp=yes\n[Service]\nReadWriteDirectories=/srv\n");
        assert_eq!(keys(&f), ["ReadWritePaths"]);
        assert_eq!(f[0].line, 4);
        assert_eq!(f[0].to_string(), "ReadWritePaths=/srv (/x.service:4)");
    }

    #[test]
    fn later_files_win_and_lists_are_emptied_by_an_empty_value() {
        let frag = of("[Service]\nPrivateTmp=yes\nReadOnlyPaths=/a\nReadOnlyPaths=/b\nProtectHome=yes\n");
        let site = of("[Service]\nPrivateTmp=no\nProtectHome=bogus\n");
        let ours = of("[Service]\nReadOnlyPaths=\n");
        let left = in_force([frag.as_slice(), site.as_slice()], None);
        // An invalid value keeps what was there; the list names its last addition.
        assert_eq!(keys(&left), ["ProtectHome", "ReadOnlyPaths"]);
        assert_eq!(left[1].line, 4);
        let left = in_force([frag.as_slice(), site.as_slice(), ours.as_slice()], None);
        assert_eq!(keys(&left), ["ProtectHome"]);
        // Added again after the reset: in force again.
        let again = of("[Service]\nReadOnlyPaths=/c\n");
        let left = in_force([frag.as_slice(), ours.as_slice(), again.as_slice()], None);
        assert_eq!(keys(&left), ["PrivateTmp", "ProtectHome", "ReadOnlyPaths"]);
        assert_eq!(left[2].line, 2);
    }

    #[test]
    fn settings_newer_than_the_running_systemd_are_ignored() {
        let f = of("[Service]\nProtectProc=invisible\nProtectKernelLogs=yes\n");
        assert_eq!(keys(&in_force([f.as_slice()], Some(243))), Vec::<&str>::new());
        assert_eq!(keys(&in_force([f.as_slice()], Some(244))), ["ProtectKernelLogs"]);
        assert_eq!(
            keys(&in_force([f.as_slice()], Some(252))),
            ["ProtectKernelLogs", "ProtectProc"]
        );
    }

    #[test]
    fn resets_undo_what_they_may_and_reading_them_back_clears_it() {
        let f = of(
            "[Service]\nProtectSystem=strict\nBindPaths=/a\nProtectProc=invisible\nRootImage=/img.raw\nPrivateTmp=yes\n",
        );
        let found = in_force([f.as_slice()], None);
        let lines = resets(&found);
        assert_eq!(
            lines,
            ["PrivateTmp=no", "ProtectSystem=no", "ProtectProc=default", "BindPaths="]
        );
        let back = of(&format!("[Service]\n{}\n", lines.join("\n")));
        let left = in_force([f.as_slice(), back.as_slice()], None);
        assert_eq!(keys(&left), ["RootImage"], "only what mountprop may not reset is left");
    }
}
