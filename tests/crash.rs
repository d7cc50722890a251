//! Crash safety: `mountprop apply` SIGKILLed at random points, 200 times. Every file it writes
//! is, after each kill, absent or its old content or the whole new content, never a part; temp
//! files of a killed run are taken away by the next run, so they never pile up. On an image tree
//! (`--root`): the same atomic writes as on a live node, no root needed, milliseconds a run.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mountprop");
const RUNS: usize = 200;

const DOCKER: &str = "usr/lib/systemd/system/docker.service";
const OWN: &str = "etc/systemd/system/docker.service.d/90-mountprop.conf";
const AHEAD: [&str; 2] = [
    "etc/systemd/system/containerd.service.d/90-mountprop.conf",
    "etc/systemd/system/crio.service.d/90-mountprop.conf",
];
const WANTS: &str = "etc/systemd/system/multi-user.target.wants/mountprop.service";
/// mountprop's own drop-in as an older mountprop wrote it: its header, another value.
const OLD: &str = "# Managed by mountprop. It rewrites or removes this file; change /etc/mountprop/config.toml instead.\n[Service]\nMountFlags=\n";

fn tree() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("crash-tree");
    let _ = fs::remove_dir_all(&root);
    for (rel, text) in [
        (DOCKER, "[Service]\nExecStart=/usr/bin/dockerd\nMountFlags=slave\n"),
        (
            "usr/lib/systemd/system/mountprop.service",
            "[Service]\nExecStart=/usr/bin/mountprop daemon\n\n[Install]\nWantedBy=multi-user.target\n",
        ),
        // systemd 252, as the image's version.
        ("usr/lib/systemd/libsystemd-shared-252.so", ""),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    root
}

/// Back to the state before an apply; temp files stay, as a killed run leaves them.
fn reset(root: &Path) {
    let own = root.join(OWN);
    fs::create_dir_all(own.parent().unwrap()).unwrap();
    fs::write(&own, OLD).unwrap();
    for rel in AHEAD.iter().chain([&WANTS]) {
        let _ = fs::remove_file(root.join(rel));
    }
}

fn temps(root: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".mountprop-tmp") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

fn apply(root: &Path) -> std::process::Child {
    Command::new(BIN)
        .args(["apply", "--root"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mountprop")
}

/// A small xorshift generator: the kill points, repeatable from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn sigkill_at_random_points_never_leaves_a_partial_file() {
    let root = tree();
    // The new content, from one run that is not killed.
    reset(&root);
    assert!(apply(&root).wait().unwrap().success());
    let new = fs::read_to_string(root.join(OWN)).unwrap();
    assert_ne!(new, OLD);
    let ahead = fs::read_to_string(root.join(AHEAD[0])).unwrap();
    let wants_target = fs::read_link(root.join(WANTS)).unwrap();

    // How long a run takes: kills are spread over that (and a little past it).
    let mut took = Duration::ZERO;
    for _ in 0..5 {
        reset(&root);
        let t = Instant::now();
        assert!(apply(&root).wait().unwrap().success());
        took = took.max(t.elapsed());
    }
    let window_us = (took.as_micros() as u64 * 12 / 10).max(1000);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash test: a run takes up to {took:?}; kills within {window_us} us; seed {seed}");
    let mut rng = Rng(seed);

    let (mut killed, mut partial_runs, mut most_temps) = (0, 0, 0);
    for i in 0..RUNS {
        reset(&root);
        let mut child = apply(&root);
        std::thread::sleep(Duration::from_micros(rng.below(window_us)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal().is_some() {
            killed += 1;
        }
        let own = fs::read_to_string(root.join(OWN)).unwrap_or_else(|e| panic!("run {i}: {OWN}: {e}"));
        assert!(
            own == OLD || own == new,
            "run {i} (seed {seed}): a partial drop-in:\n{own:?}"
        );
        let mut written = usize::from(own == new);
        for rel in AHEAD {
            match fs::read_to_string(root.join(rel)) {
                Ok(text) => {
                    assert_eq!(text, ahead, "run {i} (seed {seed}): a partial {rel}");
                    written += 1;
                }
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "run {i}: {rel}: {e}"),
            }
        }
        match fs::read_link(root.join(WANTS)) {
            Ok(t) => {
                assert_eq!(t, wants_target, "run {i}: the .wants link points elsewhere");
                written += 1;
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "run {i}: {WANTS}: {e}"),
        }
        if status.signal().is_some() && written < 4 {
            partial_runs += 1;
        }
        // Only the last killed run's temp files may be there: one per file it writes at most.
        let t = temps(&root);
        most_temps = most_temps.max(t.len());
        assert!(t.len() <= 4, "run {i} (seed {seed}): temp files pile up: {t:?}");
    }
    eprintln!(
        "crash test: {RUNS} runs, {killed} killed, {partial_runs} killed with some files still old or absent, at most {most_temps} temp files at once"
    );
    // Or the kills never landed in the middle of the work, and this proved nothing.
    assert!(
        killed >= RUNS / 4,
        "only {killed} of {RUNS} runs were killed before they finished"
    );
    assert!(partial_runs >= 1, "no kill landed between two writes");

    // One more run, not killed: the tree is complete and no temp file is left.
    reset(&root);
    assert!(apply(&root).wait().unwrap().success());
    assert_eq!(fs::read_to_string(root.join(OWN)).unwrap(), new);
    assert_eq!(temps(&root), Vec::<PathBuf>::new(), "temp files left after a clean run");
}
