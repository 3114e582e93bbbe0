//! Benchmarks for Tandem. Each subcommand lives in its own module; this file only dispatches.

use clap::{Parser, Subcommand};

mod embedded;
mod index;
mod quality;
mod rng;
mod xdr;

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
    /// Cross-file definition recall of the context engine at prompt budgets (XDR@B), against
    /// the current-file-only and Jaccard-windows-only baselines, and context assembly latency.
    Xdr(xdr::Args),
    /// Cold and warm indexing of a tree by the symbol index, against `ctags -R` on the same tree:
    /// files/s and peak memory.
    Index(index::Args),
    /// End-to-end completion quality against a real model server (exact match, edit
    /// similarity, nothing shown, syntax errors shown, latency) beside a naive client, the
    /// current file only and Tandem's raw stream; `--oracle` runs the truth test against a
    /// loopback model that answers with the file's own text.
    Quality(quality::Args),
    /// One measured indexing run (a child process of `index`).
    #[command(hide = true)]
    IndexPhase(index::PhaseArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Embedded(args) => embedded::main(&args),
        Command::Xdr(args) => xdr::main(&args),
        Command::Index(args) => index::main(&args),
        Command::Quality(args) => quality::main(&args),
        Command::IndexPhase(args) => index::phase(&args),
    }
}
