//! The packages that scripts/package.sh builds into target/packages: what is in them, that a
//! rebuild is byte-identical, and (on a real node) that installing and purging the .deb does
//! what the README says. scripts/test.sh builds the packages first and sets
//! MOUNTPROP_REQUIRE_PACKAGES=1; run on their own, these tests skip without packages.

mod sandbox;

use std::path::{Path, PathBuf};
use std::process::Command;

use sandbox::{OLD_DOCKER, Sandbox, Setup};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/packages")
}

/// The architectures packaged: (the binary's, dpkg's name, ELF e_machine).
const ARCHES: [(&str, &str, u16); 2] = [("x86_64", "amd64", 62), ("aarch64", "arm64", 183)];

fn deb_of(debarch: &str) -> PathBuf {
    out_dir().join(format!("mountprop_{VERSION}-1_{debarch}.deb"))
}

/// The .deb the node tests install (this machine's architecture).
fn deb() -> PathBuf {
    deb_of("amd64")
}

fn rpm_of(arch: &str, el7: bool) -> PathBuf {
    out_dir().join(format!(
        "mountprop-{VERSION}-1{}.{arch}.rpm",
        if el7 { ".el7" } else { "" }
    ))
}

/// Every .rpm, with its architecture and whether it is the CentOS 7 variant.
fn rpms() -> [(PathBuf, &'static str, bool); 3] {
    [
        (rpm_of("x86_64", false), "x86_64", false),
        (rpm_of("aarch64", false), "aarch64", false),
        (rpm_of("x86_64", true), "x86_64", true),
    ]
}

/// The binary as staged by scripts/package.sh for `arch`.
fn dist_bin(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/dist/{arch}/mountprop"))
}

/// Whether the packages are there; a loud SKIP (or, when required, a failure) if not.
fn packages(test: &str) -> bool {
    let present = ARCHES.iter().all(|(_, d, _)| deb_of(d).is_file())
        && rpms().iter().all(|(r, _, _)| r.is_file())
        && out_dir().join(format!("mountprop_{VERSION}_oci.tar")).is_file();
    if present {
        return true;
    }
    if std::env::var_os("MOUNTPROP_REQUIRE_PACKAGES").is_some() {
        panic!(
            "{test}: no packages in {} (scripts/package.sh builds them)",
            out_dir().display()
        );
    }
    sandbox::require(test, true, "");
    let line = format!("SKIP {test}: no packages in target/packages; run scripts/package.sh (scripts/test.sh does)");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
    false
}

/// An empty directory of this name under the test's scratch directory.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_deb_holds_the_files_and_scripts() {
    if !packages("deb_contents") {
        return;
    }
    for (_, debarch, _) in ARCHES {
        deb_contents(&deb_of(debarch), debarch);
    }
}

