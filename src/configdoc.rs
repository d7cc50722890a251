//! The config file's keys as documented, read from the commented default config
//! ([`config::DEFAULT_TOML`]: what `mountprop config default` prints and the packages install
//! as `/etc/mountprop/config.toml`). That text is the one table of keys, defaults and meanings;
//! the man page mountprop.toml(5) is made from what this reads, so the two cannot drift, and a
//! test holds the text to the keys the parser accepts.
//!
//! The text's shape: a paragraph of `# prose` lines, then the key lines it documents,
//! `#key = default`; `#[daemon]` and `#[[paths]]` open a section, the prose just before such a
//! header describing the section. A paragraph that ends with a bare `#` documents a key that
//! has no default (it is unset unless given), named in the prose as `key = example`.

use crate::config;

/// One paragraph of the default config and the keys it documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `""` for top-level keys, else the table: `daemon` or `paths`.
    pub section: &'static str,
    /// `(key, default)`; the default in TOML syntax, `None` for a key unset by default.
    pub keys: Vec<(&'static str, Option<&'static str>)>,
    /// The prose, its lines joined with spaces; empty when the section's text covers it.
    pub doc: String,
}

/// A table of the config file and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: &'static str,
    /// `true` for an array of tables (`[[paths]]`).
    pub array: bool,
    pub doc: String,
}

/// Everything the default config documents, in its order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDoc {
    /// The file's opening lines (what the file is, how to check it).
    pub preamble: String,
    pub sections: Vec<Section>,
    pub entries: Vec<Entry>,
}

impl ConfigDoc {
    /// Every key, as `section.key` for keys in a table.
    pub fn key_names(&self) -> Vec<String> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.keys.iter().map(move |(k, _)| match e.section {
                    "" => k.to_string(),
                    s => format!("{s}.{k}"),
                })
            })
            .collect()
    }
}

/// A key line: `#name = value`, the name lower-case with underscores.
fn key_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.strip_prefix('#')?.split_once(" = ")?;
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then_some((name, value))
        .filter(|(n, _)| !n.is_empty())
}

/// The first `name = ` in a line of prose, for a key documented without a default.
fn named_in(prose: &'static str) -> Option<&'static str> {
    prose
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find_map(|w| (w[1] == "=" && w[0].chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(w[0]))
}

/// Reads [`config::DEFAULT_TOML`].
pub fn read() -> ConfigDoc {
    parse(config::DEFAULT_TOML)
}

/// Reads a default config in the shape described above.
pub fn parse(text: &'static str) -> ConfigDoc {
    let mut doc = ConfigDoc::default();
    let mut section: &'static str = "";
    let mut prose: Vec<&'static str> = Vec::new();
    let mut keys: Vec<(&'static str, Option<&'static str>)> = Vec::new();
    // Ends the open paragraph: with keys it is an entry; without, the first one is the file's
    // preamble and any other a remark, which is dropped.
    let flush = |doc: &mut ConfigDoc,
                 section: &'static str,
                 prose: &mut Vec<&'static str>,
                 keys: &mut Vec<(&'static str, Option<&'static str>)>| {
        if !keys.is_empty() {
            doc.entries.push(Entry {
                section,
                keys: std::mem::take(keys),
                doc: prose.join(" "),
            });
        } else if doc.preamble.is_empty() && doc.entries.is_empty() && doc.sections.is_empty() {
            doc.preamble = prose.join(" ");
        }
        prose.clear();
    };
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            flush(&mut doc, section, &mut prose, &mut keys);
        } else if let Some((name, array)) = line
            .strip_prefix("#[[")
            .and_then(|l| l.strip_suffix("]]"))
            .map(|n| (n, true))
            .or_else(|| {
                line.strip_prefix("#[")
                    .and_then(|l| l.strip_suffix(']'))
                    .map(|n| (n, false))
            })
        {
            // Key lines right before the header keep their prose; otherwise it is the section's.
            if !keys.is_empty() {
                flush(&mut doc, section, &mut prose, &mut keys);
            }
            doc.sections.push(Section {
                name,
                array,
                doc: prose.join(" "),
            });
            prose.clear();
            section = name;
        } else if let Some((k, v)) = key_line(line) {
            keys.push((k, Some(v)));
        } else if line == "#" {
            if keys.is_empty()
                && let Some(k) = prose.iter().find_map(|l| named_in(l))
            {
                keys.push((k, None));
            }
            flush(&mut doc, section, &mut prose, &mut keys);
        } else if let Some(p) = line.strip_prefix('#') {
            // Prose after key lines starts the next paragraph.
            if !keys.is_empty() {
                flush(&mut doc, section, &mut prose, &mut keys);
            }
            prose.push(p.trim_start());
        }
    }
    flush(&mut doc, section, &mut prose, &mut keys);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paragraphs_sections_and_unset_keys() {
        let d = parse(
            "# The file.\n# Check it.\n\n# Units to keep.\n#units = [\"a\"]\n\n# Two at once.\n#a = 1\n#b = 2\n# \
             For the daemon:\n#[daemon]\n# How often.\n#interval_secs = 60\n# A file; off unless set, to \
             f = \"x\".\n#\n# Paths:\n#[[paths]]\n#path = \"/\"\n",
        );
        assert_eq!(d.preamble, "The file. Check it.");
        assert_eq!(
            d.key_names(),
            ["units", "a", "b", "daemon.interval_secs", "daemon.f", "paths.path"]
        );
        assert_eq!(d.entries[1].keys, [("a", Some("1")), ("b", Some("2"))]);
        assert_eq!(d.entries[1].doc, "Two at once.");
        assert_eq!(d.entries[3].keys, [("f", None)]);
        assert_eq!(d.sections[0].doc, "For the daemon:");
        assert!(d.sections[1].array && d.sections[1].doc == "Paths:");
        assert_eq!(d.entries[4].doc, "");
    }

    /// Every key the parser accepts is documented in the default config, and nothing else:
    /// serde names the accepted keys when it refuses an unknown one.
    #[test]
    fn the_default_config_documents_every_key_the_parser_accepts() {
        let accepted = |text: &str, prefix: &str| -> Vec<String> {
            let e = config::Config::parse(text, std::path::Path::new("/x.toml"))
                .expect_err("unknown key refused")
                .to_string();
            let list = e.split_once("expected one of ").map_or(e.as_str(), |(_, l)| l);
            list.split(", ")
                .map(|k| format!("{prefix}{}", k.trim().trim_matches('`')))
                .collect()
        };
        let mut want = accepted("zz_unknown = 1\n", "");
        want.extend(accepted("[daemon]\nzz_unknown = 1\n", "daemon."));
        want.extend(accepted("[[paths]]\npath = \"/\"\nzz_unknown = 1\n", "paths."));
        // The tables themselves are sections, not keys.
        want.retain(|k| k != "daemon" && k != "paths");
        let mut have = read().key_names();
        want.sort();
        have.sort();
        assert_eq!(have, want);
        assert!(read().entries.iter().all(|e| e.section == "paths" || !e.doc.is_empty()));
    }
}
