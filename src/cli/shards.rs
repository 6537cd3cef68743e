//! `pos shards resize N|status`: the deployment's shard count. Every
//! instance checks its `POS_SHARD` against the recorded count at start, so
//! changing it is an explicit step, taken while no instance holds a lease
//! (they all stopped): tenants move between instances, and each instance
//! reads its new tenants' totals when it starts again.

use mysql_async::prelude::*;

use super::database::{with_connection, CliError};
use crate::store::{self, Resized};

#[derive(Debug, clap::Args)]
pub struct ShardsArgs {
    #[command(subcommand)]
    pub command: ShardsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ShardsCommand {
    /// Record a new shard count; refused while any instance holds a lease.
    Resize {
        /// The new number of shards (POS_SHARD=i/N on each instance).
        #[arg(value_parser = clap::value_parser!(u64).range(1..=1024))]
        count: u64,
    },
    /// Show the recorded shard count and each shard's lease.
    Status,
}

/// Runs a `pos shards` command on the control database; the output for
/// stdout. With `pods`, a resize is refused once the directory has a
/// tenant: each pod's database holds its tenants' rows, and a new count
/// would send tenants to pods that lack them (moving rows is not built).
pub async fn run(
    command: &ShardsCommand,
    url: &str,
    migration_url: &str,
    pods: bool,
) -> Result<String, CliError> {
    with_connection(url, migration_url, async |conn| match command {
        ShardsCommand::Resize { count } => {
            let tenants = if pods { store::count_tenants(conn).await? } else { 0 };
            if tenants > 0 {
                return Err(CliError::refused(format!(
                    "resize is refused with pods once there are tenants ({tenants}): a new count would send tenants to pods that do not hold their rows"
                )));
            }
            resize(conn, *count).await
        }
        ShardsCommand::Status => status(conn).await,
    })
    .await
}

async fn resize(conn: &mut mysql_async::Conn, count: u64) -> Result<String, CliError> {
    let resized = store::resize_shards(conn, count).await?;
    if let Resized::Done { .. } = resized {
        // Each shard's rollup marks: rolled up to the newest rows first.
        store::reshard(conn, count).await?;
    }
    match resized {
        Resized::Done { from: Some(from) } => Ok(format!(
            "the deployment now has {count} shards (it had {from}); start each instance with POS_SHARD=i/{count}\n"
        )),
        Resized::Done { from: None } => Ok(format!(
            "the deployment now has {count} shards; start each instance with POS_SHARD=i/{count}\n"
        )),
        Resized::Held(held) => {
            let holders: Vec<String> = held
                .iter()
                .map(|(shard, holder)| format!("shard {shard} by {holder}"))
                .collect();
            Err(CliError::refused(format!(
                "instances still hold leases ({}); stop every instance first",
                holders.join(", ")
            )))
        }
    }
}

async fn status(conn: &mut mysql_async::Conn) -> Result<String, CliError> {
    let count: Option<u64> = conn
        .query_first("SELECT shard_count FROM shard_deployment WHERE id = 1")
        .await?;
    let leases: Vec<(u64, String, u64, String)> = conn
        .query(
            "SELECT shard_index, holder, fence, \
             IF(expires > UTC_TIMESTAMP(6), CONCAT('held until ', expires, ' UTC'), 'free') \
             FROM shard_leases ORDER BY shard_index",
        )
        .await?;
    let mut out = match count {
        Some(n) => format!("{n} shards\n"),
        None => "no shard count recorded yet (the first instance records its own)\n".to_string(),
    };
    for (shard, holder, fence, state) in leases {
        out.push_str(&format!(
            "shard {shard}: {state}, last holder {holder}, fence {fence}\n"
        ));
    }
    Ok(out)
}