fn deb_contents(d: &Path, debarch: &str) {
    let d = d.to_str().unwrap();
    let list = run("dpkg-deb", &["-c", d]);
    for f in [
        "./usr/bin/mountprop",
        "./usr/lib/systemd/system/mountprop.service",
        "./usr/lib/systemd/system-preset/90-mountprop.preset",
        "./etc/mountprop/config.toml",
        "./usr/share/doc/mountprop/README.md",
        "./usr/share/doc/mountprop/copyright",
        "./usr/share/doc/mountprop/live-probe.conf",
        "./usr/share/doc/mountprop/mountprop-plugin-monitor.json",
        "./usr/share/doc/mountprop/changelog.Debian.gz",
        "./usr/share/man/man8/mountprop.8.gz",
        "./usr/share/man/man5/mountprop.toml.5.gz",
        "./usr/share/bash-completion/completions/mountprop",
        "./usr/share/zsh/vendor-completions/_mountprop",
        "./usr/share/fish/vendor_completions.d/mountprop.fish",
        "./usr/share/lintian/overrides/mountprop",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(f)),
            "{f} missing from the .deb:\n{list}"
        );
    }
    let info = run("dpkg-deb", &["-I", d]);
    assert_eq!(run("dpkg-deb", &["-f", d, "Architecture"]).trim(), debarch, "{d}");
    assert!(
        info.contains("Package: mountprop")
            && info
                .lines()
                .any(|l| l.trim().starts_with("Depends:") && l.contains("systemd")),
        "{info}"
    );
    let ctl = std::env::temp_dir().join(format!("mountprop-debctl-{}-{debarch}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ctl);
    run("dpkg-deb", &["-e", d, ctl.to_str().unwrap()]);
    let read = |f: &str| std::fs::read_to_string(ctl.join(f)).unwrap_or_default();
    assert_eq!(read("conffiles").trim(), "/etc/mountprop/config.toml");
    let postinst = read("postinst");
    assert!(
        postinst.contains("deb-systemd-helper enable mountprop.service")
            && postinst.contains("deb-systemd-invoke $_dh_action mountprop.service"),
        "{postinst}"
    );
    let prerm = read("prerm");
    let stop = prerm
        .find("deb-systemd-invoke stop mountprop.service")
        .expect("prerm stops the service");
    let revert = prerm.find("/usr/bin/mountprop revert").expect("prerm reverts");
    assert!(
        stop < revert,
        "stop first, or the daemon writes its drop-ins again: {prerm}"
    );
    let md5sums = read("md5sums");
    for f in ["usr/bin/mountprop", "usr/share/man/man8/mountprop.8.gz"] {
        assert!(
            md5sums.lines().any(|l| l.ends_with(&format!("  {f}"))),
            "{f} not in md5sums:\n{md5sums}"
        );
    }
    let postrm = read("postrm");
    assert!(
        postrm.contains("deb-systemd-helper purge mountprop.service"),
        "{postrm}"
    );
    let _ = std::fs::remove_dir_all(&ctl);
}

#[test]
fn the_rpms_hold_the_files_scriptlets_and_payloads() {
    if !packages("rpm_contents") {
        return;
    }
    for (r, arch, el7) in rpms() {
        let r = r.to_str().unwrap();
        assert_eq!(run("rpm", &["-qp", "--qf", "%{ARCH}", r]), arch, "{r}");
        let list = run("rpm", &["-qlp", r]);
        for f in [
            "/usr/bin/mountprop",
            "/usr/lib/systemd/system/mountprop.service",
            "/usr/lib/systemd/system-preset/90-mountprop.preset",
            "/etc/mountprop/config.toml",
            "/usr/share/doc/mountprop/README.md",
            "/usr/share/licenses/mountprop/LICENSE",
            "/usr/share/doc/mountprop/live-probe.conf",
            "/usr/share/doc/mountprop/mountprop-plugin-monitor.json",
            "/usr/share/man/man8/mountprop.8.gz",
            "/usr/share/man/man5/mountprop.toml.5.gz",
            "/usr/share/bash-completion/completions/mountprop",
            "/usr/share/zsh/site-functions/_mountprop",
            "/usr/share/fish/vendor_completions.d/mountprop.fish",
        ] {
            assert!(list.lines().any(|l| l == f), "{f} missing from {r}:\n{list}");
        }
        assert_eq!(run("rpm", &["-qpc", r]).trim(), "/etc/mountprop/config.toml");
        let modes = run(
            "rpm",
            &[
                "-qp",
                "--qf",
                "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]",
                r,
            ],
        );
        for want in [
            "-rwxr-xr-x root:root /usr/bin/mountprop",
            "-rw-r--r-- root:root /etc/mountprop/config.toml",
            "-rw-r--r-- root:root /usr/lib/systemd/system/mountprop.service",
            "drwxr-xr-x root:root /etc/mountprop",
        ] {
            assert!(modes.lines().any(|l| l == want), "{want} not in {r}:\n{modes}");
        }
        let scripts = run("rpm", &["-qp", "--scripts", r]);
        for want in [
            "systemctl --no-reload preset mountprop.service",
            "systemctl --no-reload disable --now mountprop.service",
            "/usr/bin/mountprop revert",
            "systemctl try-restart mountprop.service",
        ] {
            assert!(
                scripts.contains(want),
                "{want} not in the scriptlets of {r}:\n{scripts}"
            );
        }
        let payload = run("rpm", &["-qp", "--qf", "%{PAYLOADCOMPRESSOR}", r]);
        assert_eq!(payload, if el7 { "gzip" } else { "zstd" }, "{r}");
    }
}

/// rpm itself unpacks each .rpm into an empty root (scriptlets off: they need a booted
/// systemd) and erases it again: every file arrives whole, and the erase leaves nothing behind.
#[test]
fn the_rpms_install_and_erase_cleanly() {
    if !packages("rpm_install") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (r, arch, el7) in rpms() {
        let root = scratch(&format!("rpmroot-{arch}-{el7}"));
        let (root_s, r_s) = (root.to_str().unwrap(), r.to_str().unwrap());
        // --ignorearch: rpm installs only this machine's architecture otherwise.
        run(
            "rpm",
            &["--root", root_s, "-i", "--nodeps", "--noscripts", "--ignorearch", r_s],
        );
        let bin = dist_bin(arch);
        for (installed, source) in [
            ("usr/bin/mountprop", bin),
            ("etc/mountprop/config.toml", repo.join("packaging/config.toml")),
            (
                "usr/lib/systemd/system/mountprop.service",
                repo.join("systemd/mountprop.service"),
            ),
            ("usr/share/licenses/mountprop/LICENSE", repo.join("LICENSE")),
        ] {
            assert!(
                std::fs::read(root.join(installed)).unwrap() == std::fs::read(&source).unwrap(),
                "{installed} from {r_s} differs from {}",
                source.display()
            );
        }
        run("rpm", &["--root", root_s, "-e", "--noscripts", "mountprop"]);
        for gone in [
            "usr/bin/mountprop",
            "etc/mountprop",
            "usr/share/doc/mountprop",
            "usr/share/licenses/mountprop",
            "usr/lib/systemd/system/mountprop.service",
        ] {
            assert!(!root.join(gone).exists(), "{gone} left after rpm -e of {r_s}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// What the static check reads from an ELF file: its machine, whether it names an interpreter
/// (PT_INTERP: a dynamic loader such as /lib64/ld-linux-x86-64.so.2), the libraries its dynamic
/// section needs (DT_NEEDED), and its section names.
struct Elf {
    machine: u16,
    interp: bool,
    needed: usize,
    sections: Vec<String>,
}

/// A reader for little-endian ELF64, the two architectures packaged; just enough for the check.
fn elf(b: &[u8]) -> Elf {
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "not a little-endian ELF64 file"
    );
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54) as usize, u16_at(56) as usize);
    let (mut interp, mut needed) = (false, 0);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(ph) {
            3 => interp = true,
            2 => {
                // PT_DYNAMIC: 16-byte entries (tag, value) up to DT_NULL; DT_NEEDED is 1.
                let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
                needed += (off..off + size)
                    .step_by(16)
                    .map(&u64_at)
                    .take_while(|&tag| tag != 0)
                    .filter(|&tag| tag == 1)
                    .count();
            }
            _ => {}
        }
    }
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(40),
        u16_at(58) as usize,
        u16_at(60) as usize,
        u16_at(62) as usize,
    );
    let strtab = u64_at(shoff + shstrndx * shentsize + 24);
    let sections = (0..shnum)
        .map(|i| {
            let name = strtab + u32_at(shoff + i * shentsize) as usize;
            let end = b[name..].iter().position(|&c| c == 0).unwrap();
            String::from_utf8_lossy(&b[name..name + end]).into_owned()
        })
        .collect();
    Elf {
        machine: u16_at(18),
        interp,
        needed,
        sections,
    }
}

