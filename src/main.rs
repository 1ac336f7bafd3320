use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `stele … | head` closes stdout early: end quietly as other command
    // line tools do, rather than panic on the broken pipe. Rust ignores
    // SIGPIPE by default; this restores the default action.
    // SAFETY: called first, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = stele::cli::Cli::parse();
    match stele::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            stele::cli::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
