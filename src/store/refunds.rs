//! Storing refunds and voids: one batch of many requests' refunds as one
//! transaction (the refund rows, what each sale has refunded, the summary's
//! refunded figures and the writer's mark), written as one SQL text like a
//! sales batch (see `sales.rs`); and reading back what a refund needs: the
//! sales it names and refunds stored under its keys.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, Params, Value};
use rust_decimal::Decimal;

use super::sales::{commit_batch, open_row, push_key_list, push_mark, stored_sale, STEP_BEFORE};
use super::{BatchMark, CommitFailure, Mark, Result};
use crate::domain::{
    BranchId, IdempotencyKey, Money, Name, NewRefund, ProductId, Quantity, RefundId, RefundKind,
    RefundableSale, SaleId, SalesListing, StoredRefund, TenantId, Timestamp,
};

/// Stores `refunds` in one transaction, moving the writer's mark as `mark`
/// says; the mark it wrote names the first refund id. A refund that would
/// take back more of a sale than is left fails the whole transaction
/// (`StoreError::OverRefunded`): nothing of it is stored.
pub async fn insert_refunds(
    conn: &mut Conn,
    refunds: &[&NewRefund],
    seqs: &[u64],
    mark: BatchMark,
) -> Result<Mark, CommitFailure> {
    let sql = refund_sql(refunds, seqs, mark);
    commit_batch(conn, sql, refunds.len() == 1, mark).await
}

fn refund_sql(refunds: &[&NewRefund], seqs: &[u64], mark: BatchMark) -> String {
    let mut sql = String::with_capacity(900 + refunds.len() * 320);
    sql.push_str("START TRANSACTION;");
    push_refunded_totals(&mut sql, refunds);
    push_refunded_sales(&mut sql, refunds);
    let many = refunds.len() > 1;
    if many {
        sql.push_str(STEP_BEFORE);
    }
    push_insert_refunds(&mut sql, refunds, seqs);
    push_mark(&mut sql, mark, many);
    sql
}

/// The summary's refunded figures, one row per (tenant, product) in key
/// order (the order sales batches lock them in).
fn push_refunded_totals(sql: &mut String, refunds: &[&NewRefund]) {
    let mut sums: BTreeMap<(TenantId, ProductId), (u64, Money)> = BTreeMap::new();
    for r in refunds {
        let e = sums.entry((r.tenant_id, r.product_id)).or_default();
        e.0 += u64::from(r.quantity.get());
        e.1 += r.amount;
    }
    sql.push_str(
        "INSERT INTO product_sales_totals \
         (tenant_id, product_id, quantity_sold, revenue, quantity_refunded, refunds) VALUES ",
    );
    for (i, ((t, p), (q, amount))) in sums.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        open_row(sql, [t.get(), p.get(), 0, 0, *q]);
        sql.push(',');
        sql.push_str(&amount.text());
        sql.push(')');
    }
    sql.push_str(
        " ON DUPLICATE KEY UPDATE quantity_refunded = quantity_refunded + VALUES(quantity_refunded), \
         refunds = refunds + VALUES(refunds);",
    );
}

/// Each sale's refunded quantity raised, in sale order: set to NULL (an
/// error in strict mode, so COMMIT never runs) when it would pass what
/// was sold. This is what keeps a sale's refunds within it whatever runs
/// concurrently; the tenant's actor checks first to answer in words.
fn push_refunded_sales(sql: &mut String, refunds: &[&NewRefund]) {
    let mut by_sale: BTreeMap<(TenantId, SaleId), u64> = BTreeMap::new();
    for r in refunds {
        *by_sale.entry((r.tenant_id, r.sale_id)).or_default() += u64::from(r.quantity.get());
    }
    for ((tenant, sale), q) in by_sale {
        let _ = write!(
            sql,
            "UPDATE sales_transactions SET quantity_refunded = \
             IF(quantity_refunded + {q} <= quantity_sold, quantity_refunded + {q}, NULL) \
             WHERE id = {sale} AND tenant_id = {tenant};"
        );
    }
}

