//! The propagation of the mount that holds a path, in microseconds: `statx(STATX_MNT_ID_UNIQUE)`
//! names the mount, `statmount(2)` (Linux >= 6.8) describes it. The cost does not grow with the
//! mount table, unlike reading `/proc/self/mountinfo` (about 8 ms at 10,000 mounts here), so
//! the daemon can re-check often. Kernels or seccomp filters without the syscall answer
//! ENOSYS/EPERM; callers then fall back to mountinfo.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::libc;

use crate::node::mountinfo::{MountSummary, Propagation};

// The same numbers on x86_64 and aarch64 (syscalls added since 4.x share one table).
const SYS_STATMOUNT: libc::c_long = 457;
const SYS_LISTMOUNT: libc::c_long = 458;
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
const STATMOUNT_MNT_BASIC: u64 = 0x2;
const STATMOUNT_PROPAGATE_FROM: u64 = 0x4;
const STATMOUNT_MNT_POINT: u64 = 0x10;
const STATMOUNT_FS_TYPE: u64 = 0x20;
const MNT_ID_REQ_SIZE_VER0: u32 = 24;
/// With `mnt_ns_id` (Linux >= 6.11): the mounts of another namespace.
const MNT_ID_REQ_SIZE_VER1: u32 = 32;
/// listmount's "the namespace's root mount" (`LSMT_ROOT`).
const LSMT_ROOT: u64 = u64::MAX;
/// `NS_GET_MNTNS_ID`, `_IOR(0xb7, 0x5, __u64)`: a mount namespace's 64-bit id.
const NS_GET_MNTNS_ID: libc::c_ulong = 0x8008_b705;
const MS_SHARED: u64 = 1 << 20;
const MS_SLAVE: u64 = 1 << 19;
const MS_UNBINDABLE: u64 = 1 << 17;

#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

#[repr(C)]
struct MntIdReqNs {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
}

/// `struct statmount` up to the strings (include/uapi/linux/mount.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct Statmount {
    size: u32,
    spare1: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    spare2: [u64; 50],
}

/// The mount holding a path, as statmount describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountState {
    /// The id `/proc/*/mountinfo` shows.
    pub id: u32,
    pub unique_id: u64,
    pub propagation: Propagation,
}

/// The unique mount id of the mount holding `path` (following symlinks, like a lookup).
fn unique_mount_id(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statx only writes into the zeroed struct we own.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, STATX_MNT_ID_UNIQUE, &mut stx) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
        // Kernel too old for unique ids (< 6.8): statmount cannot be asked either.
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(stx.stx_mnt_id)
}

/// The fixed part of the answer, then its strings (offsets into what follows it). Room for a
/// mount point of PATH_MAX; a longer answer is asked for again with more room.
#[repr(C)]
struct Answer {
    head: Statmount,
    strings: [u8; 4096 + 256],
}

