//! `edgevisor demo`: the whole idea in one command on a fresh machine. An
//! embedded MQTT broker, a dozen simulated sensors over every transport with
//! faults (and one that flaps until quarantined), a real gateway process
//! supervising them, and a live view of the tree and the crash reports,
//! redrawn in place. Stops by itself after `--for`; Ctrl-C, SIGTERM and
//! closing the terminal (SIGHUP) stop it cleanly too. Every way out stops
//! the gateway and removes the temporary folder (unless `--keep`).
//!
//! - `broker`: the embedded broker;
//! - `view`: what is drawn;
//! - `screen`: where and how it is drawn.

mod broker;
mod screen;
mod view;

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::swarm::config::{table, RunConfig, Table};
use crate::swarm::faults::{self, FaultPlan, Injected};
use crate::swarm::fleet::{self, Fleet, Mix};
use crate::swarm::lifetime::{RunDir, StopSignal, StopSignals};
use crate::swarm::process::GatewayProcess;
use broker::EmbeddedBroker;
use screen::Screen;
use view::{Frame, View};

/// The demo's options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub for_: Option<Duration>,
    /// Keep the temporary folder (the gateway's config, log and outbox)
    /// and say where it is; by default it is removed at the end.
    #[arg(long)]
    pub keep: bool,
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

/// The demo's sensors.
const MIX: Mix = Mix {
    tcp: 4,
    listen: 3,
    serial: 3,
    mqtt: 2,
    modbus: 3,
};

/// Runs the demo until `--for` or a stop signal.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // First: from here on a signal cannot end the process before cleanup.
    let mut signals = StopSignals::install()?;
    let dir = RunDir::temporary("edgevisor-demo-", args.keep)?;
    demo(&args, &dir, &mut signals).await
}

/// The demo in `dir`; everything it started is stopped when it returns.
async fn demo(args: &DemoArgs, dir: &RunDir, signals: &mut StopSignals) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start()
        .await
        .context("cannot start the embedded MQTT broker")?;
    let port = broker.addr.port();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let fleet = fleet::start(MIX, 4.0, true, port, dir.path(), listen)
        .await
        .context("cannot start the simulated sensors")?;
    // The Modbus bus: the meters' readings move, and the last meter answers
    // one poll in eight with "slave device busy" (a crash report with both
    // frames, a restart), while the others keep their interval.
    let _animation = fleet.modbus.as_ref().map(|bus| {
        bus.animate();
        if let Some(flaky) = bus.units.last() {
            bus.flaky(*flaky, 8);
        }
        bus.sim.animate_every(std::time::Duration::from_secs(1))
    });
    let binary = std::env::current_exe().context("cannot find the edgevisor binary")?;
    let config_path = RunConfig::new("demo", dir.path(), port, &fleet.sensors)
        .supervisor(supervisor())
        .groups(groups())
        .write(&binary)
        .await?;

    let (views, updates) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let observer = crate::swarm::observe(port, "demo", move |kind, payload| {
        let _ = views.send((kind.to_string(), payload.to_vec()));
    })
    .await?;
    let log = dir.path().join("gateway.log");
    let mut gateway = GatewayProcess::start(&binary, &config_path, log)?;
    let mut show = Show {
        view: View::default(),
        updates,
        screen: Screen::new(),
        began: Instant::now(),
        broker: format!("mqtt://{} (embedded)", broker.addr),
    };
    let ended = watch(args, &fleet, &mut gateway, &mut show, signals).await;
    // The gateway first: stopping the sensors first would show as crashes.
    let code = gateway.stop().await;
    for sim in &fleet.sims {
        sim.handle().stop();
    }
    observer.abort();
    // After SIGHUP there is no terminal left to draw on.
    if ended? != Some(StopSignal::Hangup) {
        while let Ok((kind, payload)) = show.updates.try_recv() {
            show.view.book(&kind, &payload);
        }
        let code = code.map_or("killed".to_string(), |c| format!("exit {c}"));
        let folder = match dir.stays() {
            Some(path) => format!("its config, log and outbox are in {}", path.display()),
            None => "its folder is removed (--keep keeps it)".to_string(),
        };
        show.screen.finish(
            &show.frame(),
            &format!("gateway stopped ({code}); {folder}"),
        );
    }
    Ok(())
}

/// What is on screen and where its news comes from.
struct Show {
    view: View,
    updates: UnboundedReceiver<(String, Vec<u8>)>,
    screen: Screen,
    began: Instant,
    broker: String,
}

impl Show {
    fn frame(&self) -> Frame {
        self.view
            .frame(self.began.elapsed().as_secs_f64(), &self.broker)
    }
}

/// Injects faults and redraws until `--for` has passed (`None`) or a
/// signal came (`Some`); an error when the gateway exited by itself.
async fn watch(
    args: &DemoArgs,
    fleet: &Fleet,
    gateway: &mut GatewayProcess,
    show: &mut Show,
    signals: &mut StopSignals,
) -> anyhow::Result<Option<StopSignal>> {
    let mut rng = fastrand::Rng::new();
    let mut injected = Injected::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u64;
    let draw_every = if show.screen.is_terminal() { 5 } else { 10 };
    loop {
        tokio::select! {
            biased;
            signal = signals.recv() => return Ok(Some(signal)),
            _ = tick.tick() => {
                ticks += 1;
                faults::tick(&PLAN, &fleet.sims, &mut rng, &mut injected);
                if ticks % 4 == 0 && ticks < 40 {
                    if let Some(flap) = fleet.sims.iter().find(|s| s.sensor == "flap") {
                        flap.handle().inject(crate::sim::Fault::BadChecksum);
                    }
                }
                if ticks % draw_every == 0 {
                    show.screen.draw(&show.frame());
                }
                if let Some(code) = gateway.exited() {
                    return Err(gateway.failure(code));
                }
                if args.for_.is_some_and(|d| show.began.elapsed() >= d) {
                    return Ok(None);
                }
            }
            Some((kind, payload)) = show.updates.recv() => show.view.book(&kind, &payload),
        }
    }
}

/// The demo's supervisor: slow enough backoff to watch, a short quarantine.
fn supervisor() -> Table {
    table([
        ("backoff_initial", "200ms".into()),
        ("backoff_max", "3s".into()),
        ("intensity", 5.into()),
        ("period", "30s".into()),
        ("quarantine_for", "20s".into()),
    ])
}

/// Two TCP sensors in a `rest_for_one` group.
fn groups() -> Vec<Table> {
    vec![table([
        ("id", "barn".into()),
        ("strategy", "rest_for_one".into()),
        (
            "sensors",
            toml::Value::Array(vec!["tcp-0000".into(), "tcp-0001".into()]),
        ),
    ])]
}
