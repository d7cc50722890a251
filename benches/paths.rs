//! Path verdicts for `/` and `/var/lib/kubelet` at 1,000 / 10,000 / 50,000 real mounts, side
//! by side: mountprop's fast path (statx + statmount), mountprop's mountinfo path, the bare read
//! of /proc/self/mountinfo (in process, and `cat`), `findmnt --target`, and the procfs crate's
//! parser (procfs-core, which procfs re-exports) on the same buffer.
//!
//! A benchmark, not a test: it prints medians and ratios from one run and asserts only that the
//! methods agree. Needs root; it works in a private mount namespace of its own, so none of its
//! mounts reach the host.
//!
//! First, without root: the path lookup alone on tables of 1,000 / 20,000 / 100,000 mounts
//! stacked on one point (100,000 is the kernel's default `mount-max`), to show it is linear.
//!
//!     cargo bench --bench paths
//!     SIZES=1000,10000 STACKED=1000,20000 cargo bench --bench paths

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use mountprop::mountinfo::{MountInfo, Propagation};
use mountprop::statmount;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use procfs_core::FromBufRead;
use procfs_core::process::{MountInfos, MountOptFields};

const PATHS: [&str; 2] = ["/", "/var/lib/kubelet"];
const BASE: &str = "/mnt";
const TABLE: &str = "/proc/self/mountinfo";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `f` over `samples` samples of `batch` calls each.
fn time(samples: usize, batch: usize, mut f: impl FnMut()) -> f64 {
    f();
    let v = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_secs_f64() / batch as f64
        })
        .collect();
    median(v)
}

fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let o = Command::new(cmd)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?} failed");
    o.stdout
}

/// The answer each method gives for a path: the mount's id (where it tells) and propagation.
type Answer = (Option<u64>, Propagation);

fn fast() -> Vec<Answer> {
    PATHS
        .iter()
        .map(|p| {
            let m = statmount::mount_of(Path::new(p)).expect("statmount");
            (Some(u64::from(m.id)), m.propagation)
        })
        .collect()
}

fn ours(buf: &mut Vec<u8>) -> Vec<Answer> {
    let info = MountInfo::read_path(Path::new(TABLE), std::mem::take(buf)).expect("read mountinfo");
    let paths: Vec<&Path> = PATHS.iter().map(Path::new).collect();
    let out = info
        .governing_many(&paths)
        .expect("parse")
        .into_iter()
        .map(|m| m.map(|m| (Some(m.id), m.propagation)).expect("governed"))
        .collect();
    *buf = info.into_buffer();
    out
}

fn ours_parse_only(info: &MountInfo) -> usize {
    let paths: Vec<&Path> = PATHS.iter().map(Path::new).collect();
    info.governing_many(&paths).expect("parse").len()
}

fn read_into(buf: &mut Vec<u8>) -> usize {
    buf.clear();
    File::open(TABLE).and_then(|mut f| f.read_to_end(buf)).expect("read")
}

/// The procfs way: parse every line into owned structs, then take the last mount whose mount
/// point is the longest component prefix of the path (it has no notion of stacking beyond that).
fn procfs_answers(bytes: &[u8]) -> Vec<Answer> {
    let infos = MountInfos::from_buf_read(BufReader::new(bytes)).expect("procfs parse");
    PATHS
        .iter()
        .map(|p| {
            let m = infos
                .0
                .iter()
                .filter(|m| Path::new(p).starts_with(&m.mount_point))
                .max_by_key(|m| m.mount_point.as_os_str().len())
                .expect("governed");
            let mut prop = Propagation::default();
            for f in &m.opt_fields {
                match f {
                    MountOptFields::Shared(n) => prop.shared = Some(u64::from(*n)),
                    MountOptFields::Master(n) => prop.master = Some(u64::from(*n)),
                    MountOptFields::PropagateFrom(n) => prop.propagate_from = Some(u64::from(*n)),
                    MountOptFields::Unbindable => prop.unbindable = true,
                }
            }
            (Some(m.mnt_id as u64), prop)
        })
        .collect()
}

