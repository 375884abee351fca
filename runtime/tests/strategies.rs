//! The four strategies on paused time: which siblings a crash takes along and
//! in which order they stop and start again.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

mod common;

use std::time::Duration;

use common::{worker, Log};
use edgevisor_runtime::{RestartPolicy, Strategy, Supervisor, SupervisorSpec};

fn three(strategy: Strategy) -> (SupervisorSpec, Vec<common::Remote>) {
    let mut remotes = Vec::new();
    let mut spec = SupervisorSpec::new(strategy).policy(RestartPolicy::otp());
    for id in ["a", "b", "c"] {
        let (child, remote) = worker(id);
        spec = spec.child(child);
        remotes.push(remote);
    }
    (spec, remotes)
}

async fn started(spec: SupervisorSpec) -> (edgevisor_runtime::SupervisorHandle, Log) {
    let sup = Supervisor::new("root", spec).unwrap().seed(1);
    let mut log = Log::new(sup.subscribe());
    let handle = sup.spawn();
    assert_eq!(
        log.take().await,
        ["start root/a 0", "start root/b 0", "start root/c 0"]
    );
    (handle, log)
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failed_child() {
    let (spec, remotes) = three(Strategy::OneForOne);
    let (tree, mut log) = started(spec).await;
    remotes[1].crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/b io restart 1",
            "restarting root/b 0ms",
            "start root/b 1"
        ]
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_for_all_stops_all_in_reverse_and_restarts_in_order() {
    let (spec, remotes) = three(Strategy::OneForAll);
    let (tree, mut log) = started(spec).await;
    remotes[1].crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/b io restart 1",
            "stop root/c shutdown",
            "stop root/a shutdown",
            "restarting root/a 0ms",
            "restarting root/b 0ms",
            "restarting root/c 0ms",
            "start root/a 1",
            "start root/b 1",
            "start root/c 1",
        ]
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let mut spec = SupervisorSpec::new(Strategy::RestForOne).policy(RestartPolicy::otp());
    let mut remotes = Vec::new();
    for id in ["a", "b", "c", "d"] {
        let (child, remote) = worker(id);
        spec = spec.child(child);
        remotes.push(remote);
    }
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    remotes[1].crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/b io restart 1",
            "stop root/d shutdown",
            "stop root/c shutdown",
            "restarting root/b 0ms",
            "restarting root/c 0ms",
            "restarting root/d 0ms",
            "start root/b 1",
            "start root/c 1",
            "start root/d 1",
        ]
    );
    // The last child's crash takes nobody along.
    remotes[3].crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/d io restart 2",
            "restarting root/d 0ms",
            "start root/d 2"
        ]
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_for_all_leaves_a_temporary_sibling_down() {
    let (a, ra) = worker("a");
    let (t, _rt) = worker("t");
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .policy(RestartPolicy::otp())
        .child(a)
        .child(t.restart(edgevisor_runtime::Restart::Temporary));
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    ra.crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/a io restart 1",
            "stop root/t shutdown",
            "restarting root/a 0ms",
            "start root/a 1",
        ]
    );
    assert!(
        tree.snapshot().find("root/t").is_none(),
        "temporary sibling is removed"
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn group_restart_waits_for_the_backoff_then_starts_in_order() {
    let policy = RestartPolicy::default().jitter(0.0);
    let (a, _ra) = worker("a");
    let (b, rb) = worker("b");
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .policy(policy)
        .child(a)
        .child(b);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    let crashed_at = tokio::time::Instant::now();
    rb.crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/b io restart 1",
            "stop root/a shutdown",
            "restarting root/a 100ms",
            "restarting root/b 100ms"
        ],
        "nothing restarts before the backoff"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(log.take().await, ["start root/a 1", "start root/b 1"]);
    let restarted_after: Vec<_> = log.events[log.events.len() - 2..]
        .iter()
        .map(|e| e.at.duration_since(crashed_at))
        .collect();
    assert_eq!(restarted_after, [Duration::from_millis(100); 2]);
    tree.shutdown().await.unwrap();
}
