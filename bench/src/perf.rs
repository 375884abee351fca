//! Every syscall a process makes, counted by `perf stat -e
//! raw_syscalls:sys_enter -p PID` when `perf` is installed and allowed.
//! `/proc/PID/io`'s syscr and syscw count only read- and write-class calls
//! (`read`, `write`, `pread`, `writev`, ...): Rust's std sockets use `recv`
//! and `send`, which those counters never see, while libuv (Node-RED) uses
//! `read` and `writev`. This counter sees `recv`, `send`, `epoll_wait`,
//! `futex` and `fsync` alike, for a small in-kernel counting cost.

use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A running `perf stat` attached to one process.
pub struct SyscallCounter {
    child: Child,
}

impl SyscallCounter {
    /// Starts counting `pid`'s syscalls (all its threads); `None` when perf
    /// is missing.
    pub fn start(pid: u32) -> Option<Self> {
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p"])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        Some(Self { child })
    }

    /// Stops counting; the number of syscalls, or `None` if perf could not count.
    pub async fn stop(mut self) -> Option<u64> {
        let pid = Pid::from_raw(i32::try_from(self.child.id()?).ok()?);
        kill(pid, Signal::SIGINT).ok()?;
        let mut text = String::new();
        self.child
            .stderr
            .take()?
            .read_to_string(&mut text)
            .await
            .ok()?;
        let _ = self.child.wait().await;
        text.lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))
            .and_then(|l| l.split(',').next()?.trim().parse().ok())
    }
}
