//! The `streamwire` command line. One file per command; adding a command is one [`Command`]
//! variant, one match arm in [`Command::execute`], and one file.

mod bench;
mod bench_impairment;
mod bench_latency;
mod bench_sfu;
mod bench_signalling;
mod check;
mod demo;
mod media_test;
mod presets;
mod privacy;
mod probe;
mod record;
mod report;
mod run;
mod run_room;
mod serve;
mod serve_config;
mod state;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Streamwire: real-time audio/video on GStreamer.
#[derive(Debug, Parser)]
#[command(name = "streamwire", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a preset until EOS, its duration, --for, or Ctrl-C (clean EOS: files stay playable).
    Run(run::Args),
    /// Validate a preset and print the GStreamer pipeline it would build.
    Check(check::Args),
    /// List the bundled presets.
    Presets(presets::Args),
    /// List capture devices and the encoder chosen for each codec.
    Probe(probe::Args),
    /// Run the signalling server (rooms, SDP/ICE relay, real-time messages).
    Serve(Box<serve::ServeArgs>),
    /// Mint a room token from the server secret.
    Token(token::TokenArgs),
    /// Demo: embedded signalling server, a test-pattern publisher and a viewer on loopback;
    /// prints frames received, latency and stats.
    Demo(demo::Args),
    /// Benchmarks (print JSON with --json).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Data-subject requests on the telemetry database: export, delete, purge.
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
    /// Render a self-contained HTML performance report of a room.
    Report(report::Args),
    /// Echo test: send camera and microphone to the server's media test peer and play them
    /// back after its delay; reports round trip and quality every 2 s.
    EchoTest(media_test::EchoArgs),
    /// Pre-call network probe: bandwidth estimates, loss, jitter and round trip both ways
    /// to the server, every 2 s.
    NetProbe(media_test::ProbeArgs),
    /// Record a room into one Matroska file: every member's video composed into a grid, every
    /// member's audio mixed, and the whiteboard, on one clock; until --for or Ctrl-C.
    Record(record::Args),
}

impl Command {
    fn execute(self) -> anyhow::Result<()> {
        match self {
            Command::Run(a) => run::execute(a),
            Command::Check(a) => check::execute(a),
            Command::Presets(a) => presets::execute(a),
            Command::Probe(a) => probe::execute(a),
            Command::Serve(a) => serve::run(*a),
            Command::Token(a) => token::run(a),
            Command::Bench(a) => bench::execute(a),
            Command::Privacy(a) => privacy::execute(a),
            Command::Report(a) => report::execute(a),
            Command::Demo(a) => demo::execute(a),
            Command::EchoTest(a) => media_test::echo(a),
            Command::NetProbe(a) => media_test::probe(a),
            Command::Record(a) => record::execute(a),
        }
    }

    /// Log level when neither `-v` nor `RUST_LOG` says otherwise: a server logs its activity,
    /// one-shot commands only warnings.
    fn default_log_level(&self) -> &'static str {
        match self {
            Command::Serve(_) => "info",
            _ => "warn",
        }
    }
}

/// Errors that mean "bad input from the user": exit code 2.
fn is_usage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<streamwire::preset::PresetError>()
            .is_some()
    })
}

fn init_logging(verbose: u8, quiet_level: &'static str) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => quiet_level,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour codes only on a terminal: a log file or pipe gets plain text (no control
    // characters at all; user-supplied values are escaped where they are logged).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Parse arguments, run the command, map errors to exit codes (2: bad preset or usage, 1: failure).
pub fn main() -> ExitCode {
    let cli = Cli::parse(); // exits with code 2 on usage errors
    init_logging(cli.verbose, cli.command.default_log_level());
    let result = streamwire::gst_init::init()
        .map_err(anyhow::Error::from)
        .and_then(|()| cli.command.execute());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(snippet) = e
                .chain()
                .find_map(|c| c.downcast_ref::<streamwire::preset::PresetError>())
                .and_then(|p| p.snippet())
            {
                eprintln!("{snippet}");
            }
            if is_usage_error(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
