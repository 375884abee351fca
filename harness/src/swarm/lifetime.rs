//! What a demo or swarm run leaves behind: nothing, unless asked.
//!
//! - `RunDir`: the run's working folder, a temporary one removed on every
//!   way out (clean end, error, signal) unless `--keep` asks otherwise;
//! - `StopSignals`: SIGHUP (the terminal closed), SIGTERM and SIGINT
//!   (Ctrl-C), listened to from the start of a run. Once they are, none of
//!   them ends the process on its own, so the run always gets to stop its
//!   gateway child (a process group of its own, see `process`) and to
//!   remove its folder instead of leaving both to init.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The working folder of a run.
pub struct RunDir {
    /// Removes the folder when dropped, unless cleanup was disabled.
    _temp: Option<tempfile::TempDir>,
    path: PathBuf,
    stays: bool,
}

impl RunDir {
    /// A new folder `<TMPDIR>/<prefix>XXXXXX` (private to the user), removed
    /// when this is dropped unless `keep`.
    pub fn temporary(prefix: &str, keep: bool) -> anyhow::Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix(prefix)
            .disable_cleanup(keep)
            .tempdir()
            .with_context(|| {
                format!(
                    "cannot create a temporary folder in {}",
                    std::env::temp_dir().display()
                )
            })?;
        Ok(Self {
            path: temp.path().to_path_buf(),
            _temp: Some(temp),
            stays: keep,
        })
    }

    /// The user's own folder (`--dir`): created if missing, never removed.
    pub fn given(path: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            _temp: None,
            path,
            stays: true,
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where it is, when it outlives the run: tell the user.
    pub fn stays(&self) -> Option<&Path> {
        self.stays.then_some(self.path.as_path())
    }
}

/// Which signal asked the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGHUP: the terminal went away; nothing can be shown any more.
    Hangup,
    /// SIGTERM.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

impl StopSignal {
    /// Its usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Hangup => "SIGHUP",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Interrupt => "SIGINT",
        }
    }
}

/// The three signals that stop a run, caught from the moment this exists.
pub struct StopSignals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl StopSignals {
    /// Starts catching them; call it first thing in a run, before anything
    /// that would have to be cleaned up exists.
    pub fn install() -> anyhow::Result<Self> {
        let catch = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot listen for {name}"))
        };
        Ok(Self {
            hup: catch(SignalKind::hangup(), "SIGHUP")?,
            term: catch(SignalKind::terminate(), "SIGTERM")?,
            int: catch(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Waits for the first of them (one that arrived earlier counts).
    pub async fn recv(&mut self) -> StopSignal {
        tokio::select! {
            Some(()) = self.hup.recv() => StopSignal::Hangup,
            Some(()) = self.term.recv() => StopSignal::Terminate,
            Some(()) = self.int.recv() => StopSignal::Interrupt,
            // Only when the runtime is shutting down: nothing more to wait for.
            else => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_folder_goes_unless_kept() {
        let gone = RunDir::temporary("edgevisor-test-", false).expect("created");
        let path = gone.path().to_path_buf();
        std::fs::write(path.join("gateway.log"), "x").expect("writable");
        assert!(gone.stays().is_none());
        drop(gone);
        assert!(!path.exists(), "removed with its contents");

        let kept = RunDir::temporary("edgevisor-test-", true).expect("created");
        let path = kept.path().to_path_buf();
        assert_eq!(kept.stays(), Some(path.as_path()));
        drop(kept);
        assert!(path.is_dir(), "kept");
        std::fs::remove_dir_all(&path).expect("cleaned by the test");
    }
}
