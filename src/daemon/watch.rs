//! What wakes the daemon's main loop: a change of mountprop's drop-in directories, a systemd
//! signal about the watched units, the paths guard asking for a full round, and Unix signals.
//! All of them arrive as readiness on a few file descriptors, so the loop waits in a single
//! poll(2). (The mount table is the guard's to watch: [`crate::daemon::guard`].)

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::unistd::{pipe2, read, write};
use zbus::MatchRule;
use zbus::message::Type as MsgType;

use crate::node::systemd::unit_object_path;

/// Bytes the D-Bus watcher writes into the wake pipe.
const EV_SYSTEMD: u8 = b'e';
const EV_BUS_LOST: u8 = b'l';
const EV_BUS_BACK: u8 = b'c';
/// The paths guard fixed or saw a path change: a full round should follow.
pub const EV_PATHS: u8 = b'p';

/// What happened since the last wait.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Woken {
    pub paths: bool,
    pub dropins: bool,
    pub systemd: bool,
    pub bus_lost: bool,
    pub bus_back: bool,
    pub hup: bool,
    pub term: bool,
    /// A container came or went (one of the extra descriptors of [`Watch::wait`]).
    pub containers: bool,
}

pub struct Watch {
    inotify: Inotify,
    watched: Vec<(WatchDescriptor, PathBuf)>,
    wake_rx: OwnedFd,
    wake_tx: OwnedFd,
    hup: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
    units: Arc<Mutex<Vec<String>>>,
}

