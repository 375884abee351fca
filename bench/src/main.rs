//! `edgevisor-bench`: the data-path benchmark of issue 13. It runs edgevisor,
//! a minimal "floor" forwarder and Node-RED side by side against a private
//! Mosquitto, drives them with the same TCP load and prints one
//! `name value unit` line per figure (see `docs/benchmarks.md`).
//!
//! `cargo run --release -p edgevisor-bench -- datapath`
//!
//! This file only parses arguments; the work is in the modules.

mod backlog;
mod edgevisor;
mod floor;
mod forwarder;
mod limits;
mod load;
mod memory;
mod mosquitto;
mod node_red;
mod options;
mod perf;
mod proc_stats;
mod report;
mod scenario;
mod subscriber;
mod workdir;

use clap::{Parser, Subcommand};

/// Command line of the bench.
#[derive(Parser)]
#[command(
    version,
    about = "edgevisor data-path benchmark: edgevisor, a floor forwarder and Node-RED side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the benchmark (throughput matrix, backlog, memory) and print `name value unit` lines.
    Datapath(options::DatapathArgs),
    /// The floor forwarder itself, as the bench starts it in a process of its own.
    #[command(hide = true)]
    Floor(floor::FloorArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Datapath(args) => {
            let options = options::Options::from_args(args)?;
            limits::raise_open_files()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(scenario::run_all(options))
        }
        Command::Floor(args) => floor::main(args),
    }
}