fn sh_bytes(cmd: &str) -> Vec<u8> {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// Each package carries the static musl binary of its architecture, and declares no libc: one
/// binary for every distribution (Debian 11's glibc 2.31, RHEL 8's 2.28, CentOS 7's 2.17).
#[test]
fn every_package_holds_a_static_binary_of_its_architecture() {
    if !packages("static") {
        return;
    }
    let machine_of = |arch: &str| ARCHES.iter().find(|a| a.0 == arch).unwrap().2;
    let mut checked = Vec::new();
    for (arch, debarch, machine) in ARCHES {
        let d = deb_of(debarch);
        let bin = sh_bytes(&format!(
            "dpkg-deb --fsys-tarfile {} | tar -xO ./usr/bin/mountprop",
            d.display()
        ));
        checked.push((d.clone(), bin, machine));
        let depends = run("dpkg-deb", &["-f", d.to_str().unwrap(), "Depends", "Pre-Depends"]);
        assert!(!depends.contains("libc"), "{}: {depends}", d.display());
        let _ = arch;
    }
    for (r, arch, _) in rpms() {
        let bin = sh_bytes(&format!(
            "rpm2cpio {} | cpio -i --quiet --to-stdout ./usr/bin/mountprop",
            r.display()
        ));
        checked.push((r.clone(), bin, machine_of(arch)));
        let requires = run("rpm", &["-qp", "--requires", r.to_str().unwrap()]);
        for l in requires.lines() {
            assert!(
                !(l.contains("libc") || l.contains("GLIBC") || l.contains("ld-linux") || l.contains(".so")),
                "{} requires {l}:\n{requires}",
                r.display()
            );
        }
    }
    for (pkg, bin, machine) in checked {
        let e = elf(&bin);
        let p = pkg.display();
        assert_eq!(e.machine, machine, "{p}: ELF machine");
        assert!(!e.interp, "{p}: the binary names a dynamic loader (PT_INTERP)");
        assert_eq!(e.needed, 0, "{p}: the binary needs shared libraries (DT_NEEDED)");
        assert!(e.sections.iter().any(|s| s == ".text"), "{p}: no section headers read");
        assert!(
            !e.sections.iter().any(|s| s == ".comment"),
            "{p}: the binary keeps .comment"
        );
    }
}

/// The ELF reader itself, on a binary known to be dynamic: the test above could not fail if
/// the reader never found an interpreter.
#[test]
fn the_elf_reader_sees_a_dynamic_binary() {
    let e = elf(&std::fs::read("/bin/sh").unwrap());
    assert!(e.interp && e.needed > 0, "/bin/sh is dynamic on Debian");
    assert_eq!(e.machine, 62);
    assert!(e.sections.iter().any(|s| s == ".text"));
}

fn sh_out(cmd: &str) -> (bool, String) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A TMPDIR of a test's own, under the target directory, removed when the test ends (on a
/// panic too). lintian leaves its ELF cache (`mldbm-elf-*`) in TMPDIR on every run, and the
/// suite must leave the host's /tmp as it found it.
struct OwnTmp(PathBuf);

impl OwnTmp {
    fn new(name: &str) -> OwnTmp {
        OwnTmp(scratch(&format!("{name}-tmpdir")))
    }

    /// `cmd` run by sh with TMPDIR set to this directory.
    fn sh_out(&self, cmd: &str) -> (bool, String) {
        sh_out(&format!("TMPDIR='{}' {cmd}", self.0.display()))
    }
}

impl Drop for OwnTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// lintian --pedantic on each .deb and rpmlint on each .rpm, both Debian's: no E: or W: tag.
/// What they flag on purpose is overridden, each with its reason (the .deb's
/// usr/share/lintian/overrides/mountprop, packaging/rpm/rpmlint.toml), and each override is
/// seen to be needed: lintian lists what it overrode (O:), and rpmlint without the config
/// reports every filtered tag.
#[test]
fn the_linters_find_nothing_but_what_is_overridden() {
    if !packages("lint") {
        return;
    }
    let tmp = OwnTmp::new("lint");
    for (debarch, own) in [
        ("amd64", "shared-library-lacks-prerequisites"),
        ("arm64", "statically-linked-binary"),
    ] {
        let d = deb_of(debarch);
        let (_, out) = tmp.sh_out(&format!(
            "lintian --pedantic --info --show-overrides {} 2>&1",
            d.display()
        ));
        let tags: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
            .collect();
        assert!(tags.is_empty(), "lintian on {}:\n{}", d.display(), tags.join("\n"));
        for tag in [
            own,
            "command-with-path-in-maintainer-script",
            "initial-upload-closes-no-bugs",
        ] {
            assert!(
                out.lines().any(|l| l.starts_with("O: ") && l.contains(tag)),
                "lintian on {debarch}: the override of {tag} is not used:\n{out}"
            );
        }
        assert!(
            !out.contains("unused-override") && !out.contains("mismatched-override"),
            "{out}"
        );
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpm/rpmlint.toml");
    for (r, arch, _) in rpms() {
        let (_, out) = tmp.sh_out(&format!("rpmlint -c {} {} 2>&1", config.display(), r.display()));
        let tags: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(": E: ") || l.contains(": W: "))
            .collect();
        assert!(tags.is_empty(), "rpmlint on {}:\n{}", r.display(), tags.join("\n"));
        assert!(
            out.contains("1 packages and 0 specfiles checked; 0 errors, 0 warnings"),
            "{out}"
        );
        // rpmlint's own limits, also checked here: Summary and description lines within 79.
        let info = run(
            "rpm",
            &["-qp", "--qf", "%{SUMMARY}\n%{DESCRIPTION}\n", r.to_str().unwrap()],
        );
        assert!(info.lines().all(|l| l.chars().count() <= 79), "{info}");
        let (_, bare) = tmp.sh_out(&format!("rpmlint {} 2>&1", r.display()));
        let mut filtered = vec![
            "statically-linked-binary",
            "no-signature",
            "only-non-binary-in-usr-lib",
            "invalid-license",
            "no-manual-page-for-binary",
            "manpage-not-compressed",
        ];
        if arch == "aarch64" {
            filtered.push("position-independent-executable-suggested");
        }
        for tag in filtered {
            assert!(
                bare.contains(tag),
                "rpmlint without the config on {}: {tag} expected:\n{bare}",
                r.display()
            );
        }
    }
}

/// The installed man pages render with man(1), without a warning, and carry the commands and
/// keys.
#[test]
fn the_man_pages_render() {
    if !packages("man") {
        return;
    }
    let dir = scratch("man-deb");
    run("dpkg-deb", &["-x", deb().to_str().unwrap(), dir.to_str().unwrap()]);
    for (page, want) in [
        (
            "usr/share/man/man8/mountprop.8.gz",
            &[
                "mountprop check",
                "mountprop config default",
                "EXIT STATUS",
                "JOURNAL FIELDS",
                "--root <DIR>",
            ][..],
        ),
        (
            "usr/share/man/man5/mountprop.toml.5.gz",
            &["probe_interval_ms = 80", "[[paths]]", "metrics_file", "ERRORS"][..],
        ),
    ] {
        let p = dir.join(page);
        let o = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&p)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout)
            .replace("\u{2010}", "-")
            .replace("\u{2212}", "-");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && err.trim().is_empty(), "man -l {page}: {err}");
        for w in want {
            assert!(text.contains(w), "{page} lacks {w}:\n{text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// CHANGELOG.md's entries, in both packages: dpkg-parsechangelog reads the Debian one, rpm
/// the %changelog; the same releases and items.
#[test]
fn the_changelogs_come_from_changelog_md() {
    if !packages("changelog") {
        return;
    }
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("CHANGELOG.md")).unwrap();
    let releases: Vec<&str> = md
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let items = md.lines().filter(|l| l.starts_with("- ")).count();
    assert!(!releases.is_empty() && items > 0);
    let (ok, deb) = sh_out(&format!(
        "dpkg-deb --fsys-tarfile {} | tar -xO ./usr/share/doc/mountprop/changelog.Debian.gz | gunzip > {dir}/changelog && dpkg-parsechangelog -l {dir}/changelog --all --show-field Version",
        deb().display(),
        dir = env!("CARGO_TARGET_TMPDIR")
    ));
    assert!(ok, "{deb}");
    assert_eq!(deb.split_whitespace().collect::<Vec<_>>(), releases, "{deb}");
    assert_eq!(releases[0], format!("{VERSION}-1"), "the newest entry is this version");
    let (_, text) = sh_out(&format!("cat {}/changelog", env!("CARGO_TARGET_TMPDIR")));
    assert_eq!(text.lines().filter(|l| l.starts_with("  * ")).count(), items, "{text}");
    // Lintian's limit; the trailer line (maintainer and date) is exempt.
    assert!(
        text.lines().all(|l| l.starts_with(" -- ") || l.chars().count() <= 80),
        "{text}"
    );
    for (r, _, _) in rpms() {
        let log = run("rpm", &["-qp", "--changelog", r.to_str().unwrap()]);
        // The CentOS 7 variant's newest entry is its own release, 0.1.0-1.el7.
        let heads: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("* "))
            .map(|l| l.rsplit(' ').next().unwrap().trim_end_matches(".el7"))
            .collect();
        assert_eq!(heads, releases, "{log}");
        assert_eq!(log.lines().filter(|l| l.starts_with("- ")).count(), items, "{log}");
    }
}

