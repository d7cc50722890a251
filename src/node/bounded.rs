//! Looking at paths that may never answer: a volume's source can sit on a hard NFS mount whose
//! server is gone, or a FUSE filesystem whose daemon stopped reading. A lookup or `statx` there
//! blocks in the kernel with no timeout, and would freeze the daemon's loop until the watchdog
//! killed it, again and again. So such lookups run in a worker thread and are waited for with a
//! deadline; what does not answer in time is "filesystem not answering".
//!
//! A worker stuck in the kernel cannot be cancelled. It is remembered with the path it is stuck
//! on: later rounds answer "not answering" for that path at once instead of spawning another
//! thread, and at most [`MAX_STUCK`] workers are ever left stuck (the unit's TasksMax= holds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one path may take.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// Workers left stuck at most; past that, paths that would need a new worker are not looked at.
pub const MAX_STUCK: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnswering {
    #[error("filesystem not answering ({path} did not answer within {secs} s)", secs = .after.as_secs_f64())]
    TimedOut { path: PathBuf, after: Duration },
    #[error("filesystem not answering ({path} has not answered since an earlier check, {secs:.0} s ago)", secs = .since.elapsed().as_secs_f64())]
    StillStuck { path: PathBuf, since: Instant },
    #[error("not looked at: {stuck} lookups are already stuck on filesystems that do not answer")]
    TooManyStuck { stuck: usize },
}

struct Stuck {
    since: Instant,
    worker: JoinHandle<()>,
}

fn stuck() -> &'static Mutex<HashMap<PathBuf, Stuck>> {
    static STUCK: std::sync::OnceLock<Mutex<HashMap<PathBuf, Stuck>>> = std::sync::OnceLock::new();
    STUCK.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `f` on each of `paths`, in order, each within `deadline`. One worker does them all; when it
/// gets stuck on one, that one is "not answering" and a fresh worker takes the rest.
pub fn each<T, F>(paths: &[PathBuf], deadline: Duration, f: F) -> Vec<Result<T, NotAnswering>>
where
    T: Send + 'static,
    F: Fn(&Path) -> T + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let mut out: Vec<Option<Result<T, NotAnswering>>> = (0..paths.len()).map(|_| None).collect();
    // Indices not answered yet, in order.
    let mut todo: Vec<usize> = (0..paths.len()).collect();
    while !todo.is_empty() {
        let mut table = stuck().lock().unwrap_or_else(PoisonError::into_inner);
        // Workers that came back since are forgotten: their filesystem answers again.
        table.retain(|_, s| !s.worker.is_finished());
        // Paths still stuck answer at once, without a thread.
        todo.retain(|&i| match table.get(&paths[i]) {
            Some(s) => {
                out[i] = Some(Err(NotAnswering::StillStuck {
                    path: paths[i].clone(),
                    since: s.since,
                }));
                false
            }
            None => true,
        });
        if todo.is_empty() {
            break;
        }
        if table.len() >= MAX_STUCK {
            let n = table.len();
            for &i in &todo {
                out[i] = Some(Err(NotAnswering::TooManyStuck { stuck: n }));
            }
            break;
        }
        drop(table);
        // A worker for the rest, in order; when it gets stuck, the rest go to a fresh one.
        let work: Vec<(usize, PathBuf)> = todo.iter().map(|&i| (i, paths[i].clone())).collect();
        let (tx, rx) = channel::<(usize, T)>();
        let g = Arc::clone(&f);
        let worker = std::thread::Builder::new()
            .name("mountprop-lookup".into())
            .spawn(move || {
                for (i, p) in work {
                    if tx.send((i, g(&p))).is_err() {
                        return;
                    }
                }
            });
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                // No thread to spare: not looked at, rather than looked at without a bound.
                tracing::warn!("cannot start a lookup thread: {e}");
                for &i in &todo {
                    out[i] = Some(Err(NotAnswering::TooManyStuck { stuck: 0 }));
                }
                break;
            }
        };
        let mut pending = std::mem::take(&mut todo).into_iter();
        let mut started = Instant::now();
        while let Some(i) = pending.next() {
            match rx.recv_timeout(deadline.saturating_sub(started.elapsed())) {
                Ok((j, v)) => {
                    debug_assert_eq!(i, j);
                    out[j] = Some(Ok(v));
                    started = Instant::now();
                }
                Err(_) => {
                    out[i] = Some(Err(NotAnswering::TimedOut {
                        path: paths[i].clone(),
                        after: deadline,
                    }));
                    // If the path ever answers, the worker stops at its next send (the
                    // receiver is gone by then).
                    stuck()
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(paths[i].clone(), Stuck { since: started, worker });
                    todo = pending.collect();
                    break;
                }
            }
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or(Err(NotAnswering::TooManyStuck { stuck: 0 })))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A lookup that hangs on one path until released, as on a dead FUSE mount.
    #[test]
    fn a_path_that_hangs_is_not_answering_and_the_rest_are_answered() {
        static RELEASE: AtomicBool = AtomicBool::new(false);
        let paths: Vec<PathBuf> = ["/a", "/dead", "/b"].iter().map(PathBuf::from).collect();
        let look = |p: &Path| {
            while p == Path::new("/dead") && !RELEASE.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            p.to_string_lossy().len()
        };
        let t = Instant::now();
        let r = each(&paths, Duration::from_millis(200), look);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r[0], Ok(2));
        assert!(
            matches!(&r[1], Err(NotAnswering::TimedOut { path, .. }) if path == Path::new("/dead")),
            "{r:?}"
        );
        assert!(
            r[1].as_ref()
                .unwrap_err()
                .to_string()
                .starts_with("filesystem not answering (/dead ")
        );
        assert_eq!(r[2], Ok(2));
        // Next round: still stuck, answered at once with no new thread.
        let t = Instant::now();
        let r = each(&paths, Duration::from_millis(200), look);
        assert!(t.elapsed() < Duration::from_millis(150), "{:?}", t.elapsed());
        assert!(matches!(&r[1], Err(NotAnswering::StillStuck { .. })), "{r:?}");
        assert_eq!((r[0].clone(), r[2].clone()), (Ok(2), Ok(2)));
        // It answers again: the worker finishes and is forgotten.
        RELEASE.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        let r = each(&paths, Duration::from_millis(200), look);
        assert_eq!(r, [Ok(2), Ok(5), Ok(2)]);
    }
}
