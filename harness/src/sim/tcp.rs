//! Simulated TCP sensors, both ways round:
//! - [`TcpSensorServer`]: the sensor listens and the gateway connects
//!   (`transport = "tcp"`), one connection at a time; after a
//!   `Disconnect` it waits for the next connection;
//! - [`TcpSensorClient`]: the sensor connects to the gateway
//!   (`transport = "tcp-listen"`); after a `Disconnect`, or when refused,
//!   it connects again after `reconnect_delay`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::writer::{LoopEnd, Writer};
use super::{SimConfig, SimHandle};

/// A sensor that listens for the gateway.
#[derive(Debug)]
pub struct TcpSensorServer {
    /// Controls the simulator.
    pub handle: SimHandle,
    addr: SocketAddr,
}

impl TcpSensorServer {
    /// Listens on `127.0.0.1` with an ephemeral port.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handle = SimHandle::spawn(&config, move |counters, mut commands| async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let mut w = Writer::connected(&config, &counters, &mut commands);
                if w.run(&mut stream).await == LoopEnd::Stopped {
                    return;
                }
            }
        });
        Ok(TcpSensorServer { handle, addr })
    }

    /// Where the gateway should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A sensor that connects to the gateway.
#[derive(Debug)]
pub struct TcpSensorClient {
    /// Controls the simulator.
    pub handle: SimHandle,
}

impl TcpSensorClient {
    /// Connects to `target` (retrying every `reconnect_delay`) and writes.
    pub fn start(config: SimConfig, target: SocketAddr, reconnect_delay: Duration) -> Self {
        let handle = SimHandle::spawn(&config, move |counters, mut commands| async move {
            loop {
                let Ok(mut stream) = TcpStream::connect(target).await else {
                    tokio::time::sleep(reconnect_delay).await;
                    continue;
                };
                let mut w = Writer::connected(&config, &counters, &mut commands);
                if w.run(&mut stream).await == LoopEnd::Stopped {
                    return;
                }
                drop(stream);
                tokio::time::sleep(reconnect_delay).await;
            }
        });
        TcpSensorClient { handle }
    }
}
