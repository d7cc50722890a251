//! `--root`: mountprop reads a tree the way systemd will. Checked against the real thing: the
//! same files are put on a booted systemd 252, and its `MountFlags` must equal what
//! `mountprop check --root` computes, layout after layout.

mod sandbox;

use sandbox::{Sandbox, Setup};

const UNIT: &str = "mp-test.service";
const CONFIG: &str = "/etc/mountprop/mp-test.toml";

enum F {
    File(&'static str, &'static str),
    Link(&'static str, &'static str),
}

struct Layout {
    name: &'static str,
    files: Vec<F>,
    /// What systemd 252 reports (asserted too, so a layout that does not test what it says fails).
    want: u64,
}

const SHARED: u64 = 1048576;
const SLAVE: u64 = 524288;
const PRIVATE: u64 = 262144;
const FRAG: &str = "[Unit]\nDescription=layout\n[Service]\nExecStart=/bin/sleep infinity\n";

fn layouts() -> Vec<Layout> {
    use F::{File, Link};
    vec![
        Layout {
            name: "fragment in /usr/lib only",
            files: vec![File(
                "/usr/lib/systemd/system/mp-test.service",
                "[Service]\nExecStart=/bin/true\nMountFlags=slave\n",
            )],
            want: SLAVE,
        },
        Layout {
            name: "/etc fragment replaces /usr/lib's, /usr/lib drop-ins still apply",
            files: vec![
                File(
                    "/usr/lib/systemd/system/mp-test.service",
                    "[Service]\nExecStart=/bin/true\nMountFlags=slave\n",
                ),
                File("/etc/systemd/system/mp-test.service", FRAG),
                File(
                    "/usr/lib/systemd/system/mp-test.service.d/50-vendor.conf",
                    "[Service]\nMountFlags=private\n",
                ),
            ],
            want: PRIVATE,
        },
        Layout {
            name: "drop-ins from /etc, /run, /usr/lib applied by file name",
            files: vec![
                File("/usr/lib/systemd/system/mp-test.service", FRAG),
                File(
                    "/etc/systemd/system/mp-test.service.d/05-c.conf",
                    "[Service]\nMountFlags=slave\n",
                ),
                File(
                    "/usr/lib/systemd/system/mp-test.service.d/10-a.conf",
                    "[Service]\nMountFlags=private\n",
                ),
                File(
                    "/run/systemd/system/mp-test.service.d/20-b.conf",
                    "[Service]\nMountFlags=shared\n",
                ),
            ],
            want: SHARED,
        },
        Layout {
            name: "same file name in /etc and /run: only /etc's counts",
            files: vec![
                File(
                    "/usr/lib/systemd/system/mp-test.service",
                    "[Service]\nExecStart=/bin/true\nMountFlags=private\n",
                ),
                File(
                    "/etc/systemd/system/mp-test.service.d/50-x.conf",
                    "[Service]\nMountFlags=slave\n",
                ),
                File(
                    "/run/systemd/system/mp-test.service.d/50-x.conf",
                    "[Service]\nMountFlags=shared\n",
                ),
            ],
            want: SLAVE,
        },
        Layout {
            name: "an empty MountFlags= resets",
            files: vec![
                File(
                    "/usr/lib/systemd/system/mp-test.service",
                    "[Service]\nExecStart=/bin/true\nMountFlags=slave\n",
                ),
                File(
                    "/run/systemd/system/mp-test.service.d/10-x.conf",
                    "[Service]\nMountFlags=shared\n",
                ),
                File(
                    "/etc/systemd/system/mp-test.service.d/99-reset.conf",
                    "[Service]\nMountFlags=\n",
                ),
            ],
            want: 0,
        },
        Layout {
            name: "an invalid value is ignored",
            files: vec![
                File(
                    "/etc/systemd/system/mp-test.service",
                    "[Service]\nExecStart=/bin/true\nMountFlags=slave\n",
                ),
                File(
                    "/etc/systemd/system/mp-test.service.d/50-bad.conf",
                    "[Service]\nMountFlags=rshared\n",
                ),
            ],
            want: SLAVE,
        },
        Layout {
            name: "a /dev/null drop-in masks a lower one of its name",
            files: vec![
                File(
                    "/usr/lib/systemd/system/mp-test.service",
                    "[Service]\nExecStart=/bin/true\nMountFlags=slave\n",
                ),
                File(
                    "/usr/lib/systemd/system/mp-test.service.d/50-x.conf",
                    "[Service]\nMountFlags=shared\n",
                ),
                Link("/etc/systemd/system/mp-test.service.d/50-x.conf", "/dev/null"),
            ],
            want: SLAVE,
        },
        Layout {
            name: "a prefix dir in /etc outranks the unit's own dir in /usr/lib",
            files: vec![
                File("/usr/lib/systemd/system/mp-test.service", FRAG),
                File(
                    "/usr/lib/systemd/system/mp-test.service.d/50-x.conf",
                    "[Service]\nMountFlags=shared\n",
                ),
                File(
                    "/etc/systemd/system/mp-.service.d/50-x.conf",
                    "[Service]\nMountFlags=private\n",
                ),
                File(
                    "/usr/lib/systemd/system/mp-.service.d/10-p.conf",
                    "[Service]\nMountFlags=slave\n",
                ),
            ],
            want: PRIVATE,
        },
        Layout {
            name: "continuation lines, comments, and a key in the wrong section",
            files: vec![File(
                "/etc/systemd/system/mp-test.service",
                "[Unit]\nMountFlags=private\n[Service]\n# MountFlags=shared\nExecStart=/bin/sleep \\\n  infinity\nMountFlags=\\\n  slave\n",
            )],
            want: SLAVE,
        },
        Layout {
            name: "a unit file symlinked to another name",
            files: vec![
                File(
                    "/usr/lib/systemd/system/mp-real.service",
                    "[Service]\nExecStart=/bin/true\nMountFlags=private\n",
                ),
                Link(
                    "/etc/systemd/system/mp-test.service",
                    "/usr/lib/systemd/system/mp-real.service",
                ),
            ],
            want: PRIVATE,
        },
        // Last: a type-wide drop-in applies to every service on the node.
        Layout {
            name: "the type-wide service.d, overridden by the unit's own drop-in",
            files: vec![
                File("/usr/lib/systemd/system/mp-test.service", FRAG),
                File(
                    "/run/systemd/system/service.d/10-all.conf",
                    "[Service]\nMountFlags=slave\n",
                ),
                File(
                    "/run/systemd/system/service.d/50-x.conf",
                    "[Service]\nMountFlags=private\n",
                ),
                File(
                    "/usr/lib/systemd/system/mp-test.service.d/50-x.conf",
                    "[Service]\nMountFlags=shared\n",
                ),
            ],
            want: SHARED,
        },
    ]
}

