//! The fast path (statx + statmount) and the mountinfo path must give the same answer on the
//! same live table, for every kind of mount that makes resolution or propagation tricky:
//! stacked, over-mounted, slave, shared-and-slave, unbindable, private, and paths that do not
//! exist yet. Built in a private mount namespace of a thread of its own: nothing reaches the
//! host. Needs root (a loud SKIP without it).

use std::io::Write;
use std::path::Path;

use mountprop::mountinfo::{self, MountInfo, MountSummary};
use mountprop::statmount;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

fn tmpfs(name: &str, at: &str) {
    mount(Some(name), at, Some("tmpfs"), MsFlags::empty(), Some("size=4k"))
        .unwrap_or_else(|e| panic!("tmpfs on {at}: {e}"));
}

fn change(at: &str, flags: MsFlags) {
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>).unwrap_or_else(|e| panic!("{flags:?} on {at}: {e}"));
}

fn bind(from: &str, to: &str) {
    mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .unwrap_or_else(|e| panic!("bind {from} {to}: {e}"));
}

/// Builds the layouts; returns what each path should be, as mountinfo words ("shared", ...).
fn build() {
    change("/", MsFlags::MS_REC | MsFlags::MS_PRIVATE);
    tmpfs("agree-base", "/mnt");
    change("/mnt", MsFlags::MS_SHARED);
    for d in ["src", "slave", "both", "unb", "stack", "over", "over/child", "priv"] {
        std::fs::create_dir(format!("/mnt/{d}")).unwrap();
    }
    // A slave of /mnt's peer group.
    bind("/mnt/src", "/mnt/slave");
    change("/mnt/slave", MsFlags::MS_SLAVE);
    // Shared and a slave at once: "shared:N master:M".
    bind("/mnt/src", "/mnt/both");
    change("/mnt/both", MsFlags::MS_SLAVE);
    change("/mnt/both", MsFlags::MS_SHARED);
    tmpfs("agree-unb", "/mnt/unb");
    change("/mnt/unb", MsFlags::MS_UNBINDABLE);
    // Two mounts stacked on one point: the top one wins.
    tmpfs("agree-stack-1", "/mnt/stack");
    tmpfs("agree-stack-2", "/mnt/stack");
    // A mount over a directory that holds another mount hides it.
    tmpfs("agree-hidden", "/mnt/over/child");
    tmpfs("agree-over", "/mnt/over");
    tmpfs("agree-priv", "/mnt/priv");
    change("/mnt/priv", MsFlags::MS_PRIVATE);
    // A path that is a symlink into another mount: a lookup ends there, not where it is written.
    std::os::unix::fs::symlink("/mnt/priv", "/mnt/link").unwrap();
}

#[test]
fn the_fast_path_agrees_with_mountinfo_on_tricky_tables() {
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP statmount agreement: needs root (private mount namespace) ***\n"
        );
        return;
    }
    if !statmount::available() {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP statmount agreement: no statmount on this kernel ***\n"
        );
        assert!(std::env::var_os("MOUNTPROP_REQUIRE_STATMOUNT").is_none());
        return;
    }
    let r = std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNS).expect("private mount namespace for this thread");
        build();
        let table = MountInfo::read_path(Path::new("/proc/thread-self/mountinfo"), Vec::new()).unwrap();
        let mut seen = Vec::new();
        for p in [
            "/",
            "/proc",
            "/mnt",
            "/mnt/src",
            "/mnt/slave",
            "/mnt/both",
            "/mnt/unb",
            "/mnt/stack",
            "/mnt/over",
            "/mnt/over/child",
            "/mnt/priv",
            "/mnt/priv/not/made/yet",
            "/mnt/link",
            "/mnt/link/not/made/yet",
        ] {
            let fast = statmount::mount_of(Path::new(p)).unwrap_or_else(|e| panic!("statmount {p}: {e}"));
            let slow = table.governing(&mountinfo::looked_up(Path::new(p))).unwrap().unwrap();
            assert_eq!(
                u64::from(fast.id),
                slow.id,
                "{p}: statmount says mount {}, mountinfo {}",
                fast.id,
                slow.id
            );
            assert_eq!(fast.propagation, slow.propagation, "{p}");
            // What the engine's check uses: the whole summary, mount point and type included.
            let described = statmount::describe(Path::new(p)).unwrap();
            assert_eq!(described, MountSummary::from(&slow), "{p}");
            seen.push((p, slow.source.to_string(), fast.propagation));
        }
        seen
    })
    .join()
    .expect("the comparison ran");
    // And the layouts are what they claim to be, or the agreement proves little.
    let get = |p: &str| {
        r.iter()
            .find(|(q, _, _)| *q == p)
            .map(|(_, s, prop)| (s.clone(), *prop))
            .unwrap()
    };
    let (_, slave) = get("/mnt/slave");
    assert!(slave.master.is_some() && slave.shared.is_none());
    let (_, both) = get("/mnt/both");
    assert!(both.master.is_some() && both.shared.is_some());
    assert!(get("/mnt/unb").1.unbindable);
    assert_eq!(get("/mnt/stack").0, "agree-stack-2");
    assert_eq!(get("/mnt/over/child").0, "agree-over");
    assert_eq!(get("/mnt/priv/not/made/yet").0, "agree-priv");
    assert_eq!(get("/mnt/link").0, "agree-priv");
    assert!(get("/mnt").1.shared.is_some());
}

