//! The layout stays what docs/architecture.md's Layout section says: `node/` below `engine/`
//! below `daemon/` and `cli/`, no file importing a higher layer, the daemon and the CLI not
//! importing each other, and no two files importing each other, directly or through others.
//! Reads every `crate::` path in `src/` (comments left out) and resolves it to the file that
//! defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments are all the
/// project uses), so that a link in a doc comment is not an import.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `crate::`, with `a::{b, c::d}` groups spread out: `["a::b", "a::c::d"]`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        spread(rest, String::new(), &mut out);
    }
    out
}

/// Reads one path at the start of `s` (after `prefix`), spreading brace groups.
fn spread(s: &str, prefix: String, out: &mut Vec<String>) {
    let ident_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let head = s[..ident_end].trim_end_matches(':');
    let path = if prefix.is_empty() {
        head.to_string()
    } else if head.is_empty() {
        prefix.clone()
    } else {
        format!("{prefix}::{head}")
    };
    let after = &s[ident_end..];
    if s[..ident_end].ends_with("::") && after.starts_with('{') {
        // A group: split its top level on commas.
        let mut depth = 0;
        let mut start = 1;
        for (i, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        spread(after[start..i].trim(), path.clone(), out);
                        return;
                    }
                }
                ',' if depth == 1 => {
                    spread(after[start..i].trim(), path.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    if !path.is_empty() && path != "self" {
        out.push(path.trim_end_matches("::self").to_string());
    }
}

/// The module file a `crate::` path lands in: the longest prefix that is a module file,
/// following the crate root's `pub use layer::{module}` re-exports.
fn resolve(path: &str, aliases: &BTreeMap<String, String>) -> Option<PathBuf> {
    let mut segs: Vec<&str> = path.split("::").collect();
    if let Some(full) = segs.first().and_then(|s| aliases.get(*s)) {
        let mut v: Vec<&str> = full.split("::").collect();
        v.extend_from_slice(&segs[1..]);
        segs = v;
    }
    let root = src();
    for n in (1..=segs.len()).rev() {
        let rel: PathBuf = segs[..n].iter().collect();
        for cand in [root.join(&rel).with_extension("rs"), root.join(&rel).join("mod.rs")] {
            if cand.is_file() {
                return Some(cand);
            }
        }
    }
    None
}

/// `pub use layer::{a, b};` at the crate root: `a` -> `layer::a`.
fn root_aliases() -> BTreeMap<String, String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let mut out = BTreeMap::new();
    for line in code(&lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let mut paths = Vec::new();
        spread(rest.trim_end_matches(';'), String::new(), &mut paths);
        for p in paths {
            if let Some((_, last)) = p.rsplit_once("::") {
                out.insert(last.to_string(), p.clone());
            }
        }
    }
    out
}

/// Where a file sits: 0 the node and the config, 1 the engine, 2 the daemon and the CLI, 3 the
/// crate root and main.
fn layer(file: &Path) -> u8 {
    let rel = file.strip_prefix(src()).expect("under src");
    match rel.components().next().and_then(|c| c.as_os_str().to_str()) {
        Some("node") | Some("config.rs") | Some("configdoc.rs") | Some("escape.rs") => 0,
        Some("engine") => 1,
        Some("daemon") | Some("cli") => 2,
        _ => 3,
    }
}

struct Graph {
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

fn graph() -> Graph {
    let aliases = root_aliases();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges = BTreeMap::new();
    for f in files {
        let text = fs::read_to_string(&f).expect("read");
        let mut to = BTreeSet::new();
        for p in crate_paths(&code(&text)) {
            if let Some(t) = resolve(&p, &aliases)
                && t != f
            {
                to.insert(t);
            }
        }
        edges.insert(f, to);
    }
    Graph { edges }
}

fn short(p: &Path) -> String {
    p.strip_prefix(src()).unwrap_or(p).display().to_string()
}

#[test]
fn the_parser_reads_groups_and_nested_paths() {
    let c = code(
        "use crate::engine::{act::{self, Host}, plan};\n// crate::daemon::x\nlet x = crate::node::mountinfo::looked_up(p);",
    );
    assert_eq!(
        crate_paths(&c),
        [
            "engine::act",
            "engine::act::Host",
            "engine::plan",
            "node::mountinfo::looked_up"
        ]
    );
}

#[test]
fn no_file_imports_a_higher_layer() {
    let g = graph();
    let mut bad = Vec::new();
    for (from, tos) in &g.edges {
        for to in tos {
            if layer(to) > layer(from) {
                bad.push(format!("{} imports {}", short(from), short(to)));
            }
        }
    }
    assert!(g.edges.len() > 20, "found only {} files", g.edges.len());
    assert!(
        bad.is_empty(),
        "lower layers must not import higher ones:\n{}",
        bad.join("\n")
    );
}

/// The daemon and the CLI sit side by side on the engine: neither calls into the other, so
/// that what the daemon shows does not hang on the CLI's code, nor the CLI on the daemon's.
fn side(file: &Path) -> Option<&'static str> {
    let rel = file.strip_prefix(src()).expect("under src");
    match rel.components().next().and_then(|c| c.as_os_str().to_str()) {
        Some("daemon") => Some("daemon"),
        Some("cli") => Some("cli"),
        _ => None,
    }
}

#[test]
fn the_daemon_and_the_cli_do_not_import_each_other() {
    let g = graph();
    let mut bad = Vec::new();
    for (from, tos) in &g.edges {
        for to in tos {
            if let (Some(a), Some(b)) = (side(from), side(to))
                && a != b
            {
                bad.push(format!("{} imports {}", short(from), short(to)));
            }
        }
    }
    assert!(
        g.edges.keys().any(|f| side(f) == Some("daemon")) && g.edges.keys().any(|f| side(f) == Some("cli")),
        "found no daemon or cli files"
    );
    assert!(
        bad.is_empty(),
        "the daemon and the CLI must not import each other:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let g = graph();
    // Depth-first search; a file met again on the current path closes a circle.
    fn visit(g: &Graph, f: &PathBuf, path: &mut Vec<PathBuf>, done: &mut BTreeSet<PathBuf>, found: &mut Vec<String>) {
        if let Some(i) = path.iter().position(|p| p == f) {
            let circle: Vec<String> = path[i..].iter().chain([f]).map(|p| short(p)).collect();
            found.push(circle.join(" -> "));
            return;
        }
        if !done.insert(f.clone()) {
            return;
        }
        path.push(f.clone());
        for t in g.edges.get(f).into_iter().flatten() {
            visit(g, t, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for f in g.edges.keys() {
        visit(&g, f, &mut Vec::new(), &mut done, &mut found);
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}
