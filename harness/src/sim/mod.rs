//! Simulated sensors for tests, the demo and the swarm harness: TCP
//! (server and client side), serial over pty pairs, MQTT publishers, and a
//! real Mosquitto broker for tests.
//!
//! Every simulator writes numbered readings at a set rate ([`seq_of`]
//! reads the number back) and counts what it wrote, so a harness can prove
//! that nothing accepted was lost; faults are injected at run time through
//! [`SimHandle::inject`].

pub mod broker;
pub mod certs;
mod faults;
pub mod modbus;
pub mod mqtt;
pub mod serial;
pub mod tcp;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use faults::{seq_in_data, seq_of, Fault, ReadingGen};

use edgevisor_devices::codec::CodecKind;

/// How a simulated sensor behaves.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// What it writes.
    pub gen: ReadingGen,
    /// Readings per second.
    pub rate: f64,
    /// First sequence number (a harness may give each sensor its own range).
    pub first_seq: u64,
}

impl SimConfig {
    /// `rate` readings per second of `codec`, numbered from 1.
    pub fn new(codec: CodecKind, rate: f64) -> Self {
        SimConfig {
            gen: ReadingGen::new(codec),
            rate,
            first_seq: 1,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate.max(0.001))
    }
}

/// What a simulator has done so far.
#[derive(Debug, Default)]
pub struct SimCounters {
    /// Good readings completely written (or published).
    pub written: AtomicU64,
    /// Corrupt frames written on command.
    pub corrupt_written: AtomicU64,
    /// Connections made or accepted (pty plug-ins, broker connections).
    pub connections: AtomicU64,
    /// The sequence number the next reading will carry.
    pub next_seq: AtomicU64,
}

/// Controls a running simulator; dropping it stops the simulator.
#[derive(Debug)]
pub struct SimHandle {
    commands: mpsc::UnboundedSender<Fault>,
    counters: Arc<SimCounters>,
    task: JoinHandle<()>,
}

impl SimHandle {
    fn spawn<F, Fut>(config: &SimConfig, body: F) -> Self
    where
        F: FnOnce(Arc<SimCounters>, mpsc::UnboundedReceiver<Fault>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let counters = Arc::new(SimCounters::default());
        counters.next_seq.store(config.first_seq, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(body(Arc::clone(&counters), rx));
        SimHandle {
            commands: tx,
            counters,
            task,
        }
    }

    /// Queues a fault; it takes effect between two readings.
    pub fn inject(&self, fault: Fault) {
        // Fails only if the simulator already stopped; nothing to do then.
        let _ = self.commands.send(fault);
    }

    /// Good readings written so far.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// All counters.
    pub fn counters(&self) -> &SimCounters {
        &self.counters
    }

    /// Stops the simulator now.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Stops the simulator and waits for its task to end, so its counters
    /// are final: a simulator running on another worker can finish a write
    /// and count it after `stop` returned.
    pub async fn stop_and_wait(&mut self) {
        self.task.abort();
        // Cancelled (or already ended): either way the task is gone.
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
