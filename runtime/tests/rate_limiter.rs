//! The seed's example: a rate limiter worker, gen_server style (a task that
//! owns a token bucket and answers calls over a channel), under one_for_one.
//! Bad input crashes it; it restarts with a fresh bucket, and a caller whose
//! call was in flight gets an error instead of hanging.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgevisor_runtime::{ChildSpec, Crash, RestartPolicy, Strategy, Supervisor, SupervisorSpec};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A call: take `n` tokens; the answer says whether they were granted.
struct Take {
    n: i64,
    reply: oneshot::Sender<bool>,
}

/// The registered name: where the current incarnation receives calls. A
/// restart registers a fresh mailbox, as OTP's `register/2` would.
type Registry = Arc<Mutex<Option<mpsc::Sender<Take>>>>;

#[derive(Debug, PartialEq)]
enum CallError {
    /// No limiter is registered (it is restarting).
    NotRunning,
    /// The limiter died while handling this call.
    Crashed,
}

async fn call(registry: &Registry, n: i64) -> Result<bool, CallError> {
    let mailbox = registry
        .lock()
        .unwrap()
        .clone()
        .ok_or(CallError::NotRunning)?;
    let (reply, answer) = oneshot::channel();
    mailbox
        .send(Take { n, reply })
        .await
        .map_err(|_| CallError::NotRunning)?;
    answer.await.map_err(|_| CallError::Crashed)
}

/// The worker: a bucket of `capacity` tokens refilled at `per_second`. A
/// request for a negative amount is a programming error upstream: crash.
fn limiter(registry: Registry, capacity: i64, per_second: i64) -> ChildSpec {
    ChildSpec::worker("limiter", move |ctx| {
        let registry = registry.clone();
        async move {
            let (tx, mut rx) = mpsc::channel::<Take>(16);
            *registry.lock().unwrap() = Some(tx);
            let mut tokens = capacity;
            let mut refilled = Instant::now();
            loop {
                let take = tokio::select! {
                    _ = ctx.shutdown_requested() => return Ok(()),
                    take = rx.recv() => take,
                };
                let Some(Take { n, reply }) = take else {
                    return Ok(());
                };
                if n < 0 {
                    // The reply sender drops with this frame: the caller sees
                    // the crash instead of waiting forever.
                    return Err(Crash::new("bad_request", format!("asked for {n} tokens")));
                }
                let elapsed = refilled.elapsed().as_secs() as i64;
                if elapsed > 0 {
                    tokens = (tokens + elapsed * per_second).min(capacity);
                    refilled = Instant::now();
                }
                let granted = tokens >= n;
                if granted {
                    tokens -= n;
                }
                let _ = reply.send(granted);
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn bad_input_restarts_the_limiter_with_fresh_state_and_fails_the_inflight_call() {
    let registry: Registry = Arc::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(limiter(registry.clone(), 10, 1));
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    tokio::time::sleep(Duration::from_millis(1)).await;

    assert_eq!(call(&registry, 8).await, Ok(true));
    assert_eq!(call(&registry, 5).await, Ok(false), "only 2 tokens left");

    assert_eq!(call(&registry, -1).await, Err(CallError::Crashed));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(tree.snapshot().children[0].restarts, 1);

    // Fresh start: a full bucket again, not the 2 tokens the old one had.
    assert_eq!(call(&registry, 10).await, Ok(true));
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn state_survives_restarts_only_when_the_child_keeps_it_on_purpose() {
    // The start closure captures `served`, an Arc the test created: that is
    // the explicit way to carry state across restarts.
    let served = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = served.clone();
    let registry: Registry = Arc::default();
    let reg = registry.clone();
    let child = ChildSpec::worker("counter", move |_ctx| {
        let counter = counter.clone();
        let reg = reg.clone();
        async move {
            let (tx, mut rx) = mpsc::channel::<Take>(1);
            *reg.lock().unwrap() = Some(tx);
            while let Some(Take { n, reply }) = rx.recv().await {
                if n < 0 {
                    return Err(Crash::new("bad_request", "negative"));
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = reply.send(true);
            }
            Ok(())
        }
    });
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(child);
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    tokio::time::sleep(Duration::from_millis(1)).await;
    call(&registry, 1).await.unwrap();
    let _ = call(&registry, -1).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    call(&registry, 1).await.unwrap();
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
    tree.shutdown().await.unwrap();
}