impl Watch {
    /// Sets up every source and starts the thread that listens to systemd on the bus.
    pub fn new(units: &[String]) -> io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let (wake_rx, wake_tx) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let hup = Arc::new(AtomicBool::new(false));
        let term = Arc::new(AtomicBool::new(false));
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        signal_hook::flag::register(SIGHUP, hup.clone())?;
        signal_hook::flag::register(SIGTERM, term.clone())?;
        signal_hook::flag::register(SIGINT, term.clone())?;
        for sig in [SIGHUP, SIGTERM, SIGINT] {
            signal_hook::low_level::pipe::register(sig, wake_tx.try_clone()?)?;
        }
        let units = Arc::new(Mutex::new(units.to_vec()));
        let shared = units.clone();
        let bus_wake = wake_tx.try_clone()?;
        std::thread::Builder::new()
            .name("mountprop-bus".into())
            .spawn(move || listen_to_systemd(&shared, &bus_wake))?;
        Ok(Self {
            inotify,
            watched: Vec::new(),
            wake_rx,
            wake_tx,
            hup,
            term,
            units,
        })
    }

    /// Another handle on the wake pipe, for a thread that needs to wake this loop.
    pub fn waker(&self) -> io::Result<OwnedFd> {
        self.wake_tx.try_clone()
    }

    /// The flag SIGTERM/SIGINT set, for long waits elsewhere to look at.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.term.clone()
    }

    /// Follows a new unit list (after a config reload).
    pub fn set_units(&mut self, units: &[String]) {
        if let Ok(mut u) = self.units.lock() {
            *u = units.to_vec();
        }
    }

    /// Watches /etc/systemd/system and each unit's `.d` directory that exists, so that a removed
    /// or edited drop-in is noticed at once. Call again after checks: directories come and go.
    pub fn watch_dropins(&mut self, units: &[String]) {
        let base = Path::new("/etc/systemd/system");
        let mut dirs = vec![base.to_path_buf()];
        dirs.extend(units.iter().map(|u| base.join(format!("{u}.d"))).filter(|d| d.is_dir()));
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_DONT_FOLLOW;
        for d in dirs {
            if self.watched.iter().any(|(_, p)| *p == d) {
                continue;
            }
            match self.inotify.add_watch(&d, flags) {
                Ok(wd) => self.watched.push((wd, d)),
                Err(e) => tracing::debug!(PATH = %d.display(), "cannot watch: {e}"),
            }
        }
    }

    /// Waits up to `timeout`, also for any of `extra` (the container tracker's) to be ready.
    pub fn wait(&mut self, timeout: Duration, extra: &[BorrowedFd<'_>]) -> io::Result<Woken> {
        // Round up: waking a fraction of a millisecond early would spin with poll(0) until
        // the deadline.
        let ms = timeout.as_micros().div_ceil(1000).min(u128::from(u32::MAX / 2));
        let ms = u32::try_from(ms).unwrap_or(u32::MAX / 2);
        let poll_timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut w = Woken::default();
        let (inotify_ready, wake_ready) = {
            let mut fds = Vec::with_capacity(2 + extra.len());
            fds.push(PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN));
            fds.extend(extra.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
            match poll(&mut fds, poll_timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            w.containers = fds[2..].iter().any(ready);
            (ready(&fds[1]), ready(&fds[0]))
        };
        if inotify_ready {
            while let Ok(events) = self.inotify.read_events() {
                if events.is_empty() {
                    break;
                }
                for e in &events {
                    if e.mask
                        .intersects(AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF)
                    {
                        self.watched.retain(|(wd, _)| *wd != e.wd);
                    }
                }
                w.dropins = true;
            }
        }
        if wake_ready {
            let mut buf = [0u8; 256];
            while let Ok(n) = read(&self.wake_rx, &mut buf) {
                if n == 0 {
                    break;
                }
                for b in &buf[..n] {
                    match *b {
                        EV_SYSTEMD => w.systemd = true,
                        EV_BUS_LOST => w.bus_lost = true,
                        EV_BUS_BACK => w.bus_back = true,
                        EV_PATHS => w.paths = true,
                        _ => {}
                    }
                }
            }
        }
        w.hup = self.hup.swap(false, Ordering::SeqCst);
        w.term = self.term.load(Ordering::SeqCst);
        Ok(w)
    }
}

/// The bus listener thread: its own connection, subscribed to systemd, reconnecting with
/// backoff. It only wakes the loop; all work happens there.
fn listen_to_systemd(units: &Mutex<Vec<String>>, wake: &OwnedFd) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let started = Instant::now();
        let r = zbus::block_on(listen_once(units, wake));
        let _ = write(wake, &[EV_BUS_LOST]);
        match r {
            Ok(()) => tracing::warn!("the system bus closed; reconnecting"),
            Err(e) => tracing::debug!("system bus listener: {e}"),
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn listen_once(units: &Mutex<Vec<String>>, wake: &OwnedFd) -> zbus::Result<()> {
    let address = crate::node::systemd::bus_address();
    let conn = zbus::connection::Builder::address(address.as_str()).build().await?;
    let rule = MatchRule::builder()
        .msg_type(MsgType::Signal)
        .sender("org.freedesktop.systemd1")
        .build()?;
    let mut stream = crate::node::systemd::subscribed(&conn, rule).await?;
    let _ = write(wake, &[EV_BUS_BACK]);
    while let Some(msg) = crate::node::systemd::next(&mut stream).await {
        let msg = msg?;
        let watched = units.lock().map(|u| u.clone()).unwrap_or_default();
        if relevant(&msg, &watched) {
            let _ = write(wake, &[EV_SYSTEMD]);
        }
    }
    Ok(())
}

/// Signals that can change a verdict: a reload finished, unit files changed, and news about the
/// watched units (loaded, job done, properties such as MainPID or ActiveState changed).
fn relevant(msg: &zbus::Message, units: &[String]) -> bool {
    let h = msg.header();
    let member = h.member().map(|m| m.as_str()).unwrap_or("");
    let body = msg.body();
    match member {
        "Reloading" => body.deserialize::<bool>().is_ok_and(|starting| !starting),
        "UnitFilesChanged" => true,
        "UnitNew" | "UnitRemoved" => body
            .deserialize::<(String, zbus::OwnedObjectPath)>()
            .is_ok_and(|(id, _)| units.contains(&id)),
        "JobRemoved" => body
            .deserialize::<(u32, zbus::OwnedObjectPath, String, String)>()
            .is_ok_and(|(_, _, unit, _)| units.contains(&unit)),
        "PropertiesChanged" => {
            let path = h.path().map(|p| p.as_str()).unwrap_or("");
            units.iter().any(|u| unit_object_path(u) == path)
        }
        _ => false,
    }
}
