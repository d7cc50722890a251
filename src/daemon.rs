//! `mountprop daemon`: fixes the node at boot, then keeps it fixed.
//!
//! One thread does all the work, in one loop around one poll(2) (see [`crate::watch`]): a full
//! check-and-fix (the same engine as `mountprop apply`) on a timer and soon after any event
//! (systemd signals, mountprop's drop-in files, the mount table), and a cheap re-read of the
//! configured paths' propagation every `probe_interval`, because a propagation change such as
//! `mount --make-private /` does not wake a poll on mountinfo. The watchdog is fed from this
//! loop, so a hung loop is caught.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::act::ActionResult;
use crate::config::Config;
use crate::engine;
use crate::metrics;
use crate::mountinfo::{MountInfo, Propagation};
use crate::notify;
use crate::observe::ObserveError;
use crate::ratelimit::Limiter;
use crate::state::State;
use crate::statmount;
use crate::systemd::Systemd;
use crate::watch::Watch;

/// With only mountinfo to read, a re-read costs milliseconds on a big table: not more often.
const SLOW_PROBE_MIN: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The propagation of each configured path's mount, to notice a change cheaply.
type Signature = Vec<Option<(u64, Propagation)>>;

struct Daemon {
    config_path: Option<PathBuf>,
    cfg: Config,
    sys: Option<Systemd>,
    limiter: Limiter,
    state: State,
    watch: Watch,
    fast_probe: bool,
    signature: Signature,
    next_check: Instant,
    next_probe: Instant,
    probe_soon: bool,
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
    let watch = match Watch::new(&cfg.units) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot set up event sources: {e}");
            return 1;
        }
    };
    let fast_probe = statmount::available();
    tracing::info!(
        "starting; config: {}; propagation probe: {}",
        cfg.origin(),
        if fast_probe {
            "statmount"
        } else {
            "mountinfo (no statmount here)"
        }
    );
    let now = Instant::now();
    let mut d = Daemon {
        config_path,
        limiter: Limiter::new(cfg.daemon.max_fixes, cfg.daemon.fix_window),
        state: State::new(cfg.origin(), cfg.daemon.interval.as_secs()),
        cfg,
        sys: None,
        watch,
        fast_probe,
        signature: Vec::new(),
        next_check: now,
        next_probe: now,
        probe_soon: false,
        pending: None,
        watchdog: notify::watchdog_period(),
        next_watchdog: now,
        backoff: Duration::from_secs(1),
    };
    // Boot preflight: fix first, then say ready, so units ordered after mountprop start with
    // its drop-ins in place. A failure is reported, but does not hold the boot up.
    d.reconcile("boot");
    notify::ready(&d.state.status_line);
    d.run_loop()
}

impl Daemon {
    /// The live propagation probe on each full check, when configured.
    fn probe_limit(&self) -> Option<Duration> {
        self.cfg.daemon.live_probe.then_some(crate::probe::DEFAULT_TIMEOUT)
    }

    fn probe_period(&self) -> Duration {
        if self.fast_probe {
            self.cfg.daemon.probe_interval
        } else {
            self.cfg.daemon.probe_interval.max(SLOW_PROBE_MIN)
        }
    }

