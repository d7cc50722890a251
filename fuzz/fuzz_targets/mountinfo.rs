//! /proc/<pid>/mountinfo as any bytes: every line parsed or named as the error, every path
//! resolved, never a panic; a resolved mount is always one whose mount point is a prefix.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mountprop::mountinfo::{MountInfo, MountSummary};

fuzz_target!(|data: &[u8]| {
    let table = MountInfo::from_bytes("fuzz", data.to_vec());
    let _ = table.validate();
    for m in table.iter().flatten() {
        let _ = MountSummary::from(&m);
        let _ = m.source.decode();
    }
    let paths = [Path::new("/"), Path::new("/var/lib/kubelet"), Path::new("/a b/c")];
    if let Ok(found) = table.governing_many(&paths) {
        for (p, m) in paths.iter().zip(found) {
            if let Some(m) = m {
                assert!(p.starts_with(m.mount_point_path()), "{} resolved to {:?}", p.display(), m.mount_point_path());
            }
        }
    }
});
