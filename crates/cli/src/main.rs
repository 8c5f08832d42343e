//! The `txshadow` binary: parse, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = txshadow::Cli::parse();
    txshadow::init_tracing(cli.verbose, cli.quiet);
    txshadow::run(cli)
}
