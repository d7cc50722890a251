//! `/proc/<pid>/mountinfo` (proc(5)), parsed without copying.
//!
//! The table is read once into one buffer; [`Mount`] borrows from it and decodes the kernel's
//! octal escapes (`\040` and friends) only when a caller asks for a path. Nothing is allocated per
//! line: a 50,000-mount table costs one read plus one scan.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum MountInfoError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Past a [`Cap`]: `mounts` counted to the end, or as far as counting goes (`counted` false).
    #[error("mount table too large ({}{mounts} mounts) in {path}", if *counted { "" } else { "more than " })]
    TooLarge {
        path: PathBuf,
        mounts: usize,
        counted: bool,
    },
    #[error("{path}: line {line}: {reason}: {text:?}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: &'static str,
        /// The offending line, lossily decoded and cut to a readable length.
        text: String,
    },
}

/// Bounds on reading a mount table that someone else controls: a process with mount rights in
/// its own namespace (a privileged container, or a user-namespaced one) can hold up to
/// `fs.mount-max` (100,000 by default) mounts there, with paths as long as it likes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub bytes: usize,
    pub lines: usize,
}

impl Cap {
    /// A container's table, or the table of the namespace it was made from. Far above what
    /// any pod has (a CSI node plugin that sees every pod's mounts has a few thousand), far
    /// below what a hostile one can make.
    pub const CONTAINER: Cap = Cap {
        bytes: 8 << 20,
        lines: 20_000,
    };
}

/// Past a cap, the rest of a table is counted, not kept, this far at most.
const COUNT_ON: u64 = 64 << 20;

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// One mount table, held as the kernel wrote it.
#[derive(Clone)]
pub struct MountInfo {
    origin: PathBuf,
    buf: Vec<u8>,
}

impl MountInfo {
    /// Reads `/proc/<pid>/mountinfo`, or `/proc/self/mountinfo` for `None`.
    pub fn read_pid(pid: Option<u32>) -> Result<Self, MountInfoError> {
        let path = match pid {
            Some(pid) => PathBuf::from(format!("/proc/{pid}/mountinfo")),
            None => PathBuf::from("/proc/self/mountinfo"),
        };
        Self::read_path(&path, Vec::new())
    }

