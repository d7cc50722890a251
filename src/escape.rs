//! The one escape for text that reaches a terminal, the `--oneline` line node-problem-detector
//! turns into a NodeCondition message, or systemd's STATUS=.
//!
//! Much of what mountprop prints comes from outside: a container's volume paths and names are
//! whatever a pod's author wrote, error texts quote paths, unit files are read from disk. A
//! control character in them could clear the admin's screen (`ESC [2J`), move the cursor to
//! rewrite what they read, or split one line into two that look like mountprop's own. So every
//! line is passed through [`line`] as it is written, and a block through [`block`] as it is
//! printed: C0 controls, DEL, C1 controls, the Unicode line and paragraph separators
//! (U+2028, U+2029) and the bidirectional overrides (which reorder what is shown) come out as
//! visible escapes (`\n`, `\x1b`, `\u{2028}`). A backslash is left as it is, so that the escape
//! is idempotent: a line escaped where it is composed and again where it is printed comes out
//! the same. (So `\x1b` in the output is either those four characters or an ESC; `--json`
//! gives the exact text.)

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (Unicode category Cc)
        || matches!(c, '\u{2028}' | '\u{2029}')
        // Bidirectional embeddings, overrides and isolates.
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` as one line with nothing a terminal would act on: every control (newline and tab
/// included) and the other characters above as a visible escape. Applying it twice changes
/// nothing more, so each boundary can apply it without doubling what another did.
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A block of lines mountprop composed: each line as [`line`] makes it, the newlines between
/// them kept. A report whose lines were each written through [`outln!`] comes out the same.
pub fn block(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, l) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line(l));
    }
    out
}

/// Appends one line to a report: formatted, escaped with [`line`], then a newline. The only
/// newlines in a report are the ones this adds, so nothing from outside can start a line.
#[macro_export]
macro_rules! outln {
    ($s:expr, $($arg:tt)*) => {{
        let text = ::std::format!($($arg)*);
        let s: &mut ::std::string::String = $s;
        s.push_str(&$crate::escape::line(&text));
        s.push('\n');
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged_and_not_copied() {
        let s = "/var/lib/kubelet/pods/ä/volumes from /srv: asked HostToContainer (rslave)";
        assert!(matches!(line(s), Cow::Borrowed(_)));
        assert_eq!(line(s), s);
    }

    #[test]
    fn controls_come_out_visible() {
        assert_eq!(line("/v\x1b[2Jx"), "/v\\x1b[2Jx");
        assert_eq!(line("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(line("\0\x07\x7f"), "\\x00\\x07\\x7f");
        // C1: CSI (U+009B) acts like ESC [ on some terminals; NEL (U+0085) is a newline.
        assert_eq!(line("a\u{9b}2Jb\u{85}c"), "a\\u{9b}2Jb\\u{85}c");
        assert_eq!(line("x\u{2028}y\u{2029}z"), "x\\u{2028}y\\u{2029}z");
        assert_eq!(line("evil\u{202e}txt.sh"), "evil\\u{202e}txt.sh");
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        for s in ["/v\x1b[2Jx", "a\\x1b\n", "\u{85}\u{2028}", "plain"] {
            let once = line(s).into_owned();
            assert_eq!(line(&once), once);
            assert_eq!(block(&once), once);
        }
    }

    #[test]
    fn no_control_survives_any_char() {
        for u in 0..=0x10ffffu32 {
            let Some(c) = char::from_u32(u) else { continue };
            let out = line(&c.to_string()).into_owned();
            assert!(!out.chars().any(unsafe_char), "U+{u:04X} came out as {out:?}");
        }
    }

    #[test]
    fn a_block_keeps_its_own_newlines_only() {
        assert_eq!(block("one\x1b[2J\ntwo\\n\u{2028}"), "one\\x1b[2J\ntwo\\n\\u{2028}");
        let mut s = String::new();
        crate::outln!(&mut s, "vol {} ok", "/v\nFAKE: all is well");
        assert_eq!(s, "vol /v\\nFAKE: all is well ok\n");
        assert_eq!(block(&s), s);
    }
}