fn clean(sb: &Sandbox) {
    sb.sh(
        "rm -rf /etc/systemd/system/mp-* /run/systemd/system/mp-* /usr/lib/systemd/system/mp-* \
         /run/systemd/system/service.d",
    )
    .ok();
}

#[test]
fn root_mode_computes_what_systemd_loads() {
    let Some(sb) = sandbox::boot("image_layouts", Setup::default()) else {
        return;
    };
    sb.write(CONFIG, &format!("units = [\"{UNIT}\"]\n"));
    let mut failures = Vec::new();
    for l in layouts() {
        clean(&sb);
        for f in &l.files {
            match f {
                F::File(path, text) => sb.write(path, text),
                F::Link(path, target) => {
                    sb.sh(&format!("mkdir -p \"$(dirname {path})\" && ln -sf {target} {path}"))
                        .ok();
                }
            }
        }
        sb.exec(&["systemctl", "daemon-reload"]).ok();
        let real = sb.mount_flags(UNIT);
        let r = sb.mountprop(&["--config", CONFIG, "check", "--root", "/", "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{}: {e}: {r:#?}", l.name));
        let ours = v["mount_flags"][UNIT].as_u64();
        eprintln!("{:<70} systemd {real:>7}  mountprop {ours:?}", l.name);
        if real != l.want || ours != Some(real) {
            failures.push(format!(
                "{}: systemd {real} (layout expects {}), mountprop {ours:?}",
                l.name, l.want
            ));
        }
    }
    clean(&sb);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// In a tree, apply writes only below the tree, writes drop-ins ahead for runtimes that are not
/// installed yet, enables mountprop.service as systemctl would, and changes nothing the second
/// time; revert takes back exactly mountprop's files.
#[test]
fn apply_and_revert_on_a_tree_stay_inside_it() {
    let test = "apply_and_revert_on_a_tree_stay_inside_it";
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tree");
    let _ = std::fs::remove_dir_all(&dir);
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "usr/lib/systemd/system/docker.service",
        "[Service]\nExecStart=/usr/bin/dockerd\nMountFlags=slave\n",
    );
    w(
        "usr/lib/systemd/system/mountprop.service",
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/mountprop.service")).unwrap(),
    );
    w("usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so", "");
    w(
        "etc/systemd/system/docker.service.d/zz-site.conf",
        "[Service]\nEnvironment=SITE=1\n",
    );
    std::os::unix::fs::symlink("usr/lib", dir.join("lib")).unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(sandbox::BIN).args(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let d = dir.to_str().unwrap();
    let (code, out) = run(&["check", "--root", d]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("MountFlags=slave (set in ") && out.contains("usr/lib/systemd/system/docker.service:3)"),
        "{out}"
    );
    let (code, out) = run(&["apply", "--root", d]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_link(dir.join("etc/systemd/system/multi-user.target.wants/mountprop.service")).unwrap(),
        std::path::Path::new("/lib/systemd/system/mountprop.service")
    );
    let own = dir.join("etc/systemd/system/docker.service.d/90-mountprop.conf");
    assert!(std::fs::read_to_string(&own).unwrap().ends_with("MountFlags=shared\n"));
    assert!(
        dir.join("etc/systemd/system/crio.service.d/90-mountprop.conf")
            .is_file(),
        "written ahead"
    );
    let (code, out) = run(&["apply", "--root", d, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["actions"], serde_json::json!([]), "second run changes nothing");
    assert_eq!(v["mount_flags"]["docker.service"], SHARED);

    let (code, out) = run(&["revert", "--root", d]);
    assert_eq!(code, 0, "{out}");
    assert!(!own.exists());
    assert!(
        dir.join("etc/systemd/system/docker.service.d/zz-site.conf").is_file(),
        "others' files stay"
    );
    assert!(
        !dir.join("etc/systemd/system/crio.service.d").exists(),
        "its emptied directory goes too"
    );
    let (code, out) = run(&["revert", "--root", d]);
    assert_eq!((code, out.trim()), (0, "nothing to revert"), "revert is idempotent");
    let _ = test;
}

/// A tree whose drop-in directory is a symlink out of the tree: apply refuses it and writes
/// nothing outside the tree.
#[test]
fn a_symlink_in_the_tree_cannot_lead_a_write_outside() {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("escape");
    let _ = std::fs::remove_dir_all(&base);
    let (tree, outside) = (base.join("tree"), base.join("outside"));
    std::fs::create_dir_all(tree.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(tree.join("usr/lib/systemd/system")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        tree.join("usr/lib/systemd/system/docker.service"),
        "[Service]\nMountFlags=slave\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("etc/systemd/system/docker.service.d")).unwrap();
    let o = std::process::Command::new(sandbox::BIN)
        .args(["apply", "--root", tree.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("docker.service.d is a symlink; refusing to follow it"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside the tree"
    );
}
