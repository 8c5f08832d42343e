//! The `txshadow` binary: parse, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `txshadow ... | head` closes stdout early: that is not an error, so die quietly on SIGPIPE
    // as command-line tools do instead of panicking in println!
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = txshadow::Cli::parse();
    txshadow::init_tracing(cli.verbose, cli.quiet);
    txshadow::run(cli)
}
