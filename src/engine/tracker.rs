//! The daemon's containers, tracked as they come and go, so that a round costs nothing per
//! container unless something changed for it.
//!
//! A container's verdict changes only when it starts or exits, when the host's mount at one of
//! its volume sources changes (its propagation or peer group: the flip), or when it changes its
//! own namespace. So:
//! - the runtimes' task directories are watched with inotify: a new bundle is read once, when
//!   its process is there; a removed one is dropped;
//! - each container's process is held by a pidfd, whose readiness says it exited (and which
//!   pins it: a reused pid is never taken for the old container);
//! - the host's mounts at the sources are asked for by their unique id each round (statmount:
//!   one call per distinct host mount, not per volume), and looked up again from the paths only
//!   after the host's mount table changed;
//! - the judging itself is pure and works on what is remembered.
//!
//! As a safety net for what no event announces (a container remounting inside itself, a lost
//! inotify event), each container's own table is read again every `rejudge` period, each at
//! its own time, so the re-reads never come in a burst.
//!
//! One-shot commands (`check`, `apply`) have no tracker and read everything, every time.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::engine::containers::{self, Bundle, Container, ContainerFacts, Loaded, Theirs, mtime, start_time};
use crate::node::mountinfo::{MountInfo, MountSummary, Propagation};
use crate::node::{bounded, statmount};

/// What the tracker did in its last round: for the benchmark and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tracked: usize,
    /// Container tables read this round (new containers and safety-net re-reads).
    pub tables_read: usize,
    /// Bundles whose spec was read this round.
    pub specs_read: usize,
    pub dropped: usize,
    /// statmount calls for the host's side.
    pub host_queries: usize,
    /// Whether the sources were looked up again from their paths.
    pub host_lookup: bool,
}

struct Tracked {
    container: Container,
    /// Holds the process: readable once it exited. `None` where pidfd_open is not available.
    pidfd: Option<OwnedFd>,
    /// The process's start time (clock ticks after boot, /proc/PID/stat field 22).
    start: u64,
    theirs: Theirs,
    /// When the safety net reads its table again.
    due: Instant,
}

/// The host's mount at one volume source.
#[derive(Clone)]
struct Held {
    unique: Option<u64>,
    summary: Option<MountSummary>,
    /// Why it could not be looked at (its filesystem does not answer).
    error: Option<String>,
    /// Its mount went away: the source is to be looked up again.
    lost: bool,
}

impl Held {
    fn fact(&self) -> Result<Option<MountSummary>, String> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(self.summary.clone()),
        }
    }
}

/// What a watch descriptor watches.
#[derive(Clone, PartialEq, Eq)]
enum Watched {
    /// A directory above the task directories (a runtime's state root).
    Root,
    /// A task directory: one bundle per entry.
    Tasks,
    /// A bundle whose process is not there yet: its pid file is awaited.
    Bundle(PathBuf),
}

pub struct Tracker {
    /// Whether it looks at the host from a namespace of its own (through /proc/1).
    own_namespace: Option<bool>,
    root: PathBuf,
    host_table: PathBuf,
    fast: bool,
    rejudge: Duration,
    inotify: Option<Inotify>,
    watches: HashMap<WatchDescriptor, Watched>,
    watched_dirs: HashSet<PathBuf>,
    /// Bundles to read again (a pid file appeared).
    poke: HashSet<PathBuf>,
    /// The host's mount table, for POLLPRI when it changes.
    host_mountinfo: Option<File>,
    host_first: Option<u64>,
    tracked: HashMap<PathBuf, Tracked>,
    /// Bundles present but not running (yet), and those not worth tracking.
    waiting: HashMap<PathBuf, Bundle>,
    ignored: HashSet<PathBuf>,
    /// Bundles whose process exited, with their pid file's time then: not read again until
    /// the pid file changes, so a pid reused by another process is never taken for them.
    exited: HashMap<PathBuf, Option<SystemTime>>,
    spec_errors: HashMap<PathBuf, String>,
    /// Bundles with a running process that could not be read yet, and how often.
    unsettled: HashMap<PathBuf, u32>,
    /// When a round should look at the unsettled ones again.
    retry_at: Option<Instant>,
    hosts: HashMap<PathBuf, Held>,
    /// Sources not looked up yet (new, or their mount went away).
    fresh: Vec<PathBuf>,
    /// The set of tracked containers changed: the set of sources is to be made again.
    sources_dirty: bool,
    /// The host's mount table changed since the holders of the sources were last asked.
    holders_dirty: bool,
    next_holder_check: Instant,
    /// Something a verdict depends on changed this round.
    changed: bool,
    /// The task directories are to be listed again.
    rescan: bool,
    next_rescan: Instant,
    /// Which of the runtimes' state roots existed at the last look.
    roots: Vec<bool>,
    /// The facts handed out last, handed out again while nothing changed.
    output: Arc<Vec<ContainerFacts>>,
    pub last: Counts,
}

