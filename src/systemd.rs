//! The systemd manager over the system bus (org.freedesktop.systemd1), through zbus.
//!
//! A synchronous facade: each call runs zbus's own executor on the calling thread with
//! `zbus::block_on`, so the rest of mountprop stays plain blocking code.

use std::path::PathBuf;
use std::pin::Pin;
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
}

/// Hint for when there is no systemd at all, e.g. an image build or a plain container.
fn no_systemd_hint() -> &'static str {
    if std::path::Path::new("/run/systemd/system").exists() {
        ""
    } else {
        "; systemd is not running here (no /run/systemd/system)"
    }
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

#[derive(Debug, Default, DeserializeDict, Type)]
#[zbus(signature = "a{sv}", rename_all = "PascalCase")]
struct ServiceIface {
    mount_flags: Option<u64>,
    #[zbus(rename = "MainPID")]
    main_pid: Option<u32>,
}

pub struct Systemd {
    conn: Connection,
}

impl Systemd {
    /// Connects to the system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, or the standard socket).
    pub fn connect() -> Result<Self, SystemdError> {
        let address = bus_address();
        let built = zbus::block_on(async {
            zbus::connection::Builder::address(address.as_str())
                .method_timeout(CALL_TIMEOUT)
                .build()
                .await
        });
        let conn = built.map_err(|e| SystemdError::NoBus {
            address: address.strip_prefix("unix:path=").unwrap_or(&address).to_string(),
            reason: root_cause(&e),
            hint: no_systemd_hint(),
        })?;
        Ok(Self { conn })
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
        if is_no_systemd(&source) {
            return SystemdError::NotRunning {
                detail: source.to_string(),
                hint: no_systemd_hint(),
            };
        }
        SystemdError::Manager { method, source }
    }

    fn manager_property<R>(&self, name: &'static str) -> Result<R, SystemdError>
    where
        R: TryFrom<zbus::OwnedVariant, Error = zbus::Error>,
    {
        zbus::block_on(async {
            let v: zbus::OwnedVariant = self.call(PATH, PROPERTIES, "Get", &(MANAGER, name)).await?;
            R::try_from(v)
        })
        .map_err(|e| self.manager_error(name, e))
    }

    /// `Manager.Version`, e.g. "252.38-1~deb12u1".
    pub fn version(&self) -> Result<String, SystemdError> {
        self.manager_property("Version")
    }

    /// `Manager.Virtualization`: empty on bare metal, e.g. "lxc" or "container-other" in a
    /// container.
    pub fn virtualization(&self) -> Result<String, SystemdError> {
        self.manager_property("Virtualization")
    }

    /// Loads `unit` (a no-op when it is loaded) and reads what mountprop needs of it. A unit that
    /// does not exist comes back with `load_state` "not-found", not as an error.
    pub fn unit(&self, unit: &str) -> Result<UnitProps, SystemdError> {
        let err = |what: &'static str| {
            move |source: zbus::Error| {
                if is_no_systemd(&source) {
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
        zbus::block_on(async {
            let path: OwnedObjectPath = self
                .call(PATH, MANAGER, "LoadUnit", &(unit,))
                .await
                .map_err(err("LoadUnit"))?;
            let u: UnitIface = self
                .call(path.as_str(), PROPERTIES, "GetAll", &(UNIT,))
                .await
                .map_err(err("read unit properties"))?;
            let load_state = u.load_state.unwrap_or_default();
            let service = if load_state == "loaded" {
                Some(
                    self.call::<_, ServiceIface>(path.as_str(), PROPERTIES, "GetAll", &(SERVICE,))
                        .await
                        .map_err(err("read service properties"))?,
                )
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
                mount_flags: service.as_ref().and_then(|s| s.mount_flags),
                main_pid: service.and_then(|s| s.main_pid).unwrap_or(0),
            })
        })
    }

    /// `Manager.Reload` (daemon-reload). systemd answers once the reload is done.
    pub fn reload(&self) -> Result<(), SystemdError> {
        zbus::block_on(self.call::<_, ()>(PATH, MANAGER, "Reload", &())).map_err(|e| self.manager_error("Reload", e))
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
                    Ok(None) => {
                        break Err(SystemdError::JobFailed {
                            unit: unit.to_string(),
                            result: "bus closed".into(),
                        });
                    }
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
    fn versions_as_distributions_print_them() {
        assert_eq!(parse_version("252.38-1~deb12u1"), Some(252));
        assert_eq!(parse_version("v255"), Some(255));
        assert_eq!(parse_version("239 (239-58.el8)"), Some(239));
        assert_eq!(parse_version("229"), Some(229));
        assert_eq!(parse_version("unknown"), None);
        assert_eq!(parse_version(""), None);
    }
}
