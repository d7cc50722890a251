//! The daemon's paths guard: a thread of its own that re-reads the configured paths'
//! propagation every `probe_interval` (a change such as `mount --make-private /` wakes no poll)
//! and, when it changed, fixes the paths at once with a round of the engine that asks systemd
//! nothing ([`Look::Paths`]). systemd re-reads the whole mount table on every mount event, so
//! under mount churn it can take seconds to answer D-Bus: the main loop's full rounds may wait
//! that long, this thread never does. After a fix it wakes the main loop for a full round.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::config::Config;
use crate::daemon::labels;
use crate::daemon::metrics;
use crate::daemon::notify;
use crate::daemon::ratelimit::{Limiter, Suppressed};
use crate::daemon::state;
use crate::daemon::state::State;
use crate::engine::act::ActionResult;
use crate::engine::{self, Applied, Checked, Look, Node};
use crate::node::mountinfo::{MountInfo, Propagation};
use crate::node::statmount;

/// A wake-up for the containers' host mounts whose round did not follow (no bus) is repeated
/// no sooner than this.
const CONTAINERS_REWAKE: Duration = Duration::from_secs(1);
/// With only mountinfo to read, a re-read costs milliseconds on a big table: not more often.
const SLOW_PERIOD_MIN: Duration = Duration::from_secs(2);

/// What the main loop and the guard share.
pub struct Shared {
    pub cfg: Mutex<Arc<Config>>,
    pub limiter: Mutex<Limiter>,
    pub state: Mutex<State>,
    /// When the guard last went round its loop: the main loop feeds the watchdog only while
    /// this is fresh, so a hung guard is caught too.
    pub heartbeat: Mutex<Instant>,
    /// Set by SIGTERM/SIGINT.
    pub stop: Arc<AtomicBool>,
    /// The node labels' last error, said once.
    pub labels_error: Mutex<Option<String>>,
}

/// Locks, carrying on after a thread that panicked while holding the lock: the data is plain
/// and still worth more than stopping the daemon.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        lock(&self.cfg).clone()
    }

    /// State file, metrics and STATUS=, after every round of either thread.
    pub fn publish(&self) {
        let cfg = self.config();
        let state = lock(&self.state);
        if let Err(e) = state.write() {
            tracing::warn!("cannot write the state file: {e}");
        }
        if let Some(path) = &cfg.daemon.metrics_file
            && let Err(e) = metrics::write(path, &state)
        {
            tracing::warn!("cannot write metrics to {}: {e}", path.display());
        }
        let dir = Path::new(labels::FEATURES_DIR);
        let labelled = labels::publish(cfg.daemon.node_labels, dir, &state, state::unix_now());
        if let Ok(labels::Published::Written) = labelled {
            tracing::debug!("node labels written to {}", dir.display());
        }
        // An error is said when it first comes (and again if it changes), not every round.
        let error = labelled.err().map(|e| e.to_string());
        let mut last = lock(&self.labels_error);
        if let Some(e) = &error
            && *last != error
        {
            tracing::warn!("node labels: {e}");
        }
        *last = error;
        drop(last);
        notify::status(&state.status_line);
    }

    /// act and verify within the rate limits, for either thread's round: carries out what the
    /// limiter allows, records what was done, and warns once about a target newly held back.
    pub fn act_within_limits(
        &self,
        node: Node<'_>,
        cfg: &Config,
        before: Checked,
        look: Look,
        trigger: &str,
        keepalive: &dyn Fn() -> bool,
    ) -> (Applied, Vec<Suppressed>) {
        let now = Instant::now();
        let (allowed, held) = lock(&self.limiter).filter(&before.plan.actions, now);
        if !allowed.is_empty() {
            let what: Vec<String> = allowed.iter().map(ToString::to_string).collect();
            tracing::info!(TRIGGER = trigger, "acting on {trigger}: {}", what.join("; "));
        }
        {
            let st = lock(&self.state);
            for h in held
                .iter()
                .filter(|h| !st.held_back.iter().any(|o| o.target == h.target))
            {
                tracing::warn!(
                    ACTION = "hold-back",
                    "something keeps reverting {}: fixed {} times within {} s; not fixing it again for {} s",
                    h.target,
                    h.fixes,
                    cfg.daemon.fix_window.as_secs(),
                    h.retry_in_secs
                );
            }
        }
        let applied = engine::carry_out(node, cfg, before, &allowed, look, keepalive);
        let mut limiter = lock(&self.limiter);
        for o in applied.outcomes.iter().filter(|o| o.result == ActionResult::Done) {
            limiter.record(&o.action, now);
        }
        (applied, held)
    }
}

/// The propagation of each configured path's mount, to notice a change cheaply.
type Signature = Vec<Option<(u64, Propagation)>>;

struct Guard {
    shared: Arc<Shared>,
    /// Wakes the main loop (its wake pipe).
    waker: OwnedFd,
    fast: bool,
    mountinfo: File,
    /// The unique id of the mount that held each path when last looked up: a re-read then
    /// costs one statmount, not a path walk too. Dropped on any mount-table event (a mount
    /// stacked on a path changes its holder without removing the old one).
    holders: Vec<Option<u64>>,
    signature: Signature,
    /// When the guard last woke the main loop for the containers' host mounts.
    containers_woken: Option<Instant>,
}

