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

fn deb() -> PathBuf {
    out_dir().join(format!("mountprop_{VERSION}-1_amd64.deb"))
}

fn rpm(el7: bool) -> PathBuf {
    out_dir().join(format!(
        "mountprop-{VERSION}-1{}.x86_64.rpm",
        if el7 { ".el7" } else { "" }
    ))
}

/// Whether the packages are there; a loud SKIP (or, when required, a failure) if not.
fn packages(test: &str) -> bool {
    let present = deb().is_file() && rpm(false).is_file() && rpm(true).is_file();
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
    let d = deb();
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
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(f)),
            "{f} missing from the .deb:\n{list}"
        );
    }
    let info = run("dpkg-deb", &["-I", d]);
    assert!(
        info.contains("Package: mountprop")
            && info
                .lines()
                .any(|l| l.trim().starts_with("Depends:") && l.contains("systemd")),
        "{info}"
    );
    let ctl = std::env::temp_dir().join(format!("mountprop-debctl-{}", std::process::id()));
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
    for el7 in [false, true] {
        let r = rpm(el7);
        let r = r.to_str().unwrap();
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
    // The CentOS 7 variant runs there only if it is the static musl build.
    let requires = run("rpm", &["-qp", "--requires", rpm(true).to_str().unwrap()]);
    let musl = run("rustup", &["target", "list", "--installed"])
        .lines()
        .any(|l| l == "x86_64-unknown-linux-musl");
    if musl {
        assert!(
            !requires.contains("GLIBC"),
            "the el7 rpm must hold the static build:\n{requires}"
        );
    } else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"\n*** SKIP el7 glibc check: no x86_64-unknown-linux-musl target here; the el7 rpm holds a glibc build ***\n",
        );
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
    let musl = repo.join("target/x86_64-unknown-linux-musl/release/mountprop");
    for el7 in [false, true] {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rpmroot-{el7}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let r = rpm(el7);
        let (root_s, r_s) = (root.to_str().unwrap(), r.to_str().unwrap());
        run("rpm", &["--root", root_s, "-i", "--nodeps", "--noscripts", r_s]);
        let bin = if el7 && musl.is_file() {
            musl.clone()
        } else {
            repo.join("target/release/mountprop")
        };
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

/// The same binary and sources give byte-identical packages.
#[test]
fn packages_rebuild_byte_identical() {
    if !packages("reproducible") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("repro");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let epoch = run("git", &["-C", env!("CARGO_MANIFEST_DIR"), "log", "-1", "--format=%ct"]);
    // The shipped script, once for each format, into a directory of its own.
    let build = |n: u32| -> (Vec<u8>, Vec<u8>) {
        let out = dir.join(n.to_string());
        for what in ["deb", "rpm"] {
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
        (
            std::fs::read(out.join(format!("mountprop_{VERSION}-1_amd64.deb"))).unwrap(),
            std::fs::read(out.join(format!("mountprop-{VERSION}-1.x86_64.rpm"))).unwrap(),
        )
    };
    let (d1, r1) = build(1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (d2, r2) = build(2);
    assert!(d1 == d2, "the .deb differs between two builds");
    assert!(r1 == r2, "the .rpm differs between two builds");
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