/// The .deb's copyright file parses with dpkg's own deb822 parser (Dpkg::Control::HashCore)
/// into the three DEP-5 paragraphs: header, Files, License.
#[test]
fn the_copyright_file_is_machine_readable() {
    if !packages("copyright") {
        return;
    }
    let parse = r#"use Dpkg::Control::HashCore; open(my $fh, "<", $ARGV[0]) or die; while (1) { my $c = Dpkg::Control::HashCore->new(); last unless $c->parse($fh, "copyright"); print join(",", map { lc } sort keys %$c), "\n"; }"#;
    let file = format!("{}/copyright", env!("CARGO_TARGET_TMPDIR"));
    let (ok, out) = sh_out(&format!(
        "dpkg-deb --fsys-tarfile {} | tar -xO ./usr/share/doc/mountprop/copyright > {file} && perl -e '{parse}' {file}",
        deb().display()
    ));
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "format,source,upstream-contact,upstream-name",
            "copyright,files,license",
            "license"
        ],
        "{out}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\nLicense: MIT\n Permission is hereby granted"), "{text}");
}

/// Both formats carry the completions committed in packaging/completions/.
#[test]
fn the_completions_are_in_both_packages() {
    if !packages("completions") {
        return;
    }
    for (shell, file) in [
        ("bash", "mountprop.bash"),
        ("zsh", "_mountprop"),
        ("fish", "mountprop.fish"),
    ] {
        let want = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("packaging/completions")
                .join(file),
        )
        .unwrap();
        let (deb_path, rpm_path) = match shell {
            "bash" => (
                "./usr/share/bash-completion/completions/mountprop",
                "./usr/share/bash-completion/completions/mountprop",
            ),
            "zsh" => (
                "./usr/share/zsh/vendor-completions/_mountprop",
                "./usr/share/zsh/site-functions/_mountprop",
            ),
            _ => (
                "./usr/share/fish/vendor_completions.d/mountprop.fish",
                "./usr/share/fish/vendor_completions.d/mountprop.fish",
            ),
        };
        for (_, debarch, _) in ARCHES {
            let got = sh_bytes(&format!(
                "dpkg-deb --fsys-tarfile {} | tar -xO {deb_path}",
                deb_of(debarch).display()
            ));
            assert!(got == want, "{shell} completion in the {debarch} .deb");
        }
        for (r, _, _) in rpms() {
            let got = sh_bytes(&format!(
                "rpm2cpio {} | cpio -i --quiet --to-stdout {rpm_path}",
                r.display()
            ));
            assert!(got == want, "{shell} completion in {}", r.display());
        }
    }
}

