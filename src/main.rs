use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    gateway::cli::main(gateway::cli::Cli::parse(), gateway::config::Env::default())
}
