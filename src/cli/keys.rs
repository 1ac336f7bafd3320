//! `stele key generate`: an ed25519 pair for signing attestations.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::Result;

use crate::attest::keys::public_path_for;
use crate::attest::PrivateKey;

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    #[command(
        after_help = "Examples:\n  stele key generate ci.key   # writes ci.key and ci.pub, prints the key id"
    )]
    /// Write a new ed25519 private key (mode 0600) and its public key
    /// beside it (`.pub`). Existing files are never replaced.
    Generate {
        /// Private key file.
        #[arg(default_value = "stele.key")]
        path: PathBuf,
    },
}

pub fn run(cmd: KeyCommand, r: &Reporter) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Generate { path } => {
            let key = PrivateKey::generate(&mut rand::rngs::OsRng);
            let public = public_path_for(&path);
            key.write_pair(&path, &public)?;
            r.info(format_args!(
                "wrote private key {} (keep it secret) and public key {}",
                path.display(),
                public.display()
            ));
            println!("{}", key.keyid());
            Ok(ExitCode::SUCCESS)
        }
    }
}