static TRACKER: Mutex<Option<Tracker>> = Mutex::new(None);

/// How soon, and how many times, a bundle whose process could not be read is looked at again
/// before it waits for ordinary rounds.
const UNSETTLED_RETRY: Duration = Duration::from_secs(1);
const UNSETTLED_RETRIES: u32 = 5;
/// After the host's mount table changed, which mount holds each volume source is asked again
/// (a statx per source), at most this often: mount churn on a busy node must not make every
/// round pay it.
const HOLDER_CHECK: Duration = Duration::from_secs(1);
/// The task directories are listed at least this often, events or not.
const RESCAN: Duration = Duration::from_secs(600);

/// The host mounts that hold the tracked containers' volume sources (unique id, and the
/// propagation last judged), for the daemon's paths guard to re-read between rounds: a flip
/// raises no event. Apart from [`TRACKER`], which the main loop holds while it waits.
static HOST_MOUNTS: Mutex<Vec<(u64, Propagation)>> = Mutex::new(Vec::new());

/// What [`HOST_MOUNTS`] holds now.
pub fn host_mounts() -> Vec<(u64, Propagation)> {
    HOST_MOUNTS.lock().map(|v| v.clone()).unwrap_or_default()
}

/// The process's tracker, if the daemon installed one.
pub fn lock() -> MutexGuard<'static, Option<Tracker>> {
    TRACKER.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts tracking for this process (the daemon).
pub fn install(rejudge: Duration) {
    raise_fd_limit();
    *lock() = Some(Tracker::new(None, rejudge));
}

/// A pidfd per container: the soft limit of 1024 open files that systemd gives services is
/// for select(2), which mountprop does not use.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: a plain syscall; the fd it returns is ours alone.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// When a container first read at `now` is due for its safety-net re-read: somewhere in the
/// period after the next, by its id, so that containers seen together are spread out.
fn first_due(now: Instant, period: Duration, id: &str) -> Instant {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let spread = period.as_millis().max(1) as u64;
    now + period + Duration::from_millis(h % spread)
}

impl Tracker {
    /// `own_namespace`: mountprop runs in a mount namespace other than PID 1's, and looks at
    /// the host through /proc/1.
    pub fn new(own_namespace: Option<bool>, rejudge: Duration) -> Self {
        let (root, host_table) = if own_namespace == Some(true) {
            (PathBuf::from("/proc/1/root"), PathBuf::from("/proc/1/mountinfo"))
        } else {
            (PathBuf::from("/"), PathBuf::from("/proc/self/mountinfo"))
        };
        let fast = own_namespace == Some(false) && statmount::available();
        Self::at(own_namespace, root, host_table, fast, rejudge)
    }

