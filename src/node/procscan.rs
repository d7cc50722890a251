//! What runs on the node, read from `/proc`: which process listens on a unix socket, which
//! systemd unit a process belongs to, and a process's name and command line. Everything here
//! is another process's text, so it is input: every read is bounded, every parse gives up
//! quietly on what it does not understand, and nothing here judges.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A command line longer than this is cut (the kernel allows 2 MiB of arguments).
const CMDLINE_CAP: u64 = 64 * 1024;
/// `/proc/<pid>/cgroup`: one line per hierarchy on v1, one on v2.
const CGROUP_CAP: u64 = 16 * 1024;
/// `/proc/net/unix` on a busy node: some 100 bytes a socket, so some 80,000 sockets.
const NET_UNIX_CAP: u64 = 8 * 1024 * 1024;
/// Processes looked at, and descriptors per process, at most.
const MAX_PIDS: usize = 100_000;
const MAX_FDS: usize = 65_536;

/// What discovery read, for the cost it reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reads {
    pub processes: usize,
    pub fds: usize,
    pub bytes: u64,
}

/// Reads at most `cap` bytes of a file.
pub fn read_capped(path: &Path, cap: u64, reads: &mut Reads) -> Option<Vec<u8>> {
    let f = std::fs::File::open(path).ok()?;
    let mut out = Vec::new();
    f.take(cap).read_to_end(&mut out).ok()?;
    reads.bytes += out.len() as u64;
    Some(out)
}

/// The listening unix sockets in a `/proc/net/unix` text: (socket inode, bound path). Abstract
/// sockets (`@name`) and unbound ones are left out.
pub fn listening_unix(r: impl BufRead) -> Vec<(u64, PathBuf)> {
    // "Num RefCount Protocol Flags Type St Inode Path"; Flags 0x10000 is __SO_ACCEPTCON.
    const ACCEPTCON: u32 = 0x10000;
    let mut out = Vec::new();
    for line in r.split(b'\n').map_while(Result::ok).skip(1) {
        let text = String::from_utf8_lossy(&line);
        let mut f = text.split_whitespace();
        let (Some(_num), Some(_refs), Some(_proto), Some(flags), Some(_ty), Some(_st), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Some(path) = f.next() else { continue };
        let listening = u32::from_str_radix(flags, 16).is_ok_and(|fl| fl & ACCEPTCON != 0);
        if !listening || !path.starts_with('/') {
            continue;
        }
        // A path with blanks in it: take the rest of the line as it was.
        let start = text.find(path).unwrap_or(0);
        if let Ok(i) = inode.parse::<u64>() {
            out.push((i, PathBuf::from(text[start..].trim_end())));
        }
    }
    out
}

/// The host's listening unix sockets at the given paths: PID 1's network namespace (the
/// host's, also when mountprop runs in a container), else this process's.
pub fn listeners_at(paths: &[PathBuf], reads: &mut Reads) -> BTreeMap<PathBuf, u64> {
    let wanted: BTreeSet<PathBuf> = paths.iter().map(|p| canonical(p)).collect();
    let names: BTreeSet<&std::ffi::OsStr> = paths.iter().filter_map(|p| p.file_name()).collect();
    let mut out = BTreeMap::new();
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let mut tables = vec!["/proc/1/net/unix"];
    if ns("1").is_none() || ns("1") != ns("self") {
        tables.push("/proc/self/net/unix");
    }
    for table in tables {
        let Ok(f) = std::fs::File::open(table) else { continue };
        let mut counted = CountingReader {
            inner: f.take(NET_UNIX_CAP),
            n: 0,
        };
        let found = listening_unix(BufReader::new(&mut counted));
        reads.bytes += counted.n;
        for (inode, bound) in found {
            // Only a socket whose name is one asked for is worth resolving.
            if !bound.file_name().is_some_and(|n| names.contains(n)) {
                continue;
            }
            let c = canonical(&bound);
            if let Some(asked) = paths.iter().find(|p| canonical(p) == c).filter(|_| wanted.contains(&c)) {
                out.entry(asked.clone()).or_insert(inode);
            }
        }
    }
    out
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// A path with its symlinks resolved, or as given when it cannot be (gone, no permission).
pub fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Every process id in `/proc`, at most [`MAX_PIDS`].
pub fn pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .take(MAX_PIDS)
        .collect()
}

/// The socket inodes a process holds open: `Err` when its descriptors may not be read (a
/// process with more capabilities than mountprop, without CAP_SYS_PTRACE), or it is gone.
pub fn socket_inodes(pid: u32, reads: &mut Reads) -> Result<Vec<u64>, std::io::Error> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir)?.take(MAX_FDS) {
        let Ok(e) = e else { continue };
        reads.fds += 1;
        match std::fs::read_link(e.path()) {
            Ok(target) => {
                if let Some(i) = socket_inode(&target.to_string_lossy()) {
                    out.push(i);
                }
            }
            // The directory may be listed where the links may not be read: the same refusal.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(e),
            // Closed meanwhile.
            Err(_) => {}
        }
    }
    Ok(out)
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// A process as discovery needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/<pid>/comm`: the executable's name, at most 15 bytes.
    pub comm: String,
    /// The command line, split at NULs (cut at 64 KiB).
    pub args: Vec<String>,
    /// The owner of `/proc/<pid>`: only root's processes are believed.
    pub uid: u32,
    /// The systemd unit it belongs to, from its cgroup.
    pub unit: Option<String>,
}

