//! Mounting and unmounting by file descriptor, in directories someone else can write.
//!
//! The live probe works inside a volume's source, a directory a pod may write. A path there can
//! be swapped for a symlink between a check and a use, so that root would mount over, or
//! unmount, a host path the pod chose (the class of runc's CVE-2021-30465). Here no path a pod
//! can steer is ever followed:
//! - a directory is opened with `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` (the
//!   path to it canonicalized first, so a root-owned symlink such as /var/lib/kubelet -> /data
//!   still works, while one swapped in afterwards fails the open);
//! - the scratch directory is made with `mkdirat` relative to that descriptor, opened with
//!   `O_NOFOLLOW`, and must be a directory root owns;
//! - a tmpfs is made with `fsopen`/`fsmount` and attached with `move_mount` onto the scratch
//!   directory's descriptor (`MOVE_MOUNT_T_EMPTY_PATH`);
//! - it is unmounted through its own mount descriptor (`/proc/self/fd/N` names exactly that
//!   mount), after checking that its unique mount id is the one it got; a detach only ever of a
//!   mount reached by descriptor, never of a path.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

const SYS_OPENAT2: libc::c_long = 437;
const SYS_FSOPEN: libc::c_long = 430;
const SYS_FSCONFIG: libc::c_long = 431;
const SYS_FSMOUNT: libc::c_long = 432;
const SYS_MOVE_MOUNT: libc::c_long = 429;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x02;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x04;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x08;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn cstr(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn fd_or_err(r: libc::c_long) -> io::Result<OwnedFd> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

fn openat2(dir: RawFd, path: &[u8], flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: valid C string and open_how of the size passed.
    fd_or_err(unsafe {
        libc::syscall(
            SYS_OPENAT2,
            dir,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

/// `path` (relative to `dir`) opened with no symlink followed on the way: `openat2`, or where it
/// is not allowed (systemd's RestrictSUIDSGID= makes it fail with ENOSYS, so that callers fall
/// back to `openat`) a walk from `dir` (or `/`) one component at a time with
/// `O_PATH | O_DIRECTORY | O_NOFOLLOW`. Only directories, and no `..`.
fn open_no_symlinks(dir: RawFd, path: &[u8], resolve_beneath: bool) -> io::Result<OwnedFd> {
    let resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | if resolve_beneath { RESOLVE_BENEATH } else { 0 };
    match openat2(dir, path, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, resolve) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => walk(dir, path, resolve_beneath),
        r => r,
    }
}

/// [`open_no_symlinks`] without openat2.
fn walk(dir: RawFd, path: &[u8], resolve_beneath: bool) -> io::Result<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let open = |at: RawFd, name: &[u8]| -> io::Result<OwnedFd> {
        let c = cstr(name)?;
        // SAFETY: valid descriptor (or AT_FDCWD) and C string.
        fd_or_err(unsafe { libc::openat(at, c.as_ptr(), flags) } as libc::c_long)
    };
    let (mut cur, rest) = match path.strip_prefix(b"/") {
        Some(rest) if !resolve_beneath => (open(libc::AT_FDCWD, b"/")?, rest),
        Some(_) => return Err(io::Error::from_raw_os_error(libc::EXDEV)),
        None => (open(dir, b".")?, path),
    };
    for name in rest.split(|&b| b == b'/').filter(|n| !n.is_empty() && *n != b".") {
        if name == b".." {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        cur = open(cur.as_raw_fd(), name)?;
    }
    Ok(cur)
}

/// The directory at `path`, opened with no symlink followed on the way (after canonicalizing,
/// so only a symlink swapped in since makes it fail).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let real = std::fs::canonicalize(path)?;
    open_no_symlinks(libc::AT_FDCWD, real.as_os_str().as_bytes(), false)
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: all-zero is a valid stat; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the call.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Whether someone other than root could write in the directory `fd` names.
pub fn writable_by_others(fd: &OwnedFd) -> io::Result<bool> {
    let st = fstat(fd.as_raw_fd())?;
    Ok(st.st_uid != 0 || st.st_mode & 0o022 != 0)
}

/// A directory of mountprop's own made in `parent`, held by descriptor; removed (relative to
/// `parent`, only if empty) when dropped.
pub struct ScratchDir {
    parent: OwnedFd,
    name: CString,
    dir: OwnedFd,
}

impl ScratchDir {
    pub fn make(parent: OwnedFd, name: &str) -> io::Result<Self> {
        let c = cstr(name.as_bytes())?;
        // SAFETY: valid descriptor and C string.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let made = Self {
            dir: open_no_symlinks(parent.as_raw_fd(), name.as_bytes(), true).inspect_err(|_| {
                // SAFETY: as above.
                unsafe { libc::unlinkat(parent.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) };
            })?,
            parent,
            name: c,
        };
        let st = fstat(made.dir.as_raw_fd())?;
        if st.st_uid != 0 && st.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the scratch directory is not root's: swapped while it was made",
            ));
        }
        Ok(made)
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.dir
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // SAFETY: valid descriptor and C string. Only an empty directory goes.
        unsafe { libc::unlinkat(self.parent.as_raw_fd(), self.name.as_ptr(), libc::AT_REMOVEDIR) };
    }
}

/// The unique mount id of the mount `fd` is on.
fn mount_id(fd: RawFd) -> io::Result<u64> {
    // SAFETY: all-zero is a valid statx; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: valid descriptor, empty path with AT_EMPTY_PATH.
    let r = unsafe { libc::statx(fd, empty.as_ptr(), libc::AT_EMPTY_PATH, STATX_MNT_ID_UNIQUE, &mut stx) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(stx.stx_mnt_id)
}

/// A tmpfs mountprop attached, held by its mount descriptor; unmounted through it when dropped.
pub struct FdMount {
    mnt: OwnedFd,
    id: u64,
}

/// Whether this kernel has the new mount API (fsopen, Linux 5.2; statx's unique mount id, 6.8).
pub fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        // SAFETY: fsopen with a valid C string; the descriptor is closed at once.
        let r = unsafe { libc::syscall(SYS_FSOPEN, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) };
        fd_or_err(r).is_ok() && mount_id(libc::AT_FDCWD).is_ok()
    })
}