    /// A tracker of the runtimes' state under `root`, judging against `host_table` (statmount
    /// when `fast`): what the benchmark drives on a scratch tree.
    pub fn at(own_namespace: Option<bool>, root: PathBuf, host_table: PathBuf, fast: bool, rejudge: Duration) -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| tracing::warn!("containers are read on every round: no inotify: {e}"))
            .ok();
        Self {
            own_namespace,
            host_mountinfo: File::open(&host_table).ok(),
            host_first: MountInfo::first_mount_id(&host_table).ok().flatten(),
            root,
            host_table,
            fast,
            rejudge,
            inotify,
            watches: HashMap::new(),
            watched_dirs: HashSet::new(),
            poke: HashSet::new(),
            tracked: HashMap::new(),
            waiting: HashMap::new(),
            ignored: HashSet::new(),
            exited: HashMap::new(),
            spec_errors: HashMap::new(),
            unsettled: HashMap::new(),
            retry_at: None,
            hosts: HashMap::new(),
            fresh: Vec::new(),
            sources_dirty: false,
            holders_dirty: false,
            next_holder_check: Instant::now(),
            changed: true,
            rescan: true,
            next_rescan: Instant::now(),
            roots: Vec::new(),
            output: Arc::default(),
            last: Counts::default(),
        }
    }

    pub fn set_rejudge(&mut self, period: Duration) {
        self.rejudge = period;
    }

    /// The descriptors whose readiness means a container came or went: the inotify instance
    /// and every pidfd. The daemon polls them with its other event sources.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v: Vec<BorrowedFd<'_>> = self.inotify.iter().map(AsFd::as_fd).collect();
        v.extend(self.tracked.values().filter_map(|t| t.pidfd.as_ref().map(AsFd::as_fd)));
        v
    }

    /// When the daemon should run a round for bundles that could not be settled yet.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// The retry is being run.
    pub fn clear_retry(&mut self) {
        self.retry_at = None;
    }

    /// How many containers are tracked.
    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty()
    }

    fn watch(&mut self, dir: &Path, what: Watched) {
        let Some(ino) = &self.inotify else { return };
        if self.watched_dirs.contains(dir) {
            return;
        }
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_ONLYDIR
            | AddWatchFlags::IN_DONT_FOLLOW;
        match ino.add_watch(dir, flags) {
            Ok(wd) => {
                self.watches.insert(wd, what);
                self.watched_dirs.insert(dir.to_path_buf());
            }
            Err(e) => tracing::debug!(PATH = %dir.display(), "cannot watch: {e}"),
        }
    }

    fn unwatch(&mut self, dir: &Path) {
        let Some(ino) = &self.inotify else { return };
        if !self.watched_dirs.remove(dir) {
            return;
        }
        let wd = self
            .watches
            .iter()
            .find(|(_, w)| matches!(w, Watched::Bundle(d) if d == dir))
            .map(|(wd, _)| *wd);
        if let Some(wd) = wd {
            self.watches.remove(&wd);
            let _ = ino.rm_watch(wd);
        }
    }

    /// Reads what inotify queued: which bundles to look at again.
    fn drain(&mut self) {
        let Some(ino) = &self.inotify else { return };
        let mut gone = Vec::new();
        while let Ok(events) = ino.read_events() {
            if events.is_empty() {
                break;
            }
            for e in &events {
                match self.watches.get(&e.wd) {
                    Some(Watched::Bundle(dir)) => {
                        self.poke.insert(dir.clone());
                    }
                    Some(_) => self.rescan = true,
                    None => {}
                }
                if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    self.rescan = true;
                }
                if e.mask
                    .intersects(AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF)
                {
                    gone.push(e.wd);
                }
            }
        }
        for wd in gone {
            if let Some(w) = self.watches.remove(&wd) {
                self.rescan = true;
                if let Watched::Bundle(d) = w {
                    self.watched_dirs.remove(&d);
                } else {
                    // A directory that went away is watched again (from its parent) when it
                    // is made again.
                    self.watched_dirs.retain(|d| d.exists());
                }
            }
        }
    }

    /// Lists the task directories and settles the set of bundles.
    fn scan(&mut self) {
        for r in containers::task_roots(&self.root) {
            // The roots themselves may not exist yet: watch the nearest existing ancestor.
            let mut d = r.as_path();
            while !d.is_dir() {
                match d.parent() {
                    Some(p) => d = p,
                    None => break,
                }
            }
            let d = d.to_path_buf();
            // Not `/` or `/run` themselves, whose every new entry would wake the daemon: a
            // runtime that starts later is found by the next timer round's scan.
            if d.components().count() > 2 {
                self.watch(&d, Watched::Root);
            }
            // Namespace directories (k8s.io, moby) under containerd's task roots.
            if d == r
                && let Ok(ns) = std::fs::read_dir(&r)
            {
                for e in ns.flatten() {
                    self.watch(&e.path(), Watched::Root);
                }
            }
        }
        let mut present = HashSet::new();
        for (runtime, dir) in containers::task_dirs(&self.root) {
            self.watch(&dir, Watched::Tasks);
            for b in containers::bundles_in(&self.root, runtime, &dir) {
                present.insert(b.dir.clone());
                if !self.tracked.contains_key(&b.dir) && !self.ignored.contains(&b.dir) {
                    self.waiting.entry(b.dir.clone()).or_insert(b.clone());
                    self.poke.insert(b.dir);
                }
            }
        }
        let before = self.tracked.len();
        self.tracked.retain(|d, _| present.contains(d));
        self.last.dropped += before - self.tracked.len();
        let gone: Vec<PathBuf> = self.waiting.keys().filter(|d| !present.contains(*d)).cloned().collect();
        for d in gone {
            self.waiting.remove(&d);
            self.unwatch(&d);
        }
        self.ignored.retain(|d| present.contains(d));
        self.unsettled.retain(|d, _| present.contains(d));
        self.exited.retain(|d, _| present.contains(d));
        self.spec_errors.retain(|d, _| present.contains(d));
    }

    /// Drops the containers whose process exited (their pidfd is readable).
    fn reap(&mut self) {
        let dead: Vec<PathBuf> = {
            let mut keys = Vec::new();
            let mut fds = Vec::new();
            for (k, t) in &self.tracked {
                if let Some(fd) = &t.pidfd {
                    keys.push(k);
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            if fds.is_empty() || !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                return;
            }
            keys.into_iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(k, _)| k.clone())
                .collect()
        };
        for d in dead {
            if let Some(t) = self.tracked.remove(&d) {
                self.last.dropped += 1;
                let pidfile = match t.container.runtime {
                    containers::Runtime::CriO => d.join("userdata/pidfile"),
                    _ => d.join("init.pid"),
                };
                self.exited.insert(d, mtime(&pidfile));
            }
        }
    }

    /// Reads a waiting bundle; starts tracking it if its process is there.
    fn admit(&mut self, dir: &Path, now: Instant, buf: &mut Vec<u8>) {
        let Some(b) = self.waiting.get(dir).cloned() else {
            return;
        };
        if let Some(was) = self.exited.get(dir) {
            if mtime(&b.pidfile) == *was {
                return;
            }
            self.exited.remove(dir);
        }
        self.last.specs_read += 1;
        let mut loaded = containers::load(&b);
        if !matches!(loaded, Ok(Loaded::Running(_) | Loaded::Uninteresting)) && !self.watched_dirs.contains(dir) {
            // Watch first, then read again: what was written before the watch raised no event.
            self.watch(dir, Watched::Bundle(dir.to_path_buf()));
            loaded = containers::load(&b);
        }
        let c = match loaded {
            Ok(Loaded::Running(c)) => c,
            Ok(Loaded::Uninteresting) => {
                self.waiting.remove(dir);
                self.unwatch(dir);
                self.ignored.insert(dir.to_path_buf());
                return;
            }
            // Not started yet: its pid file is awaited (the bundle's watch).
            Ok(Loaded::NotRunning) => return,
            Err(e) => {
                self.spec_errors.insert(dir.to_path_buf(), e.to_string());
                return;
            }
        };
        self.spec_errors.remove(dir);
        let pid = c.pid.unwrap_or(0);
        // Pin the process, then make sure the pin holds the process the pid file meant.
        let pinned = start_time(pid).and_then(|start| {
            let fd = pidfd_open(pid);
            (start_time(pid) == Some(start)).then_some((start, fd))
        });
        self.last.tables_read += 1;
        let theirs = pinned
            .as_ref()
            .and_then(|_| containers::read_theirs(&c, self.host_first, buf));
        let (Some((start, pidfd)), Some(theirs)) = (pinned, theirs) else {
            // Gone meanwhile, or still in the host's namespace (a runtime that wrote the pid
            // file before the process entered its own, or a pid reused by a host process):
            // looked at again soon, a few times, then on every round.
            let n = self.unsettled.entry(dir.to_path_buf()).or_insert(0);
            *n += 1;
            if *n <= UNSETTLED_RETRIES {
                self.retry_at = Some(
                    self.retry_at
                        .map_or(now + UNSETTLED_RETRY, |t| t.min(now + UNSETTLED_RETRY)),
                );
            }
            return;
        };
        self.unsettled.remove(dir);
        self.waiting.remove(dir);
        self.unwatch(dir);
        let due = first_due(now, self.rejudge, &c.id);
        self.tracked.insert(
            dir.to_path_buf(),
            Tracked {
                container: c,
                pidfd,
                start,
                theirs,
                due,
            },
        );
    }

    /// The safety net: re-reads the tables that are due, checking the process is still the
    /// one first read.
    fn reread_due(&mut self, now: Instant, buf: &mut Vec<u8>) {
        let due: Vec<PathBuf> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let Some(t) = self.tracked.get_mut(&k) else { continue };
            let pid = t.container.pid.unwrap_or(0);
            let same = start_time(pid) == Some(t.start);
            let theirs = same
                .then(|| containers::read_theirs(&t.container, self.host_first, buf))
                .flatten();
            self.last.tables_read += 1;
            match theirs {
                Some(th) if th.first_mount == t.theirs.first_mount || t.theirs.first_mount.is_none() => {
                    t.theirs = th;
                    t.due = now + self.rejudge;
                }
                _ => {
                    // Not the process first read: forget it; the bundle is read afresh.
                    self.tracked.remove(&k);
                    self.last.dropped += 1;
                }
            }
        }
    }

    /// The host's mount at every source: statmount by unique id for what is known (one call per
    /// distinct host mount), a lookup by path for new sources; after the host's mount table
    /// changed, which mount holds each source is asked again (one statx each, at most once
    /// every [`HOLDER_CHECK`]), and a container whose source moved to another mount has its
    /// own table read again too (the new mount reached it, or did not).
    fn host_side(&mut self, now: Instant) {
        if self.sources_dirty {
            self.sources_dirty = false;
            let sources: HashSet<&PathBuf> = self
                .tracked
                .values()
                .flat_map(|t| t.container.volumes.iter().map(|v| &v.source))
                .collect();
            self.hosts.retain(|s, _| sources.contains(s));
            self.fresh = sources
                .into_iter()
                .filter(|s| !self.hosts.contains_key(*s))
                .cloned()
                .collect();
        }
        if self.host_mountinfo.as_ref().is_some_and(|f| {
            let mut p = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
            matches!(poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0)
        }) {
            self.holders_dirty = true;
        }
        if !self.fast {
            // Without statmount: one read of the host's table for every source, every round
            // (a propagation change raises no event).
            let all: Vec<PathBuf> = self.hosts.keys().cloned().chain(self.fresh.drain(..)).collect();
            let found = containers::host_mounts(&all, &self.host_table, false);
            for (s, m) in all.into_iter().zip(found) {
                let held = Held {
                    unique: None,
                    error: m.as_ref().err().cloned(),
                    summary: m.unwrap_or(None),
                    lost: false,
                };
                let old = self.hosts.insert(s, held.clone());
                if old.is_none_or(|o| o.summary != held.summary || o.error != held.error) {
                    self.changed = true;
                }
            }
            return;
        }
        let mut moved: HashSet<PathBuf> = HashSet::new();
        if self.holders_dirty && now >= self.next_holder_check {
            self.holders_dirty = false;
            self.next_holder_check = now + HOLDER_CHECK;
            self.last.host_lookup = true;
            // A source may sit on a filesystem that does not answer: looked up within a deadline.
            let sources: Vec<PathBuf> = self
                .hosts
                .iter()
                .filter(|(_, h)| h.error.is_none())
                .map(|(s, _)| s.clone())
                .collect();
            let ids = bounded::each(&sources, bounded::DEADLINE, |s| statmount::holder_id(s).ok());
            self.last.host_queries += sources.len();
            for (s, id) in sources.into_iter().zip(ids) {
                if let Some(h) = self.hosts.get_mut(&s)
                    && id.as_ref().ok().copied().flatten() != h.unique
                {
                    h.unique = None;
                    moved.insert(s);
                }
            }
            self.fresh.extend(moved.iter().cloned());
        } else if self.holders_dirty {
            self.retry_at = Some(
                self.retry_at
                    .map_or(self.next_holder_check, |t| t.min(self.next_holder_check)),
            );
        }
        let fresh = std::mem::take(&mut self.fresh);
        let looked = bounded::each(&fresh, bounded::DEADLINE, |s| {
            (statmount::mount_of(s).ok(), statmount::describe(s).ok())
        });
        self.last.host_queries += 2 * fresh.len();
        for (s, l) in fresh.into_iter().zip(looked) {
            let held = match l {
                Ok((Some(st), Some(m))) => Held {
                    unique: Some(st.unique_id),
                    summary: Some(m),
                    error: None,
                    lost: false,
                },
                // Kept as it is, with no id: not asked again until its mount changes.
                Ok(_) => Held {
                    unique: None,
                    summary: None,
                    error: None,
                    lost: false,
                },
                Err(e) => Held {
                    unique: None,
                    summary: None,
                    error: Some(e.to_string()),
                    lost: false,
                },
            };
            self.hosts.insert(s, held);
            self.changed = true;
        }
        if !moved.is_empty() {
            for t in self.tracked.values_mut() {
                if t.container.volumes.iter().any(|v| moved.contains(&v.source)) {
                    t.due = now;
                }
            }
        }
        // Propagation changes raise no event: ask each distinct host mount.
        let mut states: HashMap<u64, Option<statmount::MountState>> = HashMap::new();
        for h in self.hosts.values_mut() {
            let Some(u) = h.unique else { continue };
            let st = *states.entry(u).or_insert_with(|| {
                self.last.host_queries += 1;
                statmount::mount_by_id(u).ok()
            });
            match (st, &mut h.summary) {
                (Some(st), Some(m)) => {
                    if m.propagation != st.propagation {
                        m.propagation = st.propagation;
                        self.changed = true;
                    }
                }
                _ => {
                    h.unique = None;
                    h.summary = None;
                    h.lost = true;
                }
            }
        }
        // A mount that went away: its sources are looked up again, soon.
        let lost: Vec<PathBuf> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.lost)
            .map(|(s, _)| s.clone())
            .collect();
        if !lost.is_empty() {
            self.changed = true;
            self.retry_at = Some(now);
        }
        for s in lost {
            self.hosts.remove(&s);
            self.fresh.push(s);
        }
        if self.changed {
            let mut judged: Vec<(u64, Propagation)> = self
                .hosts
                .values()
                .filter_map(|h| Some((h.unique?, h.summary.as_ref()?.propagation)))
                .collect();
            judged.sort_by_key(|(u, _)| *u);
            judged.dedup_by_key(|(u, _)| *u);
            if let Ok(mut m) = HOST_MOUNTS.lock() {
                *m = judged;
            }
        }
    }

    /// Takes in what the descriptors of [`Tracker::fds`] announced, so that they are quiet
    /// again; the reading happens in the next [`Tracker::observe`].
    pub fn take_events(&mut self) {
        self.drain();
        self.reap();
    }

    /// A round: what changed is read, everything else is remembered; then the facts of every
    /// tracked container, as the observer asks for them.
    pub fn observe(&mut self, own_namespace: Option<bool>) -> (Arc<Vec<ContainerFacts>>, Vec<String>) {
        if own_namespace != self.own_namespace {
            *self = Tracker::new(own_namespace, self.rejudge);
        }
        let now = Instant::now();
        let dropped = self.last.dropped;
        self.last = Counts::default();
        let mut buf = Vec::new();
        self.retry_at = None;
        let before = self.tracked.len();
        self.take_events();
        self.last.dropped += dropped;
        // The task directories are listed when inotify says they changed, when a runtime's
        // state root appeared or went, and now and then anyway, so that nothing depends on an
        // inotify event alone.
        let roots: Vec<bool> = containers::task_roots(&self.root).iter().map(|r| r.is_dir()).collect();
        if roots != self.roots || now >= self.next_rescan {
            self.roots = roots;
            self.rescan = true;
        }
        if std::mem::take(&mut self.rescan) {
            self.next_rescan = now + RESCAN;
            self.scan();
        }
        // Bundles whose process could not be read yet are tried again on every round.
        let unsettled: Vec<PathBuf> = self.unsettled.keys().cloned().collect();
        self.poke.extend(unsettled);
        let poke: Vec<PathBuf> = self.poke.drain().collect();
        for d in poke {
            self.admit(&d, now, &mut buf);
        }
        if self.last.dropped > 0 || self.tracked.len() != before || self.last.tables_read > 0 {
            self.changed = true;
            self.sources_dirty = true;
        }
        self.host_side(now);
        let reread = self.last.tables_read;
        self.reread_due(now, &mut buf);
        if self.last.tables_read != reread || self.tracked.len() != before {
            self.changed = true;
            self.sources_dirty = true;
        }
        self.last.tracked = self.tracked.len();
        let mut errors: Vec<String> = self.spec_errors.values().cloned().collect();
        errors.sort();
        if !std::mem::take(&mut self.changed) {
            // Nothing changed for any container: the facts handed out last time stand.
            return (self.output.clone(), errors);
        }
        let mut groups: HashMap<u64, MountSummary> = HashMap::new();
        let mut out: Vec<ContainerFacts> = Vec::with_capacity(self.tracked.len());
        for t in self.tracked.values() {
            for g in &t.theirs.groups {
                if let Some(id) = g.propagation.shared {
                    groups.entry(id).or_insert_with(|| g.clone());
                }
            }
            let hosts = t
                .container
                .volumes
                .iter()
                .map(|v| self.hosts.get(&v.source).map_or(Ok(None), Held::fact))
                .collect();
            out.push(containers::facts_of(t.container.clone(), hosts, &t.theirs));
        }
        containers::link(&mut out, &groups, &mut HashMap::new());
        out.sort_by_cached_key(|f| (f.container.label(), f.container.id.clone()));
        self.output = Arc::new(out);
        (self.output.clone(), errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_net_reads_are_spread_over_the_period() {
        let now = Instant::now();
        let period = Duration::from_secs(3600);
        let dues: Vec<Duration> = (0..500)
            .map(|i| first_due(now, period, &format!("c{i:04}")) - now)
            .collect();
        assert!(dues.iter().all(|d| *d >= period && *d < period * 2));
        // No minute of the spread holds more than a few of 500 (even would be 8.3).
        let mut per_minute = HashMap::new();
        for d in &dues {
            *per_minute.entry((d.as_secs() - 3600) / 60).or_insert(0) += 1;
        }
        assert!(per_minute.values().all(|n| *n <= 25), "{per_minute:?}");
        assert!(per_minute.len() > 40, "spread over {} minutes only", per_minute.len());
    }
}
