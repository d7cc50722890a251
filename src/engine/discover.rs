//! What runs, found without a config: the CRI sockets on the node, the process that serves
//! each and its systemd unit, and the running kubelet with the root it really uses. Part of
//! observation: it gathers facts into plain data and judges nothing ([`crate::engine::plan`]
//! does). The parsers are pure and tested here; the reads go through
//! [`crate::node::procscan`], bounded, since every byte of `/proc` and of another process's
//! files is input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::node::procscan::{self, Process, Reads};

/// The CRI sockets the distributions put where they put them, with who puts them there.
pub const WELL_KNOWN: &[(&str, &str)] = &[
    ("/run/containerd/containerd.sock", "containerd (kubeadm, EKS, AKS, GKE)"),
    ("/run/crio/crio.sock", "CRI-O (OpenShift)"),
    ("/run/k3s/containerd/containerd.sock", "k3s, RKE2"),
    ("/var/snap/microk8s/common/run/containerd.sock", "microk8s"),
    ("/run/k0s/containerd.sock", "k0s"),
    ("/run/cri-dockerd.sock", "cri-dockerd"),
    ("/run/docker.sock", "Docker"),
];

/// Process names worth a first look: the runtimes, and what embeds or starts them.
const RUNTIME_NAMES: &[&str] = &[
    "containerd",
    "crio",
    "cri-dockerd",
    "dockerd",
    "k3s",
    "k3s-server",
    "k3s-agent",
    "rke2",
    "k0s",
    "kubelite",
];

/// The kubelet's own default root, and the distributions' where they differ.
pub const KUBELET_ROOT: &str = "/var/lib/kubelet";
pub const MICROK8S_KUBELET_ROOT: &str = "/var/snap/microk8s/common/var/lib/kubelet";
/// What microk8s's `${SNAP_COMMON}` and `${SNAP_DATA}` stand for.
const MICROK8S_COMMON: &str = "/var/snap/microk8s/common";
const MICROK8S_DATA: &str = "/var/snap/microk8s/current";
pub const K0S_KUBELET_ROOT: &str = "/var/lib/k0s/kubelet";
/// Where k3s's embedded kubelet finds its runtime unless told otherwise.
const K3S_SOCKET: &str = "/run/k3s/containerd/containerd.sock";
/// k3s's config file, unless its command line names another.
const K3S_CONFIG: &str = "/etc/rancher/k3s/config.yaml";
/// A kubelet's `--config` file or microk8s's args file read at most this far.
const CONFIG_CAP: u64 = 1024 * 1024;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    pub sockets: Vec<Socket>,
    pub kubelet: Option<Kubelet>,
    /// What it read and how long it took, for the cost it reports.
    pub reads: Reads,
    pub micros: u64,
    /// Processes whose descriptors could not be read (no CAP_SYS_PTRACE).
    pub unreadable: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Socket {
    pub path: PathBuf,
    /// Why it was looked at: a distribution's well-known path, or the kubelet's endpoint.
    pub source: String,
    /// A listening socket is bound there.
    pub listening: bool,
    pub server: Option<Server>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub pid: u32,
    pub comm: String,
    pub unit: Option<String>,
    /// Found by its open descriptor (certain), or only by its command line naming the socket.
    pub by_descriptor: bool,
    /// A containerd's `--state` directory, where its task bundles are.
    pub state: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kubelet {
    pub pid: u32,
    /// The process name: `kubelet`, or what embeds it (`k3s-server`, `kubelite`).
    pub comm: String,
    pub unit: Option<String>,
    pub root: PathBuf,
    /// Where the root came from: `--root-dir`, or whose default.
    pub root_from: String,
    /// The runtime endpoint it uses, as a socket path.
    pub endpoint: Option<PathBuf>,
    /// Where the root really is, when a symlink leads there.
    pub resolved: Option<PathBuf>,
}

/// `unix:///run/x.sock` or `/run/x.sock` → the path; anything else (tcp, npipe) → none.
pub fn endpoint_path(s: &str) -> Option<PathBuf> {
    let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
    let p = s.strip_prefix("unix://").unwrap_or(s);
    (p.starts_with('/') && !p.contains('\0')).then(|| PathBuf::from(p))
}

/// The value of `--name=v` or `--name v` (also with one dash) in a command line.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(rest) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        if let Some(v) = rest.strip_prefix(name) {
            if let Some(v) = v.strip_prefix('=') {
                return Some(v);
            }
            if v.is_empty() {
                return it.next().map(String::as_str);
            }
        }
    }
    None
}

