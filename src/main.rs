use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stele::cli::Cli::parse();
    match stele::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
