//! The image recipes under packaging/, tested where this machine allows.

mod sandbox;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mountprop::config::MountFlagsMode;
use mountprop::dropin;
use sandbox::{Sandbox, Setup};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn sh(cmd: &str) -> (i32, String) {
    let o = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIP {test}: {why} ***\n");
}

/// packaging/debian/build-image.sh makes a Debian 12 tree with the .deb in it and mountprop
/// applied with --root; booted as a node's root filesystem, mountprop.service runs and reports ok.
#[test]
fn debian_image_boots_with_mountprop_running() {
    let test = "debian_image_boots_with_mountprop_running";
    let deb = repo(&format!(
        "target/packages/mountprop_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    if !deb.is_file() {
        if std::env::var_os("MOUNTPROP_REQUIRE_PACKAGES").is_some() {
            panic!("{test}: {} missing", deb.display());
        }
        return skip(test, "no .deb in target/packages (scripts/package.sh deb)");
    }
    if !sandbox::require(
        test,
        Path::new("/usr/sbin/debootstrap").exists(),
        "debootstrap is not installed (scripts/deps.sh installs it)",
    ) {
        return;
    }
    // The terms: with no reachable Debian mirror, this is skipped, with the reason. The
    // mirror is the one the recipe itself takes: this machine's, from its apt setup.
    let script = repo("packaging/debian/build-image.sh");
    let (code, out) = sh(&format!(
        "m=$({} --print-mirror) && timeout 20 curl -fsSI \"$m/dists/bookworm/Release\"",
        script.display()
    ));
    if code != 0 {
        return skip(
            test,
            &format!(
                "the Debian mirror is not reachable: {}",
                out.lines().next().unwrap_or("")
            ),
        );
    }
    let tree = repo("target/debian-image");
    let t = Instant::now();
    let (code, out) = sh(&format!("{} {} {}", script.display(), tree.display(), deb.display()));
    assert_eq!(code, 0, "{out}");
    eprintln!("image built in {:?}", t.elapsed());
    let link = tree.join("etc/systemd/system/multi-user.target.wants/mountprop.service");
    assert!(std::fs::symlink_metadata(&link).is_ok(), "enabled in the tree");
    assert!(
        tree.join("etc/systemd/system/docker.service.d/90-mountprop.conf")
            .is_file(),
        "drop-in written ahead"
    );

    let Some(sb) = sandbox::boot("debian_image", Setup::default().with_root(&tree)) else {
        return;
    };
    let prop = |p: &str| {
        sb.exec(&["systemctl", "show", "-p", p, "--value", "mountprop.service"])
            .stdout
            .trim()
            .to_string()
    };
    let start = Instant::now();
    while !(prop("ActiveState") == "active" && prop("StatusText").starts_with("ok: "))
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The host has /work (this repository); the image does not.
    assert_eq!(
        sb.exec(&["test", "-e", "/work"]).code,
        1,
        "booted the image, not the host"
    );
    assert!(sb.exec(&["cat", "/etc/os-release"]).stdout.contains("bookworm"));
    assert_eq!(prop("ActiveState"), "active", "{}", sb.journal());
    let status = prop("StatusText");
    assert!(
        status.starts_with("ok: / shared:") && status.contains("docker.service absent"),
        "{status}"
    );
    let st = sb.exec(&["/usr/bin/mountprop", "status"]);
    assert_eq!(st.code, 0, "{st:#?}");
    assert!(Sandbox::propagation_of(&sb.mountinfo("1"), "/").starts_with("shared:"));
}

/// The Butane configs install mountprop's drop-in with its exact text, so the daemon, once it
/// runs, takes those files as its own instead of leaving them as someone else's.
#[test]
fn butane_configs_carry_mountprops_own_dropin() {
    // CoreOS and Flatcar run systemd >= 242.
    let want = dropin::render(&dropin::choose(MountFlagsMode::Auto, Some(255)));
    let block: String = want.lines().map(|l| format!("            {l}\n")).collect();
    for f in ["packaging/fedora-coreos/mountprop.bu", "packaging/flatcar/mountprop.bu"] {
        let text = std::fs::read_to_string(repo(f)).unwrap();
        assert_eq!(
            text.matches(&block).count(),
            3,
            "{f}: docker, containerd and crio drop-ins must be exactly\n{block}"
        );
        assert!(!text.contains('\t'), "{f}: YAML must not hold tabs");
        assert!(text.contains("local: mountprop.service") && repo("systemd/mountprop.service").is_file());
        let bin = if f.contains("coreos") {
            "/usr/local/bin/mountprop"
        } else {
            "/opt/bin/mountprop"
        };
        assert!(
            text.contains(&format!("- path: {bin}\n")) && text.contains(&format!("ExecStart={bin} daemon")),
            "{f}"
        );
    }
}

/// The Flatcar sysext, for each architecture, from the static binary the packages ship: it
/// holds the binary, the unit, the drop-in that starts it, and a release file that Flatcar
/// accepts, naming the binary's architecture. A dynamically linked binary is refused.
#[test]
fn flatcar_sysext_has_binary_unit_and_release() {
    let test = "flatcar_sysext";
    if !sandbox::require(
        test,
        Path::new("/usr/bin/mksquashfs").exists(),
        "squashfs-tools is not installed (scripts/deps.sh installs it)",
    ) {
        return;
    }
    let script = repo("packaging/flatcar/build-sysext.sh");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mountprop.raw");
    let (code, log) = sh(&format!("{} {} {}", script.display(), sandbox::BIN, out.display()));
    assert!(
        code != 0 && log.contains("dynamically linked"),
        "the test build is dynamic and must be refused: {log}"
    );
    for (arch, release_arch) in [("x86_64", "x86-64"), ("aarch64", "arm64")] {
        let bin = repo(&format!("target/dist/{arch}/mountprop"));
        if !bin.is_file() {
            if std::env::var_os("MOUNTPROP_REQUIRE_PACKAGES").is_some() {
                panic!("{test}: {} missing", bin.display());
            }
            skip(test, &format!("no {} (scripts/package.sh stages it)", bin.display()));
            continue;
        }
        sysext(&script, &bin, &out, release_arch);
    }
}

fn sysext(script: &Path, bin: &Path, out: &Path, release_arch: &str) {
    let (code, log) = sh(&format!("{} {} {}", script.display(), bin.display(), out.display()));
    assert_eq!(code, 0, "{log}");
    let (code, list) = sh(&format!("unsquashfs -l {}", out.display()));
    assert_eq!(code, 0, "{list}");
    for f in [
        "usr/bin/mountprop",
        "usr/lib/systemd/system/mountprop.service",
        "usr/lib/systemd/system/multi-user.target.d/10-mountprop.conf",
        "usr/lib/extension-release.d/extension-release.mountprop",
    ] {
        assert!(list.lines().any(|l| l.ends_with(f)), "{f} missing:\n{list}");
    }
    let (_, release) = sh(&format!(
        "unsquashfs -cat {} usr/lib/extension-release.d/extension-release.mountprop",
        out.display()
    ));
    assert!(
        release.contains("ID=flatcar")
            && release.contains("SYSEXT_LEVEL=1.0")
            && release.contains(&format!("ARCHITECTURE={release_arch}\n")),
        "{release}"
    );
    let (_, upholds) = sh(&format!(
        "unsquashfs -cat {} usr/lib/systemd/system/multi-user.target.d/10-mountprop.conf",
        out.display()
    ));
    assert_eq!(upholds, "[Unit]\nUpholds=mountprop.service\n");
    let (_, packed) = sh(&format!("unsquashfs -cat {} usr/bin/mountprop | md5sum", out.display()));
    let (_, shipped) = sh(&format!("md5sum < {}", bin.display()));
    assert_eq!(packed, shipped, "the sysext holds {}", bin.display());
}
