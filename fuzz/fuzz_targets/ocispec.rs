//! What a container's runtime leaves on disk, as any bytes: an OCI spec (containerd's and
//! CRI-O's `config.json`), Docker's `config.v2.json`, a pid file. A value or an error, never a
//! panic; and what a spec yields holds the promises the judging relies on.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mountprop::node::ocispec::{Runtime, docker_name, parse_pid, parse_spec};

fuzz_target!(|data: &[u8]| {
    for runtime in [Runtime::Containerd, Runtime::CriO, Runtime::Docker] {
        match parse_spec(Path::new("config.json"), data, runtime, "0123456789abcdef0123") {
            Ok(Some(c)) => {
                // Only bind mounts that asked for propagation are kept, each with its option.
                for v in &c.volumes {
                    assert!(matches!(v.option.as_str(), "rshared" | "shared" | "rslave" | "slave"));
                }
                assert!(!c.name.is_empty());
                assert_eq!(c.runtime, runtime);
            }
            Ok(None) => {}
            Err(e) => assert!(e.to_string().starts_with("config.json: not an OCI runtime spec")),
        }
    }
    if let Some(n) = docker_name(data) {
        assert!(!n.is_empty() && !n.starts_with('/'));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(parse_pid(text).is_none_or(|p| p > 0));
    }
});
