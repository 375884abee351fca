//! Several real gateways against one broker, for `edgevisor fleet` to look
//! at: each an `edgevisor run` process with TCP sensors from
//! [`crate::sim::tcp`], some of which corrupt frames now and then, and on
//! every other gateway a sensor whose address refuses connections
//! (intensity 1), which is quarantined within a second. `edgevisor swarm`
//! runs one gateway; this runs a fleet of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use edgevisor_devices::codec::CodecKind;
use tokio::task::JoinHandle;

use crate::sim::broker::free_port;
use crate::sim::tcp::TcpSensorServer;
use crate::sim::{Fault, SimConfig};
use crate::swarm::process::GatewayProcess;

/// Gateway ids, in order; past the list they are `gw-<n>`.
const NAMES: [&str; 5] = [
    "barn-pi-01",
    "dairy-pi-02",
    "mill-pi-03",
    "pump-pi-04",
    "silo-pi-05",
];

/// Seconds between two corrupt frames of gateway `i`'s `weather` sensor,
/// so each gateway has its own crash rate (the last ones none).
const CORRUPT_EVERY_S: [u64; 5] = [2, 5, 9, 0, 0];

/// The id of the `i`th gateway.
pub fn gateway_id(i: usize) -> String {
    NAMES
        .get(i)
        .map_or_else(|| format!("gw-{}", i + 1), |n| (*n).to_string())
}

/// Whether the `i`th gateway has a sensor that gets quarantined.
pub fn has_dead_sensor(i: usize) -> bool {
    i % 2 == 0
}

/// The gateways and their sensors; everything stops on drop.
pub struct Gateways {
    processes: Vec<GatewayProcess>,
    sims: Arc<Vec<Vec<TcpSensorServer>>>,
    faults: JoinHandle<()>,
    dir: PathBuf,
    ids: Vec<String>,
}

impl Gateways {
    /// Starts `count` gateways (`binary run`) on the broker at
    /// 127.0.0.1:`broker_port`, their state and logs under `dir`.
    pub async fn start(
        binary: &Path,
        count: usize,
        broker_port: u16,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut processes = Vec::new();
        let mut sims = Vec::new();
        let mut ids = Vec::new();
        for i in 0..count {
            let id = gateway_id(i);
            let weather = TcpSensorServer::start(SimConfig::new(CodecKind::Lines, 5.0)).await?;
            let gps = TcpSensorServer::start(SimConfig::new(CodecKind::Nmea, 2.0)).await?;
            let here = dir.join(&id);
            std::fs::create_dir_all(&here)
                .with_context(|| format!("cannot create {}", here.display()))?;
            let config = config(&id, broker_port, &here, &weather, &gps, has_dead_sensor(i))?;
            let path = here.join("edgevisor.toml");
            std::fs::write(&path, config)?;
            processes.push(GatewayProcess::start(
                binary,
                &path,
                here.join("gateway.log"),
            )?);
            sims.push(vec![weather, gps]);
            ids.push(id);
        }
        let sims = Arc::new(sims);
        let faults = tokio::spawn(inject(sims.clone()));
        Ok(Self {
            processes,
            sims,
            faults,
            dir: dir.to_path_buf(),
            ids,
        })
    }

    /// The gateway ids, in start order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Where the `i`th gateway's config, state and log are.
    pub fn dir_of(&self, i: usize) -> PathBuf {
        self.dir.join(&self.ids[i])
    }

    /// Kills the `i`th gateway (SIGKILL): the broker publishes its Will,
    /// `offline`, once its keep-alive runs out.
    pub async fn kill(&mut self, i: usize) {
        if let Some(p) = self.processes.get_mut(i) {
            p.kill().await;
        }
    }

    /// Stops the `i`th gateway cleanly (SIGTERM): it publishes `stopped`.
    pub async fn stop(&mut self, i: usize) -> Option<i32> {
        self.processes.get_mut(i)?.stop().await
    }

    /// Stops every gateway cleanly, then the sensors.
    pub async fn stop_all(&mut self) {
        for p in &mut self.processes {
            p.stop().await;
        }
        self.faults.abort();
    }

    /// The simulated sensors of gateway `i`: `weather`, `gps`.
    pub fn sims(&self, i: usize) -> &[TcpSensorServer] {
        &self.sims[i]
    }
}

impl Drop for Gateways {
    fn drop(&mut self) {
        self.faults.abort();
    }
}

fn config(
    id: &str,
    broker_port: u16,
    dir: &Path,
    weather: &TcpSensorServer,
    gps: &TcpSensorServer,
    dead: bool,
) -> anyhow::Result<String> {
    let mut text = format!(
        "[gateway]\nid = \"{id}\"\nstate_dir = \"{}\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\nkeep_alive = \"5s\"\n\n[supervisor]\nbackoff_initial = \"100ms\"\nbackoff_max = \"1s\"\nintensity = 40\nperiod = \"60s\"\n",
        dir.join("state").display()
    );
    let sensor = |name: &str, addr: String, codec: &str, extra: &str| {
        format!("\n[[sensor]]\nid = \"{name}\"\ntransport = \"tcp\"\naddress = \"{addr}\"\ncodec = \"{codec}\"\nread_timeout = \"5s\"\n{extra}")
    };
    text += &sensor("weather", weather.addr().to_string(), "lines", "");
    text += &sensor("gps", gps.addr().to_string(), "nmea", "");
    if dead {
        // A port nobody listens on: every start fails, and with intensity
        // 1 the second failure within the period quarantines it.
        let refused = format!("127.0.0.1:{}", free_port()?);
        text += &sensor(
            "dead-port",
            refused,
            "lines",
            "intensity = 1\non_exhausted = \"quarantine\"\nquarantine_for = \"1h\"\n",
        );
    }
    Ok(text)
}

/// Corrupt frames on each gateway's `weather` at its own pace, and a
/// dropped `gps` link now and then on the first gateway.
async fn inject(sims: Arc<Vec<Vec<TcpSensorServer>>>) {
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tick += 1;
        for (i, gateway) in sims.iter().enumerate() {
            let every = CORRUPT_EVERY_S.get(i).copied().unwrap_or(0);
            if every > 0 && tick % every == 0 {
                gateway[0].handle.inject(Fault::BadChecksum);
            }
        }
        if tick % 7 == 0 {
            if let Some(first) = sims.first() {
                first[1].handle.inject(Fault::Disconnect);
            }
        }
    }
}
