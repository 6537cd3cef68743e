//! Checkpoints: the summary table (`product_sales_totals`) holds exactly
//! the history rows with an id up to `sales_checkpoint.through_id`; a
//! checkpoint adds the rows committed above it and moves it, in one
//! transaction. Sales transactions never touch the summary, so a product's
//! total is its summary row plus its history rows above the checkpoint
//! (`tenants.rs` reads both in one snapshot).
//!
//! The last id a checkpoint takes must have no uncommitted row below it,
//! now or later. Every sales transaction takes a shared lock on its shard's
//! lease row before its INSERT takes ids and keeps it until it ends; the
//! checkpoint locks every lease row, so it waits for the transactions in
//! flight and holds new ones back while it reads the last id (a moment).
//! Ids taken afterwards are above it. The sums are then added without
//! holding anything the sales need.

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::Result;

/// Rows one checkpoint transaction adds at most (a long backlog goes in
/// several, each short).
const MAX_ROWS_PER_STEP: u64 = 500_000;

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// The checkpoint before and after (history ids).
    pub from: u64,
    pub through: u64,
}

/// Adds the history rows committed since the last checkpoint to the
/// summary table, up to the last id no sale in flight can go below.
/// `causal`: on a Galera node, that id is read once every write set the
/// cluster certified is applied here (a sale committed through a node that
/// died may still be on its way, with a lower id).
pub async fn checkpoint(conn: &mut Conn, causal: bool) -> Result<Checkpointed> {
    let horizon = settled_horizon(conn, causal).await?;
    let first = add_rows_up_to(conn, horizon).await?;
    let mut last = first;
    while last.through < horizon && last.through > last.from {
        last = add_rows_up_to(conn, horizon).await?;
    }
    Ok(Checkpointed {
        from: first.from,
        through: last.through,
    })
}

/// The last history id, read while no sales transaction is in flight.
async fn settled_horizon(conn: &mut Conn, causal: bool) -> Result<u64> {
    // Sales queue behind a waiting checkpoint: it gives up soon (and
    // tries again at the next) rather than hold them back for long.
    conn.query_drop("SET SESSION innodb_lock_wait_timeout = 1")
        .await?;
    conn.query_drop("START TRANSACTION").await?;
    let read = async {
        conn.query_drop("SELECT shard_index FROM shard_leases FOR UPDATE")
            .await?;
        let last = "SELECT MAX(id) FROM sales_transactions";
        let last = if causal {
            format!("SET STATEMENT wsrep_sync_wait = 1 FOR {last}")
        } else {
            last.to_string()
        };
        conn.query_first::<Option<u64>, _>(last).await
    }
    .await;
    // Releases the lease rows whatever happened.
    conn.query_drop("COMMIT").await?;
    Ok(read?.flatten().unwrap_or(0))
}

/// One transaction: the rows above the checkpoint up to `horizon` (at most
/// [`MAX_ROWS_PER_STEP`] ids) into the summary, and the checkpoint moved.
/// Concurrent checkpoints (other instances) wait for each other on the
/// checkpoint's row.
async fn add_rows_up_to(conn: &mut Conn, horizon: u64) -> Result<Checkpointed> {
    // Read committed: the rows summed are committed and never change, and
    // at repeatable read the range scan would lock the index's end, holding
    // back every new sale until this transaction ends.
    conn.query_drop("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await?;
    conn.query_drop("START TRANSACTION").await?;
    let step = async {
        let from: Option<u64> = conn
            .query_first("SELECT through_id FROM sales_checkpoint WHERE id = 1 FOR UPDATE")
            .await?;
        let from = from.unwrap_or(0);
        let through = horizon.min(from.saturating_add(MAX_ROWS_PER_STEP));
        if through > from {
            conn.exec_drop(
                "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) \
                 SELECT tenant_id, product_id, SUM(quantity_sold), SUM(quantity_sold * price_per_unit) \
                 FROM sales_transactions WHERE id > ? AND id <= ? GROUP BY tenant_id, product_id \
                 ON DUPLICATE KEY UPDATE quantity_sold = quantity_sold + VALUES(quantity_sold), \
                 revenue = revenue + VALUES(revenue)",
                (from, through),
            )
            .await?;
            conn.exec_drop(
                "UPDATE sales_checkpoint SET through_id = ?, updated = UTC_TIMESTAMP(6) WHERE id = 1",
                (through,),
            )
            .await?;
        }
        Ok::<_, mysql_async::Error>(Checkpointed {
            from,
            through: through.max(from),
        })
    }
    .await;
    match step {
        Ok(step) => {
            conn.query_drop("COMMIT").await?;
            Ok(step)
        }
        Err(e) => {
            let _ = conn.query_drop("ROLLBACK").await;
            Err(e.into())
        }
    }
}