    /// Reads a mountinfo file into `buf` (cleared first), so a caller that checks often can reuse
    /// one allocation.
    pub fn read_path(path: &Path, mut buf: Vec<u8>) -> Result<Self, MountInfoError> {
        buf.clear();
        let read = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf));
        match read {
            Ok(_) => Ok(Self::from_bytes(path, buf)),
            Err(source) => Err(MountInfoError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// [`Self::read_path`] within `cap`: past it, [`MountInfoError::TooLarge`] with the number
    /// of mounts, and never more than `cap.bytes` (plus what the allocator rounds up) held.
    pub fn read_path_capped(path: &Path, mut buf: Vec<u8>, cap: Cap) -> Result<Self, MountInfoError> {
        let err = |source| MountInfoError::Read {
            path: path.to_path_buf(),
            source,
        };
        buf.clear();
        let mut f = std::fs::File::open(path).map_err(err)?;
        (&mut f).take(cap.bytes as u64 + 1).read_to_end(&mut buf).map_err(err)?;
        let lines = memchr_count(&buf);
        if buf.len() <= cap.bytes && lines <= cap.lines {
            return Ok(Self::from_bytes(path, buf));
        }
        // Too large: count the rest in a small buffer, as far as COUNT_ON.
        let mut mounts = lines;
        let mut counted = buf.len() <= cap.bytes;
        drop(buf);
        if !counted {
            // The line cut by the cap is counted by its newline, further on.
            let mut chunk = [0u8; 64 << 10];
            let mut rest = (&mut f).take(COUNT_ON);
            loop {
                let n = rest.read(&mut chunk).map_err(err)?;
                if n == 0 {
                    break;
                }
                mounts += memchr_count(&chunk[..n]);
            }
            counted = rest.limit() > 0;
        }
        Err(MountInfoError::TooLarge {
            path: path.to_path_buf(),
            mounts,
            counted,
        })
    }

    /// The id on the first line of a mountinfo file, read without reading the rest. Two tables
    /// that start with the same mount belong to one namespace: a mount is in exactly one, and
    /// its id is unique. Unlike `/proc/<pid>/ns/mnt`, this needs no ptrace access to the process.
    pub fn first_mount_id(path: &Path) -> Result<Option<u64>, MountInfoError> {
        let err = |source| MountInfoError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(err)?;
        let mut buf = [0u8; 512];
        let mut len = 0;
        while len < buf.len() {
            let n = f.read(&mut buf[len..]).map_err(err)?;
            if n == 0 {
                break;
            }
            len += n;
            if buf[..len].contains(&b' ') {
                break;
            }
        }
        let head = &buf[..len];
        let end = head.iter().position(|&b| b == b' ').unwrap_or(head.len());
        Ok(parse_num(&head[..end]))
    }

    /// Wraps bytes already read; `origin` is only used to name the table in errors.
    pub fn from_bytes(origin: impl Into<PathBuf>, buf: Vec<u8>) -> Self {
        Self {
            origin: origin.into(),
            buf,
        }
    }

    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Gives the buffer back for reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Every mount, in the kernel's order.
    pub fn iter(&self) -> Mounts<'_> {
        Mounts {
            table: self,
            rest: &self.buf,
            line: 0,
        }
    }

    /// Checks every line; the first malformed one is the error.
    pub fn validate(&self) -> Result<usize, MountInfoError> {
        let mut n = 0;
        for m in self.iter() {
            m?;
            n += 1;
        }
        Ok(n)
    }

    /// The mount that governs `path`: the one a lookup of `path` ends in.
    ///
    /// Resolution walks the mount tree the way a path lookup does: start at the topmost mount
    /// on `/`, cross into the first child mount met along `path` (prefixes count in whole
    /// components: `/var/lib` does not govern `/var/library`), and on each mount point take
    /// the top of the stack (a mount whose parent is another mount on the same point hides
    /// it). So an over-mounted directory hides the mounts that were below it.
    ///
    /// `path` must be absolute and normalized (no `.`/`..`, no trailing or doubled `/`).
    pub fn governing(&self, path: &Path) -> Result<Option<Mount<'_>>, MountInfoError> {
        let mut out = self.governing_many(&[path])?;
        Ok(out.pop().flatten())
    }

    /// [`governing`](Self::governing) for several paths in one scan of the table.
    pub fn governing_many(&self, paths: &[&Path]) -> Result<Vec<Option<Mount<'_>>>, MountInfoError> {
        // Only mounts on the ancestor chain of a path matter; there are few of those.
        let mut chains: Vec<Vec<Mount<'_>>> = vec![Vec::new(); paths.len()];
        for m in self.iter() {
            let m = m?;
            for (i, p) in paths.iter().enumerate() {
                if m.mount_point.is_component_prefix_of(p.as_os_str().as_bytes()) {
                    chains[i].push(m.clone());
                }
            }
        }
        Ok(chains.iter().map(|c| resolve(c)).collect())
    }

    fn parse_error(&self, line: usize, reason: &'static str, text: &[u8]) -> MountInfoError {
        const MAX: usize = 200;
        let cut = &text[..text.len().min(MAX)];
        MountInfoError::Parse {
            path: self.origin.clone(),
            line,
            reason,
            text: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}

/// Picks, among the mounts whose mount point is a prefix of one path, the mount that path
/// resolves to.
///
/// Linear in the chain: children are indexed by parent once, and each mount is stepped onto at
/// most once. A point may hold up to `mount-max` (100,000 by default) stacked mounts, and a
/// quadratic walk took seconds there.
fn resolve<'a>(chain: &[Mount<'a>]) -> Option<Mount<'a>> {
    let mut children: HashMap<u64, Vec<usize>> = HashMap::with_capacity(chain.len());
    for (i, m) in chain.iter().enumerate() {
        children.entry(m.parent_id).or_default().push(i);
    }
    let kids = |i: usize| children.get(&chain[i].id).map_or(&[][..], Vec::as_slice);
    let ids: HashSet<u64> = chain.iter().map(|m| m.id).collect();
    // The namespace root is the `/` mount whose parent is not in this view.
    let root = chain
        .iter()
        .position(|m| m.mount_point.raw() == b"/" && !ids.contains(&m.parent_id))
        .or_else(|| chain.iter().position(|m| m.mount_point.raw() == b"/"))?;
    // A table read from anywhere may claim a loop: a mount already stepped onto ends a walk.
    let mut seen = vec![false; chain.len()];
    let mut on_top = |mut cur: usize| -> usize {
        loop {
            seen[cur] = true;
            let c = &chain[cur];
            // A stacked mount has the covered mount as its parent and the same mount point.
            let over = kids(cur)
                .iter()
                .copied()
                .find(|&o| chain[o].id != c.id && chain[o].mount_point.raw() == c.mount_point.raw());
            match over {
                Some(o) if !seen[o] => cur = o,
                _ => return cur,
            }
        }
    };
    let mut cur = on_top(root);
    loop {
        // Walking the path, the first mount point met is crossed; a child of `cur` deeper down
        // the same path is hidden under it (PrivateTmp= over /var/tmp hides /var/tmp/x).
        // Of two children on the same point, the later one wins.
        let cur_len = chain[cur].mount_point.decoded_len();
        let next = kids(cur)
            .iter()
            .copied()
            .filter(|&c| chain[c].mount_point.decoded_len() > cur_len)
            .rev()
            .min_by_key(|&c| chain[c].mount_point.decoded_len());
        match next {
            Some(n) => cur = on_top(n),
            None => return Some(chain[cur].clone()),
        }
    }
}

