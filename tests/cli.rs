//! The command line on any machine: no root, no systemd needed.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mountprop");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(BIN);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run mountprop");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const NO_BUS: (&str, &str) = ("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/mountprop-test-bus");

#[test]
fn printed_default_config_validates() {
    let d = scratch("default");
    let out = run(&["config", "default"], &[]);
    assert_eq!(out.code, 0);
    let f = d.join("config.toml");
    std::fs::write(&f, &out.stdout).unwrap();
    let check = run(&["config", "check", f.to_str().unwrap()], &[]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert_eq!(check.stdout.trim(), format!("{}: ok", f.display()));
}

#[test]
fn malformed_config_is_one_line_with_position_and_exit_2_before_anything_else() {
    let d = scratch("badcfg");
    let f = d.join("config.toml");
    std::fs::write(&f, "units = [\"docker.service\"]\nrestart = \"sometimes\"\n").unwrap();
    let f = f.to_str().unwrap();
    for args in [
        vec!["--config", f, "check"],
        vec!["--config", f, "apply"],
        vec!["config", "check", f],
    ] {
        // No bus either: the config error must come first, before anything is contacted.
        let out = run(&args, &[NO_BUS]);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("mountprop: {f}:2:11: unknown variant `sometimes`")),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn unknown_key_is_rejected() {
    let d = scratch("unknown");
    let f = d.join("config.toml");
    std::fs::write(&f, "# comment\nrestart_policy = \"never\"\n").unwrap();
    let out = run(&["config", "check", f.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(":2:1: unknown field `restart_policy`"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_named_config_is_an_error_but_missing_default_is_not() {
    let out = run(&["--config", "/nonexistent/mountprop.toml", "check"], &[NO_BUS]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot read /nonexistent/mountprop.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_system_bus_is_one_clear_line_and_exit_2() {
    for (cmd, says) in [("check", "cannot check"), ("apply", "nothing changed")] {
        let out = run(&["--config", "/dev/null", cmd], &[NO_BUS]);
        assert_eq!(out.code, 2, "{cmd}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{cmd}: {}", out.stderr);
        let line = out.stderr.trim();
        assert!(
            line.starts_with(&format!(
                "mountprop: {says}: no system bus at /nonexistent/mountprop-test-bus ("
            )),
            "{line}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["frobnicate"], &[]).code, 2);
    assert_eq!(run(&["check", "--bogus"], &[]).code, 2);
    assert_eq!(run(&["--help"], &[]).code, 0);
}

#[test]
fn oneline_puts_even_an_error_on_stdout_for_plugin_runners() {
    // node-problem-detector takes the message from stdout, whatever the exit code.
    for args in [
        vec!["--config", "/dev/null", "check", "--oneline"],
        vec!["--config", "/dev/null", "probe", "--oneline"],
    ] {
        let out = run(&args, &[NO_BUS]);
        assert_eq!(out.code, 2, "{args:?}");
        assert_eq!(out.stdout.lines().count(), 1, "{args:?}: {}", out.stdout);
        assert!(
            out.stdout.starts_with("UNKNOWN: cannot ") && out.stdout.contains("no system bus at /nonexistent/"),
            "{}",
            out.stdout
        );
    }
    let d = scratch("oneline-badcfg");
    let f = d.join("config.toml");
    std::fs::write(&f, "required_mode = \"both\"\n").unwrap();
    let out = run(&["--config", f.to_str().unwrap(), "check", "--oneline"], &[NO_BUS]);
    assert_eq!(out.code, 2);
    assert!(
        out.stdout
            .starts_with(&format!("UNKNOWN: {}:1:17: unknown variant `both`", f.display())),
        "{}",
        out.stdout
    );
    // One format at a time.
    assert_eq!(run(&["check", "--json", "--oneline"], &[NO_BUS]).code, 2);
}

#[test]
fn a_config_others_can_change_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let d = scratch("unsafe");
    let f = d.join("config.toml");
    std::fs::write(&f, "restart = \"never\"\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    let p = f.to_str().unwrap();
    for args in [vec!["--config", p, "check"], vec!["config", "check", p]] {
        let out = run(&args, &[NO_BUS]);
        assert_eq!(out.code, 2, "{args:?}");
        assert_eq!(
            out.stderr.trim(),
            format!(
                "mountprop: {p}: refusing a config that others can change: it is writable by group or others (mode 0666); fix: chmod go-w {p}"
            )
        );
    }
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(run(&["config", "check", p], &[]).code, 0);
    // Owned by someone else (only root can arrange that).
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let out = run(&["config", "check", p], &[]);
        assert_eq!(out.code, 2);
        assert!(
            out.stderr
                .contains("it is owned by uid 65534, not root; fix: chown root: "),
            "{}",
            out.stderr
        );
    }
}

/// `--root` reads an image tree: nothing is mounted and nothing runs there, so the Kubernetes
/// modes that need propagation cannot be judged. They must say so, never "works": in the text,
/// in `--json` (`works` null, `judged` false, and why) and in `--oneline`.
#[test]
fn root_mode_never_says_works_for_a_mode_it_did_not_judge() {
    let root = scratch("root-modes");
    for (rel, text) in [
        (
            "usr/lib/systemd/system/docker.service",
            "[Service]\nExecStart=/usr/bin/dockerd\nMountFlags=slave\n",
        ),
        (
            "usr/lib/systemd/system/mountprop.service",
            "[Service]\nExecStart=/usr/bin/mountprop daemon\n\n[Install]\nWantedBy=multi-user.target\n",
        ),
        ("usr/lib/systemd/libsystemd-shared-252.so", ""),
    ] {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let dir = root.to_str().unwrap();
    for cmd in ["check", "apply"] {
        let out = run(&[cmd, "--root", dir], &[NO_BUS]);
        assert!(matches!(out.code, 0 | 1), "{cmd} --root: {}{}", out.stdout, out.stderr);
        for mode in ["HostToContainer", "Bidirectional (required)"] {
            let line = out
                .stdout
                .lines()
                .find(|l| l.trim_start().starts_with(mode))
                .unwrap_or_else(|| panic!("{cmd} --root names {mode}:\n{}", out.stdout));
            assert!(
                line.contains("not judged") && !line.contains("works"),
                "{cmd} --root, {mode}: {line}"
            );
        }
        let none = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("None "))
            .unwrap();
        assert!(none.contains("works"), "None needs nothing and works: {none}");

        let out = run(&[cmd, "--root", dir, "--json"], &[NO_BUS]);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json is JSON");
        let modes = doc["modes"].as_array().expect("modes[]");
        assert_eq!(modes.len(), 3, "{modes:?}");
        for m in modes {
            if m["mode"] == "None" {
                assert_eq!((&m["works"], &m["judged"]), (&true.into(), &true.into()), "{m}");
            } else {
                assert!(m["works"].is_null(), "{cmd} --root --json: works must not be set: {m}");
                assert_eq!(m["judged"], false, "{m}");
                assert_eq!(m["not_judged"], "image-tree", "{m}");
            }
        }
    }
    // After the apply above the tree is compliant, so the one line is the "ok:" summary.
    let out = run(&["check", "--root", dir, "--oneline"], &[NO_BUS]);
    assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);
    assert!(
        !out.stdout.contains("Bidirectional works") && out.stdout.contains("Bidirectional not judged"),
        "{}",
        out.stdout
    );
}
