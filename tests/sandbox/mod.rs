//! A real node for tests: systemd 252 as PID 1 of fresh PID, mount, UTS, IPC, cgroup and net
//! namespaces, with its own system bus and journal.
//!
//! The root filesystem is the host's, so everything the node may write is covered first: tmpfs
//! on /tmp, /var/tmp and /run, and overlays (upper dirs on a tmpfs) over /etc, /var, /usr,
//! /root, /home and /srv. systemd boots a minimal target of the test's own, not multi-user, so
//! no service enabled on the host starts inside. `unshare --mount` keeps every mount inside.
//!
//! Teardown runs on every exit path: `Drop` powers the node off and, if it does not stop, kills
//! its PID 1 (which ends every process in its PID namespace). If the test process itself dies,
//! `unshare --kill-child` plus a parent-death signal take the node down with it.
//!
//! Sandboxes run one at a time (a file lock): two systemds started from one cgroup would both
//! manage the same cgroup directories.

#![allow(dead_code)]

pub mod scenario;
pub mod trees;

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test on the host, and where the node sees it.
pub const BIN: &str = env!("CARGO_BIN_EXE_mountprop");
pub const NODE_BIN: &str = "/mnt/harness/mountprop";

/// Forces "required" for a non-root run that should fail instead of skip.
const REQUIRE_ENV: &str = "MOUNTPROP_REQUIRE_SANDBOX";

/// Result of running a command inside the node.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }

    /// The line of a human report about `subject` (a unit, or a path such as "/").
    pub fn line(&self, subject: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(subject))
            .unwrap_or_else(|| panic!("no report line for {subject}: {}", self.stdout))
    }
}

#[derive(Default, Clone)]
pub struct Setup {
    /// Files for the node's /etc: (path relative to /etc, content).
    pub files: Vec<(String, String)>,
    /// Units the node's target wants at boot.
    pub wants: Vec<String>,
    /// Keep the host's installed docker/containerd/crio units visible in the node.
    pub host_runtimes: bool,
    /// Boot this tree (an image) as the node's root, into its multi-user.target, instead of the
    /// host's filesystem. The tree is overlaid, so the boot leaves it as it was.
    pub root: Option<PathBuf>,
    /// Boot the host's own `/` overlaid as a whole: the node's `/` is one writable mount, as on
    /// most real nodes, and a directory made in it (the probe's scratch directory) stays in
    /// the node.
    pub overlay_root: bool,
    /// Files removed from the node's overlays before it boots (absolute paths), e.g. one
    /// runtime's units where another's must stay.
    pub remove: Vec<String>,
    /// The mountprop binary the node sees at [`NODE_BIN`] (default: this build's, [`BIN`]).
    /// An old tree needs the static build: its glibc is older than the host's.
    pub bin: Option<PathBuf>,
    /// A cgroup2 mount at /sys/fs/cgroup in the node's cgroup namespace, instead of the
    /// host's cgroup v1 hybrid layout, which systemd >= 258 refuses.
    pub cgroup2: bool,
    /// Shell run before the node boots, with `$R` the node's root (an overlay of the tree;
    /// root boots only), the test's files already in it and the binary under test at
    /// `$R/mnt/harness/mountprop`: for work on the tree as an image build does it.
    pub pre_boot: Vec<String>,
    /// Host files the node sees under /mnt/harness/<name> from before it boots.
    pub harness_files: Vec<PathBuf>,
    /// Mask the services a test node must not run (as for the host's overlaid `/`) in a tree.
    pub hide_host: bool,
}

impl Setup {
    /// A file in /etc/systemd/system (a unit, or `<unit>.d/<name>.conf`).
    pub fn file(self, rel: &str, content: &str) -> Self {
        self.etc(&format!("systemd/system/{rel}"), content)
    }

    /// Any file under /etc.
    pub fn etc(mut self, rel: &str, content: &str) -> Self {
        self.files.push((rel.to_string(), content.to_string()));
        self
    }

