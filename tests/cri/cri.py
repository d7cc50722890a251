#!/usr/bin/python3
"""A small CRI client for the tests: drives containerd over its CRI socket as the kubelet does.

Subcommands:
  image OUT.tar NAME       write a one-layer OCI image archive (busybox-static, sleeps)
  run JSON                 one pod; for each host path and propagation mode, a container with
                           that host-path mount, then real mounts on both sides; prints one
                           JSON result
  start JSON               one pod with one container and the given host-path mounts, left
                           running; prints {"pod_id", "container_id"}
  remove POD_ID            stop and remove that pod (and its container)
  clean LABEL              stop and remove every pod sandbox carrying LABEL
  daemonset JSON           the pod of a DaemonSet manifest (YAML) as the kubelet would run it:
                           hostPID, hostNetwork, privileged, command, env; prints its ids, log
                           file and probe commands
  exec CONTAINER_ID JSON   ExecSync of a command (a JSON list); prints {"code", "stdout", "stderr"}
  stop CONTAINER_ID SECS   StopContainer with that grace period, as the kubelet stops a pod's
                           containers before it stops the pod sandbox

The messages come from the CRI api.proto (api_pb2, generated at build time next to this file).
Calls go through grpc's generic unary_unary, so no generated service stubs are needed.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time

# containerd's own socket, or where a distribution puts it (k3s, RKE2) when only that one is
# served; MOUNTPROP_CRI_SOCKET names one outright.
SOCKET = os.environ.get("MOUNTPROP_CRI_SOCKET") or next(
    (
        "unix://" + p
        for p in ["/run/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock"]
        if os.path.exists(p)
    ),
    "unix:///run/containerd/containerd.sock",
)
MODES = ["PROPAGATION_PRIVATE", "PROPAGATION_HOST_TO_CONTAINER", "PROPAGATION_BIDIRECTIONAL"]


def make_image(out, name):
    """One layer: /bin/busybox and the applets the tests call; entrypoint sleeps."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add_dir(path):
            d = tarfile.TarInfo(path)
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
            t.addfile(d)

        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "vol"]:
            add_dir(d)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        bb = tarfile.TarInfo("bin/busybox")
        bb.size, bb.mode, bb.mtime = len(data), 0o755, 0
        t.addfile(bb, io.BytesIO(data))
        for applet in ["sh", "sleep", "mount", "umount", "cat", "grep", "mkdir", "true"]:
            s = tarfile.TarInfo("bin/" + applet)
            s.type, s.linkname, s.mode, s.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            t.addfile(s)
    layer = layer.getvalue()

    blobs = {}

    def blob(data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/sleep", "86400"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    }
    config_desc = blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest_desc["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
    }
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "manifests": [manifest_desc]}

    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w") as t:
        def add(path, data):
            i = tarfile.TarInfo(path)
            i.size, i.mode, i.mtime = len(data), 0o644, 0
            t.addfile(i, io.BytesIO(data))

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
    os.rename(tmp, out)


class Cri:
    def __init__(self):
        import grpc  # Debian's python3-grpcio
        import api_pb2  # generated from the CRI api.proto

        self.grpc = grpc
        self.pb = api_pb2
        self.channel = grpc.insecure_channel(SOCKET)

    def call(self, method, request, response, timeout=30):
        rpc = self.channel.unary_unary(
            "/runtime.v1.RuntimeService/" + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        return rpc(request, timeout=timeout)

    def wait_ready(self, seconds=15):
        """containerd's CRI plugin answers a little after the socket appears."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.call("Version", self.pb.VersionRequest(), self.pb.VersionResponse, timeout=2)
            except self.grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def clean(self, label):
        pb = self.pb
        pods = self.call(
            "ListPodSandbox",
            pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(label_selector={label: "1"})),
            pb.ListPodSandboxResponse,
        )
        for p in pods.items:
            self.remove_pod(p.id)
        return len(pods.items)

    def remove_pod(self, pod_id):
        pb = self.pb
        # StopPodSandbox stops and RemovePodSandbox removes its containers as well.
        self.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), pb.StopPodSandboxResponse)
        self.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), pb.RemovePodSandboxResponse)


def mounts_with_source(source):
    """Mount points in this process's namespace whose source is `source`."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 2] == source:
                found.append(fields[4])
    return found


def in_container(cri, ctr_id, cmd):
    pb = cri.pb
    r = cri.call(
        "ExecSync",
        pb.ExecSyncRequest(container_id=ctr_id, cmd=cmd, timeout=10),
        pb.ExecSyncResponse,
    )
    return r.exit_code, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def named_pod_config(pb, label, cgroup_parent, name, namespace, uid):
    """A pod on the host's network: no CNI. No hostname: runc refuses one without a UTS
    namespace."""
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace),
        labels={label: "1"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE),
                privileged=True,
            ),
        ),
    )


