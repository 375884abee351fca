//! What a forwarder process costs, read from `/proc` (Linux only):
//! CPU from `/proc/PID/stat` (utime + stime, all threads, living or exited),
//! memory from `/proc/PID/status` (VmRSS, VmHWM), disk and syscalls from
//! `/proc/PID/io` (write_bytes; syscr + syscw, which count only read- and
//! write-class calls), and context switches summed over
//! `/proc/PID/task/*/status` (threads alive when sampled).

use std::path::PathBuf;

use anyhow::Context;
use nix::unistd::{sysconf, SysconfVar};

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Bytes the process caused to be written to storage.
    pub write_bytes: u64,
    /// Read-class plus write-class syscalls.
    pub syscalls: u64,
    /// Voluntary + involuntary context switches of its live threads.
    pub ctx_switches: u64,
    /// Peak resident set, KiB.
    pub hwm_kib: u64,
}

/// Counter growth between two samples, with the later sample's memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta {
    /// CPU seconds used.
    pub cpu_s: f64,
    /// Bytes written to storage.
    pub write_bytes: u64,
    /// Read- and write-class syscalls made.
    pub syscalls: u64,
    /// Context switches.
    pub ctx_switches: u64,
    /// Peak resident set at the end, KiB.
    pub hwm_kib: u64,
}

impl Sample {
    /// What grew from `earlier` to `self`.
    pub fn since(&self, earlier: &Sample) -> Delta {
        Delta {
            cpu_s: (self.cpu_s - earlier.cpu_s).max(0.0),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            syscalls: self.syscalls.saturating_sub(earlier.syscalls),
            ctx_switches: self.ctx_switches.saturating_sub(earlier.ctx_switches),
            hwm_kib: self.hwm_kib,
        }
    }
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{file}"))
}

fn read(path: PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The value of a `Key: value` line (first word of the value).
fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of the process (all its threads).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = read(proc_path(pid, "stat"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of proc(5), so utime (14) and stime (15) are at 11 and 12.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1);
    Ok((ticks(11) + ticks(12)) as f64 / hz as f64)
}

/// Resident and peak resident set, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = read(proc_path(pid, "status"))?;
    Ok((field(&status, "VmRSS"), field(&status, "VmHWM")))
}

fn ctx_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(proc_path(pid, "task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| field(&s, "voluntary_ctxt_switches") + field(&s, "nonvoluntary_ctxt_switches"))
        .sum()
}

/// Reads every counter of a live process.
pub fn sample(pid: u32) -> anyhow::Result<Sample> {
    let io = read(proc_path(pid, "io"))?;
    let (_, hwm_kib) = rss_kib(pid)?;
    Ok(Sample {
        cpu_s: cpu_seconds(pid)?,
        write_bytes: field(&io, "write_bytes"),
        syscalls: field(&io, "syscr") + field(&io, "syscw"),
        ctx_switches: ctx_switches(pid),
        hwm_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.hwm_kib > 0 && s.cpu_s >= 0.0);
        assert!(s.syscalls > 0 && s.ctx_switches > 0);
    }

    #[test]
    fn fields_take_the_first_word() {
        assert_eq!(field("VmHWM:\t  1234 kB\nVmRSS: 99 kB\n", "VmRSS"), 99);
        assert_eq!(field("syscr: 7\n", "syscw"), 0);
    }
}
