//! mountprop's own drop-in: what it says, which systemd needs which value, and how mountprop
//! recognizes a file as its own (it never touches any other).

use serde::Serialize;

use crate::config::MountFlagsMode;
pub use crate::node::ownfile::{HEADER, dir_for, is_ours};
use crate::node::unitfile::MountFlags;

/// The value mountprop's drop-in sets, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub value: MountFlags,
    pub reason: String,
}

/// Picks the `MountFlags=` value for the running systemd.
///
/// On systemd 239-241 a unit with `MountFlags=shared` gets its own namespace that is first made
/// a slave, so mounts flow only from the host into it; the empty reset there means "no
/// namespace". From 242 on, shared (or unset) keeps the unit in the host's namespace. Up to 238,
/// shared gives a namespace whose mounts stay peers of the host's, and ~229-232 reject the empty
/// value, so shared is the safe choice outside 239-241.
pub fn choose(mode: MountFlagsMode, version: Option<u32>) -> Choice {
    // The reason names the branch of the table, not the exact version, so that a systemd
    // upgrade within a branch does not rewrite the file and force a reload.
    let (value, reason) = match (mode, version) {
        (MountFlagsMode::Auto, Some(239..=241)) => (
            MountFlags::Unset,
            "systemd 239-241: MountFlags=shared would give the unit a one-way (slave) namespace; the empty value gives it none",
        ),
        (MountFlagsMode::Auto, _) => (
            MountFlags::Shared,
            "MountFlags=shared keeps the unit's mounts flowing both ways with the host (on systemd other than 239-241)",
        ),
        (MountFlagsMode::Shared, _) => (MountFlags::Shared, "mount_flags = \"shared\" in the config"),
        (MountFlagsMode::Reset, _) => (MountFlags::Unset, "mount_flags = \"reset\" in the config"),
        (MountFlagsMode::Slave, _) => (
            MountFlags::Slave,
            "mount_flags = \"slave\" in the config (HostToContainer only)",
        ),
    };
    let reason = reason.to_string();
    Choice { value, reason }
}

/// Whether a loaded `MountFlags` value gives what `choice` aims for. On systemd >= 242 (and up
/// to 238) unset and shared both keep the unit with the host; on 239-241 only unset does.
pub fn satisfies(loaded: MountFlags, choice: &Choice, version: Option<u32>) -> bool {
    if loaded == choice.value {
        return true;
    }
    match choice.value {
        MountFlags::Slave | MountFlags::Private => false,
        MountFlags::Shared | MountFlags::Unset => {
            let shared_breaks = matches!(version, Some(239..=241));
            loaded == MountFlags::Unset || (loaded == MountFlags::Shared && !shared_breaks)
        }
    }
}

/// The drop-in's full text. Deterministic, so an unchanged choice never rewrites the file.
pub fn render(choice: &Choice) -> String {
    format!(
        "{HEADER} It rewrites or removes this file; change /etc/mountprop/config.toml instead.\n\
         # {}\n\
         [Service]\n\
         MountFlags={}\n",
        choice.reason,
        choice.value.as_value()
    )
}