/// Asks statmount about mount `unique_id` into `buf`, whose size the kernel is told.
fn statmount_into<T>(unique_id: u64, param: u64, buf: &mut T) -> io::Result<()> {
    let req = MntIdReq {
        size: MNT_ID_REQ_SIZE_VER0,
        spare: 0,
        mnt_id: unique_id,
        param,
    };
    // SAFETY: the kernel writes at most `size_of::<T>()` bytes into `buf`.
    let r = unsafe {
        libc::syscall(
            SYS_STATMOUNT,
            &req as *const MntIdReq,
            buf as *mut T,
            std::mem::size_of::<T>(),
            0u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn checked(head: &Statmount) -> io::Result<()> {
    if head.mask & STATMOUNT_MNT_BASIC == 0 {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    Ok(())
}

impl Answer {
    /// The string at `offset`, if the kernel said it wrote that field.
    fn string(&self, flag: u64, offset: u32) -> Option<&[u8]> {
        if self.head.mask & flag == 0 {
            return None;
        }
        let rest = self.strings.get(offset as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..end])
    }
}

/// statmount's propagation in the terms mountinfo uses.
fn propagation(sm: &Statmount) -> Propagation {
    let shared = sm.mnt_propagation & MS_SHARED != 0;
    let slave = sm.mnt_propagation & MS_SLAVE != 0;
    Propagation {
        shared: shared.then_some(sm.mnt_peer_group),
        master: slave.then_some(sm.mnt_master),
        // mountinfo names propagate_from only when it differs from the master.
        propagate_from: (slave
            && sm.mask & STATMOUNT_PROPAGATE_FROM != 0
            && sm.propagate_from != 0
            && sm.propagate_from != sm.mnt_master)
            .then_some(sm.propagate_from),
        unbindable: sm.mnt_propagation & MS_UNBINDABLE != 0,
    }
}

/// The unique id of the mount that holds `path`. A path that does not exist yet is held by the
/// mount of its nearest existing ancestor, as a lookup would find once it is created.
fn holder(path: &Path) -> io::Result<u64> {
    let mut p = path;
    loop {
        match unique_mount_id(p) {
            Ok(id) => return Ok(id),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => match p.parent() {
                Some(parent) => p = parent,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

/// The unique id of the mount that holds `path` (or its nearest existing ancestor): one statx.
pub fn holder_id(path: &Path) -> io::Result<u64> {
    holder(path)
}

/// Mount `unique_id` (from an earlier [`mount_of`]): ids and propagation. ENOENT once it is gone.
pub fn mount_by_id(unique_id: u64) -> io::Result<MountState> {
    // SAFETY: all-zero is a valid Statmount.
    let mut head: Statmount = unsafe { std::mem::zeroed() };
    statmount_into(unique_id, STATMOUNT_MNT_BASIC | STATMOUNT_PROPAGATE_FROM, &mut head)?;
    checked(&head)?;
    Ok(MountState {
        id: head.mnt_id_old,
        unique_id: head.mnt_id,
        propagation: propagation(&head),
    })
}

/// The mount that holds `path`: ids and propagation only. The daemon's frequent re-read, so
/// no strings and nothing on the heap but the path.
pub fn mount_of(path: &Path) -> io::Result<MountState> {
    // SAFETY: all-zero is a valid Statmount.
    let mut head: Statmount = unsafe { std::mem::zeroed() };
    statmount_into(holder(path)?, STATMOUNT_MNT_BASIC | STATMOUNT_PROPAGATE_FROM, &mut head)?;
    checked(&head)?;
    Ok(MountState {
        id: head.mnt_id_old,
        unique_id: head.mnt_id,
        propagation: propagation(&head),
    })
}

/// The mount that holds `path`, as the mountinfo path describes it (mount point and
/// filesystem type included), at a cost that does not grow with the mount table.
pub fn describe(path: &Path) -> io::Result<MountSummary> {
    // SAFETY: all-zero is a valid Answer.
    let mut a: Box<Answer> = Box::new(unsafe { std::mem::zeroed() });
    statmount_into(
        holder(path)?,
        STATMOUNT_MNT_BASIC | STATMOUNT_PROPAGATE_FROM | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE,
        &mut *a,
    )?;
    checked(&a.head)?;
    let missing = || io::Error::from_raw_os_error(libc::EOPNOTSUPP);
    let mount_point = a.string(STATMOUNT_MNT_POINT, a.head.mnt_point).ok_or_else(missing)?;
    let fstype = a.string(STATMOUNT_FS_TYPE, a.head.fs_type).ok_or_else(missing)?;
    Ok(MountSummary {
        id: u64::from(a.head.mnt_id_old),
        mount_point: PathBuf::from(std::ffi::OsStr::from_bytes(mount_point)),
        fstype: String::from_utf8_lossy(fstype).into_owned(),
        propagation: propagation(&a.head),
    })
}

/// The mount table of `pid`'s namespace, from `listmount(2)` and one `statmount(2)` per mount
/// (Linux >= 6.11), written as `/proc/<pid>/mountinfo` lines into `buf` so that the one parser
/// reads it: ids, parent, root `/`, mount point, propagation and filesystem type (device,
/// options and source are left out).
///
/// Not used by the checks, which read `/proc/<pid>/mountinfo`: measured on 500 containers of
/// about 40 mounts each, this way took 1.7 times as long (BENCHMARKS.md, section 6), and it
/// needs ptrace read access to the process (to open `/proc/<pid>/ns/mnt`), which the shipped
/// unit's daemon lacks for most containers. Kept so that the benchmark measures both on each
/// new kernel. `propagate_from` is not asked for: for another namespace the kernel looks for
/// the dominating peer under the caller's root, where that namespace's mounts never are, so it
/// answers nothing after walking every peer of the group (asked for, it made this way 9 times
/// as slow as mountinfo on that bench).
///
/// `Ok(None)`: more than `max_mounts` mounts.
pub fn namespace_table(pid: u32, max_mounts: usize, mut buf: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    let mut ns_id: u64 = 0;
    // SAFETY: the ioctl writes one u64 into ns_id.
    if unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_MNTNS_ID as libc::Ioctl, &mut ns_id as *mut u64) } != 0 {
        return Err(io::Error::last_os_error());
    }
    drop(ns);
    // Every id, in batches: a call lists the ids after `mnt_id`.
    let mut ids: Vec<u64> = Vec::new();
    let mut batch = [0u64; 512];
    let mut after = 0u64;
    loop {
        let req = MntIdReqNs {
            size: MNT_ID_REQ_SIZE_VER1,
            spare: 0,
            mnt_id: LSMT_ROOT,
            param: after,
            mnt_ns_id: ns_id,
        };
        // SAFETY: the kernel writes at most batch.len() ids into batch.
        let n = unsafe {
            libc::syscall(
                SYS_LISTMOUNT,
                &req as *const MntIdReqNs,
                batch.as_mut_ptr(),
                batch.len(),
                0u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = &batch[..n as usize];
        ids.extend_from_slice(got);
        if ids.len() > max_mounts {
            return Ok(None);
        }
        match got.last() {
            Some(&last) if got.len() == batch.len() => after = last,
            _ => break,
        }
    }
    buf.clear();
    // SAFETY: all-zero is a valid Answer.
    let mut a: Box<Answer> = Box::new(unsafe { std::mem::zeroed() });
    for id in ids {
        let req = MntIdReqNs {
            size: MNT_ID_REQ_SIZE_VER1,
            spare: 0,
            mnt_id: id,
            param: STATMOUNT_MNT_BASIC | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE,
            mnt_ns_id: ns_id,
        };
        // SAFETY: the kernel writes at most size_of::<Answer>() bytes into `a`.
        let r = unsafe {
            libc::syscall(
                SYS_STATMOUNT,
                &req as *const MntIdReqNs,
                &mut *a as *mut Answer,
                std::mem::size_of::<Answer>(),
                0u32,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            // Unmounted between the two calls: it is simply no longer in the table.
            if e.raw_os_error() == Some(libc::ENOENT) {
                continue;
            }
            return Err(e);
        }
        checked(&a.head)?;
        let missing = || io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        let point = a.string(STATMOUNT_MNT_POINT, a.head.mnt_point).ok_or_else(missing)?;
        let fstype = a.string(STATMOUNT_FS_TYPE, a.head.fs_type).ok_or_else(missing)?;
        let h = &a.head;
        write!(buf, "{} {} 0:0 / ", h.mnt_id_old, h.mnt_parent_id_old)?;
        escape_into(&mut buf, point);
        buf.extend_from_slice(b" rw");
        let p = propagation(h);
        if let Some(g) = p.shared {
            write!(buf, " shared:{g}")?;
        }
        if let Some(m) = p.master {
            write!(buf, " master:{m}")?;
        }
        if let Some(f) = p.propagate_from {
            write!(buf, " propagate_from:{f}")?;
        }
        if p.unbindable {
            buf.extend_from_slice(b" unbindable");
        }
        buf.extend_from_slice(b" - ");
        escape_into(&mut buf, fstype);
        buf.extend_from_slice(b" none rw\n");
    }
    Ok(Some(buf))
}

/// A path as mountinfo writes it: space, tab, newline and backslash as octal escapes.
fn escape_into(out: &mut Vec<u8>, raw: &[u8]) {
    for &b in raw {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
}

/// Whether statx + statmount work here (kernel and seccomp allowing); asked once.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| describe(Path::new("/")).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::mountinfo::MountInfo;

    #[test]
    fn layout_matches_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<MntIdReq>(), 24);
        // 0x70 bytes of fields before __spare2[50]; the strings start right after.
        assert_eq!(std::mem::size_of::<Statmount>(), 0x70 + 50 * 8);
        assert_eq!(std::mem::offset_of!(Answer, strings), 512);
    }

    #[test]
    fn agrees_with_mountinfo_on_this_machine() {
        if !available() {
            eprintln!("statmount unavailable here; nothing to compare");
            return;
        }
        let table = MountInfo::read_pid(None).unwrap();
        for p in [
            "/",
            "/proc",
            "/proc/self",
            "/sys/fs/cgroup",
            "/dev/shm",
            "/nonexistent/below/root",
        ] {
            let fast = mount_of(Path::new(p)).unwrap();
            let slow = table.governing(Path::new(p)).unwrap().unwrap();
            assert_eq!(u64::from(fast.id), slow.id, "{p}");
            assert_eq!(fast.propagation, slow.propagation, "{p}");
            assert_eq!(describe(Path::new(p)).unwrap(), MountSummary::from(&slow), "{p}");
        }
    }
}
