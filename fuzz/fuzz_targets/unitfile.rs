//! Unit files and drop-ins as `--root` reads them, as any text: never a panic, and every
//! MountFlags setting found names a line that exists.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mountprop::unitfile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    for a in unitfile::parse(&text) {
        assert!(a.line >= 1 && a.line <= lines, "line {} of {lines}", a.line);
    }
    let settings = unitfile::mount_flags_settings(Path::new("/etc/systemd/system/x.service.d/y.conf"), &text);
    for s in &settings {
        assert!(s.line >= 1 && s.line <= lines, "line {} of {lines}", s.line);
    }
    let _ = unitfile::winning_setting([settings.as_slice()]);
});
