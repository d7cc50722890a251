//! The docs hold together: every relative link (and `#anchor`) in README.md and docs/ leads
//! somewhere, and every config key, command and option a user can type is written down in
//! README.md or docs/ (not only in the man pages, which are generated from the same sources
//! and so name everything whatever the guides say). No root needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use clap::CommandFactory;
use mountprop::cli::args as cli;
use mountprop::configdoc;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Guides other branches add. Until they are merged, a link to one of them may dangle; once
/// the file exists it is checked like any other. (Empty this list once they have landed.)
const PENDING: [&str; 0] = [];

/// README.md and every `.md` under docs/, as (path relative to the repository, text).
fn markdown_files(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    out.insert(
        "README.md".to_string(),
        std::fs::read_to_string(root.join("README.md")).unwrap(),
    );
    walk(root, &root.join("docs"), &mut out);
    out
}

/// The text with fenced code blocks blanked out (line numbers kept), since a `[x](y)` or a
/// `# comment` inside one is not a link or a heading.
fn without_fences(text: &str) -> Vec<&str> {
    let mut fence: Option<&str> = None;
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            match fence {
                Some(f) if t.starts_with(f) => {
                    fence = None;
                    ""
                }
                Some(_) => "",
                None if t.starts_with("```") || t.starts_with("~~~") => {
                    fence = Some(&t[..3]);
                    ""
                }
                None => l,
            }
        })
        .collect()
}

