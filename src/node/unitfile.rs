//! The part of systemd's unit-file syntax (systemd.syntax(7)) that decides `MountFlags=`, and
//! the order in which systemd applies a unit's fragment and drop-ins.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Kernel flag values as systemd reports `MountFlags` over D-Bus.
pub const MS_SHARED: u64 = 1 << 20;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_PRIVATE: u64 = 1 << 18;

/// A `MountFlags=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountFlags {
    /// Not set, or reset with an empty `MountFlags=`: systemd reports 0.
    Unset,
    Shared,
    Slave,
    Private,
}

impl MountFlags {
    /// From the `t` systemd reports; `None` for bits systemd never sets here.
    pub fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            0 => Some(Self::Unset),
            MS_SHARED => Some(Self::Shared),
            MS_SLAVE => Some(Self::Slave),
            MS_PRIVATE => Some(Self::Private),
            _ => None,
        }
    }

    pub fn bits(self) -> u64 {
        match self {
            Self::Unset => 0,
            Self::Shared => MS_SHARED,
            Self::Slave => MS_SLAVE,
            Self::Private => MS_PRIVATE,
        }
    }

    /// As systemd parses the right-hand side; `None` for a value it would ignore.
    pub fn parse_value(v: &str) -> Option<Self> {
        match v {
            "" => Some(Self::Unset),
            "shared" => Some(Self::Shared),
            "slave" => Some(Self::Slave),
            "private" => Some(Self::Private),
            _ => None,
        }
    }

    /// The right-hand side that sets this value.
    pub fn as_value(self) -> &'static str {
        match self {
            Self::Unset => "",
            Self::Shared => "shared",
            Self::Slave => "slave",
            Self::Private => "private",
        }
    }
}

impl fmt::Display for MountFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset => f.write_str("MountFlags unset"),
            v => write!(f, "MountFlags={}", v.as_value()),
        }
    }
}

/// One `Key=Value` line, after continuation lines are joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// 1-based line on which the assignment starts.
    pub line: usize,
}

/// Parses unit-file text the way systemd's config parser reads it: comments (`#`, `;`) and
/// blank lines skipped, `[Section]` headers, `Key=Value` with surrounding whitespace trimmed,
/// a trailing backslash continuing the value on the next line (comment lines inside a
/// continuation are skipped). Lines systemd would reject are skipped too, as systemd ignores
/// them after a warning.
pub fn parse(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some((start, mut acc)) = pending.take() {
            let t = line.trim_start();
            if t.starts_with('#') || t.starts_with(';') {
                pending = Some((start, acc));
                continue;
            }
            match line.strip_suffix('\\') {
                Some(head) => {
                    acc.push(' ');
                    acc.push_str(head);
                    pending = Some((start, acc));
                }
                None => {
                    acc.push(' ');
                    acc.push_str(line);
                    push_assignment(&mut out, &section, &acc, start);
                }
            }
            continue;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            if let Some(name) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = name.to_string();
            }
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending = Some((lineno, head.to_string())),
            None => push_assignment(&mut out, &section, line, lineno),
        }
    }
    if let Some((start, acc)) = pending {
        push_assignment(&mut out, &section, &acc, start);
    }
    out
}

fn push_assignment(out: &mut Vec<Assignment>, section: &str, line: &str, lineno: usize) {
    let Some(eq) = line.find('=') else { return };
    let key = line[..eq].trim();
    if key.is_empty() {
        return;
    }
    out.push(Assignment {
        section: section.to_string(),
        key: key.to_string(),
        value: line[eq + 1..].trim().to_string(),
        line: lineno,
    });
}

/// A `MountFlags=` line systemd accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountFlagsSetting {
    pub path: PathBuf,
    pub line: usize,
    pub value: MountFlags,
}

impl fmt::Display for MountFlagsSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} (MountFlags={})",
            self.path.display(),
            self.line,
            self.value.as_value()
        )
    }
}

/// The `MountFlags=` lines of one file, in order, that systemd would apply for a service.
pub fn mount_flags_settings(path: &Path, text: &str) -> Vec<MountFlagsSetting> {
    parse(text)
        .into_iter()
        .filter(|a| a.section == "Service" && a.key == "MountFlags")
        .filter_map(|a| {
            MountFlags::parse_value(&a.value).map(|value| MountFlagsSetting {
                path: path.to_path_buf(),
                line: a.line,
                value,
            })
        })
        .collect()
}