    pub fn with_root(mut self, root: &Path) -> Self {
        self.root = Some(root.to_path_buf());
        self
    }

    pub fn with_overlay_root(mut self) -> Self {
        self.overlay_root = true;
        self
    }

    pub fn with_host_runtimes(mut self) -> Self {
        self.host_runtimes = true;
        self
    }

    /// Removes `path` (a file) from the node before it boots; the host's copy stays.
    pub fn without(mut self, path: &str) -> Self {
        self.remove.push(path.to_string());
        self
    }

    pub fn with_bin(mut self, bin: &Path) -> Self {
        self.bin = Some(bin.to_path_buf());
        self
    }

    pub fn with_cgroup2(mut self, on: bool) -> Self {
        self.cgroup2 = on;
        self
    }

    /// See [`Setup::pre_boot`].
    pub fn pre_boot(mut self, script: &str) -> Self {
        self.pre_boot.push(script.to_string());
        self
    }

    /// See [`Setup::harness_files`].
    pub fn harness_file(mut self, host: &Path) -> Self {
        self.harness_files.push(host.to_path_buf());
        self
    }

    pub fn want(mut self, unit: &str) -> Self {
        self.wants.push(unit.to_string());
        self
    }
}

/// The fake container runtime of an old Docker package: `MountFlags=slave`.
pub const OLD_DOCKER: &str = "[Unit]\nDescription=fake old docker (MountFlags=slave)\n\n[Service]\nExecStart=/bin/sleep infinity\nMountFlags=slave\n";

pub struct Sandbox {
    /// PID (in the host's PID namespace) of the node's systemd.
    pub pid: u32,
    /// How long the boot waited for other tests' sandboxes (the lock), so that a test's own
    /// time can be told from the queue's.
    pub waited: Duration,
    outer: Child,
    dir: PathBuf,
    _lock: fs::File,
}

/// Why the sandbox cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    for tool in [
        "/lib/systemd/systemd",
        "/usr/bin/unshare",
        "/usr/bin/nsenter",
        "/usr/bin/busctl",
        "/usr/bin/dbus-daemon",
    ] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} is missing (apt-get install systemd dbus util-linux)"));
        }
    }
    None
}

/// Whether an optional prerequisite is there; without it, a loud SKIP where skipping is
/// allowed (not as root), a failure otherwise.
pub fn require(test: &str, present: bool, why: &str) -> bool {
    if present {
        return true;
    }
    if nix::unistd::geteuid().is_root() || std::env::var_os(REQUIRE_ENV).is_some() {
        panic!("{test}: required here (root or {REQUIRE_ENV}) but missing: {why}");
    }
    skip(test, why);
    false
}

fn skip(test: &str, why: &str) {
    let line = format!("SKIP {test}: {why}");
    let bar = "*".repeat(line.len() + 8);
    // Straight to the stderr handle: the test harness captures eprintln! of passing tests,
    // and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "\n{bar}\n*** {line} ***\n{bar}\n");
}

/// Boots a node for `test`, or prints a loud SKIP and returns `None` where that is allowed:
/// only without root. As root (CI runs as root) a sandbox that cannot run is a failure.
pub fn boot(test: &str, setup: Setup) -> Option<Sandbox> {
    if let Some(why) = unavailable() {
        if nix::unistd::geteuid().is_root() || std::env::var_os(REQUIRE_ENV).is_some() {
            panic!("{test}: the real-systemd sandbox is required here (root or {REQUIRE_ENV}) but cannot run: {why}");
        }
        skip(test, &format!("real-systemd sandbox unavailable: {why}"));
        return None;
    }
    Some(Sandbox::boot(test, &setup).unwrap_or_else(|e| panic!("{test}: {e}")))
}

/// Host services the node must not start, and (unless the test wants them) the host's own
/// container runtimes, whited out in the node's overlays below `$R` (empty: the host's paths).
const HIDE_HOST: &str = r#"
S=$R/etc/systemd/system
for u in systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
         systemd-modules-load.service systemd-remount-fs.service systemd-timesyncd.service \
         console-getty.service getty@tty1.service getty.target systemd-firstboot.service \
         systemd-journal-flush.service systemd-networkd.service systemd-resolved.service \
         postgresql.service; do
  ln -sf /dev/null "$S/$u"
