//! `mountprop daemon`: fixes the node at boot, then keeps it fixed.
//!
//! Two threads do the work. The main loop waits in one poll(2) (see [`crate::daemon::watch`]) and runs
//! a full check-and-fix (the same engine as `mountprop apply`) on a timer and soon after any
//! event: systemd's signals, mountprop's drop-in files, a path the guard fixed. The paths guard
//! ([`crate::daemon::guard`]) re-reads the paths' propagation every `probe_interval` and fixes a path
//! at once without D-Bus, so a systemd that is slow to answer cannot hold that up. The
//! watchdog is fed from the main loop, and only while the guard is going round too, so a hung
//! loop of either is caught.

pub mod guard;
pub mod labels;
pub mod metrics;
pub mod notify;
pub mod ratelimit;
pub mod state;
pub mod watch;

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::daemon::guard::{Shared, lock};
use crate::daemon::ratelimit::Limiter;
use crate::daemon::state::State;
use crate::daemon::watch::Watch;
use crate::engine::observe::ObserveError;
use crate::engine::{self, Look};
use crate::node::statmount;
use crate::node::systemd::{Systemd, SystemdError};

/// No single call to systemd may hold the loop longer: a systemd swamped by mount churn must
/// not stop paths from being fixed, or the watchdog from being fed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a full round could not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No bus, or systemd gone from it: reconnect.
    BusLost,
    /// systemd did not answer in time: keep the connection, ask again soon.
    Busy,
    Other,
}

impl Failure {
    fn of(e: &ObserveError) -> Self {
        match e {
            ObserveError::Systemd(SystemdError::Busy { .. }) => Self::Busy,
            ObserveError::Systemd(s) if s.is_lost() => Self::BusLost,
            _ => Self::Other,
        }
    }
}
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long container starts and exits are gathered before the round that judges them.
const CONTAINERS_DEBOUNCE: Duration = Duration::from_secs(1);
/// The guard goes round at least every 2 s (its slowest re-read); past this it is stuck.
const GUARD_STALE: Duration = Duration::from_secs(10);

struct Daemon {
    config_path: Option<PathBuf>,
    shared: Arc<Shared>,
    sys: Option<Systemd>,
    watch: Watch,
    next_check: Instant,
    /// A check asked for by events, and when it runs.
    pending: Option<(Instant, &'static str)>,
    watchdog: Option<Duration>,
    next_watchdog: Instant,
    backoff: Duration,
}

/// Runs until SIGTERM/SIGINT; returns the exit code.
pub fn run(config_path: Option<PathBuf>) -> u8 {
    let cfg = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            notify::status(&format!("config error: {e}"));
            return 2;
        }
    };
    let _single = match State::lock_single() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("{e}");
            notify::status(&e);
            return 2;
        }
    };
    let watch = match Watch::new(&cfg.units) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot set up event sources: {e}");
            return 1;
        }
    };
    crate::engine::tracker::install(cfg.daemon.rejudge);
    let fast = statmount::available();
    tracing::info!(
        "starting; config: {}; propagation re-read: {}",
        cfg.origin(),
        if fast {
            "statmount"
        } else {
            "mountinfo (no statmount here)"
        }
    );
    let now = Instant::now();
    let shared = Arc::new(Shared {
        limiter: Mutex::new(Limiter::new(cfg.daemon.max_fixes, cfg.daemon.fix_window)),
        state: Mutex::new(State::new(cfg.origin(), cfg.daemon.interval.as_secs())),
        cfg: Mutex::new(Arc::new(cfg)),
        heartbeat: Mutex::new(now),
        stop: watch.stop_flag(),
        labels_error: Mutex::new(None),
    });
    let mut d = Daemon {
        config_path,
        shared,
        sys: None,
        watch,
        next_check: now,
        pending: None,
        watchdog: notify::watchdog_period(),
        next_watchdog: now,
        backoff: Duration::from_secs(1),
    };
    // Boot preflight: fix first, then say ready, so units ordered after mountprop start with
    // its drop-ins in place. A failure is reported, but does not hold the boot up.
    d.reconcile("boot");
    let guard = d.watch.waker().and_then(|w| guard::spawn(d.shared.clone(), w));
    if let Err(e) = guard {
        tracing::error!("cannot start the paths guard: {e}");
        return 1;
    }
    notify::ready(&lock(&d.shared.state).status_line);
    d.run_loop()
}