fn push_insert_refunds(sql: &mut String, refunds: &[&NewRefund], seqs: &[u64]) {
    sql.push_str(
        "INSERT INTO refunds (event_seq, tenant_id, branch_id, sale_id, product_id, quantity, amount, kind, \
         reason, idempotency_key, created_at) VALUES ",
    );
    for (i, (r, seq)) in refunds.iter().zip(seqs).enumerate() {
        if i > 0 {
            sql.push(',');
        }
        open_row(
            sql,
            [
                *seq,
                r.tenant_id.get(),
                r.branch_id.get(),
                r.sale_id.get(),
                r.product_id.get(),
                u64::from(r.quantity.get()),
            ],
        );
        sql.push(',');
        sql.push_str(&r.amount.text());
        sql.push_str(",'");
        sql.push_str(r.kind.as_str());
        sql.push_str("',");
        match &r.reason {
            // A person's text: as hex, so no character of it is SQL.
            Some(reason) => {
                sql.push_str("_utf8mb4 X'");
                for b in reason.as_str().bytes() {
                    let _ = write!(sql, "{b:02X}");
                }
                sql.push('\'');
            }
            None => sql.push_str("NULL"),
        }
        sql.push(',');
        match &r.idempotency_key {
            Some(k) => {
                sql.push('\'');
                sql.push_str(k.as_str());
                sql.push('\'');
            }
            None => sql.push_str("NULL"),
        }
        sql.push_str(",'");
        let _ = r.created_at.write_to(sql, b' ');
        sql.push_str("')");
    }
}

/// `(a,b,c)` of ids, for an `IN`.
pub(super) fn id_list(ids: impl IntoIterator<Item = u64>) -> String {
    let mut list = String::from("(");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(itoa::Buffer::new().format(id));
    }
    list.push(')');
    list
}

type SaleRow = (
    SaleId,
    BranchId,
    ProductId,
    u32,
    Decimal,
    NaiveDateTime,
    Option<String>,
    u32,
    Option<NaiveDateTime>,
);

const SALE_COLUMNS: &str = "id, branch_id, product_id, quantity_sold, price_per_unit, \
    log_timestamp, idempotency_key, quantity_refunded, stored_at";

fn refundable(tenant: TenantId, row: SaleRow) -> Option<RefundableSale> {
    let (id, branch_id, product_id, quantity, price, ts, key, refunded, stored_at) = row;
    Some(RefundableSale {
        sale: stored_sale(
            tenant,
            (id, branch_id, product_id, quantity, price, ts, key),
        )?,
        refunded,
        stored_at: stored_at.map(Timestamp::from_naive_utc),
    })
}

/// The sales of `tenant` among `ids`, with what each has refunded (a sale
/// of another tenant is not found).
pub async fn find_refundable(
    conn: &mut Conn,
    tenant: TenantId,
    ids: &[SaleId],
) -> Result<Vec<RefundableSale>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {SALE_COLUMNS} FROM sales_transactions WHERE tenant_id = ? AND id IN {}",
        id_list(ids.iter().map(|id| id.get()))
    );
    let rows: Vec<SaleRow> = conn.exec(sql, (tenant,)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| refundable(tenant, r))
        .collect())
}

pub(super) type RefundRow = (
    RefundId,
    BranchId,
    SaleId,
    ProductId,
    u32,
    Decimal,
    String,
    Option<String>,
    Option<String>,
    NaiveDateTime,
);

pub(super) const REFUND_COLUMNS: &str =
    "id, branch_id, sale_id, product_id, quantity, amount, kind, \
    reason, idempotency_key, created_at";

pub(super) fn stored_refund(tenant: TenantId, row: RefundRow) -> Option<StoredRefund> {
    let (id, branch_id, sale_id, product_id, quantity, amount, kind, reason, key, created) = row;
    Some(StoredRefund {
        id,
        refund: NewRefund {
            sale_id,
            tenant_id: tenant,
            branch_id,
            product_id,
            quantity: Quantity::new(quantity.into())?,
            amount: Money::new(amount),
            kind: RefundKind::parse(&kind)?,
            reason: reason.map(Name::stored),
            idempotency_key: key.as_deref().and_then(IdempotencyKey::parse),
            created_at: Timestamp::from_naive_utc(created),
        },
    })
}

