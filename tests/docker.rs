//! Scenario 10: the real dockerd from Debian's docker.io, in the node, deciding for itself
//! whether a `:rshared` / `:rslave` volume can be mounted, and mountprop's verdicts beside it.

mod sandbox;

use std::path::Path;

use sandbox::{Run, Sandbox, Setup};

/// The old package default, as a drop-in that sorts before mountprop's.
const OLD_DOCKER_DROPIN: &str = "[Service]\nMountFlags=slave\n";
/// Keep Docker off any network; vfs because overlay on the node's overlayfs is refused.
const DAEMON_JSON: &str =
    r#"{"bridge": "none", "iptables": false, "ip-forward": false, "ip-masq": false, "storage-driver": "vfs"}"#;
const DOCKER: &str = "/usr/bin/docker";

/// A node with the real dockerd (its unit as Debian ships it, plus `dropin`), `prepare` run
/// before it starts, and a one-binary image `bb:1` made offline.
fn docker_node(test: &str, dropin: Option<&str>, prepare: &str, config: &str) -> Option<Sandbox> {
    let have = Path::new("/usr/sbin/dockerd").exists() && Path::new("/bin/busybox").exists();
    if !sandbox::require(
        test,
        have,
        "docker.io and busybox-static are not installed (scripts/deps.sh installs them)",
    ) {
        return None;
    }
    let mut setup = Setup::default()
        .with_host_runtimes()
        .etc("docker/daemon.json", DAEMON_JSON)
        .etc("mountprop/config.toml", config);
    if let Some(d) = dropin {
        setup = setup.file("docker.service.d/10-old-docker.conf", d);
    }
    let sb = sandbox::boot(test, setup)?;
    sb.sh(&format!("set -e; mkdir -p /var/lib/kubelet; {prepare}")).ok();
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    sb.sh(
        "set -e; r=/var/tmp/rootfs; mkdir -p $r/bin $r/var/lib/kubelet; cp /bin/busybox $r/bin/; \
         for a in sh true mount cat ls sleep; do ln -s busybox $r/bin/$a; done; \
         tar -C $r -cf /var/tmp/rootfs.tar . && /usr/bin/docker import /var/tmp/rootfs.tar bb:1 >/dev/null",
    )
    .ok();
    Some(sb)
}

fn run_with_volume(sb: &Sandbox, mode: &str) -> Run {
    let vol = format!("/var/lib/kubelet:/var/lib/kubelet:{mode}");
    sb.exec(&[
        DOCKER,
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &vol,
        "bb:1",
        "/bin/true",
    ])
}

fn verdict_of(sb: &Sandbox, subject: &str) -> (String, String) {
    let (_, report) = sb.check_json(None);
    let v = Sandbox::verdict(&report, subject);
    (
        v["status"].as_str().unwrap().to_string(),
        v["detail"].as_str().unwrap().to_string(),
    )
}

/// Whether mountprop says [HostToContainer, Bidirectional] work.
fn modes_of(sb: &Sandbox) -> [bool; 2] {
    let (_, report) = sb.check_json(None);
    ["HostToContainer", "Bidirectional"].map(|name| {
        report["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mode"] == name))
            .map(|m| m["works"] == true)
            .unwrap_or_else(|| panic!("no mode {name}: {report:#}"))
    })
}

#[test]
fn s10_real_docker_agrees_with_mountprop() {
    let test = "s10_real_docker_agrees_with_mountprop";
    let Some(sb) = docker_node(test, Some(OLD_DOCKER_DROPIN), "", "restart = \"always\"\n") else {
        return;
    };
    assert_eq!(sb.mount_flags("docker.service"), 524288);

    // (a) `/` private: Docker refuses a Bidirectional volume, and so does mountprop's verdict.
    let a = run_with_volume(&sb, "rshared");
    assert_eq!(a.code, 125, "{a:#?}");
    assert!(
        a.stderr
            .contains("path /var/lib/kubelet is mounted on /var but it is not a shared mount"),
        "{}",
        a.stderr
    );
    let (status, detail) = verdict_of(&sb, "/");
    assert_eq!(status, "drift");
    assert!(detail.starts_with("private"), "{detail}");
    let a_rslave = run_with_volume(&sb, "rslave");
    assert_eq!(a_rslave.code, 125, "{a_rslave:#?}");
    assert_eq!(modes_of(&sb), [false, false], "as Docker: neither :rslave nor :rshared");

    // (b) `/` rshared, docker.service still MountFlags=slave: HostToContainer only.
    sb.exec(&["mount", "--make-rshared", "/"]).ok();
    sb.exec(&["systemctl", "restart", "docker.service"]).ok();
    let b = run_with_volume(&sb, "rshared");
    assert_eq!(b.code, 125, "{b:#?}");
    assert!(b.stderr.contains("is not a shared mount"), "{}", b.stderr);
    run_with_volume(&sb, "rslave").ok();
    assert_eq!(verdict_of(&sb, "/").0, "ok");
    let (status, detail) = verdict_of(&sb, "docker.service");
    assert_eq!(status, "drift", "{detail}");
    assert!(
        detail.contains("MountFlags=slave (set in /etc/systemd/system/docker.service.d/10-old-docker.conf:2)"),
        "{detail}"
    );
    assert!(detail.contains("only receives from the host"), "{detail}");
    assert_eq!(modes_of(&sb), [true, false], "as Docker: :rslave but not :rshared");

    // (c) mountprop apply, restarts allowed: Docker accepts the Bidirectional volume.
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 0, "{apply:#?}");
    assert!(
        apply.stdout.contains("restart docker.service: done"),
        "{}",
        apply.stdout
    );
    run_with_volume(&sb, "rshared").ok();
    assert_eq!(modes_of(&sb), [true, true], "as Docker: :rshared works");
    assert_eq!(sb.mount_flags("docker.service"), 1048576);
    let (status, detail) = verdict_of(&sb, "docker.service");
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.contains("runs in the host's mount namespace"), "{detail}");
}

