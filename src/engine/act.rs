//! Carries out a plan. Each action re-checks what it is about to change, so a file that
//! changed since it was observed is never clobbered, and an action whose premise failed (its
//! drop-in was not written, the reload failed) is skipped rather than done half.

use std::path::Path;

use nix::mount::{MsFlags, mount};
use serde::Serialize;

use crate::config::Config;
use crate::engine::dropin;
use crate::engine::plan::Action;
use crate::node::atomicfile::{Dir, Entry};
use crate::node::systemd::{Reloaded, Systemd};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "detail")]
pub enum ActionResult {
    Done,
    /// Nothing needed doing after all (e.g. the file already had this content).
    Unchanged,
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub action: Action,
    pub description: String,
    #[serde(flatten)]
    pub result: ActionResult,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        matches!(self.result, ActionResult::Failed(_))
    }
}

/// What mountprop looks at and changes: a running node through its systemd, the running node
/// without asking systemd (its mounts only), or an image tree (nothing running, nothing
/// mounted; every write stays below the tree's root).
#[derive(Clone, Copy)]
pub enum Node<'a> {
    Live(&'a Systemd),
    Host,
    Image(&'a Path),
}

pub struct Host<'a> {
    pub node: Node<'a>,
    pub config: &'a Config,
    /// Called during long waits (a restart job); false abandons the wait.
    pub keepalive: &'a dyn Fn() -> bool,
}

const NOT_IN_IMAGE: &str = "image tree: no running systemd";
const NOT_ASKED: &str = "systemd not asked (paths only)";

pub fn act(host: &Host<'_>, actions: &[Action]) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::with_capacity(actions.len());
    // Units whose drop-in could not be written: nothing downstream may pretend it was.
    let mut failed_units: Vec<&str> = Vec::new();
    let mut reload_failed = false;
    for action in actions {
        let result = match action {
            Action::MakeShared { mount_point, for_paths } => match host.node {
                Node::Live(_) | Node::Host => make_shared(mount_point, for_paths),
                Node::Image(_) => ActionResult::Skipped("image tree: nothing is mounted".into()),
            },
            Action::WriteDropIn { unit, path, content } => {
                let r = write_dropin(host.node, path, content);
                match &r {
                    ActionResult::Failed(_) | ActionResult::Skipped(_) => failed_units.push(unit),
                    ActionResult::Done | ActionResult::Unchanged => {}
                }
                r
            }
            Action::Reload { units } => {
                if !units.is_empty() && units.iter().all(|u| failed_units.contains(&u.as_str())) {
                    ActionResult::Skipped("no drop-in was written".into())
                } else if let Node::Host = host.node {
                    ActionResult::Skipped(NOT_ASKED.into())
                } else if let Node::Live(systemd) = host.node {
                    // What the reload must load: each unit's own drop-in, by which a reload
                    // whose answer is lost is confirmed.
                    let own: Vec<(&str, std::path::PathBuf)> = units
                        .iter()
                        .filter(|u| !failed_units.contains(&u.as_str()))
                        .map(|u| {
                            (
                                u.as_str(),
                                dropin::dir_for(Path::new("/"), u).join(&host.config.dropin_name),
                            )
                        })
                        .collect();
                    let expect: Vec<(&str, &Path)> = own.iter().map(|(u, p)| (*u, p.as_path())).collect();
                    match systemd.reload_confirmed(&expect) {
                        Ok(Reloaded::Answered) => {
                            tracing::info!(ACTION = "reload", "reloaded systemd");
                            ActionResult::Done
                        }
                        Ok(Reloaded::Confirmed(lost)) => {
                            tracing::warn!(
                                ACTION = "reload",
                                "systemd's answer to Reload was lost ({lost}); the units show their drop-ins loaded, so it reloaded"
                            );
                            ActionResult::Done
                        }
                        Err(e) => {
                            reload_failed = true;
                            tracing::error!(ACTION = "reload", "{e}");
                            ActionResult::Failed(e.to_string())
                        }
                    }
                } else {
                    ActionResult::Skipped(NOT_IN_IMAGE.into())
                }
            }
            Action::Restart { unit } => match host.node {
                Node::Live(systemd) => after_reload(unit, &failed_units, reload_failed, "restart", || {
                    systemd.restart(unit, host.config.restart_timeout, host.keepalive)
                }),
                Node::Host => ActionResult::Skipped(NOT_ASKED.into()),
                Node::Image(_) => ActionResult::Skipped(NOT_IN_IMAGE.into()),
            },
            Action::MarkNeedsRestart { unit } => match host.node {
                Node::Live(systemd) => after_reload(unit, &failed_units, reload_failed, "mark", || {
                    systemd.mark_needs_restart(unit)
                }),
                Node::Host => ActionResult::Skipped(NOT_ASKED.into()),
                Node::Image(_) => ActionResult::Skipped(NOT_IN_IMAGE.into()),
            },
            Action::Enable { dir, name, target } => enable(host.node, dir, name, target),
        };
        out.push(Outcome {
            description: action.to_string(),
            action: action.clone(),
            result,
        });
    }
    out
}

