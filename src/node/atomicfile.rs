//! Writing a file so that readers see the old content or the whole new content, never a part:
//! temp file in the same directory, fsync, rename, fsync the directory. Everything goes through
//! a directory file descriptor opened without following a symlink, so a symlink planted where
//! the directory or the file should be is refused instead of written through.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path} is a symlink; refusing to follow it")]
    Symlink { path: PathBuf },
    #[error("{path} is not a {expected}")]
    WrongType { path: PathBuf, expected: &'static str },
    #[error("{path} appeared while mountprop was writing it; left alone")]
    Raced { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FileError {
    fn io(op: &'static str, path: &Path, e: impl Into<io::Error>) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}

/// An open directory, held by descriptor.
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    /// This call made the directory, so it may take it away again if nothing lands in it.
    created: bool,
}

/// What a name in a directory turned out to be, without following symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Symlink,
    File(Vec<u8>),
    Other,
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

impl Dir {
    /// Opens `path`. Its last component must not be a symlink; `create` makes it (and missing
    /// parents) with that mode first.
    pub fn open(path: &Path, create: Option<u32>) -> Result<Self, FileError> {
        let (parent, name) = split(path)?;
        let parent_fd = match nix::fcntl::open(
            parent,
            OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create.is_some() => {
                std::fs::create_dir_all(parent).map_err(|e| FileError::io("create directory", parent, e))?;
                nix::fcntl::open(
                    parent,
                    OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
                    Mode::empty(),
                )
                .map_err(|e| FileError::io("open directory", parent, e))?
            }
            Err(e) => return Err(FileError::io("open directory", parent, e)),
        };
        let open = || openat(parent_fd.as_fd(), name, DIR_FLAGS, Mode::empty());
        let mut created = false;
        let fd = match open() {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create.is_some() => {
                let mode = Mode::from_bits_truncate(create.unwrap_or(0o755));
                match mkdirat(parent_fd.as_fd(), name, mode) {
                    Ok(()) => created = true,
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(FileError::io("create directory", path, e)),
                }
                let fd = open().map_err(|e| classify_dir_error(&parent_fd, name, path, e))?;
                // mkdir's mode went through the umask.
                if created {
                    fchmod(fd.as_fd(), mode).map_err(|e| FileError::io("chmod", path, e))?;
                }
                fd
            }
            Err(e) => return Err(classify_dir_error(&parent_fd, name, path, e)),
        };
        Ok(Self {
            fd,
            path: path.to_path_buf(),
            created,
        })
    }

    /// Opens `root`/`rel` walking one component at a time from `root`, refusing a symlink at
    /// every step (an image tree's `etc -> /etc` must not lead a write onto the host), and
    /// creating missing directories 0755 when `create` is set.
    pub fn open_beneath(root: &Path, rel: &Path, create: bool) -> Result<Self, FileError> {
        let mut fd =
            nix::fcntl::open(root, DIR_FLAGS, Mode::empty()).map_err(|e| FileError::io("open directory", root, e))?;
        let mut path = root.to_path_buf();
        let mut created = false;
        for comp in rel.components() {
            let std::path::Component::Normal(name) = comp else {
                return Err(FileError::WrongType {
                    path: root.join(rel),
                    expected: "plain relative path",
                });
            };
            path.push(name);
            let next = match openat(fd.as_fd(), name, DIR_FLAGS, Mode::empty()) {
                Ok(f) => {
                    created = false;
                    f
                }
                Err(Errno::ENOENT) if create => {
                    match mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) => created = true,
                        Err(Errno::EEXIST) => created = false,
                        Err(e) => return Err(FileError::io("create directory", &path, e)),
                    }
                    let f = openat(fd.as_fd(), name, DIR_FLAGS, Mode::empty())
                        .map_err(|e| classify_dir_error(&fd, name, &path, e))?;
                    if created {
                        fchmod(f.as_fd(), Mode::from_bits_truncate(0o755))
                            .map_err(|e| FileError::io("chmod", &path, e))?;
                    }
                    f
                }
                Err(e) => return Err(classify_dir_error(&fd, name, &path, e)),
            };
            fd = next;
        }
        Ok(Self { fd, path, created })
    }

    /// Creates or replaces the symlink `name` → `target`, atomically; refuses to replace
    /// anything that is not a symlink.
    pub fn symlink_atomic(&self, name: &str, target: &Path) -> Result<(), FileError> {
        let link = self.path.join(name);
        match nix::sys::stat::fstatat(self.fd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if !is_type(&st, SFlag::S_IFLNK) => {
                return Err(FileError::WrongType {
                    path: link,
                    expected: "symlink (left alone)",
                });
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(FileError::io("stat", &link, e)),
        }
        self.clean_stale_temps(name);
        let tmp = temp_name(name, std::process::id());
        let _ = unlinkat(self.fd.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat(target, self.fd.as_fd(), tmp.as_str())
            .map_err(|e| FileError::io("create symlink", &link, e))?;
        if let Err(e) = rename_in(&self.fd, &tmp, name, false) {
            let _ = unlinkat(self.fd.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(FileError::io("rename into place", &link, e));
        }
        fsync(self.fd.as_fd()).map_err(|e| FileError::io("fsync directory", &self.path, e))
    }

    /// The names in this directory (one level, no `.`/`..`).
    pub fn names(&self) -> Vec<String> {
        let Ok(dup) = self.fd.try_clone() else {
            return Vec::new();
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(dup) else {
            return Vec::new();
        };
        dir.iter()
            .flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `name` without following a symlink.
    pub fn read(&self, name: &str) -> Result<Entry, FileError> {
        let path = self.path.join(name);
        match openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| FileError::io("stat", &path, e))?;
                if !is_type(&st, SFlag::S_IFREG) {
                    return Ok(Entry::Other);
                }
                let mut buf = Vec::new();
                File::from(fd)
                    .read_to_end(&mut buf)
                    .map_err(|e| FileError::io("read", &path, e))?;
                Ok(Entry::File(buf))
            }
            Err(Errno::ENOENT) => Ok(Entry::Missing),
            Err(Errno::ELOOP) => Ok(Entry::Symlink),
            Err(e) => Err(FileError::io("open", &path, e)),
        }
    }

    /// Replaces (or creates) `name` with `content`, mode 0644, atomically. With
    /// `must_not_exist`, a file that appeared since the caller looked is left alone.
    pub fn write_atomic(&self, name: &str, content: &[u8], must_not_exist: bool) -> Result<(), FileError> {
        let target = self.path.join(name);
        self.clean_stale_temps(name);
        let tmp = temp_name(name, std::process::id());
        let tmp_path = self.path.join(&tmp);
        let fd = openat(
            self.fd.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| FileError::io("create", &tmp_path, e))?;
        let result = (|| {
            // The umask must not decide who can read a unit drop-in.
            fchmod(fd.as_fd(), Mode::from_bits_truncate(0o644)).map_err(|e| FileError::io("chmod", &tmp_path, e))?;
            let mut f = File::from(fd);
            f.write_all(content).map_err(|e| FileError::io("write", &tmp_path, e))?;
            fsync(f.as_fd()).map_err(|e| FileError::io("fsync", &tmp_path, e))?;
            drop(f);
            match rename_in(&self.fd, &tmp, name, must_not_exist) {
                Ok(()) => Ok(()),
                Err(Errno::EEXIST) => Err(FileError::Raced { path: target.clone() }),
                Err(e) => Err(FileError::io("rename into place", &target, e)),
            }
        })();
        if result.is_err() {
            let _ = unlinkat(self.fd.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            return result;
        }
        fsync(self.fd.as_fd()).map_err(|e| FileError::io("fsync directory", &self.path, e))
    }

    /// Removes `name` (a file the caller has checked is its own) and syncs the directory.
    pub fn remove(&self, name: &str) -> Result<bool, FileError> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => {
                fsync(self.fd.as_fd()).map_err(|e| FileError::io("fsync directory", &self.path, e))?;
                Ok(true)
            }
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(FileError::io("remove", &self.path.join(name), e)),
        }
    }

    /// Takes away a directory this `Dir` created, if nothing was put in it.
    pub fn remove_if_created_empty(&self) {
        if self.created {
            // rmdir fails on a non-empty directory, which is the check we want.
            let _ = std::fs::remove_dir(&self.path);
        }
    }

    /// Deletes temp files of `name` left by a mountprop process that no longer runs.
    fn clean_stale_temps(&self, name: &str) {
        let Ok(dup) = self.fd.try_clone() else { return };
        let Ok(mut dir) = nix::dir::Dir::from_fd(dup) else {
            return;
        };
        let mut stale = Vec::new();
        for entry in dir.iter().flatten() {
            let file = entry.file_name().to_bytes();
            if let Some(pid) = parse_temp_name(file, name)
                && pid != std::process::id()
                && !is_mountprop(pid)
            {
                stale.push(file.to_vec());
            }
        }
        for file in stale {
            let p = Path::new(std::ffi::OsStr::from_bytes(&file));
            if unlinkat(self.fd.as_fd(), p, UnlinkatFlags::NoRemoveDir).is_ok() {
                tracing::info!(PATH = %self.path.join(p).display(), "removed a temp file left by an interrupted mountprop run");
            }
        }
    }
}

/// O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR or ELOOP; say which case it was.
/// renameat2(2) within one directory. Called as a raw system call: nix and libc expose it only
/// for glibc, and mountprop also builds against musl (the static binary for old distributions).
fn rename_in(dir: &OwnedFd, from: &str, to: &str, noreplace: bool) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    const RENAME_NOREPLACE: nix::libc::c_uint = 1;
    let from = std::ffi::CString::new(from).map_err(|_| Errno::EINVAL)?;
    let to = std::ffi::CString::new(to).map_err(|_| Errno::EINVAL)?;
    let flags = if noreplace { RENAME_NOREPLACE } else { 0 };
    let fd = dir.as_raw_fd();
    // SAFETY: both names are NUL-terminated and outlive the call; the fd is open.
    let r = unsafe { nix::libc::syscall(nix::libc::SYS_renameat2, fd, from.as_ptr(), fd, to.as_ptr(), flags) };
    Errno::result(r).map(drop)
}

fn classify_dir_error(parent: &OwnedFd, name: &std::ffi::OsStr, path: &Path, e: Errno) -> FileError {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => {
            let link = nix::sys::stat::fstatat(parent.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| is_type(&st, SFlag::S_IFLNK));
            if link {
                FileError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                FileError::WrongType {
                    path: path.to_path_buf(),
                    expected: "directory",
                }
            }
        }
        e => FileError::io("open directory", path, e),
    }
}

