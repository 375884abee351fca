//! The `edgevisor` binary: parses the command line and hands over to the
//! library. Exit codes follow SPEC section 6: 0 clean stop or valid config,
//! 2 bad config, 3 root supervisor gave up; `status` exits 1 when no service
//! answers; `fleet` exits 1 when it cannot start or `--once` found no broker.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use edgevisor::cli::{Cli, Command, OutboxAction, StatusArgs};
use edgevisor::config::Config;
use edgevisor::service::{self, Ending};

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!("{} error(s) in {}", errors.0.len(), path.display());
        ExitCode::from(2)
    })
}

/// `edgevisor outbox stats|verify`: 0 ok, 1 problems or unreadable, 2 bad config.
fn outbox(action: OutboxAction) -> ExitCode {
    let (path, verify) = match action {
        OutboxAction::Stats { config } => (config, false),
        OutboxAction::Verify { config } => (config, true),
    };
    let config = match load(&path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match edgevisor::outbox::inspect::command(&config.gateway.state_dir, verify) {
        Ok((text, true)) => {
            say(&text);
            if !verify {
                // What the file cannot tell: whether the messages can leave.
                if let Ok(line) = block_on(edgevisor::status::upstream_line(&config)) {
                    say(&format!("{line}\n"));
                }
            }
            ExitCode::SUCCESS
        }
        Ok((text, false)) => {
            say(&text);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("edgevisor: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok(config) => {
                say(&edgevisor::config::summary(&config));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Swarm(args) => swarm(*args),
        Command::Matrix(args) => matrix(*args),
        Command::Fleet(args) => fleet(*args),
        Command::Demo(args) => demo(*args),
        Command::Outbox { action } => outbox(action),
        Command::Status(args) => status(args),
        Command::Run { config, log_format } => {
            let config = match load(&config) {
                Ok(config) => config,
                Err(code) => return code,
            };
            edgevisor::logs::init(log_format);
            match block_on(service::run(config)) {
                Ok(Ok(Ending::Clean)) => ExitCode::SUCCESS,
                Ok(Ok(Ending::RootExhausted)) => ExitCode::from(3),
                Err(code) => code,
                Ok(Err(e)) => {
                    tracing::error!("{e:#}");
                    eprintln!("edgevisor: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `edgevisor status`: 0 shown, 1 no service answered (or output failed).
fn status(args: StatusArgs) -> ExitCode {
    let options = edgevisor::status::Options {
        socket: args.socket,
        config: args.config,
        json: args.json,
        watch: args.watch,
        crashes: args.crashes,
    };
    match block_on(edgevisor::status::command(&options)) {
        Err(code) => code,
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("edgevisor status: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `future` on a fresh multi-threaded runtime; exit code 1 when the
/// runtime cannot be built.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, ExitCode> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok(runtime.block_on(future)),
        Err(e) => {
            eprintln!("edgevisor: cannot start the async runtime: {e}");
            Err(ExitCode::from(1))
        }
    }
}

fn swarm(args: edgevisor_harness::swarm::SwarmArgs) -> ExitCode {
    match block_on(edgevisor_harness::swarm::run(args)) {
        Err(code) => code,
        Ok(Ok(report)) => {
            say(&report.table());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(Err(e)) => {
            // After SIGHUP stderr may be a closed terminal: never panic on it.
            let _ = writeln!(std::io::stderr(), "edgevisor swarm: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn matrix(args: edgevisor_harness::matrix::MatrixArgs) -> ExitCode {
    match block_on(edgevisor_harness::matrix::run(args)) {
        Err(code) => code,
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::from(1),
        Ok(Err(e)) => {
            let _ = writeln!(std::io::stderr(), "edgevisor matrix: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `edgevisor fleet`: 0 after Ctrl-C, SIGTERM or `--once`; 1 when it
/// cannot start (bad URL, port taken) or `--once` never reached the broker.
fn fleet(args: edgevisor_fleet::FleetArgs) -> ExitCode {
    match block_on(edgevisor_fleet::run(args)) {
        Err(code) => code,
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let _ = writeln!(std::io::stderr(), "edgevisor fleet: {e}");
            ExitCode::from(1)
        }
    }
}

fn demo(args: edgevisor_harness::demo::DemoArgs) -> ExitCode {
    match block_on(edgevisor_harness::demo::run(args)) {
        Err(code) => code,
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            // After SIGHUP stderr may be a closed terminal: never panic on it.
            let _ = writeln!(std::io::stderr(), "edgevisor demo: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error
/// worth a panic: the rest is simply not wanted.
fn say(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}
