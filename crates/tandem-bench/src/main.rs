//! Benchmarks for Tandem. Each subcommand lives in its own module; this file only dispatches.

use clap::{Parser, Subcommand};

mod embedded;

#[derive(Parser)]
#[command(name = "tandem-bench", about = "Benchmarks for Tandem")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Next-line exact match of the embedded model on held-out lines, against a literal baseline.
    Embedded(embedded::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Embedded(args) => embedded::main(&args),
    }
}
