//! What the node labels (NFD's feature file) cost a daemon round: a round that changes no
//! label (one read of the file, a comparison), and one that rewrites it (temp file, fsync,
//! rename, directory fsync). A benchmark, not a test: it prints medians and asserts nothing.
//!
//!     cargo bench --bench labels

use std::path::Path;
use std::time::{Duration, Instant};

use mountprop::config::NodeLabels;
use mountprop::daemon::labels::{self, Published};
use mountprop::daemon::state::State;
use mountprop::engine::verdict::Status;

const RUNS: usize = 2000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-labels");
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = State::new("bench".into(), 60);
    a.status = Status::Ok;
    a.last_check_unix = Some(1);
    let mut b = a.clone();
    b.status = Status::Drift;
    let now = 1_800_000_000;
    assert_eq!(
        labels::publish(NodeLabels::On, &dir, &a, now).ok(),
        Some(Published::Written)
    );
    let mut quiet = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = labels::publish(NodeLabels::On, &dir, &a, now);
        quiet.push(t.elapsed());
        assert_eq!(r.ok(), Some(Published::Unchanged));
    }
    let mut written = Vec::new();
    for i in 0..RUNS / 10 {
        let s = if i % 2 == 0 { &b } else { &a };
        let t = Instant::now();
        let r = labels::publish(NodeLabels::On, &dir, s, now);
        written.push(t.elapsed());
        assert_eq!(r.ok(), Some(Published::Written));
    }
    let absent = dir.join("absent");
    let mut off = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = labels::publish(NodeLabels::Auto, &absent, &a, now);
        off.push(t.elapsed());
        assert_eq!(r.ok(), Some(Published::Off));
    }
    let size = std::fs::metadata(dir.join(labels::FEATURES_FILE)).map_or(0, |m| m.len());
    println!(
        "node labels, per round (median of {RUNS}): no change {:?} (reads {size} bytes); a label changed {:?} (of {}); \
         auto without NFD's directory {:?}; in {}",
        median(quiet),
        median(written),
        RUNS / 10,
        median(off),
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
