//! Micro benchmarks of the supervision runtime. Prints one `name value unit`
//! line per figure so runs can be compared.
//!
//! `cargo run --release -p edgevisor-runtime --example bench`
//!
//! - restart latency: from a child's crash (its body returning an error) to
//!   the first poll of its next incarnation, backoff 0, current-thread and
//!   multi-thread runtimes;
//! - memory per idle supervised child: RSS growth for 100,000 children
//!   divided by 100,000 (spec, record, task, context and stop signal);
//! - start time for those 100,000 children;
//! - recovery of 10,000 children that crash at the same moment.
#![allow(clippy::unwrap_used)] // tests and examples may panic on setup errors
#![allow(
    clippy::disallowed_types,
    reason = "a benchmark measures wall time; nothing here runs on paused time"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgevisor_runtime::{ChildSpec, Crash, RestartPolicy, Strategy, Supervisor, SupervisorSpec};
use tokio::sync::{watch, Notify};

const RESTARTS: usize = 200_000;
const IDLE_CHILDREN: usize = 100_000;
const STORM: usize = 10_000;

/// `BENCH_SCALE=0.01` runs every figure at a hundredth of its size, to check
/// the bench itself quickly.
fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(1)
}

fn unlimited() -> RestartPolicy {
    RestartPolicy::otp().intensity(u32::MAX - 1, Duration::from_millis(1))
}

fn rss_bytes() -> usize {
    // Without /proc (not Linux) memory reads as 0 instead of failing the bench.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_nanos() as f64 / 1000.0
}

/// A child that crashes as soon as it runs, RESTARTS times, recording the
/// gap between each crash and the next start.
async fn restart_latency() -> Vec<Duration> {
    let crashed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let samples: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(RESTARTS)));
    let done = Arc::new(Notify::new());
    let (c, s, d) = (crashed_at.clone(), samples.clone(), done.clone());
    let child = ChildSpec::worker("crasher", move |ctx| {
        let (c, s, d) = (c.clone(), s.clone(), d.clone());
        async move {
            let started = Instant::now();
            let enough = {
                let mut samples = s.lock().unwrap();
                if let Some(t) = c.lock().unwrap().take() {
                    samples.push(started - t);
                }
                samples.len() >= scaled(RESTARTS)
            };
            if enough {
                d.notify_one();
                ctx.shutdown_requested().await;
                return Ok(());
            }
            *c.lock().unwrap() = Some(Instant::now());
            Err(Crash::new("bench", "crash on purpose"))
        }
    });
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(unlimited())
        .child(child);
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    done.notified().await;
    tree.shutdown().await.unwrap();
    let mut samples = samples.lock().unwrap().clone();
    samples.sort();
    samples
}

fn idle(id: String, started: Arc<AtomicUsize>, all: Arc<Notify>, n: usize) -> ChildSpec {
    ChildSpec::worker(id, move |ctx| {
        if started.fetch_add(1, Ordering::Relaxed) + 1 == n {
            all.notify_one();
        }
        async move {
            ctx.shutdown_requested().await;
            Ok(())
        }
    })
}

async fn hundred_thousand_idle() -> (f64, f64) {
    let started = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(Notify::new());
    let before = rss_bytes();
    let t0 = Instant::now();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(unlimited())
        .children((0..scaled(IDLE_CHILDREN)).map(|i| {
            idle(
                format!("sensor-{i}"),
                started.clone(),
                all.clone(),
                scaled(IDLE_CHILDREN),
            )
        }));
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    all.notified().await;
    // Let every child reach its first await so its future is fully built.
    tokio::task::yield_now().await;
    let start_ms = t0.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let per_child = (rss_bytes().saturating_sub(before)) as f64 / scaled(IDLE_CHILDREN) as f64;
    tree.shutdown().await.unwrap();
    (start_ms, per_child)
}

async fn storm() -> f64 {
    let starts = Arc::new(AtomicUsize::new(0));
    let recovered = Arc::new(Notify::new());
    let (crash_tx, crash_rx) = watch::channel(false);
    let storm = scaled(STORM);
    let children = (0..storm).map(|i| {
        let (starts, recovered, crash_rx) = (starts.clone(), recovered.clone(), crash_rx.clone());
        ChildSpec::worker(format!("s{i}"), move |ctx| {
            let n = starts.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 2 * storm {
                recovered.notify_one();
            }
            let mut crash_rx = crash_rx.clone();
            let first_run = n <= storm;
            async move {
                if first_run {
                    let _ = crash_rx.wait_for(|go| *go).await;
                    return Err(Crash::new("bench", "storm"));
                }
                ctx.shutdown_requested().await;
                Ok(())
            }
        })
    });
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .policy(unlimited())
        .children(children);
    let tree = Supervisor::new("root", spec).unwrap().spawn();
    while starts.load(Ordering::Relaxed) < storm {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t0 = Instant::now();
    crash_tx.send_replace(true);
    recovered.notified().await;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    tree.shutdown().await.unwrap();
    ms
}

fn main() {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let samples = current.block_on(restart_latency());
    println!("restart_latency_p50 {:.2} us", percentile(&samples, 0.50));
    println!("restart_latency_p99 {:.2} us", percentile(&samples, 0.99));

    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let samples = multi.block_on(restart_latency());
    println!(
        "restart_latency_multi_thread_p50 {:.2} us",
        percentile(&samples, 0.50)
    );
    println!(
        "restart_latency_multi_thread_p99 {:.2} us",
        percentile(&samples, 0.99)
    );
    drop(multi);

    let (start_ms, per_child) = current.block_on(hundred_thousand_idle());
    println!("start_100k_children {start_ms:.1} ms");
    println!("memory_per_idle_child {per_child:.0} bytes");

    let storm_ms = current.block_on(storm());
    println!("storm_10k_recovery {storm_ms:.1} ms");
}
