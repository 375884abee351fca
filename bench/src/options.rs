//! The `datapath` command's flags, and the resolved options a run uses
//! (`--quick` fills in the small CI-sized case).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::forwarder::Kind;

/// Flags of `edgevisor-bench datapath`.
#[derive(Args)]
pub struct DatapathArgs {
    /// Small and fast (under a minute): 10 connections, 10k/s, 3 s, edgevisor and floor, throughput only.
    #[arg(long)]
    quick: bool,
    /// Also run the 60 s RSS-under-3x-overload case of the memory section.
    #[arg(long)]
    long: bool,
    /// Forwarders to run, comma separated: edgevisor, floor, node-red.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Connection counts of the throughput matrix.
    #[arg(long, value_delimiter = ',')]
    connections: Option<Vec<usize>>,
    /// Total offered rates (readings/s) of the throughput matrix.
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<u64>>,
    /// How long each throughput case sends.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Runs of each throughput case, the forwarders taking turns, so that a
    /// ratio compares runs made side by side; with more than one, the plain
    /// figures are medians and each run's are printed under `.runN`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeat: u32,
    /// How long to wait for every sent reading to arrive before calling the rest lost.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    drain_timeout: Duration,
    /// Sections to run, comma separated: throughput, backlog, memory.
    #[arg(long, value_delimiter = ',')]
    sections: Option<Vec<String>>,
    /// The edgevisor binary [default: target/release/edgevisor of the workspace].
    #[arg(long)]
    edgevisor: Option<PathBuf>,
}

/// What one run of the bench does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Forwarders of the throughput matrix, in order.
    pub forwarders: Vec<Kind>,
    /// Connection counts of the throughput matrix.
    pub connections: Vec<usize>,
    /// Total offered rates of the throughput matrix.
    pub rates: Vec<u64>,
    /// Sending time of each throughput case.
    pub duration: Duration,
    /// Runs of each throughput case (`--repeat`).
    pub repeat: u32,
    /// Drain timeout after sending.
    pub drain_timeout: Duration,
    /// Run the throughput matrix.
    pub throughput: bool,
    /// Run edgevisor's backlog case.
    pub backlog: bool,
    /// Run edgevisor's memory cases.
    pub memory: bool,
    /// Include the 60 s overload case.
    pub long: bool,
    /// The edgevisor binary.
    pub edgevisor: PathBuf,
    /// The workspace root (for `target/`).
    pub root: PathBuf,
}

impl Options {
    /// Resolves the flags, `--quick` first and explicit flags over it.
    pub fn from_args(args: DatapathArgs) -> anyhow::Result<Self> {
        let root = workspace_root();
        let (forwarders, connections, rates, duration, sections) = if args.quick {
            (
                vec![Kind::Edgevisor, Kind::Floor],
                vec![10],
                vec![10_000],
                3,
                vec!["throughput"],
            )
        } else {
            (
                vec![Kind::Edgevisor, Kind::Floor, Kind::NodeRed],
                vec![10, 1000],
                vec![10_000, 40_000],
                15,
                vec!["throughput", "backlog", "memory"],
            )
        };
        let forwarders = match args.only {
            Some(names) => names
                .iter()
                .map(|n| Kind::parse(n))
                .collect::<Result<_, _>>()?,
            None => forwarders,
        };
        let sections: Vec<String> = args
            .sections
            .unwrap_or_else(|| sections.into_iter().map(String::from).collect());
        for s in &sections {
            if !["throughput", "backlog", "memory"].contains(&s.as_str()) {
                bail!("unknown section {s:?}: use throughput, backlog or memory");
            }
        }
        let edgevisor = args
            .edgevisor
            .unwrap_or_else(|| root.join("target/release/edgevisor"));
        let edgevisor = std::path::absolute(&edgevisor)
            .with_context(|| format!("resolving {}", edgevisor.display()))?;
        Ok(Self {
            forwarders,
            connections: args.connections.unwrap_or(connections),
            rates: args.rates.unwrap_or(rates),
            duration: args.duration.unwrap_or(Duration::from_secs(duration)),
            repeat: args.repeat,
            drain_timeout: args.drain_timeout,
            throughput: sections.iter().any(|s| s == "throughput"),
            backlog: sections.iter().any(|s| s == "backlog"),
            memory: sections.iter().any(|s| s == "memory"),
            long: args.long,
            edgevisor,
            root,
        })
    }

    /// Whether edgevisor is among the forwarders (backlog and memory need it).
    pub fn runs_edgevisor(&self) -> bool {
        self.forwarders.contains(&Kind::Edgevisor)
    }
}

/// The workspace root: the parent of this crate's folder.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
