//! The command line: `pos serve`, `pos migrate`, `pos keys`, `pos seed`,
//! `pos history`, `pos loadgen`, `pos shards`.

pub mod database;
pub mod history;
pub mod keys;
pub mod keys_file;
pub mod loadgen;
mod names;
pub mod rollups;
pub mod seed;
pub mod shards;

use clap::{Parser, Subcommand};

/// Multi-tenant POS transaction processor. Service settings come from
/// `POS_*` environment variables (and a `.env` file); see README.md.
#[derive(Debug, Parser)]
#[command(name = "pos", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (POS_HTTP_ADDR) and metrics (POS_METRICS_ADDR); migrates first.
    #[command(after_help = crate::config::settings_help())]
    Serve,
    /// Apply pending database migrations and exit (POS_MIGRATE_DATABASE_URL if set).
    Migrate,
    /// Make, list and revoke API keys.
    Keys(keys::KeysArgs),
    /// Create tenants with their branches and products (with list prices) in MySQL directly (bulk inserts; adds to what exists).
    Seed(seed::SeedArgs),
    /// Give tenants past days of sales through the API (for demos; a second run adds nothing).
    History(history::HistoryArgs),
    /// Drive the API with simulated tills and report throughput and latency.
    Loadgen(loadgen::LoadgenArgs),
    /// The deployment's shard count (see POS_SHARD).
    Shards(shards::ShardsArgs),
    /// The rollups reports read: make them again, or compare them with the history.
    Rollups(rollups::RollupsArgs),
}
