//! What a tenant actor and the ranking start from: a tenant's catalog (see
//! `catalog.rs`), and the per-product totals: the summary table, plus the
//! history rows above its checkpoint (see `checkpoint.rs`), read in one
//! snapshot. The history is read by id from the checkpoint on, so a start
//! costs what the products cost and a few seconds of sales, whatever the
//! history's size.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use mysql_async::prelude::*;
use mysql_async::Conn;
use rust_decimal::Decimal;

use super::{load_catalog, Result};
use crate::domain::{Money, ProductId, ProductTotal, Shard, TenantId, TenantSnapshot};

/// Reads a tenant's catalog and its per-product totals.
pub async fn load_tenant(conn: &mut Conn, tenant: TenantId) -> Result<Option<TenantSnapshot>> {
    let Some(catalog) = load_catalog(conn, tenant).await? else {
        return Ok(None);
    };
    let total = |(product_id, quantity, revenue): (ProductId, u64, Decimal)| ProductTotal {
        tenant_id: tenant,
        product_id,
        name: catalog.product_name(product_id),
        quantity,
        revenue: Money::new(revenue),
    };
    let (summary, tail) = in_one_snapshot(conn, |conn, through| {
        Box::pin(async move {
            let summary: Vec<(ProductId, u64, Decimal)> = conn
                .exec(
                    "SELECT product_id, quantity_sold, revenue FROM product_sales_totals WHERE tenant_id = ?",
                    (tenant,),
                )
                .await?;
            let tail: Vec<(ProductId, u64, Decimal)> = conn
                .exec(
                    "SELECT product_id, CAST(SUM(quantity_sold) AS UNSIGNED), SUM(quantity_sold * price_per_unit) \
                     FROM sales_transactions WHERE id > ? AND tenant_id = ? GROUP BY product_id",
                    (through, tenant),
                )
                .await?;
            Ok((summary, tail))
        })
    })
    .await?;
    let mut totals: Vec<ProductTotal> = summary.into_iter().map(total).collect();
    add_tail(&mut totals, tail.into_iter().map(total).collect());
    Ok(Some(TenantSnapshot { catalog, totals }))
}

/// Every product total of the tenants `shard` owns, for the ranking.
pub async fn load_all_totals(conn: &mut Conn, shard: Shard) -> Result<Vec<ProductTotal>> {
    let (mut totals, tail) = in_one_snapshot(conn, |conn, through| {
        Box::pin(async move {
            let summary = read_totals(
                conn,
                format!(
                    "SELECT t.tenant_id, t.product_id, p.name, t.quantity_sold, t.revenue \
                     FROM product_sales_totals t JOIN products p ON p.id = t.product_id \
                     WHERE t.tenant_id % {} = {}",
                    shard.count, shard.index
                ),
            )
            .await?;
            let tail = read_totals(
                conn,
                format!(
                    "SELECT s.tenant_id, s.product_id, p.name, CAST(SUM(s.quantity_sold) AS UNSIGNED), \
                     SUM(s.quantity_sold * s.price_per_unit) \
                     FROM sales_transactions s JOIN products p ON p.id = s.product_id \
                     WHERE s.id > {through} AND s.tenant_id % {} = {} GROUP BY s.tenant_id, s.product_id",
                    shard.count, shard.index
                ),
            )
            .await?;
            Ok((summary, tail))
        })
    })
    .await?;
    add_tail(&mut totals, tail);
    Ok(totals)
}

/// Runs `read` in a read-only transaction that sees one snapshot, with
/// the checkpoint (the last history id the summary holds) of that snapshot.
async fn in_one_snapshot<T>(
    conn: &mut Conn,
    read: impl for<'r> FnOnce(&'r mut Conn, u64) -> BoxFuture<'r, mysql_async::Result<T>>,
) -> Result<T> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let through: mysql_async::Result<Option<u64>> = conn
        .query_first("SELECT through_id FROM sales_checkpoint WHERE id = 1")
        .await;
    let through = match through {
        Ok(t) => t.unwrap_or(0),
        Err(e) => {
            let _ = conn.query_drop("ROLLBACK").await;
            return Err(e.into());
        }
    };
    let out = read(&mut *conn, through).await;
    let end = conn.query_drop("COMMIT").await;
    let out = out?;
    end?;
    Ok(out)
}

/// `(tenant, product, name, quantity, revenue)` rows as totals.
async fn read_totals(conn: &mut Conn, sql: String) -> mysql_async::Result<Vec<ProductTotal>> {
    let mut out = Vec::new();
    conn.query_iter(sql)
        .await?
        .for_each(|row| {
            let (tenant_id, product_id, name, quantity, revenue): (
                TenantId,
                ProductId,
                String,
                u64,
                Decimal,
            ) = mysql_async::from_row(row);
            out.push(ProductTotal {
                tenant_id,
                product_id,
                name: Arc::from(name),
                quantity,
                revenue: Money::new(revenue),
            });
        })
        .await?;
    Ok(out)
}

/// Adds the history above the checkpoint (`tail`, one row per product) to
/// the summary's totals.
fn add_tail(totals: &mut Vec<ProductTotal>, tail: Vec<ProductTotal>) {
    if tail.is_empty() {
        return;
    }
    let mut tail: HashMap<(TenantId, ProductId), ProductTotal> = tail
        .into_iter()
        .map(|t| ((t.tenant_id, t.product_id), t))
        .collect();
    for total in totals.iter_mut() {
        if let Some(more) = tail.remove(&(total.tenant_id, total.product_id)) {
            total.quantity += more.quantity;
            total.revenue += more.revenue;
        }
    }
    totals.extend(tail.into_values());
}