impl Daemon {
    fn cfg(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// What a full round looks at: with the live propagation probe, when configured.
    fn full_look(cfg: &Config) -> Look {
        if cfg.daemon.live_probe {
            Look::Probe(crate::engine::probe::DEFAULT_TIMEOUT)
        } else {
            Look::Everything
        }
    }

    fn run_loop(&mut self) -> u8 {
        loop {
            let now = Instant::now();
            let mut deadline = self.next_check;
            if let Some((at, _)) = self.pending {
                deadline = deadline.min(at);
            }
            if self.watchdog.is_some() {
                deadline = deadline.min(self.next_watchdog);
            }
            {
                let mut tracker = crate::engine::tracker::lock();
                if let Some(t) = tracker.as_mut()
                    && let Some(at) = t.retry_at()
                    && self.pending.is_none()
                {
                    if now >= at {
                        t.clear_retry();
                        drop(tracker);
                        self.schedule(now, "containers");
                        continue;
                    }
                    deadline = deadline.min(at);
                }
            }
            let woken = {
                // The tracker's descriptors stay ready until it takes their events in: not
                // while a round is already due.
                let mut tracker = crate::engine::tracker::lock();
                let extra = match (&*tracker, self.pending) {
                    (Some(t), None) => t.fds(),
                    _ => Vec::new(),
                };
                let w = self.watch.wait(deadline.saturating_duration_since(now), &extra);
                drop(extra);
                if let (Ok(w), Some(t)) = (&w, tracker.as_mut())
                    && w.containers
                {
                    t.take_events();
                }
                w
            };
            let woken = match woken {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!("waiting for events failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if woken.term {
                return self.stop();
            }
            if woken.hup {
                self.reload_config();
            }
            let now = Instant::now();
            if woken.bus_lost {
                self.sys = None;
                lock(&self.shared.state).set_bus(false, Some("the system bus connection was lost".into()));
                self.shared.publish();
            }
            if woken.paths {
                self.schedule(now, "mount table");
            }
            if woken.dropins {
                self.schedule(now, "drop-in files");
            }
            if woken.systemd {
                self.schedule(now, "systemd");
            }
            if woken.bus_back {
                self.schedule(now, "bus back");
            }
            if woken.containers {
                self.schedule(now, "containers");
            }
            self.feed_watchdog(now);
            if let Some((at, why)) = self.pending
                && now >= at
            {
                self.reconcile(why);
                continue;
            }
            if now >= self.next_check {
                self.reconcile("timer");
            }
        }
    }

    /// Pings the watchdog at half its period, while the guard is going round too.
    fn feed_watchdog(&mut self, now: Instant) {
        if let Some(period) = self.watchdog
            && now >= self.next_watchdog
        {
            let guard_age = lock(&self.shared.heartbeat).elapsed();
            if guard_age < GUARD_STALE {
                notify::watchdog();
            } else {
                tracing::error!("the paths guard has not gone round for {} s", guard_age.as_secs());
            }
            self.next_watchdog = now + period;
        }
    }

    /// Events within `debounce` of the first one share one check. Containers coming and
    /// going share one check a second at most (pod churn must not cost a round per pod); any
    /// other event brings a pending check forward.
    fn schedule(&mut self, now: Instant, why: &'static str) {
        let mut wait = self.cfg().daemon.debounce;
        if why == "containers" {
            wait = wait.max(CONTAINERS_DEBOUNCE);
        }
        let at = now + wait;
        match self.pending {
            Some((t, _)) if t <= at => {}
            _ => self.pending = Some((at, why)),
        }
    }

    /// A full round of the engine: observe (systemd, units, mounts), plan, act within the rate
    /// limits, verify.
    fn reconcile(&mut self, trigger: &'static str) {
        self.pending = None;
        let now = Instant::now();
        let before_line = {
            let mut st = lock(&self.shared.state);
            st.last_trigger = trigger.to_string();
            st.status_line.clone()
        };
        let sys = match self.sys.take() {
            Some(s) => Ok(s),
            None => Systemd::connect_with(CALL_TIMEOUT),
        };
        // The configured units, and those discovery found serving a CRI socket this round:
        // their events and drop-in directories are watched alike.
        let mut units = self.cfg().units.clone();
        match sys {
            Err(e) => self.failed(now, e.to_string(), Failure::BusLost),
            Ok(sys) => match self.round(&sys, trigger) {
                Err(e) => {
                    let kind = Failure::of(&e);
                    if kind != Failure::BusLost {
                        self.sys = Some(sys);
                    }
                    self.failed(now, e.to_string(), kind);
                }
                Ok((applied, held)) => {
                    let last = applied.after.as_ref().unwrap_or(&applied.before);
                    for u in &last.facts.units {
                        if !units.contains(&u.name) {
                            units.push(u.name.clone());
                        }
                    }
                    self.watch.set_units(&units);
                    lock(&self.shared.state).checked(last, applied.status(), &applied.outcomes, held);
                    match applied.verify_error {
                        Some(e) => self.failed(now, e, Failure::BusLost),
                        None => {
                            self.sys = Some(sys);
                            self.backoff = Duration::from_secs(1);
                            self.next_check = now + self.cfg().daemon.interval;
                        }
                    }
                }
            },
        }
        self.watch.watch_dropins(&units);
        let line = lock(&self.shared.state).status_line.clone();
        if line != before_line {
            tracing::info!("{line}");
        }
        self.shared.publish();
    }

    /// observe, plan, act within the rate limits, verify.
    fn round(
        &mut self,
        sys: &Systemd,
        trigger: &'static str,
    ) -> Result<(engine::Applied, Vec<crate::daemon::ratelimit::Suppressed>), ObserveError> {
        let cfg = self.cfg();
        let node = engine::Node::Live(sys);
        let look = Self::full_look(&cfg);
        let before = engine::check(node, &cfg, look)?;
        // Long waits (a restart job) keep the watchdog fed, as long as the guard is alive.
        let period = self.watchdog;
        let next = Cell::new(self.next_watchdog);
        let stop = self.watch.stop_flag();
        let heartbeat = &self.shared.heartbeat;
        let keepalive = || {
            if let Some(p) = period
                && Instant::now() >= next.get()
                && lock(heartbeat).elapsed() < GUARD_STALE
            {
                notify::watchdog();
                next.set(Instant::now() + p);
            }
            !stop.load(Ordering::SeqCst)
        };
        let (applied, held) = self
            .shared
            .act_within_limits(node, &cfg, before, look, trigger, &keepalive);
        self.next_watchdog = next.get();
        // Undone again while we verified? Look once more, unless something failed (no retry
        // loop) or the limiter holds the fix back.
        if let Some(after) = &applied.after
            && !applied.outcomes.iter().any(|o| o.failed())
        {
            let (again, _) = lock(&self.shared.limiter).filter(&after.plan.actions, Instant::now());
            if again.iter().any(|a| crate::daemon::ratelimit::target_of(a).is_some()) {
                self.schedule(Instant::now(), "undone while verifying");
            }
        }
        Ok((applied, held))
    }

    fn failed(&mut self, now: Instant, error: String, kind: Failure) {
        let trigger = {
            let mut st = lock(&self.shared.state);
            st.failed(error.clone(), kind == Failure::BusLost);
            st.last_trigger.clone()
        };
        tracing::error!("check failed ({trigger}): {error}");
        // A bus or a systemd that does not answer: retry soon, then less often, never in a tight
        // loop. Anything else waits for the next check.
        self.next_check = now
            + match kind {
                Failure::Other => self.cfg().daemon.interval,
                Failure::BusLost | Failure::Busy => self.backoff,
            };
        if kind != Failure::Other {
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// SIGHUP: a config that does not load is rejected and the one in force stays.
    fn reload_config(&mut self) {
        notify::reloading();
        match Config::load(self.config_path.as_deref()) {
            Ok(cfg) => {
                tracing::info!("config reloaded from {}", cfg.origin());
                lock(&self.shared.limiter).set_limits(cfg.daemon.max_fixes, cfg.daemon.fix_window);
                if let Some(t) = crate::engine::tracker::lock().as_mut() {
                    t.set_rejudge(cfg.daemon.rejudge);
                }
                self.watch.set_units(&cfg.units);
                {
                    let mut st = lock(&self.shared.state);
                    st.interval_secs = cfg.daemon.interval.as_secs();
                    st.config = cfg.origin();
                    st.set_config_error(None);
                }
                *lock(&self.shared.cfg) = Arc::new(cfg);
                self.reconcile("config reload");
            }
            Err(e) => {
                tracing::error!("config reload rejected; the previous config stays in force: {e}");
                lock(&self.shared.state).set_config_error(Some(e.to_string()));
                self.shared.publish();
            }
        }
        notify::ready(&lock(&self.shared.state).status_line);
    }

    fn stop(&mut self) -> u8 {
        notify::stopping();
        tracing::info!("stopping");
        let mut st = lock(&self.shared.state);
        st.running = false;
        st.status_line = "stopped".into();
        if let Err(e) = st.write() {
            tracing::warn!("cannot write the state file: {e}");
        }
        0
    }
}