fn is_type(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == t
}

fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr), FileError> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((if p.as_os_str().is_empty() { Path::new(".") } else { p }, n)),
        _ => Err(FileError::WrongType {
            path: path.to_path_buf(),
            expected: "path with a parent directory",
        }),
    }
}

/// `.<name>.<pid>.mountprop-tmp`: hidden, and not ending in `.conf`, so systemd never reads it.
pub fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.{pid}.mountprop-tmp")
}

fn parse_temp_name(file: &[u8], name: &str) -> Option<u32> {
    let rest = file
        .strip_prefix(b".")?
        .strip_prefix(name.as_bytes())?
        .strip_prefix(b".")?;
    let pid = rest.strip_suffix(b".mountprop-tmp")?;
    std::str::from_utf8(pid).ok()?.parse().ok()
}

fn is_mountprop(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with(b"mountprop"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("mountprop-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_creates_the_directory_and_replaces_atomically() {
        let t = TempDir::new("aw");
        let d = Dir::open(&t.0.join("x.service.d"), Some(0o755)).unwrap();
        assert_eq!(d.read("a.conf").unwrap(), Entry::Missing);
        d.write_atomic("a.conf", b"one\n", true).unwrap();
        assert_eq!(d.read("a.conf").unwrap(), Entry::File(b"one\n".to_vec()));
        let meta = std::fs::metadata(t.0.join("x.service.d/a.conf")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(
            std::fs::metadata(t.0.join("x.service.d")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let ino = meta.ino();
        d.write_atomic("a.conf", b"two\n", false).unwrap();
        assert_eq!(std::fs::read(t.0.join("x.service.d/a.conf")).unwrap(), b"two\n");
        assert_ne!(
            std::fs::metadata(t.0.join("x.service.d/a.conf")).unwrap().ino(),
            ino,
            "replaced by rename, not rewritten in place"
        );
        let names: Vec<_> = std::fs::read_dir(t.0.join("x.service.d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.conf"], "no temp file left");
    }

    #[test]
    fn no_replace_refuses_a_file_that_appeared() {
        let t = TempDir::new("race");
        let d = Dir::open(&t.0, None).unwrap();
        std::fs::write(t.0.join("a.conf"), "theirs").unwrap();
        assert!(matches!(
            d.write_atomic("a.conf", b"ours", true),
            Err(FileError::Raced { .. })
        ));
        assert_eq!(std::fs::read(t.0.join("a.conf")).unwrap(), b"theirs");
        assert_eq!(std::fs::read_dir(&t.0).unwrap().count(), 1);
    }

    #[test]
    fn refuses_symlinked_directory_and_file() {
        let t = TempDir::new("sym");
        std::fs::create_dir(t.0.join("real")).unwrap();
        symlink(t.0.join("real"), t.0.join("x.service.d")).unwrap();
        assert!(matches!(
            Dir::open(&t.0.join("x.service.d"), Some(0o755)),
            Err(FileError::Symlink { .. })
        ));
        let d = Dir::open(&t.0.join("real"), None).unwrap();
        symlink("/etc/passwd", t.0.join("real/a.conf")).unwrap();
        assert_eq!(d.read("a.conf").unwrap(), Entry::Symlink);
        std::fs::write(t.0.join("notdir"), "").unwrap();
        assert!(matches!(
            Dir::open(&t.0.join("notdir"), Some(0o755)),
            Err(FileError::WrongType { .. })
        ));
        std::fs::create_dir(t.0.join("real/sub.conf")).unwrap();
        assert_eq!(d.read("sub.conf").unwrap(), Entry::Other);
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_after_the_check_is_not_followed() {
        let t = TempDir::new("swapped");
        let real = t.0.join("x.service.d");
        let elsewhere = t.0.join("elsewhere");
        std::fs::create_dir(&real).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        let d = Dir::open(&real, None).unwrap();
        // Between mountprop's look at the directory and its write, someone swaps it.
        std::fs::rename(&real, t.0.join("moved")).unwrap();
        symlink(&elsewhere, &real).unwrap();
        d.write_atomic("90-mountprop.conf", b"[Service]\n", true).unwrap();
        assert!(
            t.0.join("moved/90-mountprop.conf").exists(),
            "written where it was checked"
        );
        assert_eq!(
            std::fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "nothing through the link"
        );
        // A fresh look refuses the symlink.
        assert!(matches!(Dir::open(&real, None), Err(FileError::Symlink { .. })));
    }

    #[test]
    fn a_killed_runs_temp_symlink_is_removed_by_the_next_link() {
        let t = TempDir::new("stalelink");
        let d = Dir::open(&t.0, None).unwrap();
        // PID 0 never names a running process: what a SIGKILLed run leaves.
        symlink("/x", t.0.join(temp_name("m.service", 0))).unwrap();
        d.symlink_atomic("m.service", Path::new("/lib/systemd/system/m.service"))
            .unwrap();
        assert_eq!(d.names(), vec!["m.service".to_string()]);
    }

    #[test]
    fn stale_temps_of_dead_runs_are_removed_live_ones_kept() {
        let t = TempDir::new("stale");
        let d = Dir::open(&t.0, None).unwrap();
        // PID 0 never names a running process, so its temp file is stale.
        std::fs::write(t.0.join(temp_name("a.conf", 0)), "half").unwrap();
        std::fs::write(t.0.join(".a.conf.x.mountprop-tmp"), "not ours by pattern").unwrap();
        std::fs::write(t.0.join(".b.conf.0.mountprop-tmp"), "other file's temp").unwrap();
        d.write_atomic("a.conf", b"full", false).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&t.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".a.conf.x.mountprop-tmp", ".b.conf.0.mountprop-tmp", "a.conf"]);
    }

    #[test]
    fn temp_names_round_trip() {
        assert_eq!(
            parse_temp_name(temp_name("90-m.conf", 42).as_bytes(), "90-m.conf"),
            Some(42)
        );
        assert_eq!(parse_temp_name(b".90-m.conf.42.tmp", "90-m.conf"), None);
        assert!(!temp_name("a.conf", 1).ends_with(".conf"));
    }

    #[test]
    fn open_beneath_refuses_a_symlink_anywhere_on_the_way() {
        let t = TempDir::new("beneath");
        let root = t.0.join("img");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let outside = t.0.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("etc/systemd")).unwrap();
        let e = Dir::open_beneath(&root, Path::new("etc/systemd/system/x.service.d"), true)
            .err()
            .unwrap();
        assert!(matches!(e, FileError::Symlink { .. }), "{e}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing created outside the root"
        );
        std::fs::remove_file(root.join("etc/systemd")).unwrap();
        let d = Dir::open_beneath(&root, Path::new("etc/systemd/system/x.service.d"), true).unwrap();
        d.write_atomic("a.conf", b"x", true).unwrap();
        assert!(root.join("etc/systemd/system/x.service.d/a.conf").is_file());
        assert!(Dir::open_beneath(&root, Path::new("../x"), true).is_err());
    }

    #[test]
    fn symlinks_are_made_atomically_and_never_over_a_file() {
        let t = TempDir::new("symlink");
        let d = Dir::open(&t.0, None).unwrap();
        d.symlink_atomic("m.service", Path::new("/lib/systemd/system/m.service"))
            .unwrap();
        assert_eq!(
            std::fs::read_link(t.0.join("m.service")).unwrap(),
            Path::new("/lib/systemd/system/m.service")
        );
        d.symlink_atomic("m.service", Path::new("/usr/lib/systemd/system/m.service"))
            .unwrap();
        assert_eq!(
            std::fs::read_link(t.0.join("m.service")).unwrap(),
            Path::new("/usr/lib/systemd/system/m.service")
        );
        std::fs::write(t.0.join("f.service"), "real").unwrap();
        assert!(d.symlink_atomic("f.service", Path::new("/x")).is_err());
        assert_eq!(std::fs::read(t.0.join("f.service")).unwrap(), b"real");
        let mut names = d.names();
        names.sort();
        assert_eq!(names, ["f.service", "m.service"]);
    }

    #[test]
    fn remove_is_idempotent() {
        let t = TempDir::new("rm");
        let d = Dir::open(&t.0, None).unwrap();
        d.write_atomic("a.conf", b"x", false).unwrap();
        assert!(d.remove("a.conf").unwrap());
        assert!(!d.remove("a.conf").unwrap());
    }
}
