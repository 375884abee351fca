//! The demo's own MQTT broker (rumqttd), so `edgevisor demo` runs on a
//! machine with no broker installed. Behind the default-on
//! `embedded-broker` feature; without it the demo needs a Mosquitto.

use std::net::SocketAddr;

/// A broker listening on `addr`, running on its own threads for the life of
/// the process.
pub struct EmbeddedBroker {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts rumqttd on a free port of 127.0.0.1 and waits until it
    /// accepts connections.
    #[cfg(feature = "embedded-broker")]
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config: rumqttd::Config = broker_config(port).try_into()?;
        let mut broker = rumqttd::Broker::new(config);
        std::thread::Builder::new()
            .name("demo-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    eprintln!("edgevisor demo: embedded broker stopped: {e}");
                }
            })?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        // Wait until it accepts connections, without blocking the runtime
        // thread the demo's other tasks run on.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Self { addr });
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        anyhow::bail!("the embedded broker did not start listening on {addr}")
    }

    /// Without the embedded broker the demo cannot run.
    #[cfg(not(feature = "embedded-broker"))]
    pub async fn start() -> anyhow::Result<Self> {
        anyhow::bail!(
            "this build has no embedded broker (built without the `embedded-broker` feature)"
        )
    }
}

/// rumqttd's settings: one MQTT 3.1.1 listener on `127.0.0.1:port`, limits
/// roomy enough for the demo's sensors and observer.
#[cfg(feature = "embedded-broker")]
fn broker_config(port: u16) -> toml::Table {
    use crate::swarm::config::table;
    let connections = table([
        ("connection_timeout_ms", 60_000.into()),
        ("max_payload_size", 1_048_576.into()),
        ("max_inflight_count", 1000.into()),
        ("dynamic_filters", true.into()),
    ]);
    let v4 = table([
        ("name", "demo".into()),
        ("listen", format!("127.0.0.1:{port}").into()),
        ("next_connection_delay_ms", 1.into()),
        ("connections", connections.into()),
    ]);
    table([
        ("id", 0.into()),
        (
            "router",
            table([
                ("id", 0.into()),
                ("max_connections", 1000.into()),
                ("max_outgoing_packet_count", 1000.into()),
                ("max_segment_size", 10_485_760.into()),
                ("max_segment_count", 10.into()),
            ])
            .into(),
        ),
        ("v4", table([("1", v4.into())]).into()),
    ])
}