/// Starts the guard. What the paths look like now (after the boot round) is its baseline: only a
/// change from it counts.
pub fn spawn(shared: Arc<Shared>, waker: OwnedFd) -> std::io::Result<()> {
    let mut g = Guard {
        shared,
        waker,
        fast: statmount::available(),
        mountinfo: File::open("/proc/self/mountinfo")?,
        holders: Vec::new(),
        signature: Vec::new(),
        containers_woken: None,
    };
    g.signature = g.read_signature(&g.shared.config());
    std::thread::Builder::new()
        .name("mountprop-guard".into())
        .spawn(move || g.run())?;
    Ok(())
}

/// Whether a host mount that holds a tracked container's volume source changed its
/// propagation or peer group since the main loop last judged the containers.
fn containers_flipped() -> bool {
    crate::engine::tracker::host_mounts()
        .into_iter()
        .any(|(id, judged)| statmount::mount_by_id(id).map_or(true, |m| m.propagation != judged))
}

impl Guard {
    fn run(&mut self) {
        let mut next = Instant::now();
        let mut soon = false;
        while !self.shared.stop.load(Ordering::SeqCst) {
            let cfg = self.shared.config();
            let period = if self.fast {
                cfg.daemon.probe_interval
            } else {
                cfg.daemon.probe_interval.max(SLOW_PERIOD_MIN)
            };
            // A mount or umount: look soon, once (mount churn must not spin this loop).
            let wait = next.saturating_duration_since(Instant::now());
            let ms = u32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u32::MAX / 2);
            let mut fds = [PollFd::new(self.mountinfo.as_fd(), PollFlags::POLLPRI)];
            let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let changed = if soon {
                std::thread::sleep(wait);
                false
            } else {
                // poll itself acknowledges the event; nothing to read.
                poll(&mut fds, timeout).is_ok_and(|n| n > 0)
            };
            *lock(&self.shared.heartbeat) = Instant::now();
            if changed {
                self.holders.clear();
                next = next.min(Instant::now() + cfg.daemon.debounce);
                soon = true;
                continue;
            }
            if Instant::now() < next {
                continue;
            }
            soon = false;
            next = Instant::now() + period;
            if self.holders.len() != cfg.paths.len() {
                // A config reload may have changed the paths.
                self.holders.clear();
            }
            let sig = self.read_signature(&cfg);
            if sig != self.signature {
                self.signature = sig;
                self.fix_paths(&cfg);
            } else if self.fast
                && self.containers_woken.is_none_or(|t| t.elapsed() >= CONTAINERS_REWAKE)
                && containers_flipped()
            {
                // Running containers may have been cut off: the main loop's round judges them
                // and publishes the new propagation. Again only if that round did not happen.
                let _ = nix::unistd::write(&self.waker, &[crate::daemon::watch::EV_PATHS]);
                self.containers_woken = Some(Instant::now());
            }
        }
    }

    fn read_signature(&mut self, cfg: &Config) -> Signature {
        if self.fast {
            self.holders.resize(cfg.paths.len(), None);
            return cfg
                .paths
                .iter()
                .zip(self.holders.iter_mut())
                .map(|(r, holder)| {
                    let cached = holder.and_then(|id| statmount::mount_by_id(id).ok());
                    let m = cached.or_else(|| statmount::mount_of(&r.path).ok());
                    *holder = m.map(|m| m.unique_id);
                    m.map(|m| (u64::from(m.id), m.propagation))
                })
                .collect();
        }
        let paths: Vec<&Path> = cfg.paths.iter().map(|r| r.path.as_path()).collect();
        match MountInfo::read_pid(None).and_then(|t| {
            t.governing_many(&paths)
                .map(|ms| ms.iter().map(|m| m.as_ref().map(|m| (m.id, m.propagation))).collect())
        }) {
            Ok(sig) => sig,
            Err(_) => vec![None; paths.len()],
        }
    }

    /// observe the paths, plan, act within the rate limits, verify: the engine, without D-Bus.
    fn fix_paths(&mut self, cfg: &Config) {
        let before = match engine::check(Node::Host, cfg, Look::Paths) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot look at the paths: {e}");
                return;
            }
        };
        let stop = self.shared.stop.clone();
        let keepalive = move || !stop.load(Ordering::SeqCst);
        let (applied, held) =
            self.shared
                .act_within_limits(Node::Host, cfg, before, Look::Paths, "mount table", &keepalive);
        // The baseline is what the fix left, so a later change is noticed and nothing loops.
        self.signature = self.read_signature(cfg);
        let last = applied.after.as_ref().unwrap_or(&applied.before);
        let line = {
            let mut state = lock(&self.shared.state);
            let was = state.status_line.clone();
            state.last_trigger = "mount table".into();
            state.paths_checked(last, &applied.outcomes, held);
            (state.status_line != was).then(|| state.status_line.clone())
        };
        if let Some(line) = line {
            tracing::info!("{line}");
        }
        self.shared.publish();
        // The units and the Kubernetes modes: the main loop's full round, soon.
        let _ = nix::unistd::write(&self.waker, &[crate::daemon::watch::EV_PATHS]);
    }
}
