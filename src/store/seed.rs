//! Bulk creation of tenants, branches and products for `pos seed`: one
//! multi-row INSERT per table and chunk, one transaction per chunk.

use std::fmt::Write as _;

use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use super::Result;
use crate::domain::{BranchId, ProductId, TenantId};

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
    insert_children(&mut tx, "branches", &tenants, chunk.branch_names).await?;
    insert_children(&mut tx, "products", &tenants, chunk.product_names).await?;
    tx.commit().await?;
    Ok(tenants)
}

async fn insert_children(
    tx: &mut mysql_async::Transaction<'_>,
    table: &str,
    tenants: &[TenantId],
    names: &[String],
) -> Result<()> {
    let mut rows = tenants
        .iter()
        .flat_map(|t| names.iter().map(move |n| (*t, n)))
        .peekable();
    while rows.peek().is_some() {
        let mut sql = format!("INSERT INTO {table} (tenant_id, name) VALUES ");
        for (i, (tenant, name)) in rows.by_ref().take(ROWS_PER_STATEMENT).enumerate() {
            let _ = write!(
                sql,
                "{}({tenant},'{}')",
                if i > 0 { "," } else { "" },
                quote(name)
            );
        }
        tx.query_drop(sql).await?;
    }
    Ok(())
}

/// Names are ours (built-in lists), but quote anyway.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// One tenant's ids, for the load generator.
#[derive(Debug, Clone)]
pub struct Shop {
    pub tenant_id: TenantId,
    pub branches: Vec<BranchId>,
    pub products: Vec<ProductId>,
}

/// The given tenants, or the first `limit` tenants by id, with their
/// branches and products; tenants without either are left out.
pub async fn load_shops(
    conn: &mut Conn,
    tenants: Option<&[TenantId]>,
    limit: usize,
) -> Result<Vec<Shop>> {
    let ids: Vec<TenantId> = match tenants {
        Some(list) if !list.is_empty() => {
            let in_list = list
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(",");
            conn.query(format!(
                "SELECT id FROM tenants WHERE id IN ({in_list}) ORDER BY id"
            ))
            .await?
        }
        _ => {
            conn.exec(
                "SELECT id FROM tenants ORDER BY id LIMIT ?",
                (limit as u64,),
            )
            .await?
        }
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let in_ids = ids
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut shops: std::collections::BTreeMap<TenantId, Shop> = ids
        .iter()
        .map(|&t| {
            (
                t,
                Shop {
                    tenant_id: t,
                    branches: Vec::new(),
                    products: Vec::new(),
                },
            )
        })
        .collect();
    let branches: Vec<(TenantId, BranchId)> = conn
        .query(format!(
            "SELECT tenant_id, id FROM branches WHERE tenant_id IN ({in_ids}) ORDER BY id"
        ))
        .await?;
    for (t, b) in branches {
        if let Some(s) = shops.get_mut(&t) {
            s.branches.push(b);
        }
    }
    let products: Vec<(TenantId, ProductId)> = conn
        .query(format!(
            "SELECT tenant_id, id FROM products WHERE tenant_id IN ({in_ids}) ORDER BY id"
        ))
        .await?;
    for (t, p) in products {
        if let Some(s) = shops.get_mut(&t) {
            s.products.push(p);
        }
    }
    Ok(shops
        .into_values()
        .filter(|s| !s.branches.is_empty() && !s.products.is_empty())
        .collect())
}

/// Tenants in the database.
pub async fn count_tenants(conn: &mut Conn) -> Result<u64> {
    let n: Option<u64> = conn.query_first("SELECT COUNT(*) FROM tenants").await?;
    Ok(n.unwrap_or(0))
}
