//! Property: whatever the crash sequence, a supervisor never restarts more
//! than `intensity` times within `period`, gives up exactly when one more
//! restart would exceed it, and never restarts a child that should stay down.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{worker, Log, Remote};
use edgevisor_runtime::{
    Action, EventKind, Restart, RestartPolicy, StopReason, Strategy as Kind, Supervisor,
    SupervisorSpec,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Crash(usize),
    Panic(usize),
    Exit(usize),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Crash),
        (0..3usize).prop_map(Op::Panic),
        (0..3usize).prop_map(Op::Exit),
        (0..20_000u64).prop_map(Op::Wait),
    ]
}

fn restart_type() -> impl Strategy<Value = Restart> {
    prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary)
    ]
}

fn strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::OneForOne),
        Just(Kind::OneForAll),
        Just(Kind::RestForOne)
    ]
}

struct Case {
    intensity: u32,
    period: Duration,
    strategy: Kind,
    restarts: Vec<Restart>,
    ops: Vec<Op>,
}

async fn run(case: Case) {
    let policy = RestartPolicy::otp().intensity(case.intensity, case.period);
    let mut spec = SupervisorSpec::new(case.strategy).policy(policy);
    let mut remotes: Vec<Remote> = Vec::new();
    for (i, restart) in case.restarts.iter().enumerate() {
        let (child, remote) = worker(&format!("c{i}"));
        spec = spec.child(child.restart(*restart));
        remotes.push(remote);
    }
    let sup = Supervisor::new("root", spec)
        .unwrap()
        .event_capacity(100_000);
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    for op in &case.ops {
        match op {
            Op::Crash(i) => remotes[*i].crash(),
            Op::Panic(i) => remotes[*i].panic(),
            Op::Exit(i) => remotes[*i].exit(),
            Op::Wait(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        }
        log.take().await;
    }
    if !tree.is_finished() {
        tree.shutdown().await.unwrap();
    }
    log.take().await;

    let mut restart_times = Vec::new();
    let mut down_for_good: HashMap<String, bool> = HashMap::new();
    for event in &log.events {
        let path = event.path.to_string();
        match &event.kind {
            EventKind::Crashed { action, .. } => {
                let in_window = restart_times
                    .iter()
                    .filter(|&&t| event.at.duration_since(t) < case.period)
                    .count() as u32;
                match action {
                    Action::Restart { .. } => {
                        assert!(
                            in_window < case.intensity,
                            "restart beyond intensity at {path}"
                        );
                        restart_times.push(event.at);
                    }
                    Action::Escalate => {
                        assert_eq!(in_window, case.intensity, "gave up early at {path}")
                    }
                    Action::None | Action::Quarantine { .. } => {}
                }
            }
            EventKind::Stopped {
                reason: StopReason::Exited | StopReason::Crashed,
            } => {
                down_for_good.insert(path, true);
            }
            EventKind::Started { .. } => {
                assert!(
                    !down_for_good.get(&path).copied().unwrap_or(false),
                    "{path} restarted though it should stay down"
                );
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn crash_sequences_respect_intensity_and_restart_types(
        intensity in 1u32..5,
        period_s in 1u64..30,
        strategy in strategy(),
        restarts in proptest::collection::vec(restart_type(), 3),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(run(Case {
            intensity,
            period: Duration::from_secs(period_s),
            strategy,
            restarts,
            ops,
        }));
    }
}