/// The names and destinations of the stale containers in a JSON report.
fn stale_of(report: &serde_json::Value) -> Vec<(String, String)> {
    report["stale_containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no stale_containers: {report:#}"))
        .iter()
        .flat_map(|c| {
            c["volumes"].as_array().expect("volumes").iter().map(move |v| {
                (
                    format!(
                        "{} {}",
                        c["runtime"].as_str().unwrap_or("-"),
                        c["container"].as_str().unwrap_or("-")
                    ),
                    v["destination"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

/// Docker containers started while the kubelet root was only a slave (Docker accepts `:rslave`
/// there): after `apply`, the old one is listed by its Docker name with `docker restart` as the
/// remedy, the one with a private volume never is, and after `docker restart` it is fine.
#[test]
fn s10b_stale_docker_containers() {
    let test = "s10b_stale_docker_containers";
    let config = "restart = \"always\"\n[[paths]]\npath = \"/\"\n[[paths]]\npath = \"/var/lib/kubelet\"\n";
    let Some(sb) = docker_node(
        test,
        None,
        "mkdir -p /var/lib/kubelet/logs /var/lib/kubelet/cache; mount --make-rshared /; \
         mount --bind /var/lib/kubelet /var/lib/kubelet; mount --make-slave /var/lib/kubelet",
        config,
    ) else {
        return;
    };
    for (name, vol) in [
        ("log-cleaner", "/var/lib/kubelet/logs:/logs:rslave"),
        ("web", "/var/lib/kubelet/cache:/cache"),
    ] {
        sb.exec(&[
            DOCKER,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "-v",
            vol,
            "bb:1",
            "/bin/sleep",
            "3600",
        ])
        .ok();
    }
    let apply = sb.mountprop(&["apply"]);
    assert_eq!(apply.code, 1, "{apply:#?}");
    assert!(
        apply.stdout.contains("make /var/lib/kubelet rshared"),
        "{}",
        apply.stdout
    );
    assert!(
        apply.stdout.contains("remedy: docker restart log-cleaner"),
        "{}",
        apply.stdout
    );
    let (code, report) = sb.check_json(None);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        stale_of(&report),
        [("docker log-cleaner".to_string(), "/logs".to_string())],
        "{report:#}"
    );
    // The referee: a mount made on the host under the volume does not reach it.
    let seen = |name: &str| {
        let pid = sb
            .exec(&[DOCKER, "inspect", "-f", "{{.State.Pid}}", name])
            .ok()
            .stdout
            .trim()
            .to_string();
        let r = sb.sh(&format!(
            "set -e; d=/var/lib/kubelet/logs/referee; mkdir -p $d; mount -t tmpfs referee-{name} $d; \
             n=$(grep -c ' referee-{name} ' /proc/{pid}/mountinfo || true); umount $d; rmdir $d; echo $n"
        ));
        r.stdout.trim() != "0"
    };
    assert!(!seen("log-cleaner"), "the test bed: the old container receives nothing");
    let (_, probed) = sb.check_json(None);
    assert!(
        !probed.to_string().contains("\"web\""),
        "a private volume is never listed: {probed:#}"
    );

    sb.exec(&[DOCKER, "restart", "-t", "0", "log-cleaner"]).ok();
    assert!(seen("log-cleaner"), "the test bed: restarted, it receives");
    let (code, after) = sb.check_json(None);
    assert_eq!(stale_of(&after), [], "{after:#}");
    assert_eq!(code, 0, "{after:#}");
}