fn findmnt() -> Vec<String> {
    PATHS
        .iter()
        .map(|p| {
            String::from_utf8_lossy(&run("findmnt", &["-n", "-o", "PROPAGATION", "--target", p]))
                .trim()
                .to_string()
        })
        .collect()
}

/// findmnt's words for a propagation.
fn findmnt_word(p: &Propagation) -> &'static str {
    match (p.shared.is_some(), p.master.is_some(), p.unbindable) {
        (true, true, _) => "shared,slave",
        (true, false, _) => "shared",
        (false, true, _) => "private,slave",
        (false, false, true) => "unbindable",
        (false, false, false) => "private",
    }
}

/// Grows the table to `n` mounts: tmpfs on BASE/m<i>.
fn grow_to(n: usize) {
    let have = MountInfo::read_path(Path::new(TABLE), Vec::new())
        .expect("read")
        .iter()
        .count();
    let start = std::fs::read_dir(BASE).map(|d| d.count()).unwrap_or(0);
    for i in start..start + n.saturating_sub(have) {
        let dir = PathBuf::from(format!("{BASE}/m{i}"));
        std::fs::create_dir(&dir).expect("mkdir");
        mount(Some("mpbench"), &dir, Some("tmpfs"), MsFlags::empty(), Some("size=4k")).expect("mount tmpfs");
    }
}

fn fmt(secs: f64) -> String {
    match secs {
        s if s < 1e-3 => format!("{:.2} us", s * 1e6),
        s => format!("{:.2} ms", s * 1e3),
    }
}

/// A table of `n` tmpfs mounts stacked on /var/lib/kubelet, each the parent of the next, as
/// repeated `mount -t tmpfs x /var/lib/kubelet` leaves it.
fn stacked_table(n: usize) -> MountInfo {
    let mut t = String::from("1 0 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n");
    for i in 0..n {
        let (id, parent) = (i + 2, i + 1);
        t.push_str(&format!(
            "{id} {parent} 0:{id} / /var/lib/kubelet rw shared:{id} - tmpfs mp{i} rw\n"
        ));
    }
    MountInfo::from_bytes("stacked", t.into_bytes())
}

/// The lookup alone (parse + resolve) on stacked tables: its cost per mount stays flat.
fn stacked() {
    let sizes: Vec<usize> = std::env::var("STACKED")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 20_000, 100_000]);
    println!("Path lookup for /var/lib/kubelet/pods on N stacked mounts (medians)\n");
    println!("| stacked mounts | lookup | per mount | of which parsing the table |");
    println!("|---:|---:|---:|---:|");
    let want = [Path::new("/var/lib/kubelet/pods")];
    for n in sizes {
        let t = stacked_table(n);
        let top = t.governing_many(&want).expect("parse")[0].as_ref().map(|m| m.id);
        assert_eq!(top, Some(n as u64 + 1), "the top of the stack governs");
        let secs = time(if n > 20_000 { 7 } else { 15 }, 1, || {
            black_box(t.governing_many(&want).expect("parse"));
        });
        let parse = time(if n > 20_000 { 7 } else { 15 }, 1, || {
            black_box(t.iter().count());
        });
        println!(
            "| {n} | {} | {:.1} ns | {} |",
            fmt(secs),
            secs * 1e9 / n as f64,
            fmt(parse)
        );
    }
    println!();
}

