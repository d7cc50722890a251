//! `mountprop revert`: takes mountprop's own drop-ins away again (for package removal, or by
//! hand). A file counts as mountprop's only if it has mountprop's drop-in name and its header;
//! anything else is left alone.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::engine::dropin;
use crate::node::atomicfile::{Dir, Entry};
use crate::node::systemd::Systemd;

#[derive(Debug, Default, Serialize)]
pub struct Reverted {
    pub removed: Vec<PathBuf>,
    /// Files of mountprop's name it did not write, and why they stay.
    pub left_alone: Vec<(PathBuf, String)>,
    pub reloaded: bool,
    /// Why there was no reload, when one was due.
    pub reload_skipped: Option<String>,
    pub errors: Vec<String>,
}

/// How revert reaches systemd: an image has none; a live node may have lost its bus (a package
/// removal in a broken state), and then the files still go and the reload is reported skipped.
pub enum Target<'a> {
    Live(Result<&'a Systemd, String>),
    Image(&'a Path),
}

/// Removes `<root>/etc/systemd/system/*.d/<dropin_name>` where mountprop wrote it, for every
/// unit, configured or not (a unit may have left the config since). On a live node, one
/// daemon-reload follows if anything was removed.
pub fn revert(target: Target<'_>, cfg: &Config) -> Reverted {
    let (root, live) = match &target {
        Target::Live(_) => (Path::new("/"), true),
        Target::Image(r) => (*r, false),
    };
    let mut out = Reverted::default();
    let base = root.join("etc/systemd/system");
    let units_dir = if live {
        Dir::open(&base, None)
    } else {
        Dir::open_beneath(root, Path::new("etc/systemd/system"), false)
    };
    let units_dir = match units_dir {
        Ok(d) => d,
        Err(crate::node::atomicfile::FileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return out;
        }
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    let mut dirs: Vec<String> = units_dir.names().into_iter().filter(|n| n.ends_with(".d")).collect();
    dirs.sort();
    for d in dirs {
        let dir_path = base.join(&d);
        let opened = if live {
            Dir::open(&dir_path, None)
        } else {
            Dir::open_beneath(root, &Path::new("etc/systemd/system").join(&d), false)
        };
        // A symlinked or odd .d is not mountprop's doing; skip it.
        let Ok(dir) = opened else { continue };
        let file = dir_path.join(&cfg.dropin_name);
        match dir.read(&cfg.dropin_name) {
            Ok(Entry::File(bytes)) if dropin::is_ours(&bytes) => match dir.remove(&cfg.dropin_name) {
                Ok(_) => {
                    tracing::info!(PATH = %file.display(), ACTION = "revert", "removed {}", file.display());
                    out.removed.push(file);
                    // Its directory too, if nothing else is in it.
                    let _ = std::fs::remove_dir(&dir_path);
                }
                Err(e) => out.errors.push(e.to_string()),
            },
            Ok(Entry::File(_)) => out.left_alone.push((file, "not written by mountprop".into())),
            Ok(Entry::Symlink) | Ok(Entry::Other) => out.left_alone.push((file, "not a regular file".into())),
            Ok(Entry::Missing) => {}
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    if !out.removed.is_empty() {
        match target {
            Target::Live(Ok(sys)) => match sys.reload() {
                Ok(()) => out.reloaded = true,
                Err(e) => out.errors.push(format!("daemon-reload after removing drop-ins: {e}")),
            },
            Target::Live(Err(why)) => out.reload_skipped = Some(why),
            Target::Image(_) => out.reload_skipped = Some("image tree: no running systemd".into()),
        }
    }
    out
}

impl Reverted {
    pub fn human(&self) -> String {
        let mut s = String::new();
        for p in &self.removed {
            crate::outln!(&mut s, "removed {}", p.display());
        }
        for (p, why) in &self.left_alone {
            crate::outln!(&mut s, "left alone {} ({why})", p.display());
        }
        if self.reloaded {
            s.push_str("reloaded systemd (daemon-reload)\n");
        }
        if let Some(why) = &self.reload_skipped {
            crate::outln!(&mut s, "no reload: {why}");
        }
        for e in &self.errors {
            crate::outln!(&mut s, "FAILED: {e}");
        }
        if self.removed.is_empty() && self.errors.is_empty() {
            s.push_str("nothing to revert\n");
        }
        s
    }
}