#[test]
fn the_packaged_config_is_the_commented_default() {
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/config.toml")).unwrap();
    assert_eq!(
        shipped,
        mountprop::config::DEFAULT_TOML,
        "packaging/config.toml: regenerate with `mountprop config default`"
    );
    let preset =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/90-mountprop.preset")).unwrap();
    assert_eq!(preset.trim(), "enable mountprop.service");
}

/// The DaemonSet's OCI image archive: an index named localhost/mountprop:VERSION over one
/// manifest per architecture; each has one layer holding /usr/bin/mountprop alone (the staged
/// static binary, byte for byte) and runs `mountprop daemon` with MOUNTPROP_ENTER_HOST=1.
#[test]
fn oci_image_holds_the_static_binary_alone() {
    if !packages("oci_image") {
        return;
    }
    let archive = out_dir().join(format!("mountprop_{VERSION}_oci.tar"));
    let dir = scratch("oci");
    run("tar", &["-xf", archive.to_str().unwrap(), "-C", dir.to_str().unwrap()]);
    let json = |rel: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))).unwrap()
    };
    let blob = |digest: &serde_json::Value| {
        let d = digest.as_str().expect("digest");
        format!("blobs/sha256/{}", d.strip_prefix("sha256:").expect("sha256"))
    };
    assert_eq!(json("oci-layout")["imageLayoutVersion"], "1.0.0");
    let index = json("index.json");
    let named = &index["manifests"][0];
    assert_eq!(
        named["annotations"]["io.containerd.image.name"],
        format!("localhost/mountprop:{VERSION}")
    );
    let platforms = json(&blob(&named["digest"]));
    let mut seen = Vec::new();
    for m in platforms["manifests"].as_array().expect("manifests") {
        let arch = m["platform"]["architecture"].as_str().expect("arch").to_string();
        let manifest = json(&blob(&m["digest"]));
        let config = json(&blob(&manifest["config"]["digest"]));
        assert_eq!(config["architecture"], arch.as_str());
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/usr/bin/mountprop"])
        );
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["daemon"]));
        assert_eq!(config["config"]["Env"], serde_json::json!(["MOUNTPROP_ENTER_HOST=1"]));
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1);
        let layer = dir.join(blob(&layers[0]["digest"]));
        let listing = run("tar", &["-tzvf", layer.to_str().unwrap()]);
        let names: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().last()).collect();
        assert_eq!(names, ["usr/", "usr/bin/", "usr/bin/mountprop"], "{listing}");
        assert!(listing.contains("-rwxr-xr-x 0/0"), "{listing}");
        let unpacked = dir.join(format!("rootfs-{arch}"));
        std::fs::create_dir_all(&unpacked).unwrap();
        run(
            "tar",
            &["-xzf", layer.to_str().unwrap(), "-C", unpacked.to_str().unwrap()],
        );
        let (binary_arch, _, _) = ARCHES.iter().find(|(_, d, _)| *d == arch).expect("a packaged arch");
        assert!(
            std::fs::read(unpacked.join("usr/bin/mountprop")).unwrap() == std::fs::read(dist_bin(binary_arch)).unwrap(),
            "{arch}: the layer's binary is the staged one"
        );
        seen.push(arch);
    }
    seen.sort();
    assert_eq!(seen, ["amd64", "arm64"]);
    eprintln!(
        "OCI image archive: {} bytes",
        std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0)
    );
}