/// `containerRuntimeEndpoint: "unix:///..."` in a kubelet config file (YAML or JSON), read as
/// lines: the key is a top-level scalar, so no YAML parser is needed for it.
pub fn endpoint_in_config(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches('"');
        let v = l.strip_prefix("containerRuntimeEndpoint")?;
        let v = v.trim_start_matches('"').trim_start().strip_prefix(':')?;
        endpoint_path(v.trim().trim_end_matches(','))
    })
}

/// k3s passes kubelet flags as `--kubelet-arg=root-dir=/x` (or `--kubelet-arg root-dir=/x`).
fn k3s_kubelet_arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = match a.strip_prefix("--kubelet-arg") {
            Some(v) if v.starts_with('=') => &v[1..],
            Some("") => match it.next() {
                Some(v) => v.as_str(),
                None => break,
            },
            _ => continue,
        };
        let v = v.trim_start_matches('-');
        if let Some(x) = v.strip_prefix(name).and_then(|x| x.strip_prefix('=')) {
            out = Some(x);
        }
    }
    out
}

/// k3s's config file (YAML, its keys named as its flags): the `kubelet-arg` items (a list on
/// the following lines, an inline list, or one string) and `container-runtime-endpoint`.
/// Read as lines: only these two top-level keys matter, so no YAML parser is needed.
pub fn k3s_config(text: &str) -> (Vec<String>, Option<String>) {
    let unquote = |v: &str| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    let mut args = Vec::new();
    let mut endpoint = None;
    let mut in_list = false;
    for line in text.lines() {
        let l = line.split(" #").next().unwrap_or_default();
        if in_list {
            match l.trim_start().strip_prefix('-') {
                Some(item) if l.starts_with([' ', '\t', '-']) => {
                    args.push(unquote(item));
                    continue;
                }
                _ if l.trim().is_empty() => continue,
                _ => in_list = false,
            }
        }
        if let Some(v) = l.strip_prefix("kubelet-arg:") {
            let v = v.trim();
            if v.is_empty() {
                in_list = true;
            } else if let Some(inner) = v.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                args.extend(inner.split(',').map(unquote).filter(|a| !a.is_empty()));
            } else {
                args.push(unquote(v));
            }
        } else if let Some(v) = l.strip_prefix("container-runtime-endpoint:") {
            endpoint = Some(unquote(v));
        }
    }
    (args, endpoint)
}

/// Whether a process name is a kubelet or embeds one.
pub fn is_kubelet_name(comm: &str) -> bool {
    comm == "kubelet" || comm == "kubelite" || comm == "k3s" || comm.starts_with("k3s-")
}

