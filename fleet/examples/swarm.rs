//! A fleet to look at: a Mosquitto on a free port and several real
//! gateways (`edgevisor run`) with TCP sensors that corrupt frames, and on
//! every other gateway a sensor that gets quarantined. It prints the
//! broker's URL, then runs until Ctrl-C (or `--for`), and stops everything.
//!
//! ```sh
//! fleet/swarm.sh --gateways 5          # builds, then runs this
//! edgevisor fleet --broker mqtt://127.0.0.1:PORT --http 127.0.0.1:8080
//! ```
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use edgevisor_harness::gateways::Gateways;
use edgevisor_harness::sim::broker::Mosquitto;

struct Args {
    gateways: usize,
    edgevisor: PathBuf,
    run_for: Option<Duration>,
}

fn args() -> anyhow::Result<Args> {
    // The binary sits next to the examples folder of the same build.
    let default_bin = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("edgevisor"))
        .context("cannot locate the build folder")?;
    let mut out = Args {
        gateways: 5,
        edgevisor: default_bin,
        run_for: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--gateways" => out.gateways = value()?.parse()?,
            "--edgevisor" => out.edgevisor = value()?.into(),
            "--for" => out.run_for = Some(humantime_secs(&value()?)?),
            other => anyhow::bail!(
                "unknown argument {other}; use --gateways N, --edgevisor PATH, --for SECONDS"
            ),
        }
    }
    Ok(out)
}

fn humantime_secs(text: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs(text.trim_end_matches('s').parse()?))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    anyhow::ensure!(
        args.edgevisor.is_file(),
        "no gateway binary at {}; build it (cargo build -p edgevisor) or pass --edgevisor",
        args.edgevisor.display()
    );
    let broker = Mosquitto::start().await?;
    let dir = std::env::temp_dir().join(format!("edgevisor-fleet-swarm-{}", std::process::id()));
    let mut gateways = Gateways::start(&args.edgevisor, args.gateways, broker.port(), &dir).await?;
    println!("broker {}", broker.url());
    println!("gateways {}", gateways.ids().join(" "));
    println!(
        "look: edgevisor fleet --broker {} [--http 127.0.0.1:8080]",
        broker.url()
    );
    // Ctrl-C, SIGTERM or the end of --for: stop the gateways cleanly
    // (they publish `stopped`), then the broker.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let run_for = args.run_for.unwrap_or(Duration::MAX);
    tokio::select! {
        _ = tokio::time::sleep(run_for) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    gateways.stop_all().await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
