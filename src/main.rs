//! The `streamwire` command-line tool.

// The benchmarks (`streamwire bench ...`) are part of the tool, not of the library's API: they
// use only what the library exports.
mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