/// A line with its inline code spans removed: `` `[a](b)` `` is not a link.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('`') {
        out.push_str(&rest[..i]);
        let run = rest[i..].chars().take_while(|&c| c == '`').count();
        let tick = &rest[i..i + run];
        match rest[i + run..].find(tick) {
            Some(j) => rest = &rest[i + run + j + run..],
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a line is indented code (four spaces or a tab, not a list item's continuation).
/// The docs use indented blocks for commands and output; a list continuation has two spaces.
fn is_indented_code(line: &str) -> bool {
    line.starts_with("    ") || line.starts_with('\t')
}

/// Every link target on the page: inline `[text](target)`, images, and `[ref]: target`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in without_fences(text).into_iter().enumerate() {
        if is_indented_code(line) {
            continue;
        }
        let line = without_code_spans(line);
        let t = line.trim_start();
        if let Some(def) = t.strip_prefix('[').and_then(|r| r.split_once("]: "))
            && !def.0.is_empty()
        {
            out.push((n + 1, def.1.split_whitespace().next().unwrap_or("").to_string()));
            continue;
        }
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].trim();
            let target = target
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or(target);
            // `(target "title")`
            let target = target.split_whitespace().next().unwrap_or("");
            out.push((n + 1, target.to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, markup and punctuation dropped (letters,
/// digits, `-` and `_` kept), spaces to `-`; a repeated heading gets `-1`, `-2`, ...
fn slug(heading: &str) -> String {
    // Link text only: `[text](url)` reads as `text`.
    let mut plain = String::new();
    let mut rest = heading;
    while let Some(i) = rest.find('[') {
        plain.push_str(&rest[..i]);
        match rest[i..].find("](").zip(rest[i..].find(')')) {
            Some((m, e)) if m < e => {
                plain.push_str(&rest[i + 1..i + m]);
                rest = &rest[i + e + 1..];
            }
            _ => {
                plain.push('[');
                rest = &rest[i + 1..];
            }
        }
    }
    plain.push_str(rest);
    plain
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in without_fences(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let s = slug(line[hashes..].trim().trim_end_matches('#'));
        let n = seen.entry(s.clone()).or_insert(0);
        out.insert(if *n == 0 { s.clone() } else { format!("{s}-{n}") });
        *n += 1;
    }
    out
}

/// `dir/../x` without touching the disk; `None` when it climbs out of the repository.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Every broken relative link in `files` (paths relative to `root`), as one line each.
fn broken_links(root: &Path, files: &BTreeMap<String, String>, pending: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for (file, text) in files {
        for (line, target) in links(text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let dir = Path::new(file).parent().unwrap_or(Path::new(""));
            let resolved = if path.is_empty() {
                Some(PathBuf::from(file))
            } else {
                normalize(&dir.join(path))
            };
            let Some(resolved) = resolved else {
                bad.push(format!("{file}:{line}: {target}: leads outside the repository"));
                continue;
            };
            let key = resolved.to_string_lossy().into_owned();
            let text_of = files
                .get(&key)
                .cloned()
                .or_else(|| std::fs::read_to_string(root.join(&resolved)).ok());
            if !root.join(&resolved).exists() && !files.contains_key(&key) {
                if pending.contains(&key.as_str()) {
                    eprintln!("note: {file}:{line}: {target}: not merged yet (PENDING in tests/docs.rs)");
                } else {
                    bad.push(format!("{file}:{line}: {target}: no such file {key}"));
                }
                continue;
            }
            if let Some(a) = anchor
                && key.ends_with(".md")
                && !text_of.as_deref().map(anchors).is_some_and(|set| set.contains(a))
            {
                bad.push(format!("{file}:{line}: {target}: {key} has no heading #{a}"));
            }
        }
    }
    bad
}

/// Whether `word` appears in `corpus` as written by a person: not inside a longer word.
fn mentions(corpus: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    corpus.match_indices(word).any(|(i, _)| {
        let before = corpus[..i].chars().next_back();
        let after = corpus[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Config keys (`section.key` or `key`) the corpus does not document. A key counts as
/// documented where it is written as code: `` `key` ``, `` `key = ...` `` or
/// `` `[section] key` `` (a bare word such as "path" in prose proves nothing).
fn undocumented_keys(corpus: &str, keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| {
            let (section, key) = k.rsplit_once('.').unwrap_or(("", k));
            let forms = [
                format!("`{key}`"),
                format!("`{key} "),
                format!("`{key}="),
                format!("`[{section}] {key}`"),
                format!("`[{section}] {key} "),
                format!("`[[{section}]]` {key}"),
            ];
            !forms.iter().any(|f| corpus.contains(f.as_str()))
        })
        .cloned()
        .collect()
}

/// Every command path (`mountprop config check`), option spelling (`--root`, `-v`) and
/// possible value (`bash`) a user can type, from clap's own definitions.
fn command_line_words() -> (Vec<String>, Vec<String>) {
    fn walk(cmd: &clap::Command, path: &str, cmds: &mut Vec<String>, opts: &mut BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if a.is_hide_set() || matches!(a.get_id().as_str(), "help" | "version") {
                continue;
            }
            if let Some(l) = a.get_long() {
                opts.insert(format!("--{l}"));
            }
            if let Some(s) = a.get_short() {
                opts.insert(format!("-{s}"));
            }
            if a.is_positional() {
                for v in a.get_possible_values() {
                    if !v.is_hide_set() {
                        opts.insert(v.get_name().to_string());
                    }
                }
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let p = format!("{path} {}", sub.get_name());
            cmds.push(p.clone());
            walk(sub, &p, cmds, opts);
        }
    }
    let mut cmds = Vec::new();
    let mut opts = BTreeSet::new();
    walk(&cli::Cli::command(), "mountprop", &mut cmds, &mut opts);
    (cmds, opts.into_iter().collect())
}

fn corpus(files: &BTreeMap<String, String>) -> String {
    files.values().map(String::as_str).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let root = repo();
    let files = markdown_files(&root);
    assert!(files.len() > 5, "README.md and docs/*.md: {:?}", files.keys());
    let checked: usize = files.values().map(|t| links(t).len()).sum();
    assert!(checked > 50, "only {checked} links found: the parser is broken");
    let bad = broken_links(&root, &files, &PENDING);
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

/// The README stays a front door (issue 23: about 16 KB at most), the two commands near its top:
/// what grows goes into a guide under docs/.
#[test]
fn the_readme_stays_short_with_the_two_commands_near_the_top() {
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    assert!(
        text.len() <= 16 * 1024,
        "README.md is {} bytes: move the detail into docs/",
        text.len()
    );
    let top: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
    for command in ["cargo run --release -- apply", "./scripts/test.sh"] {
        assert!(top.contains(command), "{command:?} not in the README's first 40 lines");
    }
}

#[test]
fn every_config_key_is_documented_in_the_readme_or_a_guide() {
    let keys = configdoc::read().key_names();
    assert!(keys.len() > 10, "{keys:?}");
    let missing = undocumented_keys(&corpus(&markdown_files(&repo())), &keys);
    assert!(
        missing.is_empty(),
        "config keys not documented in README.md or docs/ (docs/configuration.md): {missing:?}"
    );
}

#[test]
fn every_command_and_option_is_documented_in_the_readme_or_a_guide() {
    let text = corpus(&markdown_files(&repo()));
    let (cmds, opts) = command_line_words();
    assert!(cmds.contains(&"mountprop config default".to_string()), "{cmds:?}");
    assert!(opts.contains(&"--root".to_string()), "{opts:?}");
    let missing: Vec<&String> = cmds
        .iter()
        .filter(|c| !text.contains(c.as_str()))
        .chain(opts.iter().filter(|o| !mentions(&text, o)))
        .collect();
    assert!(
        missing.is_empty(),
        "commands and options not documented in README.md or docs/: {missing:?}"
    );
}

// The checks themselves go red where they should.

fn docs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_link_check_finds_a_broken_file_anchor_or_escape() {
    let root = Path::new("/nonexistent-mountprop-docs-test");
    let good = docs(&[
        (
            "README.md",
            "See [modes](docs/modes.md#the-rules) and [here](#intro).\n# Intro\n",
        ),
        ("docs/modes.md", "# Modes\n## The rules\n[back](../README.md#intro)\n"),
    ]);
    assert_eq!(broken_links(root, &good, &[]), Vec::<String>::new());
    for (bad_text, why) in [
        ("[x](docs/nope.md)", "no such file"),
        ("[x](docs/modes.md#no-such-heading)", "no heading"),
        ("[x](#nope)", "no heading"),
        ("[x](../../etc/passwd)", "outside the repository"),
        ("[x]: docs/gone.md", "no such file"),
    ] {
        let mut d = good.clone();
        d.insert("docs/extra.md".into(), format!("# Extra\n\n{bad_text}\n"));
        if bad_text.starts_with("[x](docs/") || bad_text.starts_with("[x]: docs/") {
            // Relative to docs/, these would be docs/docs/...: put them in the README instead.
            d.remove("docs/extra.md");
            d.insert("README.md".into(), format!("# Intro\n{bad_text}\n"));
        }
        let bad = broken_links(root, &d, &[]);
        assert!(bad.len() == 1 && bad[0].contains(why), "{bad_text}: {bad:?}");
    }
    // Code is not a link, and a pending file may be missing.
    let d = docs(&[(
        "README.md",
        "`[a](missing.md)`\n\n    [b](missing.md)\n\n```\n[c](missing.md)\n```\n[d](docs/later.md)\n",
    )]);
    assert_eq!(broken_links(root, &d, &["docs/later.md"]), Vec::<String>::new());
}

#[test]
fn anchors_follow_githubs_slugs() {
    let a = anchors(
        "# The daemon: `mountprop.service`\n## Paths\n## Paths\n### The systemd version matrix (`tests/matrix.rs`)\n## See [cri.md](cri.md)\n",
    );
    for want in [
        "the-daemon-mountprop.service".replace('.', ""),
        "paths".into(),
        "paths-1".into(),
        "the-systemd-version-matrix-testsmatrixrs".into(),
        "see-crimd".into(),
    ] {
        assert!(a.contains(&want), "{want} in {a:?}");
    }
}

#[test]
fn the_coverage_check_finds_an_undocumented_key_command_or_option() {
    let keys = vec!["units".to_string(), "daemon.interval_secs".into(), "paths.path".into()];
    let text = "| `units` | ... |\n| `[daemon] interval_secs` | 60 |\n| `[[paths]]` | `path = \"/\"` |\n";
    assert_eq!(undocumented_keys(text, &keys), Vec::<String>::new());
    let mut more = keys.clone();
    more.push("daemon.brand_new_key".into());
    assert_eq!(undocumented_keys(text, &more), ["daemon.brand_new_key"]);
    // A bare word in prose is not documentation of a key.
    assert_eq!(
        undocumented_keys("the path to a unit", &["paths.path".into(), "units".into()]),
        ["paths.path", "units"]
    );
    assert!(mentions("use `--root DIR`", "--root"));
    assert!(!mentions("use --rootless", "--root"));
    assert!(!mentions("a well-known -v", "-q"));
}
