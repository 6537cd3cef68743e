//! Bulk creation of tenants, branches and products for `pos seed`: one
//! multi-row INSERT per table and chunk, one transaction per chunk.

use std::fmt::Write as _;

use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use super::Result;
use crate::domain::TenantId;

/// Rows per INSERT statement (keeps statements well under max_allowed_packet).
const ROWS_PER_STATEMENT: usize = 5_000;

/// What one chunk creates: tenants with their branches and products.
pub struct SeedChunk<'a> {
    pub tenant_names: &'a [String],
    /// Branch names of each tenant (same list for all).
    pub branch_names: &'a [String],
    /// Product names of each tenant (same list for all).
    pub product_names: &'a [String],
}

/// Inserts one chunk in one transaction; returns the tenant ids it made.
/// The ids of one multi-row INSERT follow the first one at the server's
/// auto-increment step, read in the same transaction (more than 1 on
/// Galera and other multi-primary set-ups).
pub async fn insert_seed_chunk(conn: &mut Conn, chunk: &SeedChunk<'_>) -> Result<Vec<TenantId>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let mut sql = String::from("INSERT INTO tenants (name) VALUES ");
    for (i, name) in chunk.tenant_names.iter().enumerate() {
        let _ = write!(sql, "{}('{}')", if i > 0 { "," } else { "" }, quote(name));
    }
    tx.query_drop(sql).await?;
    let first = tx.last_insert_id().unwrap_or(0);
    let step: Option<u64> = tx.query_first("SELECT @@auto_increment_increment").await?;
    let step = step.unwrap_or(1).max(1);
    let tenants: Vec<TenantId> = (0..chunk.tenant_names.len() as u64)
        .filter_map(|i| TenantId::new(first + i * step))
        .collect();
    insert_children(
        &mut tx,
        ("branches", "code", 'B'),
        &tenants,
        chunk.branch_names,
    )
    .await?;
    insert_children(
        &mut tx,
        ("products", "sku", 'P'),
        &tenants,
        chunk.product_names,
    )
    .await?;
    tx.commit().await?;
    Ok(tenants)
}

/// Inserts `names` for every tenant into `table`, each with its natural
/// key (`key` column): `prefix` and its place in the list (`B1`, `P12`),
/// unique within the tenant.
async fn insert_children(
    tx: &mut mysql_async::Transaction<'_>,
    (table, key, prefix): (&str, &str, char),
    tenants: &[TenantId],
    names: &[String],
) -> Result<()> {
    let mut rows = tenants
        .iter()
        .flat_map(|t| {
            names
                .iter()
                .enumerate()
                .map(move |(n, name)| (*t, n + 1, name))
        })
        .peekable();
    // Products get a list price (1.00 to 15.99, by their place in the list).
    let priced = table == "products";
    let extra = if priced { ", price" } else { "" };
    while rows.peek().is_some() {
        let mut sql = format!("INSERT INTO {table} (tenant_id, {key}, name{extra}) VALUES ");
        for (i, (tenant, n, name)) in rows.by_ref().take(ROWS_PER_STATEMENT).enumerate() {
            let _ = write!(
                sql,
                "{}({tenant},'{prefix}{n}','{}'",
                if i > 0 { "," } else { "" },
                quote(name)
            );
            if priced {
                let cents = 100 + (n * 37) % 1500;
                let _ = write!(sql, ",{}.{:02}", cents / 100, cents % 100);
            }
            sql.push(')');
        }
        tx.query_drop(sql).await?;
    }
    Ok(())
}

/// Names are ours (built-in lists), but quote anyway.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// Tenants in the database.
pub async fn count_tenants(conn: &mut Conn) -> Result<u64> {
    let n: Option<u64> = conn.query_first("SELECT COUNT(*) FROM tenants").await?;
    Ok(n.unwrap_or(0))
}
