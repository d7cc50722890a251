//! Node labels for the scheduler through Node Feature Discovery's local source: a feature file
//! in nfd-worker's `features.d`, one `name=value` a line, which NFD turns into node labels.
//!
//! The file carries an expiry a few check intervals ahead, so that the labels of a daemon that
//! died lapse instead of lying. It is rewritten only when a label changes or the expiry comes
//! near: a quiet round costs one read of a few hundred bytes.

use std::path::Path;

use crate::config::{KubeMode, NodeLabels};
use crate::daemon::state::State;
use crate::engine::modes::Judgement;
use crate::node::atomicfile::{Dir, Entry, FileError};
use crate::node::ownfile::HEADER;

/// Where nfd-worker reads feature files (its default `features.d`).
pub const FEATURES_DIR: &str = "/etc/kubernetes/node-feature-discovery/features.d";
/// The file's name there. Its temp file is a dotfile, which NFD ignores.
pub const FEATURES_FILE: &str = "mountprop";
/// NFD's default label namespace, which it accepts from a local source without extra config.
const PREFIX: &str = "feature.node.kubernetes.io/mountprop.";
const EXPIRY: &str = "# +expiry-time=";
/// The expiry is this many check intervals ahead ...
const EXPIRY_INTERVALS: u64 = 4;
/// ... and refreshed when fewer than this many are left: one write every two intervals.
const REFRESH_INTERVALS: u64 = 2;

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Labels off, or `auto` and NFD's directory absent.
    Off,
    /// The file on disk already says this, with time to spare.
    Unchanged,
    Written,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{0}: not written by mountprop (no \"{HEADER}\" line); leaving it alone")]
    Foreign(String),
}

fn word(j: Option<Judgement>) -> &'static str {
    match j {
        Some(Judgement::Works) => "true",
        Some(Judgement::Broken) => "false",
        // Never a "true" for what was not looked at.
        Some(Judgement::NotJudged(_)) | None => "unknown",
    }
}

fn mode_name(m: KubeMode) -> &'static str {
    match m {
        KubeMode::None => "none",
        KubeMode::HostToContainer => "host-to-container",
        KubeMode::Bidirectional => "bidirectional",
    }
}

/// The label lines for the daemon's state, in a fixed order. A check that could not run gives
/// `unknown` everywhere: the labels of the check before may no longer hold.
pub fn labels(s: &State) -> String {
    let judged = s.error.is_none() && s.last_check_unix.is_some();
    let mut out = String::new();
    for m in [KubeMode::None, KubeMode::HostToContainer, KubeMode::Bidirectional] {
        let j = s
            .modes
            .iter()
            .find(|v| v.mode == m)
            .map(|v| v.judgement)
            .filter(|_| judged);
        out.push_str(&format!("{PREFIX}{}={}\n", mode_name(m), word(j)));
    }
    let compliant = match (judged, s.compliant()) {
        (false, _) => "unknown",
        (true, true) => "true",
        (true, false) => "false",
    };
    out.push_str(&format!("{PREFIX}compliant={compliant}\n"));
    let stale = if judged {
        s.containers.stale.len().to_string()
    } else {
        "unknown".into()
    };
    out.push_str(&format!("{PREFIX}stale-containers={stale}\n"));
    out
}

/// The whole file: mountprop's header, the expiry directive (which NFD applies to the lines
/// after it), then the labels.
pub fn render(labels: &str, expiry_unix: u64) -> String {
    format!(
        "{HEADER} Node labels for Node Feature Discovery; see mountprop's docs/fleet.md.\n{EXPIRY}{}\n{labels}",
        rfc3339(expiry_unix)
    )
}

/// What is to be done about the file now on disk (`None`: there is none).
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Write { expiry_unix: u64 },
    Foreign,
}

pub fn decide(existing: Option<&str>, labels: &str, now_unix: u64, interval_secs: u64) -> Decision {
    let interval = interval_secs.max(1);
    let write = Decision::Write {
        expiry_unix: now_unix + EXPIRY_INTERVALS * interval,
    };
    let Some(text) = existing else { return write };
    if !text.lines().next().is_some_and(|l| l.starts_with(HEADER)) {
        return Decision::Foreign;
    }
    let mut lines = text.lines().skip(1);
    let expiry = lines
        .next()
        .and_then(|l| l.strip_prefix(EXPIRY))
        .and_then(parse_rfc3339);
    let rest: String = lines.flat_map(|l| [l, "\n"]).collect();
    match expiry {
        Some(at) if rest == labels && at >= now_unix + REFRESH_INTERVALS * interval => Decision::Keep,
        _ => write,
    }
}

