//! What the daemon tells systemd (sd_notify(3)): READY, STATUS (what `systemctl status`
//! shows), RELOADING, STOPPING and watchdog pings. Outside a unit (no $NOTIFY_SOCKET) these
//! do nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// One line, as STATUS= must be, through the one escape (crate::escape), and bounded.
fn one_line(s: &str) -> String {
    const MAX: usize = 400;
    // systemd splits a notify message into its assignments reading a backslash as an escape
    // (seen with 252: `\x1b` arrived as `x1b`), so each one is sent doubled.
    let line = crate::escape::line(s).replace('\\', "\\\\");
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(&one_line(status))]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to ping: half of WatchDogSec, so one late loop iteration is not yet fatal.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_one_bounded_line() {
        assert_eq!(one_line("a\nb\tc"), "a\\\\nb\\\\tc");
        assert_eq!(one_line("/v\x1b[2Jx\u{2028}"), "/v\\\\x1b[2Jx\\\\u{2028}");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), 401);
    }
}