/// The kubelet a process is, from its name and command line; `extra` is the text of the file
/// its arguments point at (`--config`, or microk8s's `--kubelet-args-file`), read by the caller.
/// Only root's processes are believed: anyone can name a process `kubelet`.
pub fn kubelet_of(p: &Process, extra: Option<&str>) -> Option<Kubelet> {
    if p.uid != 0 || !is_kubelet_name(&p.comm) {
        return None;
    }
    let args = &p.args;
    let (root, root_from, endpoint) = match p.comm.as_str() {
        "kubelet" => {
            let endpoint = flag(args, "container-runtime-endpoint")
                .and_then(endpoint_path)
                .or_else(|| extra.and_then(endpoint_in_config));
            match flag(args, "root-dir") {
                Some(r) => (PathBuf::from(r), "--root-dir".to_string(), endpoint),
                None => (
                    PathBuf::from(KUBELET_ROOT),
                    "the kubelet's default".to_string(),
                    endpoint,
                ),
            }
        }
        "kubelite" => {
            // microk8s keeps the kubelet's flags in a file, one a line, with the snap's
            // directories as variables that its wrapper expands.
            let lines: Vec<String> = extra
                .unwrap_or_default()
                .split_whitespace()
                .map(|a| {
                    a.replace("${SNAP_COMMON}", MICROK8S_COMMON)
                        .replace("${SNAP_DATA}", MICROK8S_DATA)
                })
                .collect();
            let endpoint = flag(&lines, "container-runtime-endpoint").and_then(endpoint_path);
            match flag(&lines, "root-dir") {
                Some(r) => (PathBuf::from(r), "--root-dir in its args file".to_string(), endpoint),
                None => (
                    PathBuf::from(MICROK8S_KUBELET_ROOT),
                    "microk8s's default".to_string(),
                    endpoint,
                ),
            }
        }
        _ => {
            // k3s: the kubelet runs inside it, as does containerd unless told otherwise. Its
            // command line first, then its config file (`extra`), in k3s's flag syntax.
            let (file_args, file_endpoint) = extra.map(k3s_config).unwrap_or_default();
            let file_args: Vec<String> = file_args
                .into_iter()
                .flat_map(|a| ["--kubelet-arg".to_string(), a])
                .collect();
            let endpoint = k3s_kubelet_arg(args, "container-runtime-endpoint")
                .or_else(|| flag(args, "container-runtime-endpoint"))
                .or_else(|| k3s_kubelet_arg(&file_args, "container-runtime-endpoint"))
                .or(file_endpoint.as_deref())
                .and_then(endpoint_path)
                .or_else(|| Some(PathBuf::from(K3S_SOCKET)));
            match (
                k3s_kubelet_arg(args, "root-dir"),
                k3s_kubelet_arg(&file_args, "root-dir"),
            ) {
                (Some(r), _) => (PathBuf::from(r), "--kubelet-arg root-dir".to_string(), endpoint),
                (None, Some(r)) => (
                    PathBuf::from(r),
                    "kubelet-arg root-dir in k3s's config file".to_string(),
                    endpoint,
                ),
                (None, None) => (PathBuf::from(KUBELET_ROOT), "k3s's default".to_string(), endpoint),
            }
        }
    };
    if !root.is_absolute() {
        return None;
    }
    Some(Kubelet {
        pid: p.pid,
        comm: p.comm.clone(),
        unit: p.unit.clone(),
        root,
        root_from,
        endpoint,
        resolved: None,
    })
}

/// A containerd's `--state` directory, when its command line sets one.
pub fn containerd_state(p: &Process) -> Option<PathBuf> {
    if p.comm != "containerd" {
        return None;
    }
    let s = PathBuf::from(flag(&p.args, "state")?);
    s.is_absolute().then_some(s)
}

/// Whether a root process's command line names the socket: `--address /x`, `-a=/x`,
/// `unix:///x`. What discovery falls back on when descriptors may not be read.
pub fn names_socket(args: &[String], socket: &Path) -> bool {
    let s = socket.to_string_lossy();
    args.iter().skip(1).any(|a| {
        let v = a.rsplit_once('=').map_or(a.as_str(), |(_, v)| v);
        v == s || v.strip_prefix("unix://") == Some(&s)
    })
}