/// Brings the feature file in `dir` up to date with `s`, as `mode` allows.
pub fn publish(mode: NodeLabels, dir: &Path, s: &State, now_unix: u64) -> Result<Published, LabelsError> {
    let create = match mode {
        NodeLabels::Off => return Ok(Published::Off),
        NodeLabels::On => Some(0o755),
        NodeLabels::Auto => None,
    };
    let d = match Dir::open(dir, create) {
        Ok(d) => d,
        Err(FileError::Io { source, .. }) if create.is_none() && source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Published::Off);
        }
        Err(e) => return Err(e.into()),
    };
    let want = labels(s);
    let existing = match d.read(FEATURES_FILE)? {
        Entry::Missing => None,
        Entry::File(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Entry::Symlink | Entry::Other => {
            return Err(LabelsError::Foreign(dir.join(FEATURES_FILE).display().to_string()));
        }
    };
    match decide(existing.as_deref(), &want, now_unix, s.interval_secs) {
        Decision::Keep => Ok(Published::Unchanged),
        Decision::Foreign => Err(LabelsError::Foreign(dir.join(FEATURES_FILE).display().to_string())),
        Decision::Write { expiry_unix } => {
            d.write_atomic(FEATURES_FILE, render(&want, expiry_unix).as_bytes(), false)?;
            Ok(Published::Written)
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the usual era arithmetic).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-12-03T23:20:01Z`, as NFD parses it (Go's RFC 3339).
pub fn rfc3339(unix: u64) -> String {
    let secs = unix as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", t / 3600, t / 60 % 60, t % 60)
}

/// The inverse of [`rfc3339`]; anything else (another writer's format) is `None`.
fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    u64::try_from(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::modes::{Decider, ModeVerdict, NotJudged};
    use crate::engine::verdict::Status;

    fn verdict(mode: KubeMode, judgement: Judgement) -> ModeVerdict {
        ModeVerdict {
            mode,
            judgement,
            reason: String::new(),
            decided_by: Decider::Flags,
            blame: None,
            disagreement: None,
        }
    }

    fn state(bidir: Judgement, status: Status) -> State {
        let mut s = State::new("cfg".into(), 60);
        s.status = status;
        s.last_check_unix = Some(1_800_000_000);
        s.modes = vec![
            verdict(KubeMode::None, Judgement::Works),
            verdict(KubeMode::HostToContainer, Judgement::Works),
            verdict(KubeMode::Bidirectional, bidir),
        ];
        s
    }

    const P: &str = "feature.node.kubernetes.io/mountprop.";

    #[test]
    fn a_broken_node_says_false_and_a_fixed_one_true() {
        let broken = labels(&state(Judgement::Broken, Status::Drift));
        assert_eq!(
            broken,
            format!(
                "{P}none=true\n{P}host-to-container=true\n{P}bidirectional=false\n{P}compliant=false\n{P}stale-containers=0\n"
            )
        );
        let fixed = labels(&state(Judgement::Works, Status::Ok));
        assert!(
            fixed.contains(&format!("{P}bidirectional=true\n{P}compliant=true\n")),
            "{fixed}"
        );
    }

    #[test]
    fn nothing_looked_at_is_never_true() {
        let mut s = state(Judgement::NotJudged(NotJudged::ImageTree), Status::Ok);
        assert!(
            labels(&s).contains(&format!("{P}bidirectional=unknown\n")),
            "{}",
            labels(&s)
        );
        // A check that failed: even what worked before is unknown now.
        s.error = Some("the system bus connection was lost".into());
        let l = labels(&s);
        assert!(
            !l.contains("=true") && !l.contains("=false") && !l.contains("=0"),
            "{l}"
        );
        // No check yet.
        let fresh = State::new("cfg".into(), 60);
        assert!(!labels(&fresh).contains("=true"), "{}", labels(&fresh));
    }

    #[test]
    fn every_label_is_valid_for_kubernetes() {
        let mut s = state(Judgement::Broken, Status::Drift);
        s.error = Some("x".into());
        for text in [labels(&s), labels(&state(Judgement::Works, Status::Ok))] {
            for line in text.lines() {
                let (name, value) = line.split_once('=').expect("name=value");
                let (prefix, name) = name.split_once('/').expect("prefixed");
                assert_eq!(prefix, "feature.node.kubernetes.io");
                for part in [name, value] {
                    assert!(!part.is_empty() && part.len() <= 63, "{part}");
                    assert!(
                        part.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)),
                        "{part}"
                    );
                    assert!(part.as_bytes()[0].is_ascii_alphanumeric(), "{part}");
                    assert!(part.as_bytes()[part.len() - 1].is_ascii_alphanumeric(), "{part}");
                }
            }
        }
    }

    #[test]
    fn rewritten_only_on_change_or_near_expiry() {
        let now = 1_800_000_000;
        let l = labels(&state(Judgement::Works, Status::Ok));
        assert_eq!(decide(None, &l, now, 60), Decision::Write { expiry_unix: now + 240 });
        let on_disk = render(&l, now + 240);
        assert_eq!(decide(Some(&on_disk), &l, now, 60), Decision::Keep);
        assert_eq!(decide(Some(&on_disk), &l, now + 120, 60), Decision::Keep);
        assert_eq!(
            decide(Some(&on_disk), &l, now + 121, 60),
            Decision::Write {
                expiry_unix: now + 121 + 240
            }
        );
        let other = labels(&state(Judgement::Broken, Status::Drift));
        assert_eq!(
            decide(Some(&on_disk), &other, now, 60),
            Decision::Write { expiry_unix: now + 240 }
        );
        // A file of someone else's by that name is left alone.
        assert_eq!(decide(Some("x=1\n"), &l, now, 60), Decision::Foreign);
        // An expiry line mangled by hand is rewritten, not trusted.
        let mangled = on_disk.replace("# +expiry-time=2027", "# +expiry-time=27");
        assert!(matches!(decide(Some(&mangled), &l, now, 60), Decision::Write { .. }));
    }

    #[test]
    fn the_expiry_is_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_340_001), "2026-12-03T23:20:01Z");
        for t in [0, 68_169_599, 951_868_799, 1_796_340_001, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2026-13-03T23:20:01Z"), None);
        assert_eq!(parse_rfc3339("2026-12-03 23:20:01Z"), None);
        assert_eq!(parse_rfc3339("2026-12-03T23:20:01+01:00"), None);
        let file = render("x=1\n", 1_796_340_001);
        assert_eq!(file.lines().nth(1), Some("# +expiry-time=2026-12-03T23:20:01Z"));
        assert!(file.starts_with(HEADER));
    }
}
