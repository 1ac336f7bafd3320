//! `stele key generate`: a key pair for signing images and attestations.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::Reporter;
use anyhow::Result;

use super::settings::signing::{key_password, PASSWORD_VARIABLES};
use crate::attest::keys::public_path_for;
use crate::attest::{Algorithm, PrivateKey};

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    #[command(
        after_help = "Examples:\n  stele key generate ci.key                  # writes ci.key and ci.pub, prints the key id\n  STELE_KEY_PASSWORD=… stele key generate ci.key   # encrypted, as cosign writes keys\n  stele key generate --type ed25519 ed.key"
    )]
    /// Write a new private key (mode 0600) and its public key beside it
    /// (`.pub`); prints the key id. With STELE_KEY_PASSWORD (or
    /// COSIGN_PASSWORD) set, the private key is encrypted the way cosign
    /// encrypts its keys. Existing files are never replaced.
    Generate {
        /// Private key file.
        #[arg(default_value = "stele.key")]
        path: PathBuf,
        /// The key type: ecdsa-p256 (cosign's and KMS's default) or
        /// ed25519.
        #[arg(long = "type", value_name = "TYPE", default_value = "ecdsa-p256")]
        algorithm: String,
    },
}

pub fn run(cmd: KeyCommand, r: &Reporter) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Generate { path, algorithm } => {
            let algorithm: Algorithm = algorithm.parse()?;
            let mut rng = rand::rngs::OsRng;
            let key = PrivateKey::generate(algorithm, &mut rng);
            let public = public_path_for(&path);
            let password = key_password();
            key.write_pair(&path, &public, password.as_deref(), &mut rng)?;
            r.info(format_args!(
                "wrote {} private key {}{} (keep it secret) and public key {}",
                algorithm.name(),
                path.display(),
                if password.is_some() {
                    format!(
                        ", encrypted with the password in {}",
                        PASSWORD_VARIABLES.join(" or ")
                    )
                } else {
                    String::new()
                },
                public.display()
            ));
            println!("{}", key.keyid());
            Ok(ExitCode::SUCCESS)
        }
    }
}