/// Reads one process, or `None` when it is gone.
pub fn process(pid: u32, reads: &mut Reads) -> Option<Process> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let uid = std::fs::metadata(&base).ok()?.uid();
    reads.processes += 1;
    let comm = read_capped(&base.join("comm"), 64, reads)?;
    let comm = String::from_utf8_lossy(&comm).trim_end_matches('\n').to_string();
    let args = read_capped(&base.join("cmdline"), CMDLINE_CAP, reads)
        .map(|raw| split_cmdline(&raw))
        .unwrap_or_default();
    let unit = read_capped(&base.join("cgroup"), CGROUP_CAP, reads)
        .and_then(|raw| unit_of_cgroup(&String::from_utf8_lossy(&raw)));
    Some(Process {
        pid,
        comm,
        args,
        uid,
        unit,
    })
}

/// Only the name, for a cheap first pass over every process.
pub fn comm(pid: u32, reads: &mut Reads) -> Option<String> {
    reads.processes += 1;
    let raw = read_capped(Path::new(&format!("/proc/{pid}/comm")), 64, reads)?;
    Some(String::from_utf8_lossy(&raw).trim_end_matches('\n').to_string())
}

pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The systemd service a process runs in, from its `/proc/<pid>/cgroup`: the unified
/// hierarchy's line (`0::/system.slice/k3s.service`), else the v1 `name=systemd` one. A
/// process in a user's session (`user.slice`), or in no service at all, has none.
pub fn unit_of_cgroup(text: &str) -> Option<String> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).or_else(|| {
        text.lines()
            .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
    })?;
    let mut parts = path.split('/').filter(|c| !c.is_empty());
    let first = parts.clone().next()?;
    if first == "user.slice" {
        return None;
    }
    let unit = parts.find(|c| c.ends_with(".service"))?;
    valid_unit_name(unit).then(|| unit.to_string())
}

/// A name systemd could have given a unit: what goes to D-Bus must be one.
pub fn valid_unit_name(name: &str) -> bool {
    name.len() <= 255
        && name.ends_with(".service")
        && name.len() > ".service".len()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_with_paths_are_found_and_the_rest_left_out() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 21541 /run/k3s/containerd/containerd.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 21542 /run/k3s/containerd/containerd.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 1800 @/containerd-shim/abc.sock@\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 1801\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 1802 /run/a dir/with blanks.sock\n\
            garbage line\n\
            0000000000000000: 00000002 00000000 zz 0001 01 1803 /x.sock\n";
        assert_eq!(
            listening_unix(text.as_bytes()),
            vec![
                (21541, PathBuf::from("/run/k3s/containerd/containerd.sock")),
                (1802, PathBuf::from("/run/a dir/with blanks.sock")),
            ]
        );
        // Bytes that are not UTF-8 and an empty input do not panic.
        assert!(listening_unix(&b"h\n\xff\xfe 1 2 3\n"[..]).is_empty());
        assert!(listening_unix(&b""[..]).is_empty());
    }

    #[test]
    fn a_socket_link_names_its_inode() {
        assert_eq!(socket_inode("socket:[21541]"), Some(21541));
        assert_eq!(socket_inode("pipe:[21541]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/run/x.sock"), None);
    }

    #[test]
    fn the_unit_comes_from_the_cgroup_path() {
        assert_eq!(
            unit_of_cgroup("0::/system.slice/k3s.service\n").as_deref(),
            Some("k3s.service")
        );
        // A child in a sub-group of its service (Delegate=yes) is still that service's.
        assert_eq!(
            unit_of_cgroup("0::/system.slice/k0sworker.service/containerd\n").as_deref(),
            Some("k0sworker.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/system.slice/snap.microk8s.daemon-containerd.service\n").as_deref(),
            Some("snap.microk8s.daemon-containerd.service")
        );
        // cgroup v1: the name=systemd hierarchy.
        let v1 = "12:cpu,cpuacct:/system.slice/crio.service\n1:name=systemd:/system.slice/crio.service\n";
        assert_eq!(unit_of_cgroup(v1).as_deref(), Some("crio.service"));
        // A user's session, a scope, the root, garbage: none.
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n"),
            None
        );
        assert_eq!(unit_of_cgroup("0::/system.slice/docker-abc.scope\n"), None);
        assert_eq!(unit_of_cgroup("0::/\n"), None);
        assert_eq!(unit_of_cgroup(""), None);
        assert_eq!(unit_of_cgroup("0::/system.slice/a b;rm.service\n"), None);
    }

    #[test]
    fn command_lines_split_at_nuls() {
        assert_eq!(
            split_cmdline(b"/usr/bin/kubelet\0--root-dir=/x\0\0"),
            vec!["/usr/bin/kubelet", "--root-dir=/x"]
        );
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn this_process_is_read_and_holds_the_sockets_it_opened() {
        let mut reads = Reads::default();
        let me = process(std::process::id(), &mut reads).expect("this process");
        assert!(!me.comm.is_empty() && !me.args.is_empty());
        let dir = std::env::temp_dir().join(format!("procscan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sock");
        let _ = std::fs::remove_file(&path);
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let found = listeners_at(std::slice::from_ref(&path), &mut reads);
        let inode = *found.get(&path).expect("the socket is listed");
        assert!(socket_inodes(std::process::id(), &mut reads).unwrap().contains(&inode));
        assert!(reads.bytes > 0 && reads.fds > 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