impl FdMount {
    /// A tiny tmpfs with source `tag`, attached on the directory `at` holds.
    pub fn tmpfs(tag: &str, at: &OwnedFd) -> io::Result<Self> {
        // SAFETY: valid C strings and descriptors throughout.
        let fs = fd_or_err(unsafe { libc::syscall(SYS_FSOPEN, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })?;
        let set = |k: &str, v: &str| -> io::Result<()> {
            let (k, v) = (cstr(k.as_bytes())?, cstr(v.as_bytes())?);
            let r = unsafe {
                libc::syscall(
                    SYS_FSCONFIG,
                    fs.as_raw_fd(),
                    FSCONFIG_SET_STRING,
                    k.as_ptr(),
                    v.as_ptr(),
                    0,
                )
            };
            if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
        };
        set("source", tag)?;
        set("size", "4k")?;
        set("mode", "0700")?;
        // SAFETY: as above.
        let r = unsafe {
            libc::syscall(
                SYS_FSCONFIG,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mnt = fd_or_err(unsafe {
            libc::syscall(
                SYS_FSMOUNT,
                fs.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            )
        })?;
        let id = mount_id(mnt.as_raw_fd())?;
        // SAFETY: valid descriptors, empty paths with the EMPTY_PATH flags.
        let r = unsafe {
            libc::syscall(
                SYS_MOVE_MOUNT,
                mnt.as_raw_fd(),
                c"".as_ptr(),
                at.as_raw_fd(),
                c"".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { mnt, id })
    }

    /// Unmounts exactly this mount: `/proc/self/fd/N` of its own descriptor resolves to it and
    /// to nothing else, and its unique id is checked first. Detached, as the descriptor itself
    /// keeps the mount busy for a plain umount (EBUSY); the detach still propagates to the
    /// mount's peers and slaves, and it is a detach of this one mount, found by descriptor.
    pub fn unmount(&self) -> io::Result<()> {
        let id = mount_id(self.mnt.as_raw_fd())?;
        if id != self.id {
            return Err(io::Error::other(format!(
                "mount id {id} is not the probe's {}; left alone",
                self.id
            )));
        }
        let p = cstr(format!("/proc/self/fd/{}", self.mnt.as_raw_fd()).as_bytes())?;
        // SAFETY: valid C string.
        if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Unmounts the mount on `mount_point` (a path from the host's table) only if the path leads
/// there with no symlink on the way and the mount found is still the one with `old_id` (the
/// table's id): then through its descriptor, detached if `detach`. Anything else is left alone.
pub fn unmount_checked(mount_point: &Path, old_id: u64, detach: bool) -> io::Result<()> {
    const STATX_MNT_ID: u32 = 0x1000;
    let fd = open_no_symlinks(libc::AT_FDCWD, mount_point.as_os_str().as_bytes(), false)?;
    // SAFETY: all-zero is a valid statx; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, empty path with AT_EMPTY_PATH.
    if unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            STATX_MNT_ID,
            &mut stx,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    if stx.stx_mask & STATX_MNT_ID == 0 || stx.stx_mnt_id != old_id {
        return Err(io::Error::other(format!(
            "{} is no longer mount {old_id}; left alone",
            mount_point.display()
        )));
    }
    let p = cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
    let flags = if detach { libc::MNT_DETACH } else { 0 };
    // SAFETY: valid C string.
    if unsafe { libc::umount2(p.as_ptr(), flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dir_refuses_a_symlink_swapped_in() {
        // Removed on every way out, a failed assertion too: the suite leaves /tmp as it was.
        struct Scratch(std::path::PathBuf);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let scratch = Scratch(std::env::temp_dir().join(format!("mountprop-fdmount.{}", std::process::id())));
        let base = &scratch.0;
        let _ = std::fs::remove_dir_all(base);
        std::fs::create_dir_all(base.join("real")).expect("mkdir");
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).expect("symlink");
        // Canonicalized first: a symlink that is there already leads where it points.
        assert!(open_dir(&base.join("link")).is_ok());
        // A symlink anywhere on the canonical path, as a swap after canonicalizing would leave it.
        let e = openat2(
            libc::AT_FDCWD,
            base.join("link").as_os_str().as_bytes(),
            libc::O_PATH | libc::O_DIRECTORY,
            RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        )
        .expect_err("a symlink followed");
        // ENOSYS where openat2 is not there: qemu-user's emulation (the arm64 test run) and
        // seccomp filters that do not know it. The walk below stands in then, as in the daemon.
        assert!(matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOSYS)), "{e}");
        // The walk that stands in for openat2 where it is not allowed refuses it too.
        let walked = |p: &Path| walk(libc::AT_FDCWD, p.as_os_str().as_bytes(), false);
        assert!(walked(&base.join("link")).is_err());
        assert!(walked(&base.join("link/")).is_err());
        assert!(walked(&base.join("real")).is_ok());
        assert!(walked(&base.join("real/../link")).is_err());
        // The scratch directory: made relative to the descriptor, removed again, only if empty.
        let parent = open_dir(&base.join("real")).expect("open");
        let s = ScratchDir::make(parent, ".scratch").expect("scratch");
        assert!(base.join("real/.scratch").is_dir());
        drop(s);
        assert!(!base.join("real/.scratch").exists());
    }
}
