//! The man pages mountprop(8) and mountprop.toml(5), made from the one source of each: clap's
//! definitions of the command line (src/cli/args.rs, through clap_mangen) and the commented default
//! config (src/config.rs, read by `mountprop::configdoc`). The committed pages in man/ must be
//! what this generates; after a change to either source,
//!
//!     MOUNTPROP_BLESS=1 cargo test --test manpages
//!
//! writes them again. Also: the completion scripts and clap's suggestions for typos.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use mountprop::cli::args as cli;
use mountprop::configdoc;

const BIN: &str = env!("CARGO_BIN_EXE_mountprop");

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The fields mountprop's log lines carry in the journal (tracing fields, names as given).
const JOURNAL_FIELDS: [(&str, &str); 5] = [
    ("UNIT", "the runtime unit a line is about, e.g. docker.service"),
    ("PATH", "the file or mount point a line is about"),
    (
        "ACTION",
        "what was done: a drop-in written or removed, a reload, a restart, a path made shared",
    ),
    ("MOUNT_FLAGS", "the MountFlags= value written"),
    (
        "TRIGGER",
        "for the daemon, what started a check: the timer, a mount event, a systemd signal, a file change",
    ),
];

const FILES: [(&str, &str); 6] = [
    (
        "/etc/mountprop/config.toml",
        "the configuration, see mountprop.toml(5); built-in defaults when absent",
    ),
    (
        "/etc/systemd/system/UNIT.d/90-mountprop.conf",
        "the drop-in mountprop writes for each runtime unit (the name is the dropin_name key); revert removes only files of this name that carry mountprop's header",
    ),
    (
        "/run/mountprop/state.json",
        "what the daemon last found, read by mountprop status",
    ),
    ("/usr/lib/systemd/system/mountprop.service", "the daemon's unit"),
    (
        "/usr/share/doc/mountprop/live-probe.conf",
        "a drop-in for mountprop.service that lets the daemon run the live probe (live_probe = true)",
    ),
    (
        "/usr/share/doc/mountprop/mountprop-plugin-monitor.json",
        "a node-problem-detector custom plugin monitor that runs mountprop check --oneline",
    ),
];

const EXIT: [(&str, &str); 3] = [
    (
        "0",
        "compliant: every runtime and path is as needed, and the required Kubernetes mode works (revert, config: success)",
    ),
    (
        "1",
        "drift: something is not as needed, or a fix waits for a runtime restart (restart pending)",
    ),
    (
        "2",
        "could not check or act: a config error, no system bus, a file that cannot be written; the error is one line on stderr naming the file and setting",
    ),
];

fn section(r: &mut Roff, name: &str) {
    r.control("SH", [name]);
}

/// `.TP` with a bold tag and a paragraph.
fn item(r: &mut Roff, tag: &str, text: &str) {
    r.control("TP", []);
    r.text([bold(tag)]);
    r.text([roman(text)]);
}

/// Text from clap's doc comments or the config's comments, without Markdown's backticks.
fn plain(s: &str) -> String {
    s.replace('`', "")
}

/// `--root <DIR>`, `-v, --verbose`, `<FILE>`: how an argument is written.
fn arg_tag(a: &clap::Arg) -> String {
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    let value = a
        .get_value_names()
        .map(|v| v.iter().map(|n| format!("<{n}>")).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_uppercase()));
    match (names.is_empty(), a.get_action().takes_values()) {
        (true, _) => value,
        (false, true) => format!("{} {value}", names.join(", ")),
        (false, false) => names.join(", "),
    }
}