fn main() {
    stacked();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("\n*** SKIP paths bench: needs root (a private mount namespace and 50,000 mounts) ***\n");
        return;
    }
    if !statmount::available() {
        eprintln!("statmount is not available on this kernel: only the mountinfo methods would run");
        return;
    }
    // Still single-threaded here, as unshare(CLONE_NEWNS) wants. Private first, so that nothing
    // made below reaches the host; then shared again inside, as on a node.
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare");
    let rec = |flags| mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | flags, None::<&str>).expect("remount /");
    rec(MsFlags::MS_PRIVATE);
    rec(MsFlags::MS_SHARED);
    mount(
        Some("mpbench-base"),
        BASE,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64m,nr_inodes=200000"),
    )
    .expect("tmpfs");
    // A kubelet root to look at, over /var/lib in this namespace only.
    mount(
        Some("mpbench-varlib"),
        "/var/lib",
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("tmpfs");
    std::fs::create_dir("/var/lib/kubelet").expect("mkdir kubelet");

    let sizes: Vec<usize> = std::env::var("SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10_000, 50_000]);
    println!("Path verdicts for / and /var/lib/kubelet (medians; each row answers both paths)\n");
    let mut rows: Vec<(usize, [f64; 7], usize)> = Vec::new();
    for &n in &sizes {
        grow_to(n);
        let mut buf = Vec::new();
        let bytes = read_into(&mut buf);
        let mounts = MountInfo::from_bytes(TABLE, buf.clone()).iter().count();
        let table = buf.clone();

        // Everyone must give the same answer, or the timings mean nothing.
        let f = fast();
        assert_eq!(ours(&mut buf), f, "mountinfo path vs fast path");
        assert_eq!(procfs_answers(&table), f, "procfs vs fast path");
        let words: Vec<&str> = f.iter().map(|(_, p)| findmnt_word(p)).collect();
        assert_eq!(findmnt(), words, "findmnt vs fast path");

        let slow = if mounts > 20_000 { 7 } else { 15 };
        let t_fast = time(31, 2000, || {
            black_box(fast());
        });
        let t_ours = time(slow, 1, || {
            black_box(ours(&mut buf));
        });
        let t_read = time(slow, 1, || {
            black_box(read_into(&mut buf));
        });
        let t_cat = time(slow, 1, || {
            black_box(run("cat", &[TABLE]));
        });
        let t_findmnt = time(slow, 1, || {
            black_box(findmnt());
        });
        let t_procfs = time(slow, 1, || {
            read_into(&mut buf);
            black_box(procfs_answers(&buf));
        });
        // Parsing alone, on the same buffer: what the parsers themselves cost.
        let parsed = MountInfo::from_bytes(TABLE, table.clone());
        let t_ours_parse = time(slow, 1, || {
            black_box(ours_parse_only(&parsed));
        });
        let t_procfs_parse = time(slow, 1, || {
            black_box(procfs_answers(&table));
        });
        println!("{mounts} mounts, mountinfo {} KB:", bytes / 1024);
        let line = |what: &str, t: f64| println!("  {what:44} {:>10}", fmt(t));
        line("mountprop fast path (statx + statmount)", t_fast);
        line("mountprop mountinfo path (read + resolve)", t_ours);
        line("  bare read of mountinfo, in process", t_read);
        line("  cat /proc/self/mountinfo", t_cat);
        line("findmnt -n -o PROPAGATION --target, x2", t_findmnt);
        line("procfs crate (read + parse + find)", t_procfs);
        line("  parse only: mountprop", t_ours_parse);
        line("  parse only: procfs crate", t_procfs_parse);
        let best_slow = t_ours.min(t_findmnt).min(t_procfs).min(t_cat);
        println!(
            "  fast path vs best mountinfo-based: {:.0}x; mountinfo path / bare read: {:.2}; / cat: {:.2}; procfs parse / mountprop parse: {:.1}x\n",
            best_slow / t_fast,
            t_ours / t_read,
            t_ours / t_cat,
            t_procfs_parse / t_ours_parse
        );
        rows.push((
            mounts,
            [
                t_fast,
                t_ours,
                t_read,
                t_cat,
                t_findmnt,
                t_procfs,
                t_procfs_parse / t_ours_parse,
            ],
            bytes,
        ));
    }
    println!(
        "| mounts | fast path | mountinfo path | bare read | cat | findmnt x2 | procfs | fast vs best other | mountinfo / bare read | procfs parse / ours |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, t, _) in &rows {
        let best_slow = t[1].min(t[3]).min(t[4]).min(t[5]);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {:.0}x | {:.2} | {:.1}x |",
            fmt(t[0]),
            fmt(t[1]),
            fmt(t[2]),
            fmt(t[3]),
            fmt(t[4]),
            fmt(t[5]),
            best_slow / t[0],
            t[1] / t[2],
            t[6]
        );
    }
}
