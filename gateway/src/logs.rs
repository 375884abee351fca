//! Logging: `tracing` to stderr, human-readable on a terminal. `RUST_LOG`
//! filters (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber (once; later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