/// systemd 252's unit search path for the system manager, highest priority first
/// (`systemd-analyze unit-paths`). A drop-in in an earlier directory hides one of the same
/// file name in a later directory.
pub const SYSTEM_UNIT_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Orders drop-in files the way systemd applies them: of two with the same file name, only the
/// one whose directory comes first in `dirs` (as [`dropin_dirs`] lists them) counts; the rest are
/// applied sorted by file name. A file in a directory not in `dirs` ranks last.
pub fn order_dropins<I: IntoIterator<Item = PathBuf>>(dirs: &[PathBuf], files: I) -> Vec<PathBuf> {
    let mut by_name: BTreeMap<Vec<u8>, (usize, PathBuf)> = BTreeMap::new();
    for p in files {
        let Some(name) = p.file_name().map(|n| n.as_bytes().to_vec()) else {
            continue;
        };
        let prio = p
            .parent()
            .and_then(|d| dirs.iter().position(|x| x == d))
            .unwrap_or(dirs.len());
        match by_name.get(&name) {
            Some((have, _)) if *have <= prio => {}
            _ => {
                by_name.insert(name, (prio, p));
            }
        }
    }
    by_name.into_values().map(|(_, p)| p).collect()
}

/// The `.d` directories systemd 252 reads for `unit` under `root` (`/` on a live system), in its
/// order of precedence: for each unit directory in turn, the unit's own `<name>.d`, its
/// template's (`foo@.service.d`), and its dash prefixes' (`foo-bar-.service.d`, `foo-.service.d`);
/// then the type-wide `service.d` in each unit directory, last and most generic.
pub fn dropin_dirs(root: &Path, unit: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in SYSTEM_UNIT_PATH {
        let base = root.join(base.trim_start_matches('/'));
        for name in name_variants(unit) {
            dirs.push(base.join(format!("{name}.d")));
        }
    }
    if let Some((_, kind)) = unit.rsplit_once('.') {
        for base in SYSTEM_UNIT_PATH {
            dirs.push(root.join(base.trim_start_matches('/')).join(format!("{kind}.d")));
        }
    }
    dirs
}

/// `name`, then its template and prefix names, in the order systemd searches them.
fn name_variants(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let Some((base, kind)) = name.rsplit_once('.') else {
        return out;
    };
    let (stem, instance) = match base.split_once('@') {
        Some((stem, inst)) if !inst.is_empty() => (stem, Some(inst)),
        Some((stem, _)) => (stem, None),
        None => (base, None),
    };
    if instance.is_some() {
        out.extend(name_variants(&format!("{stem}@.{kind}")));
    }
    // The nearest dash prefix; a trailing dash is chopped once ("foo-bar-" → "foo-").
    let mut prefix = stem;
    let mut chopped = false;
    let prefix = loop {
        let Some(dash) = prefix.rfind('-') else { return out };
        if dash == 0 {
            return out;
        }
        if dash + 1 < prefix.len() || chopped {
            break &prefix[..=dash];
        }
        prefix = &prefix[..dash];
        chopped = true;
    };
    let built = match instance {
        Some(inst) => format!("{prefix}@{inst}.{kind}"),
        None => format!("{prefix}.{kind}"),
    };
    out.extend(name_variants(&built));
    out
}

