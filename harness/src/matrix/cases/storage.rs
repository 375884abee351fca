//! Faults of the state directory: a full disk and a read-only one. The
//! state directory is a small tmpfs of the case's own, so nothing else on
//! the machine fills up; mounting one needs root (the case is skipped,
//! saying so, without it).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{healed, rig, Outcome};
use crate::matrix::proxy::Link;
use crate::matrix::rig::{Rig, Setup};

/// What happens to the state directory.
#[derive(Debug, Clone, Copy)]
pub enum DiskFault {
    /// Filled to the last byte by another file for 8 s.
    Full,
    /// Read-only when the gateway starts.
    ReadOnly,
    /// Filled to the last byte for good (another program's files).
    StaysFull,
}

/// The state directory fails under load for 8 s while the link to the
/// broker is cut: the outbox holds what arrives in memory, the failure is
/// logged once, and once disk and link are back everything is delivered.
/// With `StaysFull` the disk never comes back: the outbox releases its
/// reserve (`gateway/src/outbox/reserve.rs`) and recovers anyway.
pub async fn disk_fault(binary: &Path, dir: &Path, fault: DiskFault) -> anyhow::Result<Outcome> {
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    if let Err(why) = mount(&["-t", "tmpfs", "-o", "size=16m", "tmpfs"], &state).await {
        return Ok(Outcome::skipped(format!(
            "needs a tmpfs of its own (root): {why}"
        )));
    }
    let outcome = with_state_on_tmpfs(binary, dir, &state, fault).await;
    // Lazily: a gateway that outlived an error must not keep it mounted.
    let _ = mount(&["-l"], &state).await;
    outcome
}

async fn with_state_on_tmpfs(
    binary: &Path,
    dir: &Path,
    state: &Path,
    fault: DiskFault,
) -> anyhow::Result<Outcome> {
    let rig = rig(Setup::standard(), binary, dir).await?;
    let config = rig.config.clone();
    if let DiskFault::ReadOnly = fault {
        return read_only_at_start(rig, state).await;
    }
    let ballast = state.join("ballast");
    fill(&ballast)?;
    // With the broker keeping up nothing is ever written (acknowledged
    // within the linger): the link is cut too, so the outbox must hold.
    rig.proxy.set(Link::Cut);
    tokio::time::sleep(Duration::from_secs(8)).await;
    if let DiskFault::Full = fault {
        std::fs::remove_file(&ballast)?;
    }
    rig.proxy.set(Link::Open);
    // The writer retries every second.
    let (mut out, logs) = healed(rig, Duration::from_secs(3)).await;
    let failed = logs
        .lines()
        .filter(|l| l.contains("outbox storage failed"))
        .count();
    out.check(failed >= 1, "no log line says the outbox storage failed");
    out.check(
        failed <= 2,
        format!("{failed} 'storage failed' lines in 8 s: not one per episode"),
    );
    if let DiskFault::Full = fault {
        out.check(
            logs.contains("outbox storage recovered"),
            "no log line says the outbox storage recovered",
        );
    }
    if let DiskFault::StaysFull = fault {
        out.check(
            logs.contains("released the outbox's reserve"),
            "the outbox's reserve was not released on the full disk",
        );
        let left = outbox_total(binary, &config).await;
        out.check(
            left == Some(0),
            format!(
                "{left:?} messages left in the outbox on the full disk: acknowledged rows stayed"
            ),
        );
    }
    out.note = match fault {
        DiskFault::StaysFull => format!(
            "{failed} storage-failed line(s); reserve released, acknowledged rows deleted, outbox empty on a disk still full"
        ),
        _ => format!("{failed} storage-failed line(s), then recovered; link cut meanwhile"),
    };
    Ok(out)
}

/// A file system with writers cannot be made read-only, and a card that
/// went read-only is met by the next start: the gateway is stopped, the
/// state remounted read-only, and started. It must refuse at once, naming
/// the directory (it cannot keep its boot counter, so `(sensor, boot,
/// seq)` could repeat and consumers would drop readings as duplicates),
/// and run again once the directory is writable.
async fn read_only_at_start(mut rig: Rig, state: &Path) -> anyhow::Result<Outcome> {
    rig.terminate_gateway(Duration::from_secs(15)).await;
    remount(state, "ro").await?;
    rig.start_gateway()?;
    let mut exit = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        exit = rig.gateway_exited();
        if exit.is_some() {
            break;
        }
    }
    let said = rig.logs();
    rig.kill_gateway().await;
    remount(state, "rw").await?;
    rig.start_gateway()?;
    let restarted = Instant::now();
    let recovery = rig
        .catch_up(Duration::from_secs(30))
        .await
        .map(|_| restarted.elapsed());
    let mut out = Outcome::from(rig.finish().await);
    out.recovery = recovery;
    out.check(
        exit.is_some_and(|code| code != 0),
        format!("on a read-only state_dir the gateway did not exit within 5 s ({exit:?})"),
    );
    out.check(
        said.contains("state_dir") && said.contains("Read-only"),
        "the refusal does not name state_dir and the read-only file system",
    );
    out.note = format!(
        "refuses to start on a read-only state_dir (exit {}), runs once writable",
        exit.map_or_else(|| "-".into(), |c| c.to_string())
    );
    Ok(out)
}

/// Messages in the outbox of a stopped gateway (`edgevisor outbox stats`).
async fn outbox_total(binary: &Path, config: &Path) -> Option<u64> {
    let out = tokio::process::Command::new(binary)
        .args(["outbox", "stats", "--config"])
        .arg(config)
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text.lines().find(|l| l.starts_with("total"))?;
    total.split_whitespace().nth(1)?.parse().ok()
}

/// Writes `path` until the file system is full.
fn fill(path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => return Err(e),
        }
    }
    // The last partial block too.
    while let Ok(n) = file.write(&chunk[..512]) {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

async fn remount(state: &Path, how: &str) -> anyhow::Result<()> {
    mount(&["-o", &format!("remount,{how}")], state)
        .await
        .map_err(|why| anyhow::anyhow!("cannot remount the state directory {how}: {why}"))
}

/// `mount ARGS... PATH`, or `umount -l PATH` when `args` is `["-l"]`.
async fn mount(args: &[&str], path: &Path) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root".into());
    }
    let program = if args == ["-l"] { "umount" } else { "mount" };
    let out = tokio::process::Command::new(program)
        .args(args)
        .arg(path)
        .output()
        .await
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
