//! The `edgevisor` binary: parses the command line and hands over to the
//! library. Exit codes follow SPEC section 6.

use std::process::ExitCode;

use clap::Parser;
use edgevisor::cli::{Cli, Command};
use edgevisor::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match Config::load(&config) {
            Ok(config) => {
                print!("{}", edgevisor::config::summary(&config));
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} error(s) in {}", errors.0.len(), config.display());
                ExitCode::from(2)
            }
        },
        Command::Run { config } => match Config::load(&config) {
            Ok(_) => {
                eprintln!("edgevisor: `run` is not built yet");
                ExitCode::from(2)
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(2)
            }
        },
    }
}