/// The last accepted `MountFlags=` over files applied in order: the setting systemd ends with.
pub fn winning_setting<'a, I>(files: I) -> Option<&'a MountFlagsSetting>
where
    I: IntoIterator<Item = &'a [MountFlagsSetting]>,
{
    files.into_iter().filter_map(|s| s.last()).last()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn parses_sections_comments_and_whitespace() {
        let text =
            "# c\n[Unit]\nDescription = x = y \n\n; also\n[Service]\n  MountFlags =  slave  \nExecStart=/bin/true\n";
        let a = parse(text);
        assert_eq!(a.len(), 3);
        assert_eq!(
            (a[0].section.as_str(), a[0].key.as_str(), a[0].value.as_str()),
            ("Unit", "Description", "x = y")
        );
        assert_eq!(
            (a[1].section.as_str(), a[1].key.as_str(), a[1].value.as_str(), a[1].line),
            ("Service", "MountFlags", "slave", 7)
        );
    }

    #[test]
    fn continuation_lines_join_and_skip_comments() {
        let text = "[Service]\nExecStart=/bin/a \\\n# inner comment\n  --flag \\\n  x\nMountFlags=shared\n";
        let a = parse(text);
        assert_eq!(a[0].value, "/bin/a    --flag    x");
        assert_eq!(a[0].line, 2);
        assert_eq!((a[1].key.as_str(), a[1].line), ("MountFlags", 6));
    }

    #[test]
    fn lines_without_equals_and_crlf() {
        let a = parse("[Service]\r\nnonsense\r\nMountFlags=private\r\n=x\r\n");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].value, "private");
    }

    #[test]
    fn mount_flags_values_as_systemd_reads_them() {
        let s = mount_flags_settings(
            &p("/f"),
            "[Unit]\nMountFlags=slave\n[Service]\nMountFlags=slave\nMountFlags=bogus\nMountFlags=\nMountFlags=shared\n[Install]\nMountFlags=private\n",
        );
        let got: Vec<_> = s.iter().map(|s| (s.line, s.value)).collect();
        assert_eq!(
            got,
            [(4, MountFlags::Slave), (6, MountFlags::Unset), (7, MountFlags::Shared)]
        );
    }

    #[test]
    fn flag_bits_round_trip() {
        for v in [
            MountFlags::Unset,
            MountFlags::Shared,
            MountFlags::Slave,
            MountFlags::Private,
        ] {
            assert_eq!(MountFlags::from_bits(v.bits()), Some(v));
            assert_eq!(MountFlags::parse_value(v.as_value()), Some(v));
        }
        assert_eq!(MountFlags::from_bits(1048576), Some(MountFlags::Shared));
        assert_eq!(MountFlags::from_bits(524288), Some(MountFlags::Slave));
        assert_eq!(MountFlags::from_bits(262144), Some(MountFlags::Private));
        assert_eq!(MountFlags::from_bits(3), None);
    }

    #[test]
    fn dropins_sort_by_name_and_higher_dirs_hide_lower() {
        let dirs = dropin_dirs(Path::new("/"), "docker.service");
        let got = order_dropins(
            &dirs,
            [
                p("/usr/lib/systemd/system/docker.service.d/zz-vendor.conf"),
                p("/etc/systemd/system/docker.service.d/90-mountprop.conf"),
                p("/run/systemd/system/docker.service.d/50-x.conf"),
                p("/usr/lib/systemd/system/docker.service.d/50-x.conf"),
                p("/etc/systemd/system/docker.service.d/50-x.conf"),
                p("/etc/systemd/system/docker.service.d/90-mountprop.conf"),
                p("/run/systemd/transient/docker.service.d/10-t.conf"),
                p("/etc/systemd/system/service.d/10-t.conf"),
                p("/etc/systemd/system/service.d/05-all.conf"),
            ],
        );
        assert_eq!(
            got,
            [
                p("/etc/systemd/system/service.d/05-all.conf"),
                p("/run/systemd/transient/docker.service.d/10-t.conf"),
                p("/etc/systemd/system/docker.service.d/50-x.conf"),
                p("/etc/systemd/system/docker.service.d/90-mountprop.conf"),
                p("/usr/lib/systemd/system/docker.service.d/zz-vendor.conf"),
            ]
        );
    }

    #[test]
    fn name_variants_follow_systemd() {
        assert_eq!(name_variants("docker.service"), ["docker.service"]);
        assert_eq!(
            name_variants("foo-bar-waldo.service"),
            ["foo-bar-waldo.service", "foo-bar-.service", "foo-.service"]
        );
        assert_eq!(
            name_variants("foo-bar@x.service"),
            [
                "foo-bar@x.service",
                "foo-bar@.service",
                "foo-.service",
                "foo-@x.service",
                "foo-@.service"
            ]
        );
        assert_eq!(name_variants("-foo.service"), ["-foo.service"]);
    }

    #[test]
    fn dropin_dirs_are_unit_directory_major_with_the_type_dir_last() {
        let d = dropin_dirs(Path::new("/img"), "foo-bar.service");
        assert_eq!(d[0], p("/img/etc/systemd/system.control/foo-bar.service.d"));
        assert_eq!(d[1], p("/img/etc/systemd/system.control/foo-.service.d"));
        assert_eq!(d[2], p("/img/run/systemd/system.control/foo-bar.service.d"));
        assert_eq!(d.len(), 3 * SYSTEM_UNIT_PATH.len());
        assert_eq!(
            d[2 * SYSTEM_UNIT_PATH.len()],
            p("/img/etc/systemd/system.control/service.d")
        );
        // A prefix dir in /etc outranks the unit's own dir in /usr/lib.
        let etc_prefix = d
            .iter()
            .position(|x| x == Path::new("/img/etc/systemd/system/foo-.service.d"))
            .unwrap();
        let usr_own = d
            .iter()
            .position(|x| x == Path::new("/img/usr/lib/systemd/system/foo-bar.service.d"))
            .unwrap();
        assert!(etc_prefix < usr_own);
    }

    #[test]
    fn the_last_setting_wins() {
        let a = mount_flags_settings(&p("/a"), "[Service]\nMountFlags=slave\n");
        let b = mount_flags_settings(&p("/b"), "[Service]\nExecStart=/x\n");
        let c = mount_flags_settings(&p("/c"), "[Service]\nMountFlags=shared\nMountFlags=private\n");
        assert_eq!(winning_setting([a.as_slice(), b.as_slice()]).unwrap().path, p("/a"));
        let w = winning_setting([a.as_slice(), c.as_slice(), b.as_slice()]).unwrap();
        assert_eq!(
            (w.path.as_path(), w.line, w.value),
            (Path::new("/c"), 3, MountFlags::Private)
        );
        assert!(winning_setting([b.as_slice()]).is_none());
    }
}