/// A unit action that only makes sense once its drop-in is written and loaded.
fn after_reload(
    unit: &str,
    failed_units: &[&str],
    reload_failed: bool,
    what: &'static str,
    call: impl FnOnce() -> Result<(), crate::node::systemd::SystemdError>,
) -> ActionResult {
    if failed_units.contains(&unit) || reload_failed {
        return ActionResult::Skipped("its drop-in is not in effect".into());
    }
    match call() {
        Ok(()) => {
            tracing::info!(UNIT = %unit, ACTION = what, "{what}: {unit}");
            ActionResult::Done
        }
        Err(e) => {
            tracing::error!(UNIT = %unit, ACTION = what, "{e}");
            ActionResult::Failed(e.to_string())
        }
    }
}

fn make_shared(mount_point: &Path, for_paths: &[std::path::PathBuf]) -> ActionResult {
    match mount(
        None::<&str>,
        mount_point,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SHARED,
        None::<&str>,
    ) {
        Ok(()) => {
            tracing::info!(PATH = %mount_point.display(), ACTION = "make-rshared", "made {} rshared (for {:?})", mount_point.display(), for_paths);
            ActionResult::Done
        }
        Err(e) => {
            let msg = format!("mount --make-rshared {}: {e}", mount_point.display());
            tracing::error!(PATH = %mount_point.display(), ACTION = "make-rshared", "{msg}");
            ActionResult::Failed(msg)
        }
    }
}

/// Opens (creating) the directory `dir` on `node`: below an image's root without following any
/// symlink on the way, on a live node as the path says.
fn open_dir(node: Node<'_>, dir: &Path) -> Result<Dir, crate::node::atomicfile::FileError> {
    match node {
        Node::Live(_) | Node::Host => Dir::open(dir, Some(0o755)),
        Node::Image(root) => Dir::open_beneath(root, dir.strip_prefix(root).unwrap_or(dir), true),
    }
}

/// Image trees: the `.wants` symlink `systemctl --root enable` makes.
fn enable(node: Node<'_>, dir: &Path, name: &str, target: &Path) -> ActionResult {
    if let Node::Live(_) | Node::Host = node {
        return ActionResult::Skipped("live node: use systemctl enable".into());
    }
    match open_dir(node, dir).and_then(|d| d.symlink_atomic(name, target)) {
        Ok(()) => {
            tracing::info!(PATH = %dir.join(name).display(), ACTION = "enable", "enabled {name}");
            ActionResult::Done
        }
        Err(e) => ActionResult::Failed(e.to_string()),
    }
}

fn write_dropin(node: Node<'_>, path: &Path, content: &str) -> ActionResult {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return ActionResult::Failed(format!("{}: not a drop-in path", path.display()));
    };
    let fail = |msg: String| {
        tracing::error!(PATH = %path.display(), ACTION = "write-dropin", "{msg}");
        ActionResult::Failed(msg)
    };
    let d = match open_dir(node, dir) {
        Ok(d) => d,
        Err(e) => return fail(e.to_string()),
    };
    // Look again right before writing: the file may have changed since it was observed.
    let must_not_exist = match d.read(name) {
        Ok(Entry::Missing) => true,
        Ok(Entry::File(bytes)) if bytes == content.as_bytes() => return ActionResult::Unchanged,
        Ok(Entry::File(bytes)) if dropin::is_ours(&bytes) => false,
        Ok(Entry::File(_)) => return fail(format!("{} was not written by mountprop; left alone", path.display())),
        Ok(Entry::Symlink) => return fail(format!("{} is a symlink; refusing to follow it", path.display())),
        Ok(Entry::Other) => return fail(format!("{} is not a regular file; left alone", path.display())),
        Err(e) => return fail(e.to_string()),
    };
    match d.write_atomic(name, content.as_bytes(), must_not_exist) {
        Ok(()) => {
            let value = content.lines().rfind(|l| l.starts_with("MountFlags=")).unwrap_or("");
            tracing::info!(PATH = %path.display(), ACTION = "write-dropin", MOUNT_FLAGS = value, "wrote {}", path.display());
            ActionResult::Done
        }
        Err(e) => {
            d.remove_if_created_empty();
            fail(e.to_string())
        }
    }
}