/// Iterator over the mounts of a table; yields an error for a malformed line.
pub struct Mounts<'a> {
    table: &'a MountInfo,
    rest: &'a [u8],
    line: usize,
}

impl<'a> Iterator for Mounts<'a> {
    type Item = Result<Mount<'a>, MountInfoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (text, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        self.line += 1;
        Some(parse_line(text, self.line).map_err(|reason| {
            // Stop after the first error: the rest of the table cannot be trusted either.
            self.rest = &[];
            self.table.parse_error(self.line, reason, text)
        }))
    }
}

/// One line of mountinfo. Paths stay escaped until asked for.
#[derive(Debug, Clone)]
pub struct Mount<'a> {
    pub id: u64,
    pub parent_id: u64,
    pub major: u32,
    pub minor: u32,
    pub root: Escaped<'a>,
    pub mount_point: Escaped<'a>,
    pub mount_options: &'a [u8],
    pub propagation: Propagation,
    pub fstype: Escaped<'a>,
    pub source: Escaped<'a>,
    pub super_options: &'a [u8],
    /// 1-based line number in the table.
    pub line: usize,
}

impl Mount<'_> {
    pub fn mount_point_path(&self) -> PathBuf {
        self.mount_point.to_path_buf()
    }
}

fn parse_line(line: &[u8], _lineno: usize) -> Result<Mount<'_>, &'static str> {
    if line.is_empty() {
        return Err("empty line");
    }
    let mut f = line.split(|&b| b == b' ');
    let mut next = |what: &'static str| f.next().ok_or(what);
    let id = parse_num(next("missing mount id")?).ok_or("bad mount id")?;
    let parent_id = parse_num(next("missing parent id")?).ok_or("bad parent id")?;
    let dev = next("missing major:minor")?;
    let colon = dev.iter().position(|&b| b == b':').ok_or("bad major:minor")?;
    let major = parse_num(&dev[..colon])
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("bad major:minor")?;
    let minor = parse_num(&dev[colon + 1..])
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("bad major:minor")?;
    let root = Escaped::checked(next("missing root")?).ok_or("bad escape in root")?;
    let mount_point = Escaped::checked(next("missing mount point")?).ok_or("bad escape in mount point")?;
    if mount_point.raw().first() != Some(&b'/') {
        return Err("mount point is not absolute");
    }
    let mount_options = next("missing mount options")?;
    let mut propagation = Propagation::default();
    // Optional fields run up to a field that is exactly "-"; a path can never be that field,
    // since paths are absolute and spaces in them are escaped.
    loop {
        let field = next("missing separator \" - \" after the optional fields")?;
        if field == b"-" {
            break;
        }
        propagation.add_field(field)?;
    }
    let fstype = Escaped::checked(next("missing filesystem type")?).ok_or("bad escape in filesystem type")?;
    let source = Escaped::checked(next("missing mount source")?).ok_or("bad escape in mount source")?;
    let super_options = next("missing super options")?;
    Ok(Mount {
        id,
        parent_id,
        major,
        minor,
        root,
        mount_point,
        mount_options,
        propagation,
        fstype,
        source,
        super_options,
        line: _lineno,
    })
}

fn parse_num(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// The propagation fields of one mount (`shared:N`, `master:N`, `propagate_from:N`,
/// `unbindable`). A mount can carry several: `shared:409 master:1` is a mount that is both a
/// member of peer group 409 and a slave of peer group 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Propagation {
    pub shared: Option<u64>,
    pub master: Option<u64>,
    pub propagate_from: Option<u64>,
    pub unbindable: bool,
}

/// What a mount's propagation amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PropagationKind {
    Shared { peer_group: u64 },
    Slave { master: u64 },
    SharedAndSlave { peer_group: u64, master: u64 },
    Private,
    Unbindable,
}

