//! `stele completions`, `stele man` and `stele schema`: what stele says
//! about itself, for shells, `man` and editors. Each prints on stdout.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  stele completions bash > /etc/bash_completion.d/stele\n  stele completions zsh > \"${fpath[1]}/_stele\"\n  stele completions fish > ~/.config/fish/completions/stele.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub(crate) fn cmd_completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut command = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "stele", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The roff man page of `stele` and its commands, one page.
pub(crate) fn cmd_man() -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(super::Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The recipe's JSON Schema, as `schema/recipe.schema.json` holds it.
pub(crate) fn cmd_schema() -> Result<ExitCode> {
    super::report::print_json(&crate::recipe::schema::json_schema())?;
    Ok(ExitCode::SUCCESS)
}
