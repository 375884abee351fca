//! `edgevisor demo` as a new user runs it, on a machine without a broker:
//! the tree shows within 3 s, crashes and restarts within 10 s, and it
//! exits 0 after `--for`. Output is not a terminal here, so the demo prints
//! a frame every second instead of redrawing in place.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

/// (seconds into the demo, frame text) for each frame printed.
fn frames(out: &str) -> Vec<(f64, String)> {
    out.split("edgevisor demo ")
        .skip(1)
        .filter_map(|frame| {
            let secs = frame
                .split_whitespace()
                .next()?
                .strip_suffix('s')?
                .parse()
                .ok()?;
            Some((secs, frame.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_tree_then_crashes_and_exits_cleanly() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgevisor"))
        .args(["demo", "--for", "12s"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit 0 after --for; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = frames(&stdout);
    assert!(frames.len() >= 10, "a frame a second: {}", frames.len());
    let tree_at = frames
        .iter()
        .find(|(_, f)| f.contains("root (one_for_one)") && f.contains("running"))
        .map(|(t, _)| *t);
    assert!(
        tree_at.is_some_and(|t| t <= 3.0),
        "tree shown at {tree_at:?}\n{stdout}"
    );
    let crash_at = frames
        .iter()
        .find(|(_, f)| f.contains("-> restart") && f.contains("corrupt_frame"))
        .map(|(t, _)| *t);
    assert!(
        crash_at.is_some_and(|t| t <= 10.0),
        "crash and restart shown at {crash_at:?}\n{stdout}"
    );
    assert!(
        stdout.contains("restarts 1") || stdout.contains("restarts 2"),
        "restart counts in the tree"
    );
    assert!(
        stdout.contains("quarantined"),
        "the flapping sensor is quarantined"
    );
}
