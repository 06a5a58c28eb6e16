//! `cronmesh token create`: a fresh API token, shown once, and the settings lines that let it
//! in (only its SHA-256 is ever stored).

use std::process::ExitCode;

use scheduler_actors::api::{Role, new_token, token_sha256};

use crate::cli::InvalidInput;

/// `cronmesh token ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a new token and print it with the config lines to add.
    Create {
        /// Its name (the audit trail shows it as `token:NAME`).
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
    },
}

pub(crate) fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Create { name, role } = cmd;
    let role: Role = role.parse().map_err(InvalidInput)?;
    if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
        anyhow::bail!(InvalidInput(format!(
            "--name {} must be non-empty, without quotes or control characters",
            scheduler_core::quoted(&name)
        )));
    }
    let token = new_token().map_err(anyhow::Error::msg)?;
    println!("token (shown once; give it to its user and keep no copy): {token}");
    println!();
    println!("add to cronmesh.toml on every node:");
    println!();
    println!("[[http.tokens]]");
    println!("name = \"{name}\"");
    println!("role = \"{}\"", role.as_str());
    println!("token_sha256 = \"{}\"", token_sha256(&token));
    Ok(ExitCode::SUCCESS)
}