/// The drop-in's text with `resets` (`Key=value` lines from [`crate::node::namespacing::resets`])
/// after `MountFlags=`: with none, exactly [`render`].
pub fn render_resetting(choice: &Choice, resets: &[String]) -> String {
    let mut text = render(choice);
    if !resets.is_empty() {
        text.push_str(
            "# reset_namespacing = true: these settings gave the unit a mount namespace of its own,\n\
             # which receives the host's mounts but sends none back\n",
        );
        for r in resets {
            text.push_str(r);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::unitfile::mount_flags_settings;
    use std::path::Path;

    #[test]
    fn version_table() {
        let v = |ver| choose(MountFlagsMode::Auto, ver).value;
        assert_eq!(v(Some(252)), MountFlags::Shared);
        assert_eq!(v(Some(242)), MountFlags::Shared);
        assert_eq!(v(Some(241)), MountFlags::Unset);
        assert_eq!(v(Some(240)), MountFlags::Unset);
        assert_eq!(v(Some(239)), MountFlags::Unset);
        assert_eq!(v(Some(238)), MountFlags::Shared);
        assert_eq!(v(Some(229)), MountFlags::Shared);
        assert_eq!(v(None), MountFlags::Shared);
        // Same text within a branch, so upgrades and an unknown version do not rewrite it.
        assert_eq!(
            render(&choose(MountFlagsMode::Auto, Some(252))),
            render(&choose(MountFlagsMode::Auto, Some(257)))
        );
        assert_eq!(
            render(&choose(MountFlagsMode::Auto, None)),
            render(&choose(MountFlagsMode::Auto, Some(229)))
        );
        assert_ne!(
            render(&choose(MountFlagsMode::Auto, Some(240))),
            render(&choose(MountFlagsMode::Auto, Some(252)))
        );
    }

    /// Each version that was booted (upstream builds of 219, 238, 239, 241 and 242; Debian's
    /// 247, 252, 257 and 262 in tests/matrix.rs) against what it loads and what it does:
    /// (version, the value auto writes, values that keep the unit's mounts flowing both ways).
    #[test]
    fn the_table_follows_what_each_booted_version_did() {
        use MountFlags::*;
        let seen: &[(u32, MountFlags, &[MountFlags])] = &[
            // shared: own namespace, `/` a peer of the host's group; unset: host namespace.
            (219, Shared, &[Shared, Unset]),
            (238, Shared, &[Shared, Unset]),
            // shared: own namespace made a slave first (host→unit only); unset: host namespace.
            (239, Unset, &[Unset]),
            (241, Unset, &[Unset]),
            // shared or unset: the host's namespace.
            (242, Shared, &[Shared, Unset]),
            (247, Shared, &[Shared, Unset]),
            (252, Shared, &[Shared, Unset]),
            (257, Shared, &[Shared, Unset]),
            (262, Shared, &[Shared, Unset]),
        ];
        for &(v, writes, both_ways) in seen {
            let c = choose(MountFlagsMode::Auto, Some(v));
            assert_eq!(c.value, writes, "systemd {v}");
            for loaded in [Shared, Unset, Slave, Private] {
                assert_eq!(
                    satisfies(loaded, &c, Some(v)),
                    both_ways.contains(&loaded),
                    "systemd {v}, MountFlags {loaded:?} loaded"
                );
            }
        }
        // From the sources only: 240 as 239 and 241 (commit 9b68367b keeps the slave step);
        // 229-232 fail to parse an empty `MountFlags=`, so auto never writes it there.
        assert_eq!(choose(MountFlagsMode::Auto, Some(240)).value, Unset);
        for v in 229..=232 {
            assert_eq!(choose(MountFlagsMode::Auto, Some(v)).value, Shared, "systemd {v}");
        }
    }

    #[test]
    fn forced_modes_ignore_the_version() {
        for ver in [Some(240), Some(252), None] {
            assert_eq!(choose(MountFlagsMode::Shared, ver).value, MountFlags::Shared);
            assert_eq!(choose(MountFlagsMode::Reset, ver).value, MountFlags::Unset);
            assert_eq!(choose(MountFlagsMode::Slave, ver).value, MountFlags::Slave);
        }
    }

    #[test]
    fn rendered_file_is_ours_and_sets_exactly_the_choice() {
        for (mode, ver, want) in [
            (MountFlagsMode::Auto, Some(252), MountFlags::Shared),
            (MountFlagsMode::Auto, Some(240), MountFlags::Unset),
            (MountFlagsMode::Slave, Some(252), MountFlags::Slave),
        ] {
            let c = choose(mode, ver);
            let text = render(&c);
            assert!(is_ours(text.as_bytes()));
            assert!(text.ends_with('\n'));
            let s = mount_flags_settings(Path::new("/x"), &text);
            assert_eq!(s.len(), 1, "{text}");
            assert_eq!((s[0].value, s[0].line), (want, 4));
            assert_eq!(render(&c), text, "deterministic");
        }
        assert_eq!(
            render(&choose(MountFlagsMode::Auto, Some(252))),
            "# Managed by mountprop. It rewrites or removes this file; change /etc/mountprop/config.toml instead.\n\
             # MountFlags=shared keeps the unit's mounts flowing both ways with the host (on systemd other than 239-241)\n\
             [Service]\nMountFlags=shared\n"
        );
    }

    #[test]
    fn only_our_header_counts() {
        assert!(!is_ours(b"[Service]\nMountFlags=shared\n"));
        assert!(!is_ours(b"\n# Managed by mountprop."));
        assert!(!is_ours(b"# managed by mountprop."));
    }

    #[test]
    fn what_satisfies_which_choice() {
        let shared252 = choose(MountFlagsMode::Auto, Some(252));
        assert!(satisfies(MountFlags::Shared, &shared252, Some(252)));
        assert!(satisfies(MountFlags::Unset, &shared252, Some(252)));
        assert!(!satisfies(MountFlags::Slave, &shared252, Some(252)));
        assert!(!satisfies(MountFlags::Private, &shared252, Some(252)));
        let reset240 = choose(MountFlagsMode::Auto, Some(240));
        assert!(satisfies(MountFlags::Unset, &reset240, Some(240)));
        assert!(!satisfies(MountFlags::Shared, &reset240, Some(240)));
        let slave = choose(MountFlagsMode::Slave, Some(252));
        assert!(satisfies(MountFlags::Slave, &slave, Some(252)));
        assert!(!satisfies(MountFlags::Shared, &slave, Some(252)));
    }

    #[test]
    fn dir_is_under_root() {
        assert_eq!(
            dir_for(Path::new("/"), "docker.service"),
            Path::new("/etc/systemd/system/docker.service.d")
        );
        assert_eq!(
            dir_for(Path::new("/img"), "a.service"),
            Path::new("/img/etc/systemd/system/a.service.d")
        );
    }
}