/// The table listmount/statmount build for another process's namespace (what the container
/// check reads where it can) is the one `/proc/<pid>/mountinfo` gives, mount by mount: ids,
/// parents, mount points (a space in one included), types and propagation, and the same mount
/// governs each path. The process is a shell in a mount namespace of its own (unshare(1)), its
/// mounts under the test's own directory.
#[test]
fn another_namespace_listed_is_its_mountinfo() {
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP listmount agreement: needs root (a mount namespace) ***\n"
        );
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("listmount");
    let _ = std::fs::create_dir_all(&dir);
    let d = dir.display();
    let script = format!(
        "set -e; mount -t tmpfs lm-base {d}; mount --make-shared {d}; \
         mkdir -p '{d}/src' '{d}/slave' '{d}/a b' {d}/stack {d}/unb; \
         mount --bind {d}/src {d}/slave; mount --make-slave {d}/slave; \
         mount -t tmpfs lm-space '{d}/a b'; mount -t tmpfs lm-s1 {d}/stack; mount -t tmpfs lm-s2 {d}/stack; \
         mount -t tmpfs lm-unb {d}/unb; mount --make-unbindable {d}/unb; echo ready; exec sleep 60"
    );
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unshare(1)");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the layout was not built");
    let pid = child.id();
    let listed = statmount::namespace_table(pid, 20_000, Vec::new());
    let table = MountInfo::read_pid(Some(pid)).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let listed = match listed {
        Ok(Some(b)) => MountInfo::from_bytes("listed", b),
        Ok(None) => panic!("more than 20,000 mounts listed"),
        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOSYS | nix::libc::EINVAL)) => {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIP listmount agreement: no listmount with mnt_ns_id on this kernel ({e}) ***\n"
            );
            assert!(std::env::var_os("MOUNTPROP_REQUIRE_STATMOUNT").is_none());
            return;
        }
        Err(e) => panic!("listmount/statmount of pid {pid}: {e}"),
    };
    let key = |t: &MountInfo| {
        let mut v: Vec<(u64, u64, MountSummary)> = t
            .iter()
            .map(|m| {
                let m = m.unwrap();
                (m.id, m.parent_id, MountSummary::from(&m))
            })
            .collect();
        v.sort_by_key(|m| m.0);
        v
    };
    let (a, b) = (key(&listed), key(&table));
    assert_eq!(a.len(), b.len(), "listed {} mounts, mountinfo {}", a.len(), b.len());
    assert_eq!(a, b);
    let paths = ["/", "src", "slave", "a b", "a b/deeper", "stack", "unb"].map(|p| dir.join(p));
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let ids = |t: &MountInfo| -> Vec<Option<u64>> {
        t.governing_many(&refs)
            .unwrap()
            .iter()
            .map(|m| m.as_ref().map(|m| m.id))
            .collect()
    };
    assert_eq!(ids(&listed), ids(&table));
    // The layout is what it claims to be: a space survives, the top of the stack wins.
    let by_point = |t: &MountInfo, p: &str| t.governing(&dir.join(p)).unwrap().unwrap().source.to_string();
    assert_eq!(by_point(&table, "a b"), "lm-space");
    assert_eq!(by_point(&table, "stack"), "lm-s2");
    assert!(b.iter().any(|m| m.2.propagation.master.is_some()));
    assert!(b.iter().any(|m| m.2.propagation.unbindable));
}
