//! The loop every byte-stream simulator runs: write a numbered reading at
//! the configured rate, and obey fault commands in between.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::faults::{Fault, ReadingGen};
use super::SimCounters;

/// Why the write loop returned; the transport decides what comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopEnd {
    /// The handle was dropped or stopped.
    Stopped,
    /// `Fault::Disconnect`.
    Disconnect,
    /// `Fault::Remove`.
    Remove,
    /// `Fault::Replug` while connected.
    Replug,
    /// The peer went away (write failed).
    PeerGone,
}

/// Per-connection state the loop keeps between readings.
pub(crate) struct Writer<'a> {
    pub(crate) gen: ReadingGen,
    pub(crate) period: Duration,
    pub(crate) counters: &'a SimCounters,
    pub(crate) commands: &'a mut mpsc::UnboundedReceiver<Fault>,
}

impl<'a> Writer<'a> {
    /// A writer for a connection that has just been made (counted as one).
    pub(crate) fn connected(
        config: &super::SimConfig,
        counters: &'a SimCounters,
        commands: &'a mut mpsc::UnboundedReceiver<Fault>,
    ) -> Self {
        counters
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Writer {
            gen: config.gen,
            period: config.period(),
            counters,
            commands,
        }
    }

    pub(crate) async fn run<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> LoopEnd {
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut drip: Option<(u32, Duration)> = None;
        loop {
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(fault) = cmd else { return LoopEnd::Stopped };
                    match fault {
                        Fault::Silence(d) => tokio::time::sleep(d).await,
                        Fault::Disconnect => return LoopEnd::Disconnect,
                        Fault::Remove => return LoopEnd::Remove,
                        Fault::Replug => return LoopEnd::Replug,
                        Fault::SlowDrip { readings, byte_delay } => drip = Some((readings, byte_delay)),
                        other => {
                            if let Some(bytes) = self.gen.corrupt(other) {
                                if w.write_all(&bytes).await.and(w.flush().await).is_err() {
                                    return LoopEnd::PeerGone;
                                }
                                self.counters.corrupt_written.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    tick.reset();
                }
                _ = tick.tick() => {
                    let seq = self.counters.next_seq.load(Ordering::Relaxed);
                    let bytes = self.gen.reading(seq);
                    let ok = match &mut drip {
                        Some((left, delay)) if *left > 0 => {
                            *left -= 1;
                            Self::drip(w, &bytes, *delay).await
                        }
                        _ => w.write_all(&bytes).await.and(w.flush().await).is_ok(),
                    };
                    if !ok {
                        return LoopEnd::PeerGone;
                    }
                    self.counters.next_seq.store(seq + 1, Ordering::Relaxed);
                    self.counters.written.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn drip<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8], delay: Duration) -> bool {
        for b in bytes {
            if w.write_all(std::slice::from_ref(b))
                .await
                .and(w.flush().await)
                .is_err()
            {
                return false;
            }
            tokio::time::sleep(delay).await;
        }
        true
    }
}
