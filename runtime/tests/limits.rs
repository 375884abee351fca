//! Intensity, backoff, quarantine and escalation on paused time.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

mod common;

use std::time::Duration;

use common::{worker, Log};
use edgevisor_runtime::{
    reason, ChildSpec, ChildState, EventKind, RestartPolicy, Strategy, Supervisor, SupervisorSpec,
};
use tokio::time::{sleep, Instant};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn the_sixth_restart_inside_the_period_exhausts_intensity_five() {
    let (a, ra) = worker("a");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(5, Duration::from_secs(60)))
        .child(a);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    for n in 1..=5 {
        sleep(10 * SECOND).await;
        ra.crash();
        assert_eq!(
            log.take_kind("crash").await,
            [format!("crash root/a io restart {n}")]
        );
    }
    // 50 s after the first restart: still inside the 60 s window.
    sleep(SECOND).await;
    ra.crash();
    assert_eq!(
        log.take().await,
        ["crash root/a io escalate 6", "escalate root exhausted",]
    );
    let err = tree.wait().await.unwrap_err();
    assert_eq!(err.crash.reason, reason::EXHAUSTED);
    assert!(err.to_string().contains("more than 5 restarts"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_same_crashes_spread_beyond_the_period_never_exhaust() {
    let (a, ra) = worker("a");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(5, Duration::from_secs(60)))
        .child(a);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    // Six restarts in any 60 s would exhaust; one every 12 s never has six
    // inside a window (the oldest is exactly 60 s old and falls out).
    for _ in 0..30 {
        sleep(12 * SECOND).await;
        ra.crash();
        let crashes = log.take_kind("crash").await;
        assert_eq!(crashes.len(), 1);
        assert!(
            crashes[0].ends_with("restart 5") || !crashes[0].contains("escalate"),
            "{crashes:?}"
        );
    }
    assert!(!tree.is_finished());
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_up_to_the_cap_and_resets_after_a_healthy_run() {
    let policy = RestartPolicy::default()
        .jitter(0.0)
        .intensity(100, Duration::from_secs(3600))
        .backoff(
            Duration::from_millis(100),
            Duration::from_millis(1000),
            Duration::from_secs(60),
        );
    let (a, ra) = worker("a");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(policy)
        .child(a);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    let mut delays = Vec::new();
    for _ in 0..6 {
        ra.crash();
        let crashed = Instant::now();
        let events = log.take().await;
        delays.push(
            events
                .iter()
                .find(|e| e.starts_with("restarting"))
                .cloned()
                .unwrap(),
        );
        sleep(Duration::from_secs(2)).await;
        log.take().await;
        let started = log
            .events
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::Started { .. }))
            .unwrap();
        assert!(started.at > crashed);
    }
    assert_eq!(
        delays,
        [
            "restarting root/a 100ms",
            "restarting root/a 200ms",
            "restarting root/a 400ms",
            "restarting root/a 800ms",
            "restarting root/a 1000ms",
            "restarting root/a 1000ms",
        ]
    );
    // Healthy for backoff_reset: the next crash starts the series again.
    sleep(Duration::from_secs(60)).await;
    ra.crash();
    assert!(log
        .take()
        .await
        .contains(&"restarting root/a 100ms".to_string()));
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn jitter_keeps_each_delay_within_twenty_percent() {
    let policy = RestartPolicy::default().intensity(1000, Duration::from_secs(1));
    let (a, ra) = worker("a");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(policy)
        .child(a);
    let sup = Supervisor::new("root", spec).unwrap().seed(7);
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    let mut distinct = std::collections::HashSet::new();
    for _ in 0..20 {
        ra.crash();
        log.take().await;
        sleep(Duration::from_secs(61)).await; // reset the series each time
        log.take().await;
        let delay = log
            .events
            .iter()
            .rev()
            .find_map(|e| match e.kind {
                EventKind::Restarting { delay } => Some(delay),
                _ => None,
            })
            .unwrap();
        assert!(
            delay >= Duration::from_millis(80) && delay <= Duration::from_millis(120),
            "{delay:?}"
        );
        distinct.insert(delay);
    }
    assert!(distinct.len() > 10, "jitter varies: {distinct:?}");
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_child_with_its_own_window_is_quarantined_while_siblings_run() {
    let own = RestartPolicy::otp()
        .intensity(2, Duration::from_secs(60))
        .quarantine(Duration::from_secs(600));
    let (bad, rbad) = worker("bad");
    let (good, rgood) = worker("good");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(1, Duration::from_secs(60)))
        .child(bad.policy(own))
        .child(good);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    for n in 1..=2 {
        rbad.crash();
        assert_eq!(
            log.take_kind("crash").await,
            [format!("crash root/bad io restart {n}")]
        );
    }
    rbad.crash();
    assert_eq!(
        log.take().await,
        ["crash root/bad io quarantine 3", "quarantine root/bad 600s"]
    );
    let snap = tree.snapshot();
    assert_eq!(
        snap.find("root/bad").unwrap().state,
        ChildState::Quarantined
    );
    assert_eq!(snap.find("root/good").unwrap().state, ChildState::Running);
    // The sibling's budget is untouched by bad's crashes: one restart is fine.
    rgood.crash();
    assert_eq!(
        log.take_kind("crash").await,
        ["crash root/good io restart 1"]
    );
    // Retried after quarantine_for, with a clean window.
    sleep(Duration::from_secs(599)).await;
    assert!(log.take().await.is_empty());
    sleep(Duration::from_secs(1)).await;
    assert_eq!(log.take().await, ["start root/bad 3"]);
    rbad.crash();
    assert_eq!(
        log.take_kind("crash").await,
        ["crash root/bad io restart 1"]
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn exhaustion_escalates_through_two_levels_of_nesting() {
    let (leaf, rleaf) = worker("leaf");
    let (bystander, _rb) = worker("bystander");
    let inner = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(1, Duration::from_secs(60)))
        .child(leaf);
    let middle = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(0, Duration::from_secs(60)))
        .child(ChildSpec::supervisor("inner", inner));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(0, Duration::from_secs(60)))
        .child(bystander)
        .child(ChildSpec::supervisor("middle", middle));
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    assert_eq!(
        log.take().await,
        [
            "start root/bystander 0",
            "start root/middle/inner/leaf 0",
            "start root/middle/inner 0",
            "start root/middle 0"
        ]
    );
    rleaf.crash();
    log.take().await;
    rleaf.crash();
    assert_eq!(
        log.take().await,
        [
            "crash root/middle/inner/leaf io escalate 2",
            "escalate root/middle/inner exhausted",
            "crash root/middle/inner exhausted escalate 1",
            "escalate root/middle exhausted",
            "crash root/middle exhausted escalate 1",
            "stop root/bystander shutdown",
            "escalate root exhausted",
        ]
    );
    let err = tree.wait().await.unwrap_err();
    assert!(err.crash.message.contains("middle"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_crash_with_its_message_and_the_supervisor_survives() {
    let (a, ra) = worker("a");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(a);
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    log.take().await;
    ra.panic();
    assert_eq!(
        log.take_kind("crash").await,
        ["crash root/a panic restart 1"]
    );
    let message = log
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Crashed { crash, .. } => Some(crash.message.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(message, "told to panic");
    assert_eq!(
        tree.snapshot().find("root/a").unwrap().state,
        ChildState::Running
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_child_panicking_a_thousand_times_a_second_is_quarantined_and_its_sibling_runs_on() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let panics = Arc::new(AtomicU32::new(0));
    let counted = panics.clone();
    let storm = ChildSpec::worker("storm", move |_ctx| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::Relaxed);
            panic!("storm")
        }
    })
    .policy(
        RestartPolicy::otp()
            .intensity(1000, SECOND)
            .quarantine(Duration::from_secs(600)),
    );
    let (good, rgood) = worker("good");
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp().intensity(1, Duration::from_secs(60)))
        .child(storm)
        .child(good);
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    let began = Instant::now();
    let state = |tree: &edgevisor_runtime::SupervisorHandle| {
        tree.snapshot().find("root/storm").map(|child| child.state)
    };
    while state(&tree) != Some(ChildState::Quarantined) {
        common::settle().await;
        assert!(
            began.elapsed() < SECOND,
            "not quarantined within its 1 s window"
        );
    }
    // Its first run and 1,000 restarts inside the window, then quarantine.
    assert_eq!(panics.load(Ordering::Relaxed), 1001);
    let snap = tree.snapshot();
    assert_eq!(snap.find("root/good").unwrap().state, ChildState::Running);
    assert_eq!(snap.find("root/good").unwrap().restarts, 0);
    // The sibling's own budget is untouched: it may still crash once.
    let mut log = Log::new(tree.subscribe());
    rgood.crash();
    assert_eq!(
        log.take_kind("crash").await,
        ["crash root/good io restart 1"]
    );
    tree.shutdown().await.unwrap();
}
