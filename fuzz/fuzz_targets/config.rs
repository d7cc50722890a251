//! The config file as any text: valid, or an error that points inside the text; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mountprop::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, Path::new("fuzz.toml")) {
        Ok(cfg) => {
            // Validation holds for whatever got through.
            assert!(cfg.paths.iter().all(|p| p.path.is_absolute()));
            assert!(cfg.kubelet_root.is_absolute());
        }
        Err(ConfigError::Invalid { line, col, .. }) => {
            let lines = text.split('\n').count();
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            assert!(col >= 1, "col {col}");
        }
        Err(e) => panic!("parse gave a non-parse error: {e}"),
    }
});