impl Propagation {
    fn add_field(&mut self, field: &[u8]) -> Result<(), &'static str> {
        if field.is_empty() {
            return Err("empty optional field");
        }
        if field == b"unbindable" {
            self.unbindable = true;
            return Ok(());
        }
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            // proc(5) allows future tags; one we do not know says nothing about propagation.
            return Ok(());
        };
        let (tag, value) = (&field[..colon], &field[colon + 1..]);
        let slot = match tag {
            b"shared" => &mut self.shared,
            b"master" => &mut self.master,
            b"propagate_from" => &mut self.propagate_from,
            _ => return Ok(()),
        };
        let n = parse_num(value).ok_or("bad number in optional field")?;
        if slot.replace(n).is_some() {
            return Err("repeated optional field");
        }
        Ok(())
    }

    pub fn kind(&self) -> PropagationKind {
        match (self.shared, self.master) {
            (Some(peer_group), Some(master)) => PropagationKind::SharedAndSlave { peer_group, master },
            (Some(peer_group), None) => PropagationKind::Shared { peer_group },
            (None, Some(master)) => PropagationKind::Slave { master },
            (None, None) if self.unbindable => PropagationKind::Unbindable,
            (None, None) => PropagationKind::Private,
        }
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether mounts made in peer group `group` reach this mount.
    pub fn receives_from(&self, group: u64) -> bool {
        self.shared == Some(group) || self.master == Some(group)
    }
}

impl fmt::Display for Propagation {
    /// The words findmnt uses: `shared`, `private,slave`, `shared,slave`, `unbindable`, with
    /// the kernel's numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            PropagationKind::Shared { peer_group } => write!(f, "shared:{peer_group}"),
            PropagationKind::Slave { master } => write!(f, "slave (master:{master})"),
            PropagationKind::SharedAndSlave { peer_group, master } => {
                write!(f, "shared:{peer_group} and slave (master:{master})")
            }
            PropagationKind::Private => f.write_str("private"),
            PropagationKind::Unbindable => f.write_str("unbindable"),
        }
    }
}

/// A field as the kernel escaped it: space, tab, newline and backslash appear as `\040`,
/// `\011`, `\012` and `\134`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a>(&'a [u8]);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.decode()))
    }
}

impl<'a> Escaped<'a> {
    /// Accepts `raw` if every backslash starts a three-digit octal escape of one byte.
    fn checked(raw: &'a [u8]) -> Option<Self> {
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' {
                let d = raw.get(i + 1..i + 4)?;
                if !(b'0'..=b'3').contains(&d[0]) || !d[1..].iter().all(|b| (b'0'..=b'7').contains(b)) {
                    return None;
                }
                i += 4;
            } else {
                i += 1;
            }
        }
        Some(Self(raw))
    }

    /// An escaped field built from text already in the kernel's form (tests, fixtures).
    pub fn new(raw: &'a [u8]) -> Option<Self> {
        Self::checked(raw)
    }

    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// The decoded bytes, one at a time.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        let raw = self.0;
        let mut i = 0;
        std::iter::from_fn(move || {
            let b = *raw.get(i)?;
            if b == b'\\' {
                // `checked` guaranteed three octal digits follow.
                let v = raw[i + 1..i + 4]
                    .iter()
                    .fold(0u8, |acc, d| acc.wrapping_mul(8).wrapping_add(d - b'0'));
                i += 4;
                Some(v)
            } else {
                i += 1;
                Some(b)
            }
        })
    }

    pub fn decoded_len(&self) -> usize {
        self.0.len() - 3 * self.0.iter().filter(|&&b| b == b'\\').count()
    }

    /// Decoded bytes; borrows unless the field held an escape.
    pub fn decode(&self) -> Cow<'a, [u8]> {
        if self.0.contains(&b'\\') {
            Cow::Owned(self.bytes().collect())
        } else {
            Cow::Borrowed(self.0)
        }
    }

    pub fn to_path_buf(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.decode()))
    }

    /// Whether this mount point is `path` or an ancestor of it in whole components.
    pub fn is_component_prefix_of(&self, path: &[u8]) -> bool {
        if self.0 == b"/" {
            return path.first() == Some(&b'/');
        }
        let mut p = path.iter();
        for b in self.bytes() {
            if p.next() != Some(&b) {
                return false;
            }
        }
        matches!(p.next(), None | Some(b'/'))
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.decode()))
    }
}

/// `path` as a lookup reaches it: symlinks in its existing part resolved, the part that does not
/// exist yet kept as written. [`MountInfo::governing`] is lexical; this makes it agree with a
/// lookup (and with statx) where a path such as /var/lib/kubelet is a symlink to a data disk.
pub fn looked_up(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |acc: PathBuf, c| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// A mount in plain owned data, for reports and for comparing views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSummary {
    pub id: u64,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub propagation: Propagation,
}

