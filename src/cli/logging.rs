//! Logs go to the journal when systemd connected stderr to it (as for a service), else to
//! stderr. Reports go to stdout, so logs never mix into `--json`.

use std::os::unix::fs::MetadataExt;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// -q: errors only; default: warnings; -v: info (what mountprop changed); -vv: debug.
pub fn level(verbose: u8, quiet: bool) -> LevelFilter {
    if quiet {
        return LevelFilter::ERROR;
    }
    match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Whether stderr is the journal stream systemd set up ($JOURNAL_STREAM names its dev:inode).
fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Logs go to the journal, else to stderr, or with `to_stdout` (a daemon outside systemd) to
/// stdout.
pub fn init(level: LevelFilter, to_stdout: bool) {
    let registry = tracing_subscriber::registry().with(level);
    if stderr_is_journal()
        && let Ok(journal) = tracing_journald::layer()
    {
        // Field names go to the journal as given (UNIT=, PATH=, ACTION=, MOUNT_FLAGS=).
        let journal = journal
            .with_field_prefix(None)
            .with_syslog_identifier("mountprop".into());
        let _ = registry.with(journal).try_init();
        return;
    }
    let writer = if to_stdout {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .without_time();
    let _ = registry.with(fmt).try_init();
}
