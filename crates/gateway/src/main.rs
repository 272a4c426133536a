use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a request makes a few hundred small
/// allocations, and glibc's malloc and free were about 15% of the gateway's
/// instructions per request (callgrind).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gateway::cli::main(gateway::cli::Cli::parse(), gateway::config::Env::default())
}