/// The same binary and sources give byte-identical packages.
#[test]
fn packages_rebuild_byte_identical() {
    if !packages("reproducible") {
        return;
    }
    let dir = scratch("repro");
    let epoch = run("git", &["-C", env!("CARGO_MANIFEST_DIR"), "log", "-1", "--format=%ct"]);
    // The shipped script, once for each format, into a directory of its own.
    let build = |n: u32| -> Vec<Vec<u8>> {
        let out = dir.join(n.to_string());
        for what in ["deb", "rpm", "image"] {
            let o = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package.sh"))
                .args([what, out.to_str().unwrap()])
                .env("SOURCE_DATE_EPOCH", epoch.trim())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "scripts/package.sh {what}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        NAMES
            .iter()
            .map(|f| std::fs::read(out.join(f.replace("V", VERSION))).unwrap())
            .collect()
    };
    const NAMES: [&str; 5] = [
        "mountprop_V-1_amd64.deb",
        "mountprop_V-1_arm64.deb",
        "mountprop-V-1.x86_64.rpm",
        "mountprop-V-1.aarch64.rpm",
        "mountprop_V_oci.tar",
    ];
    let first = build(1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build(2);
    for (f, (a, b)) in NAMES.iter().zip(first.iter().zip(&second)) {
        assert!(a == b, "{f} differs between two builds");
    }
}

/// dpkg -i on a node with an old docker unit: enabled, running, node fixed. dpkg --purge:
/// mountprop's drop-ins gone, someone else's drop-in untouched, service gone.
#[test]
fn deb_install_and_purge_on_a_node() {
    if !packages("deb_install_purge") {
        return;
    }
    let other = "/etc/systemd/system/docker.service.d/10-site.conf";
    let setup = Setup::default()
        .file("docker.service", OLD_DOCKER)
        .file("docker.service.d/10-site.conf", "[Service]\nEnvironment=SITE=1\n");
    let Some(sb) = sandbox::boot("deb_install_purge", setup) else {
        return;
    };
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    // This build machine's base image carries a policy-rc.d that forbids starting services
    // (exit 101); a node has none. Gone in the node's /usr overlay only.
    sb.exec(&["rm", "-f", "/usr/sbin/policy-rc.d"]).ok();
    let d = sb.copy_in(&deb());
    let install = sb.exec(&["dpkg", "-i", &d]);
    assert_eq!(install.code, 0, "{install:#?}");
    assert_eq!(
        sb.exec(&["systemctl", "is-enabled", "mountprop.service"]).stdout.trim(),
        "enabled"
    );
    let active = |sb: &Sandbox| {
        sb.exec(&["systemctl", "is-active", "mountprop.service"])
            .stdout
            .trim()
            .to_string()
    };
    let t = std::time::Instant::now();
    while active(&sb) != "active" && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(active(&sb), "active");
    let status = sb
        .exec(&["systemctl", "status", "--no-pager", "mountprop.service"])
        .stdout;
    assert!(
        status
            .lines()
            .any(|l| l.trim_start().starts_with("Status: \"") && l.contains("docker.service")),
        "{status}"
    );
    let own = "/etc/systemd/system/docker.service.d/90-mountprop.conf";
    assert!(
        sb.read(own).is_some_and(|c| c.ends_with("MountFlags=shared\n")),
        "the node was fixed"
    );
    assert_eq!(sb.mount_flags("docker.service"), 1048576);
    assert!(sb.read("/etc/mountprop/config.toml").is_some(), "conffile installed");

    let purge = sb.exec(&["dpkg", "--purge", "mountprop"]);
    assert_eq!(purge.code, 0, "{purge:#?}");
    assert!(sb.read(own).is_none(), "mountprop's drop-in removed");
    assert_eq!(
        sb.read(other).as_deref(),
        Some("[Service]\nEnvironment=SITE=1\n"),
        "another drop-in untouched"
    );
    assert!(sb.read("/etc/mountprop/config.toml").is_none(), "conffile purged");
    assert_eq!(sb.exec(&["systemctl", "cat", "mountprop.service"]).code, 1, "unit gone");
    assert_eq!(sb.exec(&["test", "-e", "/usr/bin/mountprop"]).code, 1);
    assert_eq!(
        sb.mount_flags("docker.service"),
        524288,
        "systemd reloaded: back to the unit's own setting"
    );
}