fn arg_help(a: &clap::Arg) -> String {
    let mut help = plain(
        &a.get_long_help()
            .or(a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default(),
    );
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !values.is_empty() && a.get_action().takes_values() {
        help.push_str(&format!(" One of: {}.", values.join(", ")));
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() {
        help.push_str(&format!(" [default: {}]", defaults.join(", ")));
    }
    help
}

/// Each subcommand, nested ones included, with its own arguments.
fn commands(r: &mut Roff, cmd: &clap::Command, prefix: &str) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{prefix} {}", sub.get_name());
        if sub.has_subcommands() {
            commands(r, sub, &name);
            continue;
        }
        let usage: Vec<String> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && a.get_id() != "help")
            .map(|a| {
                if a.is_required_set() {
                    arg_tag(a)
                } else {
                    format!("[{}]", arg_tag(a))
                }
            })
            .collect();
        r.control("SS", [format!("{name} {}", usage.join(" ")).trim_end()]);
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        r.text([roman(plain(&about))]);
        for a in sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && a.get_id() != "help")
        {
            item(r, &arg_tag(a), &arg_help(a));
        }
    }
}

/// mountprop(8).
fn mountprop_8() -> String {
    let cmd = cli::Cli::command();
    let man = Man::new(cmd.clone()).section("8").manual("System Administration");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    let mut r = Roff::new();
    section(&mut r, "DESCRIPTION");
    r.text([roman(plain(
        &cmd.get_about().map(|a| a.to_string()).unwrap_or_default(),
    ))]);
    r.control("PP", []);
    r.text([roman(
        "Kubernetes mountPropagation needs the host's / shared and each container runtime in the host's mount \
         peer group. mountprop reads the runtime units from systemd over D-Bus, writes a drop-in that sets \
         MountFlags= for the running systemd version, reloads systemd once, restarts runtimes only when \
         the configuration allows it, makes / and the configured paths rshared, and verifies the result \
         in the runtimes' own mount namespaces. As mountprop.service it keeps the node that way. With \
         --root it works on an image tree instead of the running system.",
    )]);
    section(&mut r, "OPTIONS");
    r.text([roman("These apply to every command.")]);
    for a in cmd.get_arguments().filter(|a| a.is_global_set()) {
        item(&mut r, &arg_tag(a), &arg_help(a));
    }
    item(&mut r, "-h, --help", "Print help (of a command, after its name).");
    item(&mut r, "-V, --version", "Print the version.");
    section(&mut r, "COMMANDS");
    commands(&mut r, &cmd, "mountprop");
    section(&mut r, "EXIT STATUS");
    for (code, what) in EXIT {
        item(&mut r, code, what);
    }
    section(&mut r, "FILES");
    for (f, what) in FILES {
        item(&mut r, f, what);
    }
    section(&mut r, "JOURNAL FIELDS");
    r.text([roman(
        "Log lines go to stderr, or to the journal when systemd connected stderr to it (as for \
         mountprop.service), with SYSLOG_IDENTIFIER=mountprop and these fields:",
    )]);
    for (f, what) in JOURNAL_FIELDS {
        item(&mut r, f, what);
    }
    r.control("PP", []);
    r.text([roman("For example: journalctl -u mountprop.service ACTION=write")]);
    section(&mut r, "SEE ALSO");
    r.text([
        bold("mountprop.toml"),
        roman("(5), "),
        bold("systemd.exec"),
        roman("(5), "),
        bold("mount"),
        roman("(8), "),
        bold("journalctl"),
        roman("(1); the README in /usr/share/doc/mountprop/."),
    ]);
    out.extend_from_slice(r.render().as_bytes());
    man.render_version_section(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// mountprop.toml(5).
fn mountprop_toml_5() -> String {
    let doc = configdoc::read();
    let version = env!("CARGO_PKG_VERSION");
    let mut r = Roff::new();
    r.control(
        "TH",
        [
            "MOUNTPROP.TOML",
            "5",
            "",
            &format!("mountprop {version}"),
            "File Formats",
        ],
    );
    section(&mut r, "NAME");
    r.text([roman("mountprop.toml - configuration of mountprop(8)")]);
    section(&mut r, "SYNOPSIS");
    r.text([bold(mountprop::config::DEFAULT_PATH)]);
    section(&mut r, "DESCRIPTION");
    r.text([roman(plain(&doc.preamble))]);
    r.control("PP", []);
    r.text([roman(
        "The file is TOML; without it the defaults below apply. mountprop config default prints \
         a file with every key commented out at its default (the packages install it); the \
         daemon reads the file again on systemctl reload mountprop.",
    )]);
    let entries = |r: &mut Roff, section: &str| {
        for e in doc.entries.iter().filter(|e| e.section == section) {
            let tag: Vec<String> = e
                .keys
                .iter()
                .map(|(k, d)| match d {
                    Some(d) => format!("{k} = {d}"),
                    None => format!("{k} (unset by default)"),
                })
                .collect();
            item(r, &tag.join(", "), &plain(&e.doc));
        }
    };
    section(&mut r, "KEYS");
    entries(&mut r, "");
    for s in &doc.sections {
        let head = if s.array {
            format!("[[{}]]", s.name)
        } else {
            format!("[{}]", s.name)
        };
        r.control("SS", [head.as_str()]);
        r.text([roman(plain(&s.doc))]);
        entries(&mut r, s.name);
    }
    section(&mut r, "ERRORS");
    r.text([roman(
        "A config that does not load is an error, exit status 2, and nothing is read from systemd \
         or changed. Each error is one line:",
    )]);
    for (form, what) in [
        (
            "FILE:LINE:COLUMN: MESSAGE",
            "an unknown key, a value of the wrong type, or a value that is not allowed, e.g. \
             /etc/mountprop/config.toml:3:8: paths: \"relative/path\" is not absolute",
        ),
        (
            "FILE: refusing a config that others can change: WHY; fix: COMMAND",
            "the file, or a directory above it, can be changed by someone other than root \
             (or the user running mountprop)",
        ),
        (
            "cannot read FILE: ERROR",
            "a file named with --config that cannot be read",
        ),
    ] {
        r.control("TP", []);
        r.text([italic(form)]);
        r.text([roman(what)]);
    }
    section(&mut r, "SEE ALSO");
    r.text([bold("mountprop"), roman("(8)")]);
    r.render()
}

/// The pages in man/ are what the generator makes (or are written, with MOUNTPROP_BLESS=1).
#[test]
fn committed_man_pages_are_generated() {
    for (file, text) in [
        ("man/mountprop.8", mountprop_8()),
        ("man/mountprop.toml.5", mountprop_toml_5()),
    ] {
        let path = repo(file);
        if std::env::var_os("MOUNTPROP_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{file} differs from what tests/manpages.rs generates from the clap definitions and the \
             default config; regenerate: MOUNTPROP_BLESS=1 cargo test --test manpages"
        );
    }
}

/// The page covers every subcommand and option, every config key, and the journal fields
/// that the code logs.
#[test]
fn the_pages_cover_every_command_key_and_journal_field() {
    let page = mountprop_8();
    let cmd = cli::Cli::command();
    let mut names = Vec::new();
    fn walk(c: &clap::Command, prefix: &str, names: &mut Vec<String>) {
        for s in c.get_subcommands().filter(|s| s.get_name() != "help") {
            let n = format!("{prefix} {}", s.get_name());
            walk(s, &n, names);
            names.push(n);
        }
    }
    walk(&cmd, "mountprop", &mut names);
    assert!(names.len() >= 9, "{names:?}");
    for n in &names {
        let leaf = cmd
            .get_subcommands()
            .flat_map(|s| std::iter::once(s).chain(s.get_subcommands()))
            .any(|s| n.ends_with(&format!(" {}", s.get_name())) && s.has_subcommands());
        assert!(
            leaf || page.contains(&format!(".SS \"{n}")),
            "{n} missing from mountprop(8)"
        );
    }
    for s in cmd.get_subcommands() {
        for a in s.get_arguments().filter_map(|a| a.get_long()) {
            assert!(
                page.contains(&format!("\\-\\-{}", a.replace('-', "\\-"))),
                "--{a} missing"
            );
        }
    }
    // Every field the sources log with (UPPER_CASE = in a tracing macro) is documented.
    let mut logged = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    let mut dirs = vec![repo("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (i, _) in text.match_indices(" = ") {
            let word: String = text[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let before = text[..i - word.len()].chars().next_back();
            if word.len() >= 3
                && matches!(before, Some('(' | ' ' | '\n'))
                && word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            {
                logged.insert(word);
            }
        }
    }
    let documented: std::collections::BTreeSet<String> = JOURNAL_FIELDS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(logged, documented, "journal fields in src/ vs mountprop(8)");

    let toml = mountprop_toml_5();
    for k in configdoc::read().key_names() {
        let key = k.rsplit('.').next().unwrap();
        assert!(
            toml.contains(&format!("{key} = ")) || toml.contains(&format!("{key} (unset by default)")),
            "{k} missing from mountprop.toml(5)"
        );
    }
}

/// The configuration guide's table names every key of the default config.
#[test]
fn the_configuration_guide_names_every_config_key() {
    let guide = std::fs::read_to_string(repo("docs/configuration.md")).unwrap();
    let table: Vec<&str> = guide.lines().filter(|l| l.starts_with("| ")).collect();
    for k in configdoc::read().key_names() {
        let key = k.rsplit('.').next().unwrap();
        assert!(
            table.iter().any(|row| row.contains(&format!("`{key}`"))
                || row.contains(&format!("{key}`"))
                || row.contains(&format!(" {key}"))),
            "docs/configuration.md's table lacks {k}"
        );
    }
}

/// The error forms the page documents are the ones mountprop gives.
#[test]
fn the_documented_error_forms_are_real() {
    let e = mountprop::config::Config::parse("units = 1\n", Path::new("/etc/mountprop/config.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/etc/mountprop/config.toml:1:9: "), "{e}");
    let e = mountprop::config::Config::load(Some(Path::new("/nonexistent/mountprop.toml")))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot read /nonexistent/mountprop.toml: "), "{e}");
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The completion script for `shell`, from the same clap definitions as the man page.
fn completion(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli::Cli::command(), "mountprop", &mut out);
    String::from_utf8(out).unwrap()
}

/// The completion scripts the packages install (packaging/completions/) are what clap makes
/// (or are written, with MOUNTPROP_BLESS=1); each names the commands, and bash parses its own.
/// Generated here rather than by the binary, which so carries no completion generator.
#[test]
fn committed_completions_are_generated() {
    use clap_complete::Shell;
    for (shell, file, marker) in [
        (Shell::Bash, "mountprop.bash", "complete -F"),
        (Shell::Zsh, "_mountprop", "#compdef mountprop"),
        (Shell::Fish, "mountprop.fish", "complete -c mountprop"),
    ] {
        let text = completion(shell);
        assert!(text.contains(marker), "{shell}: {text}");
        for c in ["check", "apply", "revert", "probe", "daemon", "status", "config"] {
            assert!(text.contains(c), "{shell} completion lacks {c}");
        }
        let path = repo("packaging/completions").join(file);
        if std::env::var_os("MOUNTPROP_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "packaging/completions/{file} differs from what clap generates; regenerate: \
                 MOUNTPROP_BLESS=1 cargo test --test manpages"
            );
        }
    }
    let o = Command::new("bash")
        .arg("-n")
        .arg(repo("packaging/completions/mountprop.bash"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The binary no longer has the subcommand: clap refuses it like any unknown one.
    let (code, _, err) = run(&["completions", "bash"]);
    assert_eq!(code, 2, "{err}");
}

/// A mistyped subcommand or option gets clap's "did you mean".
#[test]
fn typos_get_suggestions() {
    let (code, _, err) = run(&["chek"]);
    assert_eq!(code, 2);
    assert!(err.contains("similar subcommand exists: 'check'"), "{err}");
    let (code, _, err) = run(&["check", "--jsn"]);
    assert_eq!(code, 2);
    assert!(err.contains("similar argument exists: '--json'"), "{err}");
}
