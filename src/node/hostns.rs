//! Entering the host's mount namespace from a privileged pod with `hostPID`, as node agents
//! delivered by DaemonSet do: after this, the files, the mounts and the system bus socket that
//! mountprop sees are the host's, not the container image's.
//!
//! It must happen before any thread exists: setns(2) refuses a mount namespace to a process
//! whose threads share its filesystem context.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Already in PID 1's mount namespace (mountprop runs on the host).
    Already {
        mnt: u64,
    },
    Entered {
        from: u64,
        to: u64,
    },
}

impl std::fmt::Display for Entered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entered::Already { mnt } => write!(f, "already in the host's mount namespace (PID 1's, mnt:[{mnt}])"),
            Entered::Entered { from, to } => write!(
                f,
                "entered the host's mount namespace (PID 1's, mnt:[{to}]) from the container's (mnt:[{from}])"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostNsError {
    #[error("cannot enter the host's mount namespace: {path}: {source}")]
    Io { path: &'static str, source: Errno },
    #[error(
        "cannot enter the host's mount namespace: PID 1 is {comm:?}, not systemd; a pod needs hostPID: true (see deploy/daemonset.yaml)"
    )]
    NotHostInit { comm: String },
    #[error("cannot enter the host's mount namespace: {threads} threads already run (it must be done first)")]
    Threads { threads: usize },
}

fn ns_inode(path: &'static str) -> Result<u64, HostNsError> {
    std::fs::metadata(path).map(|m| m.ino()).map_err(|e| HostNsError::Io {
        path,
        source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// Moves this process into PID 1's mount namespace (and its cgroup namespace, so that
/// /proc/<pid>/cgroup reads as on the host), unless it is there already. PID 1 must be
/// systemd: without hostPID, PID 1 is the pod's own pause process, whose namespace is not the
/// host's.
pub fn enter_pid1() -> Result<Entered, HostNsError> {
    let own = ns_inode("/proc/self/ns/mnt")?;
    let host = ns_inode("/proc/1/ns/mnt")?;
    if own == host {
        return Ok(Entered::Already { mnt: own });
    }
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    let comm = comm.trim();
    if comm != "systemd" {
        return Err(HostNsError::NotHostInit { comm: comm.to_string() });
    }
    let n = threads();
    if n > 1 {
        return Err(HostNsError::Threads { threads: n });
    }
    let open_ns = |path: &'static str| {
        open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|source| HostNsError::Io { path, source })
    };
    // Both opened before either is entered: a refusal leaves the process as it was.
    let mnt = open_ns("/proc/1/ns/mnt")?;
    let cgroup = if ns_inode("/proc/self/ns/cgroup").ok() != ns_inode("/proc/1/ns/cgroup").ok() {
        Some(open_ns("/proc/1/ns/cgroup")?)
    } else {
        None
    };
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|source| HostNsError::Io {
        path: "/proc/1/ns/mnt",
        source,
    })?;
    if let Some(fd) = cgroup {
        setns(fd.as_fd(), CloneFlags::CLONE_NEWCGROUP).map_err(|source| HostNsError::Io {
            path: "/proc/1/ns/cgroup",
            source,
        })?;
    }
    // setns gave us the namespace's root as / and cwd; the old cwd is the container's.
    nix::unistd::chdir("/").map_err(|source| HostNsError::Io { path: "/", source })?;
    Ok(Entered::Entered { from: own, to: host })
}

/// Whether this process is in PID 1's mount namespace already.
pub fn in_pid1_namespace() -> bool {
    matches!((ns_inode("/proc/self/ns/mnt"), ns_inode("/proc/1/ns/mnt")), (Ok(a), Ok(b)) if a == b)
}

/// Splits a long-running process in two before it enters the host's namespace: the parent
/// stays in the container's, passes SIGTERM, SIGINT and SIGHUP on, and returns the child's exit
/// code once it is gone; the child gets `None` and goes on. Why: `runc exec` (a kubelet exec
/// probe) joins the namespaces of the container's first process, and the probe's binary is in
/// the container's image, not on the host. Must run before any thread exists.
pub fn keep_container_side() -> Result<Option<u8>, HostNsError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGCHLD] {
        set.add(s);
    }
    let mut old = SigSet::empty();
    let io = |source| HostNsError::Io { path: "fork", source };
    // Blocked before the fork, so that nothing sent in between is lost.
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).map_err(io)?;
    // SAFETY: no other thread exists (checked by the caller's order: first thing in main).
    match unsafe { fork() }.map_err(io)? {
        ForkResult::Child => {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None).map_err(io)?;
            Ok(None)
        }
        ForkResult::Parent { child } => loop {
            match set.wait() {
                Ok(Signal::SIGCHLD) => loop {
                    match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(_, code)) => return Ok(Some(u8::try_from(code).unwrap_or(1))),
                        Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Some(128u8.saturating_add(sig as u8))),
                        Ok(WaitStatus::StillAlive) => break,
                        Ok(_) => {}
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(io(e)),
                    }
                },
                Ok(sig) => {
                    let _ = kill(child, sig);
                }
                Err(_) => {}
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_pid1s_namespace_nothing_is_done() {
        // Test threads run, so only the case that needs no setns can be tried here; the pod
        // case is tests/daemonset.rs, in a real pod.
        let own = ns_inode("/proc/self/ns/mnt").expect("own namespace");
        match ns_inode("/proc/1/ns/mnt") {
            Ok(host) if host == own => assert_eq!(enter_pid1().expect("no-op"), Entered::Already { mnt: own }),
            // Not root, or in a container of its own: entering is refused, never half done.
            _ => assert!(enter_pid1().is_err()),
        }
        assert_eq!(ns_inode("/proc/self/ns/mnt").expect("still"), own);
    }

    #[test]
    fn the_words_name_both_namespaces() {
        let e = Entered::Entered { from: 1, to: 2 }.to_string();
        assert!(e.contains("mnt:[2]") && e.contains("mnt:[1]"), "{e}");
    }
}
