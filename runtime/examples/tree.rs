//! A small supervision tree that prints its events: a modem and a GPS under
//! rest_for_one, a flaky sensor that sends corrupt frames until it is
//! quarantined, and a healthy one beside it.
//!
//! `cargo run --release -p edgevisor-runtime --example tree [SECONDS]`
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

use std::time::Duration;

use edgevisor_runtime::{
    ChildSpec, Crash, EventKind, RestartPolicy, Strategy, Supervisor, SupervisorSpec, TreeSnapshot,
};

fn ticking(id: &'static str, crash_every: Option<Duration>) -> ChildSpec {
    ChildSpec::worker(id, move |ctx| async move {
        let crash_at = crash_every.map(|d| tokio::time::Instant::now() + d);
        loop {
            tokio::select! {
                _ = ctx.shutdown_requested() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if crash_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                let frame = b"\xa5\x5a\x01\x00\x03abc\x12\x34";
                return Err(
                    Crash::new("corrupt_frame", "frame crc mismatch: want 9A3C got 1234")
                        .with_evidence(&frame[..], false),
                );
            }
        }
    })
}

fn print_tree(snapshot: &TreeSnapshot) {
    println!("tree {} ({})", snapshot.path, snapshot.strategy);
    for child in snapshot.flatten() {
        let depth = child.path.matches('/').count();
        println!(
            "{:indent$}{} {} restarts={} last={}",
            "",
            child.id,
            child.state.as_str(),
            child.restarts,
            child.last_reason.as_deref().unwrap_or("-"),
            indent = depth * 2
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let flaky_policy = RestartPolicy::default()
        .intensity(3, Duration::from_secs(10))
        .backoff(
            Duration::from_millis(100),
            Duration::from_secs(2),
            Duration::from_secs(30),
        )
        .quarantine(Duration::from_secs(5));
    let barn = SupervisorSpec::new(Strategy::RestForOne)
        .child(ticking("barn-modem", Some(Duration::from_secs(3))))
        .child(ticking("barn-gps", None));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::default().intensity(20, Duration::from_secs(60)))
        .child(ChildSpec::supervisor("barn", barn))
        .child(ticking("flaky", Some(Duration::from_millis(400))).policy(flaky_policy))
        .child(ticking("weather", None));
    let sup = Supervisor::new("root", spec)?;
    let mut events = sup.subscribe();
    let tree = sup.spawn();
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let begun = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            event = events.recv() => {
                let Ok(event) = event else { break };
                let t = event.at.duration_since(begun).as_secs_f64();
                let what = match &event.kind {
                    EventKind::Started { restarts } => format!("started (restarts {restarts})"),
                    EventKind::Crashed { crash, restarts_in_window, intensity, action, .. } => format!(
                        "crashed: {crash} evidence={} [{restarts_in_window}/{intensity}] -> {}",
                        crash.evidence.as_deref().map(hex).unwrap_or_default(), // none: empty
                        action.as_str()
                    ),
                    EventKind::Restarting { delay } => format!("restarting in {delay:?}"),
                    EventKind::Quarantined { for_ } => format!("quarantined for {for_:?}"),
                    EventKind::Escalated { crash } => format!("escalated: {crash}"),
                    EventKind::Stopped { reason } => format!("stopped ({reason:?})"),
                };
                println!("{t:7.3}s {:<22} {what}", event.path);
            }
        }
    }
    print_tree(&tree.snapshot());
    tree.shutdown().await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
