//! `edgevisor demo`: the whole idea in one command on a fresh machine. An
//! embedded MQTT broker, a dozen simulated sensors over every transport with
//! faults (and one that flaps until quarantined), a real gateway process
//! supervising them, and a live view of the tree and the crash reports,
//! redrawn in place. Stops by itself after `--for`; Ctrl-C drains cleanly.
//!
//! - `broker`: the embedded broker;
//! - `view`: what is drawn.

mod broker;
mod view;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::swarm::config::{table, RunConfig};
use crate::swarm::faults::{self, FaultPlan, Injected};
use crate::swarm::fleet::{self, Mix};
use crate::swarm::process::GatewayProcess;
use broker::EmbeddedBroker;
use view::View;

/// The demo's options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub for_: Option<Duration>,
}

/// The demo's fault rates: more than the swarm's, so something happens
/// on screen every few seconds.
const PLAN: FaultPlan = FaultPlan {
    corrupt: 0.05,
    disconnect: 0.02,
    silence: 0.005,
    drip: 0.02,
    unplug: 0.02,
    broker_restart_s: None,
};

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start()
        .await
        .context("cannot start the embedded MQTT broker")?;
    let port = broker.addr.port();
    let dir = std::env::temp_dir().join(format!("edgevisor-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mix = Mix {
        tcp: 4,
        listen: 3,
        serial: 3,
        mqtt: 2,
    };
    let fleet = fleet::start(mix, 4.0, true, port, &dir, listen)
        .await
        .context("cannot start the simulated sensors")?;
    let binary = std::env::current_exe().context("cannot find the edgevisor binary")?;
    let config_path = write_config(&dir, port, &fleet, &binary).await?;

    let (views, mut updates) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let observer = crate::swarm::observe(port, "demo", move |kind, payload| {
        let _ = views.send((kind.to_string(), payload.to_vec()));
    })
    .await?;
    let mut gateway = GatewayProcess::start(&binary, &config_path, dir.join("gateway.log"))?;

    let mut rng = fastrand::Rng::new();
    let mut injected = Injected::new();
    let mut view = View::default();
    let began = Instant::now();
    let terminal = std::io::stdout().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            Some((kind, payload)) = updates.recv() => view.book(&kind, &payload),
            _ = tick.tick() => {
                ticks += 1;
                faults::tick(&PLAN, &fleet.sims, &mut rng, &mut injected);
                if ticks % 4 == 0 && ticks < 40 {
                    if let Some(flap) = fleet.sims.iter().find(|s| s.sensor == "flap") {
                        flap.handle().inject(crate::sim::Fault::BadChecksum);
                    }
                }
                if ticks % if terminal { 5 } else { 10 } == 0 {
                    draw(&view, began, &broker, terminal);
                }
                if let Some(code) = gateway.exited() {
                    anyhow::bail!("the gateway exited with {code}; see {}", gateway.log.display());
                }
                if args.for_.is_some_and(|d| began.elapsed() >= d) {
                    break;
                }
            }
        }
    }
    // The gateway first: stopping the sensors first would show as crashes.
    let code = gateway.stop().await;
    for sim in &fleet.sims {
        sim.handle().stop();
    }
    while let Ok((kind, payload)) = updates.try_recv() {
        view.book(&kind, &payload);
    }
    draw(&view, began, &broker, terminal);
    observer.abort();
    println!(
        "\ngateway stopped (exit {code:?}); its log and config are in {}",
        dir.display()
    );
    Ok(())
}

/// The demo's gateway config: slow enough backoff to watch, a short
/// quarantine, two TCP sensors in a `rest_for_one` group.
async fn write_config(
    dir: &Path,
    port: u16,
    fleet: &fleet::Fleet,
    binary: &Path,
) -> anyhow::Result<PathBuf> {
    RunConfig {
        gateway_id: "demo",
        dir,
        broker_port: port,
        supervisor: table([
            ("backoff_initial", "200ms".into()),
            ("backoff_max", "3s".into()),
            ("intensity", 5.into()),
            ("period", "30s".into()),
            ("quarantine_for", "20s".into()),
        ]),
        groups: vec![table([
            ("id", "barn".into()),
            ("strategy", "rest_for_one".into()),
            (
                "sensors",
                toml::Value::Array(vec!["tcp-0000".into(), "tcp-0001".into()]),
            ),
        ])],
        sensors: &fleet.sensors,
    }
    .write(binary)
    .await
}

fn draw(view: &View, began: Instant, broker: &EmbeddedBroker, terminal: bool) {
    let screen = view.render(
        began.elapsed().as_secs_f64(),
        &format!("mqtt://{} (embedded)", broker.addr),
    );
    let mut out = std::io::stdout().lock();
    if terminal {
        let _ = write!(out, "\x1b[2J\x1b[H{screen}");
    } else {
        let _ = writeln!(out, "{screen}");
    }
    let _ = out.flush();
}