/// The file a kubelet's arguments point at, if any.
fn kubelet_extra(p: &Process, reads: &mut Reads) -> Option<String> {
    let name = match p.comm.as_str() {
        "kubelet" => flag(&p.args, "config")?,
        "kubelite" => flag(&p.args, "kubelet-args-file")?,
        // k3s reads this file unless told another with --config.
        _ => flag(&p.args, "config").unwrap_or(K3S_CONFIG),
    };
    let path = Path::new(name);
    // Relative to the kubelet's own working directory: not worth guessing.
    if !path.is_absolute() {
        return None;
    }
    let raw = procscan::read_capped(path, CONFIG_CAP, reads)?;
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// Looks at what runs. `/proc` is read once for names; descriptors only of the processes that
/// may hold a socket found listening, runtimes first.
pub fn run() -> Discovery {
    let start = Instant::now();
    let mut d = Discovery::default();
    let reads = &mut d.reads;
    let pids = procscan::pids();
    let names: Vec<(u32, String)> = pids
        .iter()
        .filter_map(|&pid| procscan::comm(pid, reads).map(|c| (pid, c)))
        .collect();
    for (pid, comm) in &names {
        if !is_kubelet_name(comm) {
            continue;
        }
        // Another user's process named `kubelet` gets no file read on its behalf.
        let Some(p) = procscan::process(*pid, reads).filter(|p| p.uid == 0) else {
            continue;
        };
        let extra = kubelet_extra(&p, reads);
        if let Some(k) = kubelet_of(&p, extra.as_deref()) {
            // A real kubelet binary is preferred to what may only embed one.
            let better = d
                .kubelet
                .as_ref()
                .is_none_or(|old| old.comm != "kubelet" && k.comm == "kubelet");
            if better {
                d.kubelet = Some(k);
            }
        }
    }
    if let Some(k) = d.kubelet.as_mut() {
        let real = procscan::canonical(&k.root);
        k.resolved = (real != k.root).then_some(real);
    }
    let mut paths: Vec<(PathBuf, String)> = WELL_KNOWN
        .iter()
        .map(|(p, who)| (PathBuf::from(p), format!("well-known path of {who}")))
        .collect();
    if let Some(ep) = d.kubelet.as_ref().and_then(|k| k.endpoint.clone()) {
        match paths.iter_mut().find(|(p, _)| *p == ep) {
            Some((_, why)) => *why = format!("{why}; the running kubelet's endpoint"),
            None => paths.push((ep, "the running kubelet's endpoint".to_string())),
        }
    }
    use std::os::unix::fs::FileTypeExt;
    let existing: Vec<(PathBuf, String)> = paths
        .into_iter()
        .filter(|(p, _)| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()))
        .collect();
    let socket_paths: Vec<PathBuf> = existing.iter().map(|(p, _)| p.clone()).collect();
    let listening = procscan::listeners_at(&socket_paths, reads);
    let mut wanted: BTreeSet<u64> = listening.values().copied().collect();
    let mut owners: Vec<(u64, u32)> = Vec::new();
    // The likely servers first; every other process only if a socket is still unclaimed.
    let (likely, rest): (Vec<_>, Vec<_>) = names.iter().partition(|(_, c)| RUNTIME_NAMES.contains(&c.as_str()));
    for (pid, _) in likely.into_iter().chain(rest) {
        if wanted.is_empty() {
            break;
        }
        match procscan::socket_inodes(*pid, reads) {
            Ok(inodes) => {
                for i in inodes {
                    if wanted.remove(&i) {
                        owners.push((i, *pid));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => d.unreadable += 1,
            Err(_) => {}
        }
    }
    for (path, source) in existing {
        let inode = listening.get(&path).copied();
        let owner = inode.and_then(|i| owners.iter().find(|(x, _)| *x == i).map(|(_, pid)| *pid));
        let server = match owner {
            // Only root's process is believed to be a node's runtime; another's socket there is
            // named in a note, as one served by nothing mountprop judges.
            Some(pid) => procscan::process(pid, reads).filter(|p| p.uid == 0).map(|p| Server {
                pid,
                state: containerd_state(&p),
                comm: p.comm,
                unit: p.unit,
                by_descriptor: true,
            }),
            // Descriptors were out of reach: a root process whose command line names it.
            None if inode.is_some() && d.unreadable > 0 => names
                .iter()
                .filter(|(_, c)| RUNTIME_NAMES.contains(&c.as_str()))
                .filter_map(|(pid, _)| procscan::process(*pid, reads))
                .find(|p| p.uid == 0 && names_socket(&p.args, &path))
                .map(|p| Server {
                    pid: p.pid,
                    state: containerd_state(&p),
                    comm: p.comm,
                    unit: p.unit,
                    by_descriptor: false,
                }),
            None => None,
        };
        d.sockets.push(Socket {
            path,
            source,
            listening: inode.is_some(),
            server,
        });
    }
    d.micros = start.elapsed().as_micros() as u64;
    d
}

impl Discovery {
    /// The `--state` directories of the containerds found serving a socket.
    pub fn containerd_states(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in self.sockets.iter().filter_map(|s| s.server.as_ref()?.state.clone()) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The units found serving a socket, each once, with the first socket it serves.
    pub fn units(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        for s in &self.sockets {
            if let Some(u) = s.server.as_ref().and_then(|sv| sv.unit.clone())
                && !out.iter().any(|(x, _)| *x == u)
            {
                out.push((u, s.path.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(comm: &str, args: &[&str]) -> Process {
        Process {
            pid: 42,
            comm: comm.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            uid: 0,
            unit: Some("kubelet.service".into()),
        }
    }

    #[test]
    fn endpoints_are_unix_socket_paths() {
        assert_eq!(
            endpoint_path("unix:///run/k3s/containerd/containerd.sock"),
            Some("/run/k3s/containerd/containerd.sock".into())
        );
        assert_eq!(endpoint_path("/run/crio/crio.sock"), Some("/run/crio/crio.sock".into()));
        assert_eq!(endpoint_path("\"unix:///run/x.sock\""), Some("/run/x.sock".into()));
        assert_eq!(endpoint_path("tcp://127.0.0.1:1234"), None);
        assert_eq!(endpoint_path("relative.sock"), None);
        assert_eq!(endpoint_path(""), None);
    }

    #[test]
    fn flags_in_both_spellings() {
        let a: Vec<String> = ["kubelet", "--root-dir", "/srv/k", "--config=/etc/k.yaml", "-v=2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag(&a, "root-dir"), Some("/srv/k"));
        assert_eq!(flag(&a, "config"), Some("/etc/k.yaml"));
        assert_eq!(flag(&a, "root"), None, "a prefix of a flag is not the flag");
        assert_eq!(flag(&a[..2], "root-dir"), None, "a flag without its value");
    }

    #[test]
    fn a_kubelet_binary_its_root_and_endpoint() {
        let k = kubelet_of(
            &proc_(
                "kubelet",
                &[
                    "/usr/bin/kubelet",
                    "--root-dir=/srv/kubelet",
                    "--container-runtime-endpoint=unix:///run/crio/crio.sock",
                ],
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            (k.root.as_path(), k.root_from.as_str()),
            (Path::new("/srv/kubelet"), "--root-dir")
        );
        assert_eq!(k.endpoint, Some("/run/crio/crio.sock".into()));
        // Defaults, and the endpoint from its --config file.
        let cfg = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncontainerRuntimeEndpoint: \"unix:///run/containerd/containerd.sock\"\n";
        let k = kubelet_of(
            &proc_(
                "kubelet",
                &["/usr/bin/kubelet", "--config", "/var/lib/kubelet/config.yaml"],
            ),
            Some(cfg),
        )
        .unwrap();
        assert_eq!(k.root, Path::new(KUBELET_ROOT));
        assert_eq!(k.root_from, "the kubelet's default");
        assert_eq!(k.endpoint, Some("/run/containerd/containerd.sock".into()));
        // JSON config.
        assert_eq!(
            endpoint_in_config("{\n  \"containerRuntimeEndpoint\": \"unix:///run/k0s/containerd.sock\",\n}"),
            Some("/run/k0s/containerd.sock".into())
        );
        // k0s passes its root.
        let k = kubelet_of(
            &proc_(
                "kubelet",
                &["/var/lib/k0s/bin/kubelet", "--root-dir=/var/lib/k0s/kubelet"],
            ),
            None,
        )
        .unwrap();
        assert_eq!(k.root, Path::new(K0S_KUBELET_ROOT));
    }

    #[test]
    fn embedded_kubelets_k3s_and_microk8s() {
        let k = kubelet_of(&proc_("k3s-server", &["/usr/local/bin/k3s", "server"]), None).unwrap();
        assert_eq!(
            (k.root.as_path(), k.root_from.as_str()),
            (Path::new(KUBELET_ROOT), "k3s's default")
        );
        assert_eq!(k.endpoint, Some(K3S_SOCKET.into()));
        let k = kubelet_of(
            &proc_(
                "k3s-agent",
                &[
                    "/usr/local/bin/k3s",
                    "agent",
                    "--kubelet-arg",
                    "root-dir=/data/kubelet",
                    "--kubelet-arg=--container-runtime-endpoint=unix:///run/x.sock",
                ],
            ),
            None,
        )
        .unwrap();
        assert_eq!(k.root, Path::new("/data/kubelet"));
        assert_eq!(k.endpoint, Some("/run/x.sock".into()));
        let k = kubelet_of(
            &proc_(
                "kubelite",
                &[
                    "/snap/microk8s/123/kubelite",
                    "--kubelet-args-file=/var/snap/microk8s/123/args/kubelet",
                ],
            ),
            Some("--kubeconfig=/x\n--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock\n"),
        )
        .unwrap();
        assert_eq!(
            (k.root.as_path(), k.root_from.as_str()),
            (Path::new(MICROK8S_KUBELET_ROOT), "microk8s's default")
        );
        assert_eq!(
            k.endpoint,
            Some("/var/snap/microk8s/common/run/containerd.sock".into()),
            "the snap's variables are expanded"
        );
        let k = kubelet_of(
            &proc_("kubelite", &["kubelite"]),
            Some("--root-dir=${SNAP_DATA}/kubelet\n--x=${OTHER}/y\n"),
        )
        .unwrap();
        assert_eq!(k.root, Path::new("/var/snap/microk8s/current/kubelet"));
    }

    #[test]
    fn k3s_config_file_kubelet_args_in_each_yaml_spelling() {
        let list = "write-kubeconfig-mode: \"0644\"\nkubelet-arg:\n  - \"root-dir=/data/kubelet\"  # moved\n  - max-pods=200\nnode-label:\n  - a=b\n";
        assert_eq!(k3s_config(list).0, ["root-dir=/data/kubelet", "max-pods=200"]);
        assert_eq!(
            k3s_config("kubelet-arg: [\"root-dir=/x\", 'v=2']\n").0,
            ["root-dir=/x", "v=2"]
        );
        assert_eq!(k3s_config("kubelet-arg: \"--root-dir=/y\"\n").0, ["--root-dir=/y"]);
        assert_eq!(
            k3s_config("container-runtime-endpoint: unix:///run/other.sock\n")
                .1
                .as_deref(),
            Some("unix:///run/other.sock")
        );
        let k = kubelet_of(&proc_("k3s-server", &["/usr/local/bin/k3s", "server"]), Some(list)).unwrap();
        assert_eq!(
            (k.root.as_path(), k.root_from.as_str()),
            (Path::new("/data/kubelet"), "kubelet-arg root-dir in k3s's config file")
        );
        // The command line wins over the file.
        let k = kubelet_of(
            &proc_("k3s-agent", &["k3s", "agent", "--kubelet-arg=root-dir=/cli"]),
            Some(list),
        )
        .unwrap();
        assert_eq!(k.root, Path::new("/cli"));
        let k = kubelet_of(
            &proc_("k3s", &["k3s", "server"]),
            Some("kubelet-arg: [\"--root-dir=/y\"]\n"),
        )
        .unwrap();
        assert_eq!(k.root, Path::new("/y"));
    }

    #[test]
    fn only_roots_processes_and_absolute_roots_are_believed() {
        let mut p = proc_("kubelet", &["kubelet", "--root-dir=/srv/k"]);
        p.uid = 1000;
        assert_eq!(kubelet_of(&p, None), None);
        assert_eq!(
            kubelet_of(&proc_("kubelet", &["kubelet", "--root-dir=rel"]), None),
            None
        );
        assert_eq!(kubelet_of(&proc_("dockerd", &["dockerd"]), None), None);
        assert_eq!(
            kubelet_of(&proc_("kubelet", &[]), None).map(|k| k.root),
            Some(KUBELET_ROOT.into())
        );
    }

    /// Random bytes (a fixed xorshift sequence, so a failure repeats) and mangled real inputs
    /// into every parser of another process's text: no panic, and only absolute paths out.
    #[test]
    fn any_bytes_in_any_parser_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"-=:/ \n\0\"'ak3sroot-dirunix:///kubelet-argcontainerRuntimeEndpoint0::.service@\\\xff";
        for round in 0..20_000 {
            let len = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if round % 2 == 0 {
                        alphabet[(r % alphabet.len() as u64) as usize]
                    } else {
                        r as u8
                    }
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let args = procscan::split_cmdline(&bytes);
            for comm in ["kubelet", "kubelite", "k3s-server", "containerd"] {
                let p = Process {
                    pid: 1,
                    comm: comm.into(),
                    args: args.clone(),
                    uid: 0,
                    unit: procscan::unit_of_cgroup(&text),
                };
                if let Some(k) = kubelet_of(&p, Some(&text)) {
                    assert!(k.root.is_absolute(), "{k:?}");
                    assert!(k.endpoint.as_ref().is_none_or(|e| e.is_absolute()), "{k:?}");
                }
                assert!(containerd_state(&p).is_none_or(|s| s.is_absolute()));
                let _ = names_socket(&p.args, Path::new("/run/x.sock"));
            }
            assert!(endpoint_in_config(&text).is_none_or(|e| e.is_absolute()));
            assert!(procscan::unit_of_cgroup(&text).is_none_or(|u| procscan::valid_unit_name(&u)));
            let _ = procscan::listening_unix(&bytes[..]);
            let _ = procscan::socket_inode(&text);
        }
    }

    #[test]
    fn a_containerds_state_directory_from_its_flags() {
        let k3s = proc_(
            "containerd",
            &[
                "containerd",
                "-c",
                "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
                "-a",
                "/run/k3s/containerd/containerd.sock",
                "--state",
                "/run/k3s/containerd",
                "--root",
                "/var/lib/rancher/k3s/agent/containerd",
            ],
        );
        assert_eq!(containerd_state(&k3s), Some("/run/k3s/containerd".into()));
        assert_eq!(containerd_state(&proc_("containerd", &["containerd"])), None);
        assert_eq!(
            containerd_state(&proc_("containerd", &["containerd", "--state=rel"])),
            None
        );
        assert_eq!(containerd_state(&proc_("crio", &["crio", "--state=/x"])), None);
    }

    #[test]
    fn a_command_line_names_a_socket_in_any_spelling() {
        let s = Path::new("/run/k3s/containerd/containerd.sock");
        let a = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(names_socket(
            &a(&["containerd", "-a", "/run/k3s/containerd/containerd.sock"]),
            s
        ));
        assert!(names_socket(
            &a(&["containerd", "--address=/run/k3s/containerd/containerd.sock"]),
            s
        ));
        assert!(names_socket(
            &a(&["x", "--endpoint=unix:///run/k3s/containerd/containerd.sock"]),
            s
        ));
        assert!(
            !names_socket(&a(&["/run/k3s/containerd/containerd.sock"]), s),
            "argv[0] is a program"
        );
        assert!(!names_socket(
            &a(&["containerd", "--address=/run/k3s/containerd/containerd.sock.bak"]),
            s
        ));
    }
}
