//! Shutdown order and timeouts, restart types, the dynamic pool and spec
//! validation, on paused time.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

mod common;

use std::time::Duration;

use common::{stubborn, worker, Log};
use edgevisor_runtime::{
    ChildSpec, ChildState, Crash, Restart, RestartPolicy, Shutdown, SpecError, StartChildError,
    Strategy, Supervisor, SupervisorSpec, TerminateChildError,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn shutdown_stops_children_in_reverse_start_order() {
    let (a, _ra) = worker("a");
    let (b, _rb) = worker("b");
    let (leaf, _rl) = worker("leaf");
    let nested = SupervisorSpec::new(Strategy::OneForOne).child(leaf);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(a)
        .child(ChildSpec::supervisor("sub", nested))
        .child(b);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    tree.shutdown().await.unwrap();
    assert_eq!(
        log.take().await,
        [
            "stop root/b shutdown",
            "stop root/sub/leaf shutdown",
            "stop root/sub shutdown",
            "stop root/a shutdown",
            "stop root shutdown",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_shutdown_is_aborted_after_its_timeout() {
    let (a, _ra) = worker("a");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(a)
        .child(stubborn("deaf").shutdown(Shutdown::Timeout(Duration::from_secs(3))))
        .child(stubborn("brutal").shutdown(Shutdown::Brutal));
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    let begun = Instant::now();
    tree.shutdown().await.unwrap();
    assert_eq!(
        begun.elapsed(),
        Duration::from_secs(3),
        "waited exactly the timeout"
    );
    assert_eq!(
        log.take().await,
        [
            "stop root/brutal killed",
            "stop root/deaf killed",
            "stop root/a shutdown",
            "stop root shutdown"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn transient_normal_exit_is_not_restarted_but_its_crash_is() {
    let (t, rt) = worker("t");
    let (t2, rt2) = worker("t2");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(t.restart(Restart::Transient))
        .child(t2.restart(Restart::Transient));
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    rt.exit();
    assert_eq!(log.take().await, ["stop root/t exited"]);
    assert_eq!(
        tree.snapshot().find("root/t").unwrap().state,
        ChildState::Stopped
    );
    rt2.crash();
    assert_eq!(log.take_kind("crash").await, ["crash root/t2 io restart 1"]);
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn temporary_is_never_restarted_and_permanent_always_is() {
    let (tmp, rtmp) = worker("tmp");
    let (perm, rperm) = worker("perm");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(tmp.restart(Restart::Temporary))
        .child(perm);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    rtmp.crash();
    assert_eq!(
        log.take().await,
        ["crash root/tmp io none 0", "stop root/tmp crashed"]
    );
    assert!(
        tree.snapshot().find("root/tmp").is_none(),
        "a temporary child that ended is forgotten, as in OTP"
    );
    rperm.exit();
    assert_eq!(
        log.take().await,
        [
            "crash root/perm normal restart 1",
            "restarting root/perm 0ms",
            "start root/perm 1"
        ]
    );
    tree.shutdown().await.unwrap();
}

/// The ids of `pool`'s children, in start order.
fn child_ids(pool: &edgevisor_runtime::SupervisorHandle) -> Vec<String> {
    pool.snapshot()
        .children
        .iter()
        .map(|c| c.id.to_string())
        .collect()
}

/// A pool large enough for its ids to be indexed (a `tcp-listen` sensor's
/// connections) still finds, refuses and forgets children by id, across
/// removals and re-use of an id.
#[tokio::test(start_paused = true)]
async fn a_large_pool_finds_each_child_by_id() {
    let spec = SupervisorSpec::new(Strategy::Dynamic { max_children: 500 });
    let pool = Supervisor::new("conns", spec).unwrap().spawn();
    let mut remotes = Vec::new();
    for n in 0..200 {
        let (child, remote) = worker(&format!("c{n}"));
        pool.start_child(child).await.unwrap();
        remotes.push(remote);
    }
    for n in [0, 31, 32, 33, 150, 199] {
        let (dup, _r) = worker(&format!("c{n}"));
        assert!(
            matches!(
                pool.start_child(dup).await,
                Err(StartChildError::Spec(SpecError::DuplicateChild { .. }))
            ),
            "c{n} is a duplicate"
        );
    }
    for n in (0..200).step_by(3) {
        pool.terminate_child(&format!("c{n}")).await.unwrap();
    }
    for n in 0..200 {
        let again = pool.terminate_child(&format!("c{n}")).await;
        if n % 3 == 0 {
            assert!(
                matches!(again, Err(TerminateChildError::NotFound { .. })),
                "c{n} was removed"
            );
        } else {
            again.unwrap();
        }
    }
    assert!(pool.snapshot().children.is_empty());
    let (back, _r) = worker("c0");
    pool.start_child(back).await.unwrap();
    assert_eq!(child_ids(&pool), ["c0"]);
    pool.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dynamic_pool_refuses_the_child_past_max_children() {
    let spec =
        SupervisorSpec::new(Strategy::Dynamic { max_children: 2 }).policy(RestartPolicy::otp());
    let sup = Supervisor::new("conns", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let pool = sup.spawn();
    let (c1, _r1) = worker("c1");
    let (c2, r2) = worker("c2");
    let (c3, _r3) = worker("c3");
    pool.start_child(c1).await.unwrap();
    pool.start_child(c2).await.unwrap();
    let err = pool.start_child(c3).await.unwrap_err();
    assert!(matches!(err, StartChildError::MaxChildren { max: 2, .. }));
    assert_eq!(
        err.to_string(),
        "conns: refused child \"c3\": max_children 2 reached"
    );
    // A crashed dynamic child restarts alone; a removed one frees its slot.
    r2.crash();
    log.take().await;
    assert_eq!(pool.snapshot().children.len(), 2);
    pool.terminate_child("c1").await.unwrap();
    let (c3, _r3) = worker("c3");
    pool.start_child(c3).await.unwrap();
    assert_eq!(child_ids(&pool), ["c2", "c3"]);
    assert!(matches!(
        pool.terminate_child("nope").await,
        Err(TerminateChildError::NotFound { .. })
    ));
    let (dup, _rd) = worker("c2");
    assert!(matches!(
        pool.start_child(dup).await,
        Err(StartChildError::Spec(SpecError::DuplicateChild { .. }))
    ));
    pool.shutdown().await.unwrap();
    let (late, _rl) = worker("late");
    assert!(matches!(
        pool.start_child(late).await,
        Err(StartChildError::NotRunning(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_failing_start_is_a_start_failed_crash_under_the_policy() {
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = attempts.clone();
    let flaky = ChildSpec::with_start("flaky", move |_ctx| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            if n < 2 {
                Err(Crash::new("io", "device not found"))
            } else {
                Ok(edgevisor_runtime::Running::new(std::future::pending()))
            }
        }
    });
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(flaky);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    assert_eq!(
        log.take().await,
        [
            "crash root/flaky start_failed restart 1",
            "restarting root/flaky 0ms",
            "crash root/flaky start_failed restart 2",
            "restarting root/flaky 0ms",
            "start root/flaky 2",
        ]
    );
    let pool = Supervisor::new(
        "pool",
        SupervisorSpec::new(Strategy::Dynamic { max_children: 4 }),
    )
    .unwrap()
    .spawn();
    let refused =
        ChildSpec::with_start("x", |_ctx| async { Err(Crash::new("io", "no such port")) });
    let err = pool.start_child(refused).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "pool: child \"x\" failed to start: start_failed: io: no such port"
    );
    assert!(pool.snapshot().children.is_empty());
    tree.shutdown().await.unwrap();
}

#[test]
fn invalid_specs_are_refused_when_built_naming_child_and_reason() {
    let (a, _) = worker("a");
    let (a2, _) = worker("a");
    let err = Supervisor::new(
        "root",
        SupervisorSpec::new(Strategy::OneForOne).child(a).child(a2),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "root: duplicate child id \"a\"; child ids must be unique among siblings"
    );

    let zero = RestartPolicy::default().intensity(0, Duration::ZERO);
    let err = Supervisor::new(
        "root",
        SupervisorSpec::new(Strategy::OneForOne).policy(zero),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .starts_with("root: invalid restart policy: period is 0 (intensity 0)"),
        "{err}"
    );

    let err = Supervisor::new(
        "root",
        SupervisorSpec::new(Strategy::Dynamic { max_children: 0 }),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "root: max_children is 0: no child could ever start; set it to at least 1"
    );

    let (leaf, _) = worker("leaf");
    let bad = RestartPolicy::default().intensity(3, Duration::ZERO);
    let nested = SupervisorSpec::new(Strategy::OneForOne).child(leaf.policy(bad));
    let err = Supervisor::new(
        "root",
        SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("barn", nested)),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .starts_with("root/barn/leaf: invalid restart policy"),
        "{err}"
    );

    let (slash, _) = worker("a/b");
    let err = Supervisor::new(
        "root",
        SupervisorSpec::new(Strategy::OneForOne).child(slash),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SpecError::InvalidId { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn temporary_children_added_last_stop_together_then_the_rest_in_order() {
    let (first, _r) = worker("acceptor");
    let spec = SupervisorSpec::new(Strategy::RestForOne).child(first);
    let sup = Supervisor::new("root", spec).unwrap();
    let tree = sup.spawn();
    // Three connections that each need their whole 3 s timeout to stop.
    for peer in ["p1", "p2", "p3"] {
        let child = stubborn(peer)
            .restart(Restart::Temporary)
            .shutdown(Shutdown::Timeout(Duration::from_secs(3)));
        tree.start_child(child).await.unwrap();
    }
    let begun = Instant::now();
    tree.shutdown().await.unwrap();
    assert_eq!(
        begun.elapsed(),
        Duration::from_secs(3),
        "the three timeouts ran at once, not one after another (9 s)"
    );
}
