//! `scripts/demo.sh`: a throwaway node with an old-style docker.service and a private `/`,
//! mountprop check → apply → probe on it, then teardown. The node's `/` is an overlay of the
//! host's, so even the probe's scratch directory stays in it. Not part of the test run (ignored);
//! it is the README's "see it work" command for a machine that is not a node.

mod sandbox;

use std::io::Write;
use std::path::Path;

use sandbox::{OLD_DOCKER, Run, Sandbox, Setup};

fn say(text: &str) {
    // Straight to the handle: the demo's output is the point.
    let _ = std::io::stdout().write_all(text.as_bytes());
    let _ = std::io::stdout().flush();
}

fn show(cmd: &str, r: &Run) {
    say(&format!("\n$ {cmd}\n{}{}(exit {})\n", r.stdout, r.stderr, r.code));
}

const VOLUME: &str = "/var/lib/kubelet:/var/lib/kubelet:rshared";

fn docker_try(sb: &Sandbox) {
    let r = sb.exec(&[
        "/usr/bin/docker",
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        VOLUME,
        "bb:1",
        "/bin/true",
    ]);
    let what = if r.code == 0 {
        "accepted".to_string()
    } else {
        format!("refused: {}", r.stderr.trim())
    };
    say(&format!(
        "\n$ docker run --rm -v {VOLUME} bb:1 /bin/true\n  Docker {what}\n"
    ));
}

#[test]
#[ignore = "run by scripts/demo.sh"]
fn demo() {
    let docker = Path::new("/usr/sbin/dockerd").exists() && Path::new("/bin/busybox").exists();
    let mut setup = Setup::default().with_overlay_root().etc(
        "mountprop/config.toml",
        "# demo: restart runtimes so the fix takes effect now\nrestart = \"always\"\n",
    );
    setup = if docker {
        setup
            .with_host_runtimes()
            .etc("docker/daemon.json", r#"{"bridge": "none", "iptables": false, "ip-forward": false, "ip-masq": false, "storage-driver": "vfs"}"#)
            .file("docker.service.d/10-old-docker.conf", "[Service]\nMountFlags=slave\n")
    } else {
        setup.file("docker.service", OLD_DOCKER)
    };
    let Some(sb) = sandbox::boot("demo", setup) else { return };
    say(&format!(
        "A throwaway node: systemd {} as PID 1 of new namespaces, / private, docker.service with MountFlags=slave ({}).\n",
        sb.manager_property("Version"),
        if docker {
            "the real dockerd from docker.io"
        } else {
            "a stand-in running sleep; install docker.io to see the real dockerd"
        }
    ));
    sb.exec(&["systemctl", "start", "docker.service"]).ok();
    if docker {
        sb.sh("set -e; r=/var/tmp/rootfs; mkdir -p $r/bin; cp /bin/busybox $r/bin/; ln -s busybox $r/bin/true; \
               tar -C $r -cf /var/tmp/rootfs.tar . && /usr/bin/docker import /var/tmp/rootfs.tar bb:1 >/dev/null; mkdir -p /var/lib/kubelet")
            .ok();
        docker_try(&sb);
    }
    show("mountprop check", &sb.mountprop(&["check"]));
    show(
        "mountprop apply   # config: restart = \"always\"",
        &sb.mountprop(&["apply"]),
    );
    show(
        "mountprop probe   # real mounts, looked for on the other side",
        &sb.mountprop(&["probe"]),
    );
    if docker {
        docker_try(&sb);
    }
    say("\nTearing the node down; the host was not touched.\n");
}