    fn run_loop(&mut self) -> u8 {
        loop {
            let now = Instant::now();
            let mut deadline = self.next_check.min(self.next_probe);
            if let Some((at, _)) = self.pending {
                deadline = deadline.min(at);
            }
            if self.watchdog.is_some() {
                deadline = deadline.min(self.next_watchdog);
            }
            let woken = match self
                .watch
                .wait(deadline.saturating_duration_since(now), !self.probe_soon)
            {
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
            if woken.mount_table {
                // A mount came or went: look at the paths' propagation soon, once.
                self.next_probe = self.next_probe.min(now + self.cfg.daemon.debounce);
                self.probe_soon = true;
            }
            if woken.bus_lost {
                self.sys = None;
                self.state
                    .set_bus(false, Some("the system bus connection was lost".into()));
                self.publish();
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
            if let Some(period) = self.watchdog
                && now >= self.next_watchdog
            {
                notify::watchdog();
                self.next_watchdog = now + period;
            }
            if now >= self.next_probe {
                self.probe_soon = false;
                self.next_probe = now + self.probe_period();
                if self.read_signature() != self.signature {
                    self.reconcile("mount table");
                    continue;
                }
            }
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

    /// Events within `debounce` of the first one share one check.
    fn schedule(&mut self, now: Instant, why: &'static str) {
        if self.pending.is_none() {
            self.pending = Some((now + self.cfg.daemon.debounce, why));
        }
    }

    fn read_signature(&self) -> Signature {
        if self.fast_probe {
            return self
                .cfg
                .paths
                .iter()
                .map(|r| {
                    statmount::mount_of(&r.path)
                        .ok()
                        .map(|m| (u64::from(m.id), m.propagation))
                })
                .collect();
        }
        let paths: Vec<&Path> = self.cfg.paths.iter().map(|r| r.path.as_path()).collect();
        match MountInfo::read_pid(None).and_then(|t| {
            t.governing_many(&paths)
                .map(|ms| ms.iter().map(|m| m.as_ref().map(|m| (m.id, m.propagation))).collect())
        }) {
            Ok(sig) => sig,
            Err(_) => vec![None; paths.len()],
        }
    }

    /// One full round of the engine: observe, plan, act (within the rate limits), verify.
    fn reconcile(&mut self, trigger: &'static str) {
        self.pending = None;
        let now = Instant::now();
        self.state.last_trigger = trigger.to_string();
        let before_line = self.state.status_line.clone();
        // The baseline the probe compares with is taken before looking (and again right after
        // acting), never after: a change made while the check runs must not become the baseline.
        let mut signature = self.read_signature();
        let sys = match self.sys.take() {
            Some(s) => Ok(s),
            None => Systemd::connect(),
        };
        let interval = self.cfg.daemon.interval;
        match sys {
            Err(e) => self.failed(now, e.to_string(), true),
            Ok(sys) => match engine::check(engine::Node::Live(&sys), &self.cfg, self.probe_limit()) {
                Err(e) => {
                    let bus = matches!(e, ObserveError::Systemd(_));
                    if !bus {
                        self.sys = Some(sys);
                    }
                    self.failed(now, e.to_string(), bus);
                }
                Ok(before) => {
                    let (allowed, held) = self.limiter.filter(&before.plan.actions, now);
                    if !allowed.is_empty() {
                        let what: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                        tracing::info!(TRIGGER = trigger, "acting on {trigger}: {}", what.join("; "));
                    }
                    for h in &held {
                        if !self.state.held_back.iter().any(|o| o.target == h.target) {
                            tracing::warn!(
                                ACTION = "hold-back",
                                "something keeps reverting {}: fixed {} times within {} s; not fixing it again for {} s",
                                h.target,
                                h.fixes,
                                self.cfg.daemon.fix_window.as_secs(),
                                h.retry_in_secs
                            );
                        }
                    }
                    let applied = {
                        let period = self.watchdog;
                        let next = Cell::new(self.next_watchdog);
                        let stop = self.watch.stop_flag();
                        let keepalive = || {
                            if let Some(p) = period
                                && Instant::now() >= next.get()
                            {
                                notify::watchdog();
                                next.set(Instant::now() + p);
                            }
                            !stop.load(Ordering::SeqCst)
                        };
                        let mut acted = || signature = self.read_signature();
                        let a = engine::carry_out(
                            engine::Node::Live(&sys),
                            &self.cfg,
                            before,
                            &allowed,
                            self.probe_limit(),
                            &keepalive,
                            &mut acted,
                        );
                        self.next_watchdog = next.get();
                        a
                    };
                    for o in &applied.outcomes {
                        if o.result == ActionResult::Done {
                            self.limiter.record(&o.action, now);
                        }
                    }
                    let last = applied.after.as_ref().unwrap_or(&applied.before);
                    // Undone again while we verified? Look once more, unless something failed
                    // (no retry loop) or the limiter holds the fix back.
                    if applied.after.is_some() && !applied.outcomes.iter().any(|o| o.failed()) {
                        let (again, _) = self.limiter.filter(&last.plan.actions, Instant::now());
                        if again.iter().any(|a| crate::ratelimit::target_of(a).is_some()) {
                            self.schedule(Instant::now(), "undone while verifying");
                        }
                    }
                    self.state.checked(last, applied.status(), &applied.outcomes, held);
                    match applied.verify_error {
                        Some(e) => self.failed(now, e, true),
                        None => {
                            self.sys = Some(sys);
                            self.backoff = Duration::from_secs(1);
                            self.next_check = now + interval;
                        }
                    }
                }
            },
        }
        self.signature = signature;
        self.watch.watch_dropins(&self.cfg.units);
        if self.state.status_line != before_line {
            tracing::info!("{}", self.state.status_line);
        }
        self.publish();
    }

    fn failed(&mut self, now: Instant, error: String, bus: bool) {
        tracing::error!("check failed ({}): {error}", self.state.last_trigger);
        self.state.failed(error, bus);
        // Retry soon, then less often: never a tight loop against a missing bus.
        self.next_check = now + if bus { self.backoff } else { self.cfg.daemon.interval };
        if bus {
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// State file, metrics and STATUS= after every check.
    fn publish(&mut self) {
        if let Err(e) = self.state.write() {
            tracing::warn!("cannot write the state file: {e}");
        }
        if let Some(path) = &self.cfg.daemon.metrics_file
            && let Err(e) = metrics::write(path, &self.state)
        {
            tracing::warn!("cannot write metrics to {}: {e}", path.display());
        }
        notify::status(&self.state.status_line);
    }

    /// SIGHUP: a config that does not load is rejected and the one in force stays.
    fn reload_config(&mut self) {
        notify::reloading();
        match Config::load(self.config_path.as_deref()) {
            Ok(cfg) => {
                tracing::info!("config reloaded from {}", cfg.origin());
                self.limiter.set_limits(cfg.daemon.max_fixes, cfg.daemon.fix_window);
                self.watch.set_units(&cfg.units);
                self.state.interval_secs = cfg.daemon.interval.as_secs();
                self.state.config = cfg.origin();
                self.cfg = cfg;
                self.state.set_config_error(None);
                self.reconcile("config reload");
            }
            Err(e) => {
                tracing::error!("config reload rejected; the previous config stays in force: {e}");
                self.state.set_config_error(Some(e.to_string()));
                self.publish();
            }
        }
        notify::ready(&self.state.status_line);
    }

    fn stop(&mut self) -> u8 {
        notify::stopping();
        tracing::info!("stopping");
        self.state.running = false;
        self.state.status_line = "stopped".into();
        if let Err(e) = self.state.write() {
            tracing::warn!("cannot write the state file: {e}");
        }
        0
    }
}
