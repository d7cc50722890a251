//! The systemd manager over the system bus (org.freedesktop.systemd1), through zbus.
//!
//! A synchronous facade: each call runs zbus's own executor on the calling thread with
//! `zbus::block_on`, so the rest of mountprop stays plain blocking code.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_core::Stream;
use zbus::message::Type as MsgType;
use zbus::{Connection, DeserializeDict, MatchRule, MessageStream, OwnedObjectPath, Type, fdo};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// No single call to systemd should take this long; a hung bus must not hang mountprop.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("no system bus at {address} ({reason}){hint}")]
    NoBus {
        address: String,
        reason: String,
        hint: &'static str,
    },
    #[error("systemd is not running on the system bus ({detail}){hint}")]
    NotRunning { detail: String, hint: &'static str },
    #[error("systemd did not answer {what} within {secs} s (busy?)")]
    Busy { what: String, secs: u64 },
    #[error("{unit}: {what}: {source}")]
    Unit {
        unit: String,
        what: &'static str,
        #[source]
        source: zbus::Error,
    },
    #[error("systemd {method}: {source}")]
    Manager {
        method: &'static str,
        #[source]
        source: zbus::Error,
    },
    #[error("{unit}: restart finished with result \"{result}\" (see journalctl -u {unit})")]
    JobFailed { unit: String, result: String },
    #[error("{unit}: restart did not finish within {secs}s; it may still be running (systemctl list-jobs)")]
    JobTimeout { unit: String, secs: u64 },
    #[error("{unit}: stopped waiting for the restart job (mountprop is stopping); systemd carries it on")]
    JobAbandoned { unit: String },
    #[error(
        "{unit}: the system bus went away while mountprop waited for the restart; systemd carries the job on (see systemctl status {unit})"
    )]
    JobUnseen { unit: String },
}

/// Hint for when there is no systemd at all, e.g. an image build or a plain container.
fn no_systemd_hint() -> &'static str {
    if std::path::Path::new("/run/systemd/system").exists() {
        ""
    } else {
        "; systemd is not running here (no /run/systemd/system)"
    }
}

/// What systemd says, for one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub version: String,
    pub virtualization: String,
    /// In the order asked for.
    pub units: Vec<UnitProps>,
}

/// What systemd says about one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProps {
    pub load_state: String,
    pub load_error: Option<String>,
    pub active_state: String,
    pub sub_state: String,
    pub fragment_path: Option<PathBuf>,
    pub dropin_paths: Vec<PathBuf>,
    pub need_daemon_reload: bool,
    pub markers: Vec<String>,
    /// `None` when the unit is not loaded (no Service interface to ask).
    pub mount_flags: Option<u64>,
    pub main_pid: u32,
}

#[derive(Debug, Default, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "PascalCase")]
struct UnitIface {
    load_state: Option<String>,
    load_error: Option<(String, String)>,
    active_state: Option<String>,
    sub_state: Option<String>,
    fragment_path: Option<String>,
    drop_in_paths: Option<Vec<String>>,
    need_daemon_reload: Option<bool>,
    markers: Option<Vec<String>>,
}

pub struct Systemd {
    conn: Connection,
    timeout: Duration,
}

impl SystemdError {
    /// The bus is gone or systemd is not on it, as opposed to slow or refusing one request.
    pub fn is_lost(&self) -> bool {
        match self {
            Self::NoBus { .. } | Self::NotRunning { .. } => true,
            Self::Unit { source, .. } | Self::Manager { source, .. } => {
                matches!(source, zbus::Error::InputOutput(_) | zbus::Error::Handshake(_))
            }
            _ => false,
        }
    }
}

impl SystemdError {
    /// The call's answer was lost (no reply at all, or none in time), as opposed to refused:
    /// systemd may well have done what was asked.
    pub fn answer_lost(&self) -> bool {
        match self {
            Self::Busy { .. } => true,
            Self::Unit { source, .. } | Self::Manager { source, .. } => is_no_reply(source) || is_timeout(source),
            _ => false,
        }
    }
}

