//! The open-files limit: 1,000 load connections, the forwarder's side of
//! them and 1,000 listeners need more than the usual soft limit of 1,024.
//! Raised in the driver before anything starts, so every forwarder child
//! inherits it.

use anyhow::Context;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (capped at 1,048,576).
pub fn raise_open_files() -> anyhow::Result<()> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    let want = hard.min(1 << 20);
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard).context("raising RLIMIT_NOFILE")?;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft < 4096 {
        eprintln!("note: open-files limit is {soft}; 1,000-connection cases may fail");
    }
    Ok(())
}
