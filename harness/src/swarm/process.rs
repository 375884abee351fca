//! The gateway under test as a child process, so its CPU time and peak
//! memory are its own and a crash of the harness cannot hide one of the
//! gateway.
//!
//! It runs in a process group of its own: the terminal's Ctrl-C and hangup
//! reach the demo or swarm only (which then stops the gateway in order,
//! before the sensors), and the whole group is signalled on every way out,
//! including when this handle is dropped on an error.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// A running `edgevisor run`.
pub struct GatewayProcess {
    child: Child,
    /// Where its log goes.
    pub log: PathBuf,
}

/// Runs `binary check --config config`: the gateway's own verdict on a
/// config the harness wrote.
pub async fn check_config(binary: &Path, config: &Path) -> anyhow::Result<()> {
    let out = Command::new(binary)
        .args(["check", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {} check", binary.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "generated config {} is invalid:\n{}",
            config.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// CPU seconds and peak resident memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// Peak resident set (VmHWM), bytes.
    pub peak_rss_bytes: u64,
}

impl GatewayProcess {
    /// Starts `binary run --config config`, logging to `log` at the level
    /// of `RUST_LOG` (WARN when unset).
    pub fn start(binary: &Path, config: &Path, log: PathBuf) -> std::io::Result<Self> {
        let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        Self::start_logging(binary, config, log, &level)
    }

    /// [`start`](Self::start) at log level `level`.
    pub fn start_logging(
        binary: &Path,
        config: &Path,
        log: PathBuf,
        level: &str,
    ) -> std::io::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self { child, log })
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU and peak memory so far.
    pub fn usage(&self) -> Usage {
        let Some(pid) = self.pid() else {
            return Usage::default();
        };
        // A process that just exited (or no /proc) reads as zero usage: these
        // are report figures, not decisions.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are
        // the 12th and 13th of them, in clock ticks (USER_HZ = 100).
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
            .sum();
        Usage {
            cpu_s: ticks as f64 / 100.0,
            peak_rss_bytes: status_bytes(pid, "VmHWM"),
        }
    }

    /// Resident memory now (VmRSS), bytes; 0 once it exited.
    pub fn rss_bytes(&self) -> u64 {
        self.pid().map_or(0, |pid| status_bytes(pid, "VmRSS"))
    }

    /// Signals its process group, while it has not been waited for (after
    /// that its pid may belong to someone else).
    fn signal_group(&self, signal: Signal) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }

    /// Asks it to stop (SIGTERM) and waits for its exit code; kills its
    /// group after 30 s.
    pub async fn stop(&mut self) -> Option<i32> {
        self.signal_group(Signal::SIGTERM);
        match tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                self.signal_group(Signal::SIGKILL);
                let _ = self.child.wait().await;
                None
            }
        }
    }

    /// Kills its group with SIGKILL (what a crash or the OOM killer does:
    /// no flush, no goodbye) and waits for it.
    pub async fn kill(&mut self) {
        self.signal_group(Signal::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM and waits up to `bound` for it to exit: its exit code,
    /// or `None` when it was still running (then it is killed).
    pub async fn terminate_within(&mut self, bound: std::time::Duration) -> Option<i32> {
        self.signal_group(Signal::SIGTERM);
        match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(Ok(status)) => Some(status.code().unwrap_or(-1)),
            _ => {
                self.kill().await;
                None
            }
        }
    }

    /// The error for a gateway that exited by itself with `code`, with the
    /// end of its log: the run's folder (and the log) may be gone by the
    /// time the user reads it.
    pub fn failure(&self, code: i32) -> anyhow::Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        anyhow::anyhow!("the gateway exited with {code}; the end of its log:\n{tail}")
    }

    /// True once it has exited.
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }
}

/// A `kB` field of `/proc/PID/status` in bytes; 0 for a process that just
/// exited (or no /proc): these are report figures, not decisions.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

impl Drop for GatewayProcess {
    /// An error or a panic left it running: kill its whole group, so
    /// nothing it started outlives the run.
    fn drop(&mut self) {
        self.signal_group(Signal::SIGKILL);
    }
}
