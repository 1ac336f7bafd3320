use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stele::cli::Cli::parse();
    match stele::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            stele::cli::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
