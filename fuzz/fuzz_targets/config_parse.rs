//! Fuzzes the config parser: any text as `edgevisor.toml`. It must never
//! panic, and every error it reports must point inside the text (a line and
//! column a person can go to).
#![no_main]

use std::path::Path;

use edgevisor::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = Config::parse(Path::new("fuzz.toml"), text) {
        let lines = text.lines().count().max(1);
        for e in &errors.0 {
            assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}", e.line);
            assert!(e.column >= 1, "column {}", e.column);
        }
    }
});
