//! What a tenant actor and the ranking start from: a tenant's catalog (see
//! `catalog.rs`), and the per-product totals from the summary table (never from the history,
//! so a start costs what the products cost, whatever the history's size).

use std::sync::Arc;

use mysql_async::prelude::*;
use mysql_async::Conn;
use rust_decimal::Decimal;

use super::{load_catalog, Result};
use crate::domain::{Money, ProductId, ProductTotal, Shard, TenantId, TenantSnapshot};

/// Reads a tenant's catalog and its per-product totals (from the summary
/// table, never from the history).
pub async fn load_tenant(conn: &mut Conn, tenant: TenantId) -> Result<Option<TenantSnapshot>> {
    let Some(catalog) = load_catalog(conn, tenant).await? else {
        return Ok(None);
    };
    let rows: Vec<(ProductId, u64, Decimal, u64, Decimal)> = conn
        .exec(
            "SELECT product_id, quantity_sold, revenue, quantity_refunded, refunds \
             FROM product_sales_totals WHERE tenant_id = ?",
            (tenant,),
        )
        .await?;
    let totals = rows
        .into_iter()
        .map(
            |(product_id, quantity, revenue, refunded, refunds)| ProductTotal {
                tenant_id: tenant,
                product_id,
                name: catalog.product_name(product_id),
                quantity,
                revenue: Money::new(revenue),
                refunded,
                refunds: Money::new(refunds),
            },
        )
        .collect();
    Ok(Some(TenantSnapshot { catalog, totals }))
}

/// Every product total of the tenants `shard` owns, for the ranking.
pub async fn load_all_totals(conn: &mut Conn, shard: Shard) -> Result<Vec<ProductTotal>> {
    let mut out = Vec::new();
    conn.query_iter(format!(
        "SELECT t.tenant_id, t.product_id, p.name, t.quantity_sold, t.revenue, \
         t.quantity_refunded, t.refunds \
         FROM product_sales_totals t JOIN products p ON p.id = t.product_id \
         WHERE t.tenant_id % {} = {}",
        shard.count, shard.index
    ))
    .await?
    .for_each(|row| {
        type Row = (TenantId, ProductId, String, u64, Decimal, u64, Decimal);
        let (tenant_id, product_id, name, quantity, revenue, refunded, refunds): Row =
            mysql_async::from_row(row);
        out.push(ProductTotal {
            tenant_id,
            product_id,
            name: Arc::from(name),
            quantity,
            revenue: Money::new(revenue),
            refunded,
            refunds: Money::new(refunds),
        });
    })
    .await?;
    Ok(out)
}