done
if [ -z "${SBX_HOST_RUNTIMES:-}" ]; then
  for u in docker.service docker.socket containerd.service crio.service; do
    rm -f $R/usr/lib/systemd/system/$u $R/lib/systemd/system/$u $R/etc/systemd/system/*.wants/$u
  done
  # Or systemd-sysv-generator would make units of their init scripts.
  rm -f $R/etc/init.d/docker $R/etc/init.d/containerd $R/etc/init.d/crio
fi
"#;

/// The files the test asked to remove ($SBX_REMOVE, one per line), below `$R`.
const REMOVE: &str = r#"
while IFS= read -r p; do
  [ -n "$p" ] && rm -f "$R$p"
done <<< "${SBX_REMOVE:-}"
"#;

/// The host's filesystem with overlays on everything the node may write.
fn init_host() -> String {
    format!(
        r#"set -e
mount -t tmpfs -o mode=755 mountprop-sbx /mnt
# The binary under test, reachable at a fixed path wherever the checkout is (even under /tmp or
# /var/tmp, which are covered below).
mkdir -p /mnt/harness && touch /mnt/harness/mountprop && mount --bind "$SBX_BIN" /mnt/harness/mountprop
for d in etc var usr root home srv; do
  mkdir -p /mnt/$d-up /mnt/$d-work
  mount -t overlay overlay -o lowerdir=/$d,upperdir=/mnt/$d-up,workdir=/mnt/$d-work /$d
done
if [ ! -L /lib ]; then
  mkdir -p /mnt/lib-up /mnt/lib-work
  mount -t overlay overlay -o lowerdir=/lib,upperdir=/mnt/lib-up,workdir=/mnt/lib-work /lib
fi
R=
{HIDE_HOST}
{REMOVE}
# The test's files, before /tmp and /var/tmp are covered.
cp -a --remove-destination "$SBX_DIR/etc/." /etc/
mount -t tmpfs -o mode=1777 sbx-tmp /tmp
mount -t tmpfs -o mode=1777 sbx-vartmp /var/tmp
mount -t tmpfs -o mode=755 sbx-run /run
mkdir -p /run/lock
exec env container=mountprop-test /lib/systemd/systemd --system --unit=sandbox.target
"#
    )
}

/// A tree ($SBX_ROOT: an image, or the host's `/`) overlaid as a whole on a tmpfs, /dev and
/// /sys from the host, pivot_root into it, then $SBX_TARGET. The binary under test is at the
/// same path as in the host mode.
fn init_root() -> String {
    format!(
        r#"set -e
mount -t tmpfs -o mode=755 mountprop-sbx /mnt
mkdir -p /mnt/root /mnt/img-up /mnt/img-work
mount -t overlay overlay -o lowerdir="$SBX_ROOT",upperdir=/mnt/img-up,workdir=/mnt/img-work /mnt/root
R=/mnt/root
S=$R/etc/systemd/system
# Nothing may wait for a console in a test.
for u in console-getty.service getty.target systemd-firstboot.service getty@tty1.service; do
  ln -sf /dev/null "$S/$u"
done
if [ -n "$SBX_HIDE_HOST" ]; then
{HIDE_HOST}
fi
{REMOVE}
cp -a --remove-destination "$SBX_DIR/etc/." "$R/etc/"
mkdir -p $R/dev $R/sys $R/proc $R/tmp $R/run $R/mnt/harness
mount --rbind /dev $R/dev
mount --rbind /sys $R/sys
if [ -n "$SBX_CGROUP2" ]; then
  # The host's v1 hybrid tree goes (only in this namespace); the unified hierarchy, rooted at
  # this cgroup namespace, takes its place.
  umount -l $R/sys/fs/cgroup
  mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
fi
mount -t tmpfs -o mode=1777 sbx-tmp $R/tmp
mount -t tmpfs -o mode=755 sbx-run $R/run
touch $R/mnt/harness/mountprop && mount --bind "$SBX_BIN" $R/mnt/harness/mountprop
cp -a "$SBX_DIR/harness/." $R/mnt/harness/
if [ -e "$SBX_DIR/pre-boot.sh" ]; then
  ( . "$SBX_DIR/pre-boot.sh" ) > "$SBX_DIR/pre-boot.log" 2>&1 || {{ echo "pre-boot failed:"; cat "$SBX_DIR/pre-boot.log"; exit 1; }}
fi
cd $R
mkdir -p .oldroot
pivot_root . .oldroot
# The tree's own tools from here on (bash remembers the host's paths).
hash -r
mount -t proc proc /proc
umount -l /.oldroot
rmdir /.oldroot
exec env container=mountprop-test /lib/systemd/systemd --system --unit="$SBX_TARGET"
"#
    )
}

impl Sandbox {
    fn boot(test: &str, setup: &Setup) -> Result<Self, String> {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
        let queued = Instant::now();
        let lock = lock(&base.join("sandbox.lock"))?;
        let waited = queued.elapsed();
        let dir = base.join(format!("sandbox-{test}"));
        let _ = fs::remove_dir_all(&dir);
        let etc = dir.join("etc");
        fs::create_dir_all(etc.join("systemd/system")).map_err(|e| e.to_string())?;
        let mut wants = vec![
            "dbus.socket".to_string(),
            "dbus.service".into(),
            "systemd-journald.service".into(),
        ];
        wants.extend(setup.wants.iter().cloned());
        let target = format!(
            "[Unit]\nDescription=mountprop test node\nWants={}\nAfter=dbus.socket\n",
            wants.join(" ")
        );
        fs::write(etc.join("systemd/system/sandbox.target"), target).map_err(|e| e.to_string())?;
        // A tree boots its own multi-user.target; the test's units join it there.
        if setup.root.is_some() && !setup.wants.is_empty() {
            let d = etc.join("systemd/system/multi-user.target.d");
            fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            let conf = format!("[Unit]\nWants={}\n", setup.wants.join(" "));
            fs::write(d.join("50-sandbox.conf"), conf).map_err(|e| e.to_string())?;
        }
        let harness = dir.join("harness");
        fs::create_dir_all(&harness).map_err(|e| e.to_string())?;
        for f in &setup.harness_files {
            let name = f.file_name().ok_or_else(|| format!("{}: no file name", f.display()))?;
            fs::copy(f, harness.join(name)).map_err(|e| format!("{}: {e}", f.display()))?;
        }
        if !setup.pre_boot.is_empty() {
            fs::write(dir.join("pre-boot.sh"), setup.pre_boot.join("\n")).map_err(|e| e.to_string())?;
        }
        for (rel, content) in &setup.files {
            let p = etc.join(rel);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            fs::write(&p, content).map_err(|e| e.to_string())?;
            // As a package installs it, whatever the test runner's umask.
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(|e| e.to_string())?;
        }
        // An image boots its own multi-user.target; the host's tree the test's minimal target.
        let (script, root, target) = match (&setup.root, setup.overlay_root) {
            (Some(img), _) => (init_root(), img.clone(), "multi-user.target"),
            (None, true) => (init_root(), PathBuf::from("/"), "sandbox.target"),
            (None, false) => (init_host(), PathBuf::new(), "sandbox.target"),
        };
        fs::write(dir.join("init.sh"), script).map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.join("console.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--ipc",
            "--cgroup",
            "--net",
            "--mount-proc",
        ])
        .arg("bash")
        .arg(dir.join("init.sh"))
        .env("SBX_DIR", &dir)
        .env("SBX_HOST_RUNTIMES", if setup.host_runtimes { "1" } else { "" })
        .env("SBX_BIN", setup.bin.as_deref().unwrap_or(Path::new(BIN)))
        .env("SBX_CGROUP2", if setup.cgroup2 { "1" } else { "" })
        .env("SBX_ROOT", root)
        .env("SBX_TARGET", target)
        .env(
            "SBX_HIDE_HOST",
            if setup.overlay_root || setup.hide_host { "1" } else { "" },
        )
        .env("SBX_REMOVE", setup.remove.join("\n"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
        // If the test process dies, unshare dies, and --kill-child takes the node down.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)?;
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let outer = cmd.spawn().map_err(|e| format!("spawn unshare: {e}"))?;
        let mut sb = Sandbox {
            pid: 0,
            waited,
            outer,
            dir,
            _lock: lock,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(pid) = sb.find_init() {
                sb.pid = pid;
                let up = sb.sh("busctl --timeout=1 get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Version");
                if up.code == 0 {
                    return Ok(sb);
                }
            }
            if let Ok(Some(st)) = sb.outer.try_wait() {
                let log = fs::read_to_string(sb.dir.join("console.log")).unwrap_or_default();
                return Err(format!("sandbox exited during boot ({st}): {log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = fs::read_to_string(sb.dir.join("console.log")).unwrap_or_default();
        Err(format!("sandbox did not come up in 30 s; console: {log}"))
    }

    /// The node's systemd: the child of unshare (bash exec'ed it), named systemd, with our marker.
    fn find_init(&self) -> Option<u32> {
        let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.outer.id())).ok()?;
        let pid: u32 = children.split_whitespace().next()?.parse().ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
        let marked = env.split(|&b| b == 0).any(|v| v == b"container=mountprop-test");
        (comm.trim() == "systemd" && marked).then_some(pid)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `args` inside every namespace of the node.
    pub fn exec(&self, args: &[&str]) -> Run {
        let out = Command::new("nsenter")
            .arg("-t")
            .arg(self.pid.to_string())
            .arg("-a")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("nsenter {args:?}: {e}"));
        Run::from(out)
    }

    /// Starts `args` inside the node, with `env` set, and does not wait for it.
    pub fn spawn(&self, env: &[&str], args: &[&str]) -> Child {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.pid.to_string())
            .args(["-a", "env"])
            .args(env)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("nsenter {args:?}: {e}"))
    }

    /// Runs `f` in a thread of this process that has entered the node's mount namespace:
    /// mounts made there are the node's, at the cost of a system call, not a process.
    pub fn in_mount_ns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_mount_ns_of(self.pid, f)
    }

    /// Adds `n` tmpfs mounts to the node, below /mnt/many (a private tmpfs, so that the node's
    /// other namespaces get no copies).
    pub fn add_mounts(&self, n: usize) {
        use nix::mount::{MsFlags, mount};
        self.in_mount_ns(move || {
            let base = Path::new("/mnt/many");
            if !base.exists() {
                fs::create_dir_all(base).expect("mkdir");
                mount(
                    Some("many"),
                    base,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    Some("nr_inodes=200000"),
                )
                .expect("tmpfs");
                mount(None::<&str>, base, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>).expect("private");
            }
            let first = fs::read_dir(base).map_or(0, |d| d.count());
            for i in first..first + n {
                let d = base.join(format!("m{i}"));
                fs::create_dir(&d).expect("mkdir");
                mount(Some("many"), &d, Some("tmpfs"), MsFlags::empty(), Some("size=4k")).expect("tmpfs");
            }
        });
    }

    pub fn sh(&self, script: &str) -> Run {
        self.exec(&["sh", "-c", script])
    }

    /// The mountprop binary under test, run inside the node.
    pub fn mountprop(&self, args: &[&str]) -> Run {
        let mut v = vec![NODE_BIN];
        v.extend_from_slice(args);
        self.exec(&v)
    }

    pub fn write(&self, path: &str, content: &str) {
        let mut child = Command::new("nsenter")
            .args([
                "-t",
                &self.pid.to_string(),
                "-a",
                "sh",
                "-c",
                &format!("umask 022; mkdir -p \"$(dirname '{path}')\" && cat > '{path}'"),
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nsenter");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(content.as_bytes())
            .expect("write");
        assert!(
            child.wait().expect("wait").success(),
            "writing {path} in the node failed"
        );
    }

    /// Copies a host file into the node (at /mnt/harness/<its name>) and says where. Host paths
    /// are not for the node: under /tmp or /var/tmp they are hidden by the node's own tmpfs.
    pub fn copy_in(&self, host: &Path) -> String {
        let name = host.file_name().and_then(|n| n.to_str()).expect("a file name");
        let node = format!("/mnt/harness/{name}");
        let mut child = Command::new("nsenter")
            .args([
                "-t",
                &self.pid.to_string(),
                "-a",
                "sh",
                "-c",
                &format!("cat > '{node}'"),
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nsenter");
        let bytes = fs::read(host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
        child.stdin.take().expect("stdin").write_all(&bytes).expect("write");
        assert!(
            child.wait().expect("wait").success(),
            "copying {} into the node failed",
            host.display()
        );
        node
    }

    pub fn read(&self, path: &str) -> Option<String> {
        let r = self.exec(&["cat", path]);
        (r.code == 0).then_some(r.stdout)
    }

    /// A D-Bus property of a unit as busctl prints it, e.g. "t 1048576".
    pub fn unit_property(&self, unit: &str, iface: &str, prop: &str) -> String {
        let path = format!("/org/freedesktop/systemd1/unit/{}", bus_escape(unit));
        let r = self
            .exec(&[
                "busctl",
                "get-property",
                "org.freedesktop.systemd1",
                &path,
                &format!("org.freedesktop.systemd1.{iface}"),
                prop,
            ])
            .ok();
        r.stdout.trim().to_string()
    }

    /// A property of the manager itself, without busctl's type prefix ("252.38-1~deb12u1").
    pub fn manager_property(&self, prop: &str) -> String {
        let r = self
            .exec(&[
                "busctl",
                "get-property",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                prop,
            ])
            .ok();
        let v = r.stdout.trim();
        v.split_once(' ')
            .map_or(v, |(_, rest)| rest)
            .trim_matches('"')
            .to_string()
    }

    /// A property as `systemctl show -p PROP --value UNIT` prints it.
    pub fn show(&self, unit: &str, prop: &str) -> String {
        self.exec(&["systemctl", "show", "-p", prop, "--value", unit])
            .stdout
            .trim()
            .to_string()
    }

    pub fn mount_flags(&self, unit: &str) -> u64 {
        let v = self.unit_property(unit, "Service", "MountFlags");
        v.strip_prefix("t ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("MountFlags of {unit}: {v:?}"))
    }

    pub fn main_pid(&self, unit: &str) -> u32 {
        let v = self.unit_property(unit, "Service", "MainPID");
        v.strip_prefix("u ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("MainPID of {unit}: {v:?}"))
    }

    /// `/proc/<pid>/mountinfo` as seen in the node (`self` for the node's own view).
    pub fn mountinfo(&self, pid: &str) -> String {
        self.exec(&["cat", &format!("/proc/{pid}/mountinfo")]).ok().stdout
    }

    /// Whether `mount_point` appears in `/proc/<pid>/mountinfo`.
    pub fn sees_mount(&self, pid: &str, mount_point: &str) -> bool {
        self.mountinfo(pid)
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(mount_point))
    }

    pub fn mount_ns(&self, pid: &str) -> String {
        self.exec(&["readlink", &format!("/proc/{pid}/ns/mnt")])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// `mountprop check --json`, parsed.
    pub fn check_json(&self, config: Option<&str>) -> (i32, serde_json::Value) {
        let mut args = Vec::new();
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        args.extend(["check", "--json"]);
        let r = self.mountprop(&args);
        let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("check --json: {e}: {r:#?}"));
        (r.code, v)
    }

    /// The verdict for `subject` in a JSON report.
    pub fn verdict<'a>(report: &'a serde_json::Value, subject: &str) -> &'a serde_json::Value {
        report["verdicts"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["subject"] == subject))
            .unwrap_or_else(|| panic!("no verdict for {subject}: {report:#}"))
    }

    /// The optional fields of the mount on `mount_point` in a mountinfo text (last one wins).
    pub fn propagation_of(mountinfo: &str, mount_point: &str) -> String {
        mountinfo
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(mount_point))
            .map(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                let sep = fields.iter().position(|f| *f == "-").unwrap_or(fields.len());
                fields[6..sep].join(" ")
            })
            .unwrap_or_else(|| panic!("no mount on {mount_point}"))
    }

    pub fn journal(&self) -> String {
        self.exec(&["journalctl", "--no-pager", "-o", "short-monotonic"]).stdout
    }

    /// Counts systemd's `Reloading` signals from now on, by subscribing on the node's bus.
    pub fn reload_counter(&self) -> ReloadCounter {
        ReloadCounter::start(self.pid)
    }

    fn shutdown(&mut self) {
        if self.pid != 0 {
            let _ = Command::new("nsenter")
                .args(["-t", &self.pid.to_string(), "-a", "systemctl", "poweroff", "--no-block"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.outer.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // It did not stop: kill exactly what this sandbox started. PID 1 of a PID namespace
        // takes every process in it along.
        if self.pid != 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.outer.kill();
        let _ = self.outer.wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() && self.pid != 0 {
            // Leave the evidence next to the test's console log.
            let _ = fs::write(self.dir.join("journal.txt"), self.journal());
            eprintln!("sandbox journal saved in {}", self.dir.join("journal.txt").display());
        }
        self.shutdown();
    }
}

/// [`Sandbox::in_mount_ns`] for the node whose PID 1 is `pid` (from any thread).
pub fn in_mount_ns_of<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = fs::File::open(format!("/proc/{pid}/ns/mnt")).expect("the node's mount namespace");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).expect("unshare CLONE_FS");
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS).expect("setns into the node");
        f()
    })
    .join()
    .expect("work inside the node")
}

fn lock(path: &Path) -> Result<fs::File, String> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // flock is released when the file is closed, including when the process dies.
    let r = unsafe { nix::libc::flock(f.as_raw_fd(), nix::libc::LOCK_EX) };
    if r != 0 {
        return Err(format!("flock {}: {}", path.display(), std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// systemd's object-path escaping of a unit name: `docker.service` → `docker_2eservice`.
pub fn bus_escape(name: &str) -> String {
    let mut s = String::new();
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() && !(i == 0 && b.is_ascii_digit()) {
            s.push(b as char);
        } else {
            s.push_str(&format!("_{b:02x}"));
        }
    }
    s
}

/// Subscribed to the node's systemd; counts `Reloading(true)` signals.
pub struct ReloadCounter {
    count: Arc<AtomicUsize>,
}

impl ReloadCounter {
    fn start(pid: u32) -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let address = format!("unix:path=/proc/{pid}/root/run/dbus/system_bus_socket");
        std::thread::spawn(move || {
            let r: zbus::Result<()> = zbus::block_on(async {
                let conn = zbus::connection::Builder::address(address.as_str()).build().await?;
                let rule = zbus::MatchRule::builder()
                    .msg_type(zbus::message::Type::Signal)
                    .interface("org.freedesktop.systemd1.Manager")
                    .member("Reloading")
                    .build()?;
                let mut stream = mountprop::systemd::subscribed(&conn, rule).await?;
                let _ = ready_tx.send(());
                while let Some(msg) = mountprop::systemd::next(&mut stream).await {
                    if let Ok(m) = msg
                        && m.body().deserialize::<bool>().unwrap_or(false)
                    {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(())
            });
            if let Err(e) = r {
                eprintln!("reload counter: {e}");
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reload counter subscribed to the node's systemd");
        Self { count }
    }

    /// Reloads seen so far; waits briefly so a signal in flight is counted.
    pub fn count(&self) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        self.count.load(Ordering::SeqCst)
    }
}
