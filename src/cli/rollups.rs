//! `pos rollups rebuild|verify`: the rollups reports read (see
//! `store::rollups`), made again from the history, or compared with it.
//! Both may run while instances serve: rebuild empties the rollups and
//! rolls up again to the marks they had (reports read the history until
//! it is done); verify reads one snapshot.

use super::database::{with_connection, CliError};
use crate::store;

#[derive(Debug, clap::Args)]
pub struct RollupsArgs {
    #[command(subcommand)]
    pub command: RollupsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RollupsCommand {
    /// Empty the rollups and make them again from the history.
    Rebuild,
    /// Compare the rollups with the history; exit 1 if they differ.
    Verify,
}

/// Ids of each table one rebuild transaction takes on.
const CHUNK: u64 = 100_000;

/// Runs a `pos rollups` command; the output for stdout.
pub async fn run(
    command: &RollupsCommand,
    url: &str,
    migration_url: &str,
) -> Result<String, CliError> {
    with_connection(url, migration_url, async |conn| match command {
        RollupsCommand::Rebuild => rebuild(conn).await,
        RollupsCommand::Verify => verify(conn).await,
    })
    .await
}

async fn rebuild(conn: &mut mysql_async::Conn) -> Result<String, CliError> {
    let marks = store::reset_rollups(conn).await?;
    let mut rows = 0;
    for (shard, upto) in &marks {
        rows += store::roll_all(conn, *shard, *upto, CHUNK).await?;
    }
    Ok(format!(
        "rollups rebuilt: {rows} rollup rows from the history ({} shards)\n",
        marks.len()
    ))
}

async fn verify(conn: &mut mysql_async::Conn) -> Result<String, CliError> {
    let verified = store::verify_rollups(conn).await?;
    if verified.differences.is_empty() {
        return Ok(format!(
            "rollups verified: {} rows of {} tenants equal the history\n",
            verified.rows, verified.tenants
        ));
    }
    Err(CliError::refused(format!(
        "rollups differ from the history (first {}):\n{}",
        verified.differences.len(),
        verified.differences.join("\n")
    )))
}