def pod_config(pb, spec):
    """The pod every container of one run shares (a container's mount namespace is its own)."""
    tag = spec["tag"]
    return named_pod_config(pb, spec["label"], spec["cgroup_parent"], "mountprop-" + tag, "mountprop-test", tag)


def create_container(cri, pod_id, sandbox, image, name, mounts):
    """CreateContainer (privileged: CAP_SYS_ADMIN to mount inside) with `mounts`, a list of
    (host_path, container_path, propagation name). Raises grpc.RpcError on a refusal."""
    pb = cri.pb
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name),
        image=pb.ImageSpec(image=image),
        mounts=[pb.Mount(container_path=c, host_path=h, propagation=pb.MountPropagation.Value(m))
                for h, c, m in mounts],
        linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(privileged=True),
        ),
    )
    return cri.call(
        "CreateContainer",
        pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox),
        pb.CreateContainerResponse,
    ).container_id


def start(spec):
    """A pod and its container, left running (the stale-container tests restart them)."""
    cri = Cri()
    cri.wait_ready()
    pb = cri.pb
    sandbox = named_pod_config(pb, spec["label"], spec["cgroup_parent"], spec["pod"], spec["namespace"],
                               spec["namespace"] + "-" + spec["pod"])
    pod_id = cri.call("RunPodSandbox", pb.RunPodSandboxRequest(config=sandbox), pb.RunPodSandboxResponse).pod_sandbox_id
    try:
        for m in spec["mounts"]:
            os.makedirs(m[0], exist_ok=True)
        ctr_id = create_container(cri, pod_id, sandbox, spec["image"], spec["container"],
                                  [tuple(m) for m in spec["mounts"]])
        cri.call("StartContainer", pb.StartContainerRequest(container_id=ctr_id), pb.StartContainerResponse)
    except BaseException:
        cri.remove_pod(pod_id)
        raise
    print(json.dumps({"pod_id": pod_id, "container_id": ctr_id}))


def experiment(cri, pod_id, sandbox, spec, host_path, mode, tag):
    """One container in the pod for `mode`, with `host_path` as its volume; what the CRI said
    and what really propagated. The container is left to the pod's removal."""
    pb = cri.pb
    ctr_path = spec["container_path"]
    result = {"mode": mode, "accepted": False, "started": False, "error": None,
              "host_to_container": None, "container_to_host": None}
    host_mount = os.path.join(host_path, "h2c-" + tag)
    ctr_mount_host = os.path.join(host_path, "c2h-" + tag)
    h_src, c_src = "mountprop-cri-h2c-" + tag, "mountprop-cri-c2h-" + tag
    try:
        os.makedirs(host_mount, exist_ok=True)
        os.makedirs(ctr_mount_host, exist_ok=True)
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="vol-" + tag),
            image=pb.ImageSpec(image=spec["image"]),
            mounts=[pb.Mount(container_path=ctr_path, host_path=host_path,
                             propagation=pb.MountPropagation.Value(mode))],
            linux=pb.LinuxContainerConfig(
                # CAP_SYS_ADMIN, to mount inside for the container-to-host direction.
                security_context=pb.LinuxContainerSecurityContext(privileged=True),
            ),
        )
        try:
            ctr_id = cri.call(
                "CreateContainer",
                pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox),
                pb.CreateContainerResponse,
            ).container_id
        except cri.grpc.RpcError as e:
            result["error"] = {"call": "CreateContainer", "code": e.code().name, "details": e.details()}
            return result
        result["accepted"] = True
        try:
            cri.call("StartContainer", pb.StartContainerRequest(container_id=ctr_id), pb.StartContainerResponse)
        except cri.grpc.RpcError as e:
            result["error"] = {"call": "StartContainer", "code": e.code().name, "details": e.details()}
            return result
        result["started"] = True

        # Host to container: the host mounts, the container looks.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", h_src, host_mount], check=True)
        code, out, err = in_container(cri, ctr_id, ["cat", "/proc/self/mountinfo"])
        if code != 0:
            raise RuntimeError("cat mountinfo in the container: %d %s" % (code, err))
        result["host_to_container"] = any(
            l.split()[l.split().index("-") + 2] == h_src for l in out.splitlines() if " - " in l
        )
        # Container to host: the container mounts, the host looks.
        inside = os.path.join(ctr_path, "c2h-" + tag)
        code, out, err = in_container(cri, ctr_id, ["mount", "-t", "tmpfs", "-o", "size=4k", c_src, inside])
        if code != 0:
            raise RuntimeError("mount in the container: %d %s" % (code, err))
        result["container_to_host"] = bool(mounts_with_source(c_src))
        in_container(cri, ctr_id, ["umount", inside])
        return result
    finally:
        # Whatever happened: no mount of ours and no directory left.
        for src in (h_src, c_src):
            for mp in reversed(mounts_with_source(src)):
                subprocess.run(["umount", "-l", mp], check=False)
        for d in (host_mount, ctr_mount_host):
            try:
                os.rmdir(d)
            except OSError:
                pass