impl From<&Mount<'_>> for MountSummary {
    fn from(m: &Mount<'_>) -> Self {
        Self {
            id: m.id,
            mount_point: m.mount_point_path(),
            fstype: m.fstype.to_string(),
            propagation: m.propagation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_read_names_the_number_of_mounts_past_the_cap() {
        let path = std::env::temp_dir().join(format!("mountprop-capped.{}", std::process::id()));
        let line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n";
        std::fs::write(&path, line.repeat(50)).expect("write");
        let cap = |bytes, lines| Cap { bytes, lines };
        let ok = MountInfo::read_path_capped(&path, Vec::new(), cap(line.len() * 50, 50)).expect("within the cap");
        assert_eq!(ok.validate().expect("valid"), 50);
        // Past the line cap: counted to the end.
        let Err(e) = MountInfo::read_path_capped(&path, Vec::new(), cap(1 << 20, 49)) else {
            panic!("too many lines, read anyway")
        };
        assert_eq!(
            e.to_string(),
            format!("mount table too large (50 mounts) in {}", path.display())
        );
        // Past the byte cap, in the middle of a line: the rest counted, the cut line once.
        let Err(e) = MountInfo::read_path_capped(&path, Vec::new(), cap(line.len() * 10 + 7, 1000)) else {
            panic!("too long, read anyway")
        };
        assert!(
            matches!(
                e,
                MountInfoError::TooLarge {
                    mounts: 50,
                    counted: true,
                    ..
                }
            ),
            "{e}"
        );
        let _ = std::fs::remove_file(&path);
    }

    fn table(text: &str) -> MountInfo {
        MountInfo::from_bytes("test", text.as_bytes().to_vec())
    }

    fn gov(t: &MountInfo, p: &str) -> (u64, String) {
        let m = t.governing(Path::new(p)).unwrap().unwrap();
        (m.id, m.mount_point.to_string())
    }

    // Captured on this project's machines: the host (no systemd, `/` private) and a systemd
    // sandbox after `mount --make-rshared /` with a slave service.
    const HOST: &str = include_str!("../../tests/fixtures/mountinfo/host-private.txt");
    const SANDBOX_SHARED: &str = include_str!("../../tests/fixtures/mountinfo/sandbox-rshared.txt");
    const SERVICE_SLAVE: &str = include_str!("../../tests/fixtures/mountinfo/service-slave.txt");
    const SERVICE_PRIVATETMP: &str = include_str!("../../tests/fixtures/mountinfo/service-privatetmp.txt");

    #[test]
    fn parses_every_field_of_a_plain_line() {
        let t = table("36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n");
        let m = t.iter().next().unwrap().unwrap();
        assert_eq!((m.id, m.parent_id, m.major, m.minor), (36, 35, 98, 0));
        assert_eq!(m.root.to_string(), "/mnt1");
        assert_eq!(m.mount_point.to_string(), "/mnt/parent");
        assert_eq!(m.mount_options, b"rw,noatime");
        assert_eq!(m.propagation.kind(), PropagationKind::Slave { master: 1 });
        assert_eq!(m.fstype.to_string(), "ext3");
        assert_eq!(m.source.to_string(), "/dev/root");
        assert_eq!(m.super_options, b"rw,errors=continue");
        assert_eq!(m.line, 1);
    }

    #[test]
    fn classifies_all_propagation_shapes() {
        let t = table(concat!(
            "1 0 0:1 / / rw - ext4 a rw\n",
            "2 1 0:2 / /s rw shared:7 - tmpfs b rw\n",
            "3 1 0:3 / /m rw master:9 - tmpfs c rw\n",
            "4 1 0:4 / /sm rw shared:409 master:1 - tmpfs d rw\n",
            "5 1 0:5 / /u rw unbindable - tmpfs e rw\n",
            "6 1 0:6 / /pf rw master:3 propagate_from:2 - tmpfs f rw\n",
            "7 1 0:7 / /x rw shared:2 future:5 - tmpfs g rw\n",
        ));
        let kinds: Vec<_> = t.iter().map(|m| m.unwrap().propagation).collect();
        assert_eq!(kinds[0].kind(), PropagationKind::Private);
        assert_eq!(kinds[1].kind(), PropagationKind::Shared { peer_group: 7 });
        assert_eq!(kinds[2].kind(), PropagationKind::Slave { master: 9 });
        assert_eq!(
            kinds[3].kind(),
            PropagationKind::SharedAndSlave {
                peer_group: 409,
                master: 1
            }
        );
        assert_eq!(kinds[4].kind(), PropagationKind::Unbindable);
        assert_eq!(kinds[5].propagate_from, Some(2));
        assert_eq!(kinds[5].master, Some(3));
        assert_eq!(kinds[6].kind(), PropagationKind::Shared { peer_group: 2 });
        assert!(kinds[3].receives_from(1) && kinds[3].receives_from(409) && !kinds[3].receives_from(7));
    }

    #[test]
    fn decodes_octal_escapes_in_paths() {
        let t =
            table("1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 /a\\134b /mnt/x\\040y\\011z\\012w rw - tmpfs my\\040src rw\n");
        let m = t.iter().nth(1).unwrap().unwrap();
        assert_eq!(m.mount_point.decode().as_ref(), b"/mnt/x y\tz\nw");
        assert_eq!(m.root.decode().as_ref(), b"/a\\b");
        assert_eq!(m.source.to_string(), "my src");
        assert_eq!(m.mount_point.decoded_len(), "/mnt/x y\tz\nw".len());
        assert_eq!(gov(&t, "/mnt/x y\tz\nw/deeper").0, 2);
    }

    #[test]
    fn a_dash_inside_a_mount_point_is_not_the_separator() {
        // `mount -t tmpfs x "/mnt/a - b"`: the kernel writes the spaces as \040.
        let t = table(
            "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /mnt/a\\040-\\040b rw shared:3 - tmpfs x rw\n3 1 0:3 / /- rw - tmpfs y rw\n",
        );
        let ms: Vec<_> = t.iter().map(Result::unwrap).collect();
        assert_eq!(ms[1].mount_point.to_string(), "/mnt/a - b");
        assert_eq!(ms[1].propagation.shared, Some(3));
        assert_eq!(ms[1].fstype.to_string(), "tmpfs");
        assert_eq!(ms[2].mount_point.to_string(), "/-");
        assert_eq!(ms[2].fstype.to_string(), "tmpfs");
    }

    #[test]
    fn empty_source_field_is_kept() {
        let t = table("1 0 0:1 / / rw - tmpfs  rw\n");
        let m = t.iter().next().unwrap().unwrap();
        assert_eq!(m.source.raw(), b"");
        assert_eq!(m.super_options, b"rw");
    }

    #[test]
    fn non_utf8_paths_are_bytes_not_errors() {
        let mut bytes = b"1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /mnt/caf".to_vec();
        bytes.extend_from_slice(&[0xe9, 0xff]);
        bytes.extend_from_slice(b" rw shared:4 - tmpfs t rw\n");
        let t = MountInfo::from_bytes("test", bytes);
        let m = t.iter().nth(1).unwrap().unwrap();
        assert_eq!(m.mount_point.decode().as_ref(), b"/mnt/caf\xe9\xff");
        let p = m.mount_point_path();
        assert_eq!(p.as_os_str().as_bytes(), b"/mnt/caf\xe9\xff");
        assert!(m.mount_point.to_string().starts_with("/mnt/caf"));
    }

    #[test]
    fn malformed_lines_name_the_line_and_never_panic() {
        let cases: &[(&str, &str)] = &[
            ("1 0 0:1 / / rw shared:1 ext4 a rw\n", "separator"),
            ("1 0 0:1 / / rw\n", "separator"),
            ("x 0 0:1 / / rw - ext4 a rw\n", "bad mount id"),
            ("1 0 01 / / rw - ext4 a rw\n", "major:minor"),
            ("1 0 0:1 / /a\\09 rw - ext4 a rw\n", "bad escape"),
            ("1 0 0:1 / /a\\8 rw - ext4 a rw\n", "bad escape"),
            ("1 0 0:1 / /a\\ rw - ext4 a rw\n", "bad escape"),
            ("1 0 0:1 / /a\\400 rw - ext4 a rw\n", "bad escape"),
            ("1 0 0:1 / / rw shared:x - ext4 a rw\n", "bad number"),
            ("1 0 0:1 / / rw shared:1 shared:2 - ext4 a rw\n", "repeated"),
            ("1 0 0:1 / / rw - ext4\n", "missing mount source"),
            ("1 0 0:1 / / rw - ext4 a\n", "missing super options"),
            ("1 0 0:1 / relative rw - ext4 a rw\n", "not absolute"),
            ("1 0 0:1 / / rw  - ext4 a rw\n", "empty optional field"),
            ("\n", "empty line"),
            ("99999999999999999999999 0 0:1 / / rw - ext4 a rw\n", "bad mount id"),
        ];
        for (text, want) in cases {
            let good = "1 0 0:1 / / rw - ext4 a rw\n";
            let t = table(&format!("{good}{good}{text}{good}"));
            let err = t.validate().unwrap_err().to_string();
            assert!(err.contains("line 3"), "{text:?}: {err}");
            assert!(err.contains(want), "{text:?}: {err}");
            // The scan stops at the bad line.
            assert!(t.iter().filter(|m| m.is_err()).count() == 1);
            assert!(t.governing(Path::new("/")).is_err());
        }
    }

    #[test]
    fn governing_is_by_whole_components() {
        let t = table(concat!(
            "1 0 0:1 / / rw shared:1 - ext4 a rw\n",
            "2 1 0:2 / /var/lib rw shared:2 - tmpfs b rw\n",
            "3 2 0:3 / /var/lib/kubelet rw - tmpfs c rw\n",
        ));
        assert_eq!(gov(&t, "/var/library").0, 1);
        assert_eq!(gov(&t, "/var/lib").0, 2);
        assert_eq!(gov(&t, "/var/lib/x").0, 2);
        assert_eq!(gov(&t, "/var/lib/kubelet").0, 3);
        assert_eq!(gov(&t, "/var/lib/kubelet/pods").0, 3);
        assert_eq!(gov(&t, "/var/lib/kubeletx").0, 2);
        assert_eq!(gov(&t, "/").0, 1);
    }

    #[test]
    fn stacked_mounts_the_top_one_wins() {
        // Two tmpfs on /mnt/a, then a third: only the last is visible.
        let t = table(concat!(
            "1 0 0:1 / / rw shared:1 - ext4 a rw\n",
            "2 1 0:2 / /mnt/a rw shared:2 - tmpfs b rw\n",
            "3 2 0:3 / /mnt/a rw - tmpfs c rw\n",
            "4 3 0:4 / /mnt/a rw master:2 - tmpfs d rw\n",
        ));
        assert_eq!(gov(&t, "/mnt/a/file").0, 4);
    }

    #[test]
    fn stack_order_comes_from_parents_not_line_order() {
        // A mount propagated in underneath an existing one ("tucked") can appear later in
        // the table while being lower in the stack.
        let t = table(concat!(
            "1 0 0:1 / / rw - ext4 a rw\n",
            "5 1 0:5 / /mnt rw - tmpfs top rw\n",
            "4 1 0:4 / /mnt rw - tmpfs bottom rw\n",
        ));
        // 5's parent is 1, and 4's parent is 1 too: neither covers the other, so the later wins.
        assert_eq!(gov(&t, "/mnt").0, 4);
        let t = table(concat!(
            "1 0 0:1 / / rw - ext4 a rw\n",
            "5 4 0:5 / /mnt rw - tmpfs top rw\n",
            "4 1 0:4 / /mnt rw - tmpfs bottom rw\n",
        ));
        assert_eq!(gov(&t, "/mnt/x").0, 5);
    }

    #[test]
    fn an_over_mounted_parent_hides_what_was_below_it() {
        // /var was mounted, then a new mount went on / over the old root: /var/x now resolves
        // through the new root, which has no /var mount.
        let t = table(concat!(
            "1 0 0:1 / / rw - ext4 a rw\n",
            "2 1 0:2 / /var rw shared:5 - tmpfs b rw\n",
            "3 1 0:3 / / rw shared:9 - tmpfs c rw\n",
        ));
        assert_eq!(gov(&t, "/var/x"), (3, "/".into()));
        // and a mount made on top of the new root's /var is found again.
        let t = table(concat!(
            "1 0 0:1 / / rw - ext4 a rw\n",
            "2 1 0:2 / /var rw shared:5 - tmpfs b rw\n",
            "3 1 0:3 / / rw shared:9 - tmpfs c rw\n",
            "6 3 0:6 / /var rw - tmpfs d rw\n",
        ));
        assert_eq!(gov(&t, "/var/x").0, 6);
    }

    #[test]
    fn governing_many_scans_once_for_all_paths() {
        let t = table(SANDBOX_SHARED);
        let paths = [Path::new("/"), Path::new("/var/lib/kubelet"), Path::new("/run/lock/x")];
        let got = t.governing_many(&paths).unwrap();
        let mps: Vec<String> = got
            .iter()
            .map(|m| m.as_ref().unwrap().mount_point.to_string())
            .collect();
        assert_eq!(mps, ["/", "/var", "/run/lock"]);
    }

    #[test]
    fn first_mount_id_reads_only_the_first_field() {
        let id = MountInfo::first_mount_id(Path::new("/proc/self/mountinfo"))
            .unwrap()
            .unwrap();
        let t = MountInfo::read_pid(None).unwrap();
        assert_eq!(Some(id), t.iter().next().map(|m| m.unwrap().id));
        assert!(MountInfo::first_mount_id(Path::new("/nonexistent")).is_err());
    }

    #[test]
    fn real_host_table_root_is_private() {
        let t = table(HOST);
        assert!(t.validate().unwrap() > 10);
        let root = t.governing(Path::new("/")).unwrap().unwrap();
        assert_eq!(root.propagation.kind(), PropagationKind::Private);
        assert_eq!(root.fstype.to_string(), "ext4");
        // /dev/shm is stacked twice in this capture; the later one is on top.
        let shm = t.governing(Path::new("/dev/shm/x")).unwrap().unwrap();
        assert_eq!(shm.mount_point.to_string(), "/dev/shm");
        let ids: Vec<u64> = t
            .iter()
            .map(|m| m.unwrap())
            .filter(|m| m.mount_point.raw() == b"/dev/shm")
            .map(|m| m.id)
            .collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(shm.id, ids[1]);
    }

    #[test]
    fn real_sandbox_table_after_make_rshared() {
        let t = table(SANDBOX_SHARED);
        let all: Vec<_> = t.iter().map(Result::unwrap).collect();
        assert!(
            all.iter().all(|m| m.propagation.is_shared()),
            "every mount below / is shared"
        );
        let root = t.governing(Path::new("/")).unwrap().unwrap();
        assert!(matches!(root.propagation.kind(), PropagationKind::Shared { .. }));
    }

    #[test]
    fn real_slave_service_table() {
        let host = table(SANDBOX_SHARED);
        let svc = table(SERVICE_SLAVE);
        let host_root = host.governing(Path::new("/")).unwrap().unwrap();
        let svc_root = svc.governing(Path::new("/")).unwrap().unwrap();
        let group = host_root.propagation.shared.unwrap();
        assert_eq!(svc_root.propagation.kind(), PropagationKind::Slave { master: group });
        assert!(svc_root.propagation.receives_from(group));
    }

    #[test]
    fn a_mount_over_a_directory_hides_mounts_below_it() {
        // /var/tmp/x was mounted, then a mount went onto /var/tmp: both are children of /var,
        // but a lookup of /var/tmp/x/f crosses /var/tmp first.
        let t = table(concat!(
            "1 0 0:1 / / rw - ext4 a rw\n",
            "2 1 0:2 / /var rw - ext4 b rw\n",
            "3 2 0:3 / /var/tmp/x rw shared:7 - tmpfs c rw\n",
            "4 2 0:4 /priv /var/tmp rw - ext4 b rw\n",
        ));
        assert_eq!(gov(&t, "/var/tmp/x/f").0, 4);
        assert_eq!(gov(&t, "/var/lib").0, 2);
    }

    #[test]
    fn real_shared_and_slave_namespace_with_escapes_and_shadowing() {
        // A service with MountFlags=shared and PrivateTmp=yes on systemd 252, after `/` was made
        // rshared: its namespace is a new peer group that is also a slave of the host's.
        let t = table(SERVICE_PRIVATETMP);
        let root = t.governing(Path::new("/")).unwrap().unwrap();
        assert_eq!(
            root.propagation.kind(),
            PropagationKind::SharedAndSlave {
                peer_group: 37,
                master: 1
            }
        );
        assert!(root.propagation.receives_from(1));
        // Escapes decode.
        let spaced = t.iter().map(Result::unwrap).find(|m| m.id == 152).unwrap();
        assert_eq!(spaced.mount_point.to_string(), "/var/tmp/a b");
        assert_eq!(spaced.source.to_string(), "src with space");
        // PrivateTmp= put the service's own /var/tmp (162) over the directory, which hides the
        // host's /var/tmp/a b (152) and the stacked /var/tmp/stack (153, 154) from it.
        for p in ["/var/tmp/a b/file", "/var/tmp/stack", "/var/tmp/other"] {
            let m = t.governing(Path::new(p)).unwrap().unwrap();
            assert_eq!((m.id, m.mount_point.to_string()), (162, "/var/tmp".to_string()), "{p}");
            assert!(m.root.to_string().starts_with("/tmp/systemd-private-"));
        }
    }

    #[test]
    fn a_cycle_of_stacked_mounts_does_not_hang() {
        // Found by the fuzzer: two mounts on one point, each the other's parent. The kernel
        // never writes that, but a table read from anywhere must not hang the resolver.
        let t = table("1 2 0:1 / / rw - tmpfs a rw\n2 1 0:2 / / rw - tmpfs b rw\n");
        let _ = t.governing(Path::new("/x"));
        let t = table(
            "5 9 0:1 / / rw - tmpfs r rw\n1 5 0:1 / /a rw - tmpfs a rw\n2 1 0:2 / /a rw - tmpfs b rw\n1 2 0:3 / /a rw - tmpfs c rw\n",
        );
        let _ = t.governing(Path::new("/a/b"));
    }
}