fn is_no_reply(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::FDO(f) if matches!(**f, fdo::Error::NoReply(_)))
}

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// systemd answered that it reloaded.
    Answered,
    /// Its answer was lost (the error's words), but every unit now shows its drop-in loaded.
    Confirmed(String),
}

/// Whether every `(unit, drop-in)` of `expect` shows, in `units` (in the same order), the
/// drop-in loaded and nothing left for a reload: what a reload that happened leaves behind.
pub fn reload_visible(expect: &[(&str, &std::path::Path)], units: &[UnitProps]) -> bool {
    !expect.is_empty()
        && expect.len() == units.len()
        && expect
            .iter()
            .zip(units)
            .all(|((_, dropin), u)| u.dropin_paths.iter().any(|p| p == dropin) && !u.need_daemon_reload)
}

fn is_timeout(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

impl Systemd {
    /// Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, or the standard socket).
    pub fn connect() -> Result<Self, SystemdError> {
        Self::connect_with(CALL_TIMEOUT)
    }

    /// Connects, giving up on any one call after `timeout` (the daemon must not hang on a busy
    /// systemd).
    pub fn connect_with(timeout: Duration) -> Result<Self, SystemdError> {
        let address = bus_address();
        let built = zbus::block_on(async {
            zbus::connection::Builder::address(address.as_str())
                .method_timeout(timeout)
                .build()
                .await
        });
        let conn = built.map_err(|e| SystemdError::NoBus {
            address: address.strip_prefix("unix:path=").unwrap_or(&address).to_string(),
            reason: root_cause(&e),
            hint: no_systemd_hint(),
        })?;
        Ok(Self { conn, timeout })
    }

    fn busy(&self, what: String) -> SystemdError {
        SystemdError::Busy {
            what,
            secs: self.timeout.as_secs(),
        }
    }

    async fn call<B, R>(&self, path: &str, iface: &str, method: &str, body: &B) -> zbus::Result<R>
    where
        B: serde::Serialize + zbus::DynamicType,
        R: for<'d> serde::Deserialize<'d> + zbus::Type,
    {
        let reply = self
            .conn
            .call_method(Some(DEST), path, Some(iface), method, body)
            .await?;
        reply.body().deserialize()
    }

    fn manager_error(&self, method: &'static str, source: zbus::Error) -> SystemdError {
        if is_timeout(&source) {
            return self.busy(method.to_string());
        }
        if is_no_systemd(&source) {
            return SystemdError::NotRunning {
                detail: source.to_string(),
                hint: no_systemd_hint(),
            };
        }
        SystemdError::Manager { method, source }
    }

    async fn manager_property(&self, name: &'static str) -> Result<String, SystemdError> {
        async {
            let v: zbus::OwnedVariant = self.call(PATH, PROPERTIES, "Get", &(MANAGER, name)).await?;
            String::try_from(v)
        }
        .await
        .map_err(|e| self.manager_error(name, e))
    }

    /// Everything one check needs from systemd: `Version` (e.g. "252.38-1~deb12u1"),
    /// `Virtualization` (empty on bare metal, e.g. "lxc" in a container), and for each unit
    /// `LoadUnit` (a no-op when it is loaded) and its properties. All of it is asked at once on
    /// the one connection, so a check waits for about two round trips, not a dozen. A unit that
    /// does not exist comes back with `load_state` "not-found", not as an error.
    pub fn snapshot(&self, units: &[&str]) -> Result<Snapshot, SystemdError> {
        zbus::block_on(async {
            let manager = join(
                self.manager_property("Version"),
                self.manager_property("Virtualization"),
            );
            let units = join_all(units.iter().map(|u| self.unit(u)).collect());
            let ((version, virtualization), units) = join(manager, units).await;
            Ok(Snapshot {
                version: version?,
                virtualization: virtualization?,
                units: units.into_iter().collect::<Result<_, _>>()?,
            })
        })
    }

    async fn unit(&self, unit: &str) -> Result<UnitProps, SystemdError> {
        let err = |what: &'static str| {
            move |source: zbus::Error| {
                if is_timeout(&source) {
                    self.busy(format!("{what} of {unit}"))
                } else if is_no_systemd(&source) {
                    SystemdError::NotRunning {
                        detail: source.to_string(),
                        hint: no_systemd_hint(),
                    }
                } else {
                    SystemdError::Unit {
                        unit: unit.to_string(),
                        what,
                        source,
                    }
                }
            }
        };
        let path: OwnedObjectPath = self
            .call(PATH, MANAGER, "LoadUnit", &(unit,))
            .await
            .map_err(err("LoadUnit"))?;
        // Only the properties mountprop reads: systemd serializes a few hundred for a GetAll
        // of org.freedesktop.systemd1.Service, and that is most of a check's cost.
        let get = |iface: &'static str, name: &'static str| {
            let path = path.as_str();
            async move {
                let v: zbus::OwnedVariant = self.call(path, PROPERTIES, "Get", &(iface, name)).await?;
                Ok::<_, zbus::Error>(v)
            }
        };
        let (u, service) = join(
            self.call::<_, UnitIface>(path.as_str(), PROPERTIES, "GetAll", &(UNIT,)),
            join(get(SERVICE, "MountFlags"), get(SERVICE, "MainPID")),
        )
        .await;
        let u = u.map_err(err("read unit properties"))?;
        let load_state = u.load_state.unwrap_or_default();
        // A unit that did not load has no Service properties worth reading.
        let service = if load_state == "loaded" {
            let (flags, pid) = service;
            let flags = u64::try_from(flags.map_err(err("read MountFlags"))?).map_err(err("read MountFlags"))?;
            let pid = u32::try_from(pid.map_err(err("read MainPID"))?).map_err(err("read MainPID"))?;
            Some((flags, pid))
        } else {
            None
        };
        Ok(UnitProps {
            load_state,
            load_error: u
                .load_error
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, msg)| format!("{msg} ({name})")),
            active_state: u.active_state.unwrap_or_default(),
            sub_state: u.sub_state.unwrap_or_default(),
            fragment_path: u.fragment_path.filter(|p| !p.is_empty()).map(PathBuf::from),
            dropin_paths: u
                .drop_in_paths
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            need_daemon_reload: u.need_daemon_reload.unwrap_or(false),
            markers: u.markers.unwrap_or_default(),
            mount_flags: service.map(|(flags, _)| flags),
            main_pid: service.map_or(0, |(_, pid)| pid),
        })
    }

    /// `Manager.Reload` (daemon-reload). systemd answers once the reload is done.
    pub fn reload(&self) -> Result<(), SystemdError> {
        zbus::block_on(self.call::<_, ()>(PATH, MANAGER, "Reload", &())).map_err(|e| self.manager_error("Reload", e))
    }

    /// [`Self::reload`], and when systemd's answer is lost (systemd 238 answers `NoReply` to
    /// every `Reload` over the bus although it reloads; a slow generator outlasts the call's
    /// timeout), reads the units again: if each shows its drop-in (`expect`) loaded, the reload
    /// happened. Waits for that at most one call timeout more.
    pub fn reload_confirmed(&self, expect: &[(&str, &std::path::Path)]) -> Result<Reloaded, SystemdError> {
        let lost = match self.reload() {
            Ok(()) => return Ok(Reloaded::Answered),
            Err(e) if e.answer_lost() && !expect.is_empty() => e,
            Err(e) => return Err(e),
        };
        let units: Vec<&str> = expect.iter().map(|(u, _)| *u).collect();
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            match self.snapshot(&units) {
                Ok(s) if reload_visible(expect, &s.units) => return Ok(Reloaded::Confirmed(lost.to_string())),
                // Not visible yet, or systemd still busy reloading: look again.
                Ok(_) => {}
                Err(e) if e.answer_lost() => {}
                Err(_) => return Err(lost),
            }
            if std::time::Instant::now() >= deadline {
                return Err(lost);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Restarts `unit` and waits for its job to finish with result "done". `keepalive` is
    /// called every second of the wait; returning false abandons the wait (the job goes on).
    pub fn restart(&self, unit: &str, timeout: Duration, keepalive: &dyn Fn() -> bool) -> Result<(), SystemdError> {
        let unit_err = |what: &'static str| {
            move |source: zbus::Error| SystemdError::Unit {
                unit: unit.to_string(),
                what,
                source,
            }
        };
        let deadline = std::time::Instant::now() + timeout;
        zbus::block_on(async {
            // Listen before the job exists, so its end cannot be missed.
            let rule = MatchRule::builder()
                .msg_type(MsgType::Signal)
                .sender(DEST)
                .interface(MANAGER)
                .member("JobRemoved")
                .build()
                .map_err(unit_err("match JobRemoved"))?;
            let mut stream = subscribed(&self.conn, rule)
                .await
                .map_err(unit_err("subscribe to JobRemoved"))?;
            let job: OwnedObjectPath = self
                .call(PATH, MANAGER, "RestartUnit", &(unit, "replace"))
                .await
                .map_err(unit_err("RestartUnit"))?;
            let rt = zruntime::SharedRuntime::current().map_err(|e| unit_err("timer")(zbus::Error::from(e)))?;
            let result = loop {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break Err(SystemdError::JobTimeout {
                        unit: unit.to_string(),
                        secs: timeout.as_secs(),
                    });
                }
                let slice = (deadline - now).min(Duration::from_secs(1));
                match rt.timeout(slice, next(&mut stream)).await {
                    Ok(Some(Ok(msg))) => {
                        if let Ok((_id, path, _unit, result)) =
                            msg.body().deserialize::<(u32, OwnedObjectPath, String, String)>()
                            && path == job
                        {
                            break if result == "done" {
                                Ok(())
                            } else {
                                Err(SystemdError::JobFailed {
                                    unit: unit.to_string(),
                                    result,
                                })
                            };
                        }
                    }
                    Ok(Some(Err(_))) => {}
                    Ok(None) => break Err(SystemdError::JobUnseen { unit: unit.to_string() }),
                    Err(_) if !keepalive() => break Err(SystemdError::JobAbandoned { unit: unit.to_string() }),
                    Err(_) => {}
                }
            };
            let _ = self.call::<_, ()>(PATH, MANAGER, "Unsubscribe", &()).await;
            result
        })
    }

    /// Sets `Markers=needs-restart` on `unit` for this boot only (systemd >= 248), so that
    /// `systemctl reload-or-restart --marked` picks it up.
    pub fn mark_needs_restart(&self, unit: &str) -> Result<(), SystemdError> {
        let markers = zbus::Variant::from(vec!["needs-restart"]);
        let props = vec![("Markers", markers)];
        zbus::block_on(self.call::<_, ()>(PATH, MANAGER, "SetUnitProperties", &(unit, true, props))).map_err(|source| {
            SystemdError::Unit {
                unit: unit.to_string(),
                what: "SetUnitProperties Markers=needs-restart",
                source,
            }
        })
    }
}

