//! `edgevisor demo` and `edgevisor swarm` leave nothing behind: after
//! SIGHUP (the terminal closed), SIGTERM, Ctrl-C (SIGINT) or the end of the
//! run, no process they started is left and their temporary folder is gone
//! (unless `--keep`). And the demo fits an 80x24 terminal (tmux).
//!
//! Each run gets a private TMPDIR: what it left is what is in that folder,
//! and its processes are the ones whose environment names that folder (a
//! process reparented to init keeps its environment).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_edgevisor");

/// Processes (pid and command line) whose environment has `TMPDIR=tmp`.
fn processes_of(tmp: &Path) -> Vec<String> {
    let needle = format!("TMPDIR={}", tmp.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // Gone meanwhile, or a zombie (empty environment): not left running.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Names in `tmp`.
fn files_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Asserts that, within 5 s, no process of the run is left and nothing is
/// in its TMPDIR.
async fn assert_nothing_left(tmp: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (processes, files) = (processes_of(tmp), files_in(tmp));
        if processes.is_empty() && files.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} left processes {processes:#?} and files {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `edgevisor ARGS` with a private TMPDIR, once its gateway runs.
struct Run {
    child: tokio::process::Child,
    tmp: TempDir,
}

impl Run {
    async fn start(args: &[&str]) -> Run {
        let tmp = TempDir::new("cleanup");
        let child = tokio::process::Command::new(BIN)
            .args(args)
            .env("TMPDIR", &tmp.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !processes_of(&tmp.0)
            .iter()
            .any(|p| p.contains(" run --config "))
        {
            assert!(Instant::now() < deadline, "no gateway started for {args:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Otherwise the test could not see a folder left behind.
        let files = files_in(&tmp.0);
        assert!(
            files
                .iter()
                .any(|f| f.starts_with("edgevisor-demo-") || f.starts_with("edgevisor-swarm-")),
            "the run's folder is in its TMPDIR: {files:?}"
        );
        Run { child, tmp }
    }

    fn signal(&self, signal: Signal) {
        let pid = self.child.id().unwrap();
        kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();
    }

    /// Its exit code and stderr, once it exited.
    async fn finish(self) -> (Option<i32>, String, TempDir) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.child.wait_with_output())
            .await
            .expect("it exits within 60 s")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr, self.tmp)
    }
}

async fn the_demo_stops_cleanly_on(signal: Signal) {
    let run = Run::start(&["demo"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.signal(signal);
    let (code, stderr, tmp) = run.finish().await;
    assert_eq!(
        code,
        Some(0),
        "demo after {signal}: exit 0; stderr:\n{stderr}"
    );
    assert_nothing_left(&tmp.0, &format!("demo after {signal}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_leaves_nothing_after_sighup() {
    the_demo_stops_cleanly_on(Signal::SIGHUP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_leaves_nothing_after_sigterm() {
    the_demo_stops_cleanly_on(Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_leaves_nothing_after_ctrl_c() {
    the_demo_stops_cleanly_on(Signal::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_leaves_nothing_after_its_time() {
    let run = Run::start(&["demo", "--for", "2s"]).await;
    let (code, stderr, tmp) = run.finish().await;
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert_nothing_left(&tmp.0, "demo --for 2s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_keeps_its_folder_when_asked() {
    let run = Run::start(&["demo", "--for", "2s", "--keep"]).await;
    let (code, stderr, tmp) = run.finish().await;
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert!(processes_of(&tmp.0).is_empty());
    let files = files_in(&tmp.0);
    assert_eq!(files.len(), 1, "{files:?}");
    let kept = tmp.0.join(&files[0]);
    assert!(kept.join("gateway.log").is_file() && kept.join("edgevisor.toml").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swarm_leaves_nothing_after_sighup_or_its_end() {
    let args = ["swarm", "--sensors", "4", "--duration", "30s", "--quiet"];
    let run = Run::start(&args).await;
    run.signal(Signal::SIGHUP);
    let (code, stderr, tmp) = run.finish().await;
    assert_eq!(
        code,
        Some(2),
        "an interrupted swarm has no verdict: {stderr}"
    );
    assert!(stderr.contains("stopped by SIGHUP"), "{stderr}");
    assert_nothing_left(&tmp.0, "swarm after SIGHUP").await;

    let args = ["swarm", "--sensors", "4", "--duration", "2s", "--quiet"];
    let (code, stderr, tmp) = Run::start(&args).await.finish().await;
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert_nothing_left(&tmp.0, "swarm to its end").await;
}

/// A private tmux server, killed (with what runs in it) when dropped.
struct Tmux {
    socket: std::path::PathBuf,
    _dir: TempDir,
}

impl Drop for Tmux {
    fn drop(&mut self) {
        tmux(&self.socket, &["kill-server"]);
    }
}

/// `tmux -S socket ARGS`, its stdout.
fn tmux(socket: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fits_80x24_in_tmux_and_closing_it_leaves_nothing() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let tmp = TempDir::new("tmux-run");
    let dir = TempDir::new("tmux-server");
    let server = Tmux {
        socket: dir.0.join("socket"),
        _dir: dir,
    };
    let socket = &server.socket;
    let command = format!("exec env TMPDIR='{}' '{BIN}' demo", tmp.0.display());
    #[rustfmt::skip]
    tmux(socket, &[
        "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", &command,
        ";", "set-option", "status", "off",
    ]);
    let size = tmux(
        socket,
        &["display-message", "-p", "#{pane_width}x#{pane_height}"],
    );
    assert_eq!(size.trim(), "80x24");
    // Until the screen is full: the tree, and more crash reports than fit
    // (the flapping sensor is quarantined after its fifth). -J joins wrapped
    // lines, so a line that wrapped shows longer than the width.
    let deadline = Instant::now() + Duration::from_secs(60);
    let screen = loop {
        let screen = tmux(socket, &["capture-pane", "-p", "-J"]);
        if screen.contains("quarantined") && screen.lines().count() == 24 {
            break screen;
        }
        assert!(Instant::now() < deadline, "no crash shown:\n{screen}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() <= 24, "{} rows:\n{screen}", lines.len());
    assert!(
        lines[0].starts_with("edgevisor demo "),
        "header first:\n{screen}"
    );
    for line in &lines {
        assert!(line.chars().count() <= 80, "wrapped: {line:?}\n{screen}");
    }
    // Closing the terminal: tmux hangs up the demo's pty.
    drop(server);
    assert_nothing_left(&tmp.0, "demo after its terminal closed").await;
}