def run(spec):
    """One pod; in it, for each host path (a point) and each mode, one container."""
    cri = Cri()
    version = cri.wait_ready()
    out = {"runtime": "%s %s" % (version.runtime_name, version.runtime_version),
           "api": version.runtime_api_version, "points": []}
    sandbox = pod_config(cri.pb, spec)
    try:
        pod_id = cri.call("RunPodSandbox", cri.pb.RunPodSandboxRequest(config=sandbox),
                          cri.pb.RunPodSandboxResponse).pod_sandbox_id
        for p, host_path in enumerate(spec["host_paths"]):
            modes = [experiment(cri, pod_id, sandbox, spec, host_path, mode, "%s-%d-%d" % (spec["tag"], p, n))
                     for n, mode in enumerate(MODES)]
            out["points"].append({"host_path": host_path, "modes": modes})
    finally:
        cri.clean(spec["label"])
    print(json.dumps(out))


def daemonset(spec):
    """The DaemonSet's pod from its manifest, with the settings the kubelet would give the CRI."""
    import yaml  # Debian's python3-yaml

    with open(spec["manifest"]) as f:
        ds = yaml.safe_load(f)
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    cri = Cri()
    cri.wait_ready()
    pb = cri.pb
    node = pb.NODE
    name, namespace = ds["metadata"]["name"], ds["metadata"]["namespace"]
    uid = name + "-test"
    log_dir = "/var/log/pods/%s_%s_%s" % (namespace, name, uid)
    # The pod's and its container's, the same as the kubelet derives them from the pod spec.
    namespaces = pb.NamespaceOption(network=node if pod.get("hostNetwork") else pb.POD,
                                    pid=node if pod.get("hostPID") else pb.POD)
    privileged = bool(c.get("securityContext", {}).get("privileged"))
    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace),
        labels={spec["label"]: "1"},
        log_directory=log_dir,
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=spec["cgroup_parent"],
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=namespaces,
                privileged=privileged,
            ),
        ),
    )
    pod_id = cri.call("RunPodSandbox", pb.RunPodSandboxRequest(config=sandbox), pb.RunPodSandboxResponse).pod_sandbox_id
    try:
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=c["name"]),
            image=pb.ImageSpec(image=c["image"]),
            command=c.get("command", []),
            args=c.get("args", []),
            envs=[pb.KeyValue(key=e["name"], value=e["value"]) for e in c.get("env", [])],
            log_path=c["name"] + "/0.log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(
                    privileged=privileged, namespace_options=namespaces),
            ),
        )
        ctr_id = cri.call(
            "CreateContainer",
            pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=sandbox),
            pb.CreateContainerResponse,
        ).container_id
        cri.call("StartContainer", pb.StartContainerRequest(container_id=ctr_id), pb.StartContainerResponse)
    except BaseException:
        cri.remove_pod(pod_id)
        raise
    print(json.dumps({
        "pod_id": pod_id,
        "container_id": ctr_id,
        "log": os.path.join(log_dir, c["name"], "0.log"),
        "readiness": c["readinessProbe"]["exec"]["command"],
        "liveness": c["livenessProbe"]["exec"]["command"],
        "grace": pod.get("terminationGracePeriodSeconds", 30),
    }))


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "image" and len(sys.argv) == 4:
        make_image(sys.argv[2], sys.argv[3])
    elif cmd == "run" and len(sys.argv) == 3:
        run(json.loads(sys.argv[2]))
    elif cmd == "start" and len(sys.argv) == 3:
        start(json.loads(sys.argv[2]))
    elif cmd == "remove" and len(sys.argv) == 3:
        Cri().remove_pod(sys.argv[2])
    elif cmd == "daemonset" and len(sys.argv) == 3:
        daemonset(json.loads(sys.argv[2]))
    elif cmd == "exec" and len(sys.argv) == 4:
        cri = Cri()
        code, out, err = in_container(cri, sys.argv[2], json.loads(sys.argv[3]))
        print(json.dumps({"code": code, "stdout": out, "stderr": err}))
    elif cmd == "stop" and len(sys.argv) == 4:
        cri = Cri()
        pb = cri.pb
        secs = int(sys.argv[3])
        cri.call("StopContainer", pb.StopContainerRequest(container_id=sys.argv[2], timeout=secs),
                 pb.StopContainerResponse, timeout=secs + 30)
    elif cmd == "clean" and len(sys.argv) == 3:
        cri = Cri()
        print(cri.clean(sys.argv[2]))
    else:
        sys.exit("usage: cri.py image OUT.tar NAME | run JSON | start JSON | remove POD_ID | clean LABEL"
                 " | daemonset JSON | exec CONTAINER_ID JSON | stop CONTAINER_ID SECS")


if __name__ == "__main__":
    main()