/// Runs two futures concurrently on the current task (without pulling in a futures crate).
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// Runs futures of one kind concurrently; their outputs in the same order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none()
                && let Poll::Ready(v) = f.as_mut().poll(cx)
            {
                *slot = Some(v);
            }
        }
        if done.iter().all(Option::is_some) {
            Poll::Ready(done.drain(..).flatten().collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The next item of a stream (zbus's streams, without pulling in a futures crate).
pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// A stream of systemd's signals matching `rule`. The match is in place before `Subscribe`
/// (systemd sends unit and job signals only to subscribed clients), so nothing is missed.
pub async fn subscribed(conn: &Connection, rule: MatchRule<'_>) -> zbus::Result<MessageStream> {
    let stream = MessageStream::for_match_rule(rule, conn, std::num::NonZeroUsize::new(256)).await?;
    conn.call_method(Some(DEST), PATH, Some(MANAGER), "Subscribe", &())
        .await?;
    Ok(stream)
}

/// The innermost error's words: "No such file or directory (os error 2)" rather than zbus's
/// wrapping, which repeats the address.
fn root_cause(e: &zbus::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn is_no_systemd(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(f) => matches!(**f, fdo::Error::ServiceUnknown(_) | fdo::Error::NameHasNoOwner(_)),
        _ => false,
    }
}

/// `$DBUS_SYSTEM_BUS_ADDRESS`, or the standard system bus socket.
pub fn bus_address() -> String {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|_| DEFAULT_SYSTEM_BUS.to_string())
}

/// A unit's object path: `docker.service` → `/org/freedesktop/systemd1/unit/docker_2eservice`
/// (every byte that is not a letter or digit, and a leading digit, as `_xx`).
pub fn unit_object_path(unit: &str) -> String {
    let mut s = String::from("/org/freedesktop/systemd1/unit/");
    for (i, b) in unit.bytes().enumerate() {
        if b.is_ascii_alphanumeric() && !(i == 0 && b.is_ascii_digit()) {
            s.push(b as char);
        } else {
            s.push_str(&format!("_{b:02x}"));
        }
    }
    s
}

/// The major version from `Manager.Version` ("252.38-1~deb12u1", "v255", "249 (249.11-0ubuntu3)").
pub fn parse_version(s: &str) -> Option<u32> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_escape_like_systemd() {
        assert_eq!(
            unit_object_path("docker.service"),
            "/org/freedesktop/systemd1/unit/docker_2eservice"
        );
        assert_eq!(
            unit_object_path("foo-bar@1.service"),
            "/org/freedesktop/systemd1/unit/foo_2dbar_401_2eservice"
        );
        assert_eq!(
            unit_object_path("1x.service"),
            "/org/freedesktop/systemd1/unit/_31x_2eservice"
        );
    }

    #[test]
    fn lost_answers_are_told_from_refusals() {
        let no_reply = zbus::Error::FDO(Box::new(fdo::Error::NoReply("timed out".into())));
        let denied = zbus::Error::FDO(Box::new(fdo::Error::AccessDenied("no".into())));
        let timed_out = zbus::Error::InputOutput(std::io::Error::from(std::io::ErrorKind::TimedOut).into());
        let manager = |source| SystemdError::Manager {
            method: "Reload",
            source,
        };
        assert!(manager(no_reply).answer_lost());
        assert!(manager(timed_out).answer_lost());
        assert!(!manager(denied).answer_lost());
        assert!(
            SystemdError::Busy {
                what: "Reload".into(),
                secs: 5
            }
            .answer_lost()
        );
        assert!(
            !SystemdError::NotRunning {
                detail: String::new(),
                hint: ""
            }
            .answer_lost()
        );
    }

    #[test]
    fn a_reload_is_visible_when_every_dropin_is_loaded() {
        use std::path::Path;
        let own = Path::new("/etc/systemd/system/docker.service.d/90-mountprop.conf");
        let loaded = UnitProps {
            dropin_paths: vec![
                PathBuf::from("/etc/systemd/system/docker.service.d/10-a.conf"),
                own.into(),
            ],
            ..Default::default()
        };
        let expect = [("docker.service", own)];
        assert!(reload_visible(&expect, std::slice::from_ref(&loaded)));
        // Not loaded yet (a new file), or loaded but changed since (a rewritten one).
        let missing = UnitProps::default();
        assert!(!reload_visible(&expect, &[missing]));
        let stale = UnitProps {
            need_daemon_reload: true,
            ..loaded.clone()
        };
        assert!(!reload_visible(&expect, &[stale]));
        // Nothing to judge by proves nothing.
        assert!(!reload_visible(&[], &[]));
        assert!(!reload_visible(
            &[("docker.service", own), ("containerd.service", own)],
            &[loaded]
        ));
    }

    #[test]
    fn versions_as_distributions_print_them() {
        assert_eq!(parse_version("252.38-1~deb12u1"), Some(252));
        assert_eq!(parse_version("v255"), Some(255));
        assert_eq!(parse_version("239 (239-58.el8)"), Some(239));
        assert_eq!(parse_version("229"), Some(229));
        assert_eq!(parse_version("unknown"), None);
        assert_eq!(parse_version(""), None);
    }
}
