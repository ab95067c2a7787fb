//! Command-line interface: one file per command. Thin wrappers over library functions.

pub mod bench_signalling;
pub mod serve;
pub mod token;

use clap::{Parser, Subcommand};

/// Streamwire: real-time audio/video on GStreamer.
#[derive(Debug, Parser)]
#[command(name = "streamwire", version, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the signalling server (rooms, SDP/ICE relay, real-time messages).
    Serve(serve::ServeArgs),
    /// Mint a room token from the server secret.
    Token(token::TokenArgs),
    /// Benchmarks (print JSON with --json).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `streamwire bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Signalling server load: room broadcasts and peer-to-peer relay.
    Signalling(bench_signalling::BenchSignallingArgs),
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Token(a) => token::run(a),
        Command::Bench(BenchCommand::Signalling(a)) => bench_signalling::run_cli(a),
    }
}
