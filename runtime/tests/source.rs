//! A supervisor's source of children: what it yields is added as children,
//! a failed open is the supervisor's failed start, and a source that ends
//! ends its supervisor. On paused time.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::{settle, Log};
use edgevisor_runtime::{
    ChildSource, ChildSpec, Crash, Restart, RestartPolicy, Strategy, Supervisor, SupervisorSpec,
};
use futures_util::stream;
use tokio::sync::mpsc;

fn temporary(id: String) -> ChildSpec {
    ChildSpec::worker(id, |ctx| async move {
        ctx.shutdown_requested().await;
        Ok(())
    })
    .restart(Restart::Temporary)
}

/// A source that yields a child per id sent on the returned channel; each
/// opening takes a fresh receiver from `opened`.
fn channel_source(
    opened: Arc<std::sync::Mutex<Vec<mpsc::UnboundedReceiver<String>>>>,
) -> impl Fn() -> std::future::Ready<Result<ChildSource, Crash>> + Send + Sync {
    move || {
        let rx = opened.lock().unwrap().pop();
        std::future::ready(match rx {
            Some(rx) => {
                let children = stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|id| (temporary(id), rx))
                });
                Ok(Box::pin(children) as ChildSource)
            }
            None => Err(Crash::new("io", "address in use")),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn what_the_source_yields_becomes_children() {
    let (tx, rx) = mpsc::unbounded_channel();
    let opened = Arc::new(std::sync::Mutex::new(vec![rx]));
    let pool =
        SupervisorSpec::new(Strategy::Dynamic { max_children: 4 }).source(channel_source(opened));
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("pool", pool));
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    for peer in ["10.0.0.1:1", "10.0.0.2:2"] {
        tx.send(peer.to_string()).unwrap();
    }
    settle().await;
    let snapshot = tree.snapshot();
    let pool = snapshot.find("root/pool").unwrap();
    let ids: Vec<&str> = pool.children.iter().map(|c| &*c.id).collect();
    assert_eq!(ids, ["10.0.0.1:1", "10.0.0.2:2"]);
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_source_that_fails_to_open_fails_its_supervisors_start() {
    let opens = Arc::new(AtomicU32::new(0));
    let counted = opens.clone();
    let pool = SupervisorSpec::new(Strategy::Dynamic { max_children: 4 }).source(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Err::<ChildSource, _>(Crash::new("io", "address in use")))
    });
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(
            ChildSpec::supervisor("pool", pool)
                .policy(RestartPolicy::otp().quarantine(std::time::Duration::from_secs(60))),
        );
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    settle().await;
    let crashes = log.take_kind("crash").await;
    assert!(
        crashes
            .first()
            .is_some_and(|c| c.starts_with("crash root/pool start_failed")),
        "{crashes:?}"
    );
    assert!(
        opens.load(Ordering::Relaxed) > 1,
        "restarted under its policy"
    );
    tree.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_source_that_ends_crashes_its_supervisor() {
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let opened = Arc::new(std::sync::Mutex::new(vec![rx]));
    let pool =
        SupervisorSpec::new(Strategy::Dynamic { max_children: 4 }).source(channel_source(opened));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(RestartPolicy::otp())
        .child(ChildSpec::supervisor("pool", pool).restart(Restart::Transient));
    let sup = Supervisor::new("root", spec).unwrap();
    let mut log = Log::new(sup.subscribe());
    let tree = sup.spawn();
    settle().await;
    drop(tx);
    settle().await;
    let crashes = log.take_kind("crash").await;
    assert_eq!(
        crashes.first().map(String::as_str),
        Some("crash root/pool io restart 1")
    );
    // The restarts find nothing more to open and the root gives up.
    assert!(tree.shutdown().await.is_err());
}
