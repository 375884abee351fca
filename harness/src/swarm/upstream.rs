//! The upstream broker of a swarm: the one given by `--broker`, or a
//! Mosquitto of the swarm's own, a child process killed and waited for at
//! the end of the run (and killed when dropped, on any other way out).

use std::sync::Arc;

use anyhow::Context;

use super::config;
use crate::sim::broker::Mosquitto;

/// Where the broker comes from. An owned broker lives until the report is
/// done (it is killed when dropped).
#[derive(Clone)]
pub(super) enum Broker {
    /// Started by the swarm.
    Owned(Arc<tokio::sync::Mutex<Mosquitto>>),
    /// Given by `--broker`.
    External,
}

/// The upstream broker of a run and the port it listens on.
pub(super) struct Upstream {
    /// Ours or theirs.
    pub broker: Broker,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
}

impl Upstream {
    /// The broker at `url` (`--broker`), or a Mosquitto of our own.
    pub async fn start(url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            Some(url) => {
                let port = config::broker_port(url)?;
                Ok(Upstream {
                    broker: Broker::External,
                    port,
                })
            }
            None => {
                let m = Mosquitto::start().await.context(
                    "cannot start mosquitto (install it, or pass --broker mqtt://host:port)",
                )?;
                let port = m.port();
                Ok(Upstream {
                    broker: Broker::Owned(Arc::new(tokio::sync::Mutex::new(m))),
                    port,
                })
            }
        }
    }

    /// Kills a broker of our own and waits for it to exit.
    pub async fn stop(self) {
        if let Broker::Owned(broker) = &self.broker {
            let _ = broker.lock().await.kill().await;
        }
    }
}
