//! The command line (CONTRACT.md §1). Commands arrive with their issues.

use clap::{Parser, Subcommand};

/// tagcast: tag WeChat followers from what they do and reach the right ones.
#[derive(Debug, Parser)]
#[command(name = "tagcast", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve HTTP and run the background workers.
    Serve,
    /// Run pending migrations and exit.
    Migrate,
    /// Import the account's followers and their WeChat tags (resumes an interrupted import).
    Sync,
}
