//! What a container's runtime leaves on disk, parsed: the OCI runtime spec (`config.json` of
//! containerd's and CRI-O's bundles), Docker's `config.v2.json` (for a name) and pid files.
//! All of it is written where a container's author has a say (its mounts, annotations and
//! names), so these are pure functions of bytes that give a value or an error, never a panic,
//! and `fuzz/fuzz_targets/ocispec.rs` holds them to that.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::KubeMode;

/// Which runtime's state a container was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Containerd,
    Docker,
    CriO,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Containerd => "containerd",
            Self::Docker => "docker",
            Self::CriO => "cri-o",
        })
    }
}

/// A bind mount in the spec that asked for propagation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: PathBuf,
    pub destination: PathBuf,
    /// HostToContainer (`rslave`/`slave`) or Bidirectional (`rshared`/`shared`).
    pub mode: KubeMode,
    /// The option as the spec gives it.
    pub option: String,
}

/// One container, as its OCI spec on disk describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub runtime: Runtime,
    pub id: String,
    /// The pod's namespace and name (CRI annotations); `None` for a plain Docker container.
    pub pod: Option<(String, String)>,
    /// The container's name: the CRI's, or Docker's.
    pub name: String,
    pub pid: Option<u32>,
    /// Only the volumes that asked for propagation.
    pub volumes: Vec<Volume>,
}

impl Container {
    /// `ns/pod/container`, or the Docker name.
    pub fn label(&self) -> String {
        match &self.pod {
            Some((ns, pod)) => format!("{ns}/{pod}/{}", self.name),
            None => format!("{} {}", self.runtime, self.name),
        }
    }

    /// What a person runs to get a fresh container.
    pub fn remedy(&self) -> String {
        match &self.pod {
            Some((ns, pod)) => format!("kubectl delete pod -n {ns} {pod}"),
            // A restart makes a new mount namespace from the spec: fresh copies of the mounts.
            None => format!("docker restart {}", self.name),
        }
    }
}

/// The requested mode of a bind mount's options, if it asked for propagation. `rprivate`,
/// `private` or nothing: the container never receives, by choice, and is never listed.
pub fn requested(options: &[String]) -> Option<(KubeMode, String)> {
    // The last propagation option wins, as in runc.
    options
        .iter()
        .rev()
        .find_map(|o| match o.as_str() {
            "rshared" | "shared" => Some((KubeMode::Bidirectional, o.clone())),
            "rslave" | "slave" => Some((KubeMode::HostToContainer, o.clone())),
            "rprivate" | "private" | "runbindable" | "unbindable" => Some((KubeMode::None, o.clone())),
            _ => None,
        })
        .filter(|(m, _)| *m != KubeMode::None)
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    mounts: Vec<SpecMount>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct SpecMount {
    destination: PathBuf,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    source: Option<PathBuf>,
    #[serde(default)]
    options: Vec<String>,
}

/// Why a spec could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: not an OCI runtime spec: {reason}")]
pub struct SpecError {
    pub path: PathBuf,
    pub reason: String,
}

/// What a spec says: the volumes that asked for propagation, and the names, or `None` for a
/// pod's sandbox ("pause") container, which has no volumes of its own.
pub fn parse_spec(path: &Path, text: &[u8], runtime: Runtime, id: &str) -> Result<Option<Container>, SpecError> {
    let spec: Spec = serde_json::from_slice(text).map_err(|e| SpecError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let a = &spec.annotations;
    let get = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k).cloned());
    let kind = get(&["io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType"]);
    if kind.as_deref() == Some("sandbox") {
        return Ok(None);
    }
    let pod = match (
        get(&["io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"]),
        get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
    ) {
        (Some(ns), Some(name)) => Some((ns, name)),
        _ => None,
    };
    let name = get(&["io.kubernetes.cri.container-name", "io.kubernetes.container.name"])
        .unwrap_or_else(|| id.chars().take(12).collect());
    let volumes = spec
        .mounts
        .into_iter()
        .filter(|m| {
            m.kind.as_deref().is_none_or(|k| k == "bind") && m.options.iter().any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|m| {
            let (mode, option) = requested(&m.options)?;
            Some(Volume {
                source: m.source?,
                destination: m.destination,
                mode,
                option,
            })
        })
        .collect();
    Ok(Some(Container {
        runtime,
        id: id.to_string(),
        pod,
        name,
        pid: None,
        volumes,
    }))
}

/// A pid file's number.
pub fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&p| p > 0)
}

/// Docker's name for a container, from its `config.v2.json` (`"Name": "/web"`).
pub fn docker_name(text: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct V2 {
        #[serde(rename = "Name")]
        name: String,
    }
    let v: V2 = serde_json::from_slice(text).ok()?;
    let n = v.name.trim_start_matches('/');
    (!n.is_empty()).then(|| n.to_string())
}
