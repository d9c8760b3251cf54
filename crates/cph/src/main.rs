//! `cph`: the Cloud Phone Host binary.
//!
//! - `cph serve`: the control plane with its embedded defaults (SQLite in the data directory,
//!   an in-process host agent running virtual phones, a bootstrap administrator).
//! - `cph admin …`: administration on the same store (domains, projects, users, keys, grants,
//!   host capacity).

mod admin;
mod config;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cph",
    version,
    about = "Cloud Phone Host: a self-hostable, CPH-compatible cloud phone service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (and, by default, an in-process host agent with virtual phones).
    Serve(Box<config::ServeArgs>),
    /// Administer identities and host capacity on the server's store.
    Admin(admin::AdminArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(*a).await,
            Command::Admin(a) => admin::run(a).await,
        }
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