/// The refunds of `tenant` stored under any of `keys`.
pub async fn find_refunds_by_keys(
    conn: &mut Conn,
    tenant: TenantId,
    keys: &[IdempotencyKey],
) -> Result<Vec<StoredRefund>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql =
        format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE tenant_id = ? AND idempotency_key IN ");
    push_key_list(&mut sql, keys);
    let rows: Vec<RefundRow> = conn.exec(sql, (tenant,)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| stored_refund(tenant, r))
        .collect())
}

/// A page of `tenant`'s sales, newest first (by time, then id), each with
/// what is refunded of it; and whether more follow. Read on the covering
/// index's `(tenant_id, log_timestamp)` prefix, backwards: a page costs
/// what it holds, plus the sales sharing the last one's time (a batch
/// sent without timestamps shares one), which are read whole so that a
/// page never ends inside them in another order than the next one starts.
pub async fn list_sales(
    conn: &mut Conn,
    tenant: TenantId,
    listing: &SalesListing,
) -> Result<(Vec<RefundableSale>, bool)> {
    let want = listing.limit + 1;
    let branch = listing
        .branch
        .map_or(String::new(), |b| format!(" AND branch_id = {b}"));
    let select =
        format!("SELECT {SALE_COLUMNS} FROM sales_transactions WHERE tenant_id = ?{branch}");
    // Those at the cursor's time with lower ids, then those before it.
    let mut rows: Vec<SaleRow> = match listing.after {
        Some(c) => {
            let sql =
                format!("{select} AND log_timestamp = ? AND id < ? ORDER BY id DESC LIMIT {want}");
            conn.exec(sql, (tenant, c.at.naive_utc(), c.id)).await?
        }
        None => Vec::new(),
    };
    let upper = listing.after.map(|c| c.at).or(listing.to);
    if rows.len() < want {
        let mut sql = select.clone();
        let mut params: Vec<Value> = vec![tenant.into()];
        if let Some(from) = listing.from {
            sql.push_str(" AND log_timestamp >= ?");
            params.push(from.naive_utc().into());
        }
        if let Some(upper) = upper {
            sql.push_str(" AND log_timestamp < ?");
            params.push(upper.naive_utc().into());
        }
        let _ = write!(
            sql,
            " ORDER BY log_timestamp DESC LIMIT {}",
            want - rows.len()
        );
        let mut before: Vec<SaleRow> = conn.exec(sql, Params::Positional(params)).await?;
        if let Some(last) = before.last().map(|r| r.5) {
            // The last time's sales whole, highest ids first.
            before.retain(|r| r.5 != last);
            let sql = format!("{select} AND log_timestamp = ? ORDER BY id DESC LIMIT {want}");
            let tied: Vec<SaleRow> = conn.exec(sql, (tenant, last)).await?;
            before.sort_by(|a, b| b.5.cmp(&a.5).then(b.0.cmp(&a.0)));
            before.extend(tied);
        }
        rows.extend(before);
    }
    let more = rows.len() > listing.limit;
    rows.truncate(listing.limit);
    let sales = rows
        .into_iter()
        .filter_map(|r| refundable(tenant, r))
        .collect();
    Ok((sales, more))
}

/// A sale of `tenant` with its refunds, oldest first; `None` if the tenant
/// has no such sale.
pub async fn sale_with_refunds(
    conn: &mut Conn,
    tenant: TenantId,
    id: SaleId,
) -> Result<Option<(RefundableSale, Vec<StoredRefund>)>> {
    let Some(sale) = find_refundable(conn, tenant, &[id]).await?.pop() else {
        return Ok(None);
    };
    let rows: Vec<RefundRow> = conn
        .exec(
            format!(
                "SELECT {REFUND_COLUMNS} FROM refunds WHERE tenant_id = ? AND sale_id = ? ORDER BY id"
            ),
            (tenant, id),
        )
        .await?;
    let refunds = rows
        .into_iter()
        .filter_map(|r| stored_refund(tenant, r))
        .collect();
    Ok(Some((sale, refunds)))
}
