//! Storing sales: one batch of many requests' rows as one transaction (the
//! history rows, the summary upsert and the writer's mark), settling a
//! COMMIT whose answer was lost, and reading stored sales back by key.
//!
//! Multi-row statements are written as SQL text rather than prepared: the
//! number of rows changes with every batch (a prepared statement per shape
//! would thrash the statement cache) and every value is a parsed domain type
//! (numbers, decimals, times, keys of `A-Z a-z 0-9 . _ : -`), so no value
//! can carry quoting.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::Conn;
use rust_decimal::Decimal;

use super::{Result, StoreError};
use crate::domain::{
    BranchId, IdempotencyKey, Money, NewSale, ProductId, Quantity, SaleId, StoredSale, TenantId,
    Timestamp,
};

/// How a failed commit ended.
#[derive(Debug)]
pub enum CommitFailure {
    /// MySQL refused a statement: it stops there, COMMIT never runs and
    /// the transaction is rolled back. Nothing of this attempt is stored.
    NotStored(StoreError),
    /// The writer's mark was not what the attempt expected: another attempt
    /// of the same writer committed meanwhile (one whose answer was lost).
    /// Nothing of this attempt is stored; read the mark again.
    Fenced,
    /// Another instance holds the shard's lease now (its fencing number is
    /// not the attempt's). Nothing of this attempt is stored.
    LeaseLost,
    /// The connection failed, or the server was killed or shut down, once
    /// the transaction was sent: whether it committed is unknown until
    /// [`read_mark`] says.
    Unknown(StoreError),
}

/// Which writer writes a batch, which of its batches (attempts) it is, and
/// the writer's mark the attempt expects to find (its last committed batch,
/// 0 for none). The batch's transaction moves the mark from `expected` to
/// `batch` or fails: so of two attempts that expect the same mark at most
/// one commits, and a mark only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMark {
    pub writer: u64,
    pub batch: u64,
    pub expected: u64,
    /// The shard whose lease the writer's instance holds, and its fencing
    /// number: the batch commits only while that lease is still its.
    pub lease: Lease,
}

/// A shard's index and the fencing number of its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub shard_index: u64,
    pub fence: u64,
}

/// A writer's mark as stored: its last committed batch, that batch's first
/// history id and the auto-increment step of its INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub batch: u64,
    pub first_id: SaleId,
    pub id_step: u64,
}

impl Mark {
    /// The ids of the batch's rows in order: the first, then a step apart.
    pub fn ids(&self) -> impl Iterator<Item = SaleId> {
        let step = self.id_step;
        std::iter::successors(Some(self.first_id), move |id| {
            id.get().checked_add(step).and_then(SaleId::new)
        })
    }
}

/// Stores `sales` and adds them to the summary table in one transaction,
/// moving the writer's mark as `mark` says. Returns the mark it wrote: the
/// batch's first id, the others following it at the step its INSERT used
/// (the service checks at start that ids of one statement are not
/// interleaved with others').
pub async fn insert_sales(
    conn: &mut Conn,
    sales: &[&NewSale],
    seqs: &[u64],
    mark: BatchMark,
) -> Result<Mark, CommitFailure> {
    let sql = transaction_sql(sales, seqs, mark);
    commit_batch(conn, sql, sales.len() == 1, mark).await
}

/// Runs one batch's transaction (`sql`, ending with the mark's move and
/// `COMMIT`), `single` when it inserts one row.
pub(super) async fn commit_batch(
    conn: &mut Conn,
    sql: String,
    single: bool,
    mark: BatchMark,
) -> Result<Mark, CommitFailure> {
    // The whole transaction, COMMIT included, is one round trip: MySQL
    // runs the statements in order and stops at the first that fails, so
    // COMMIT runs only if every other statement did. A lost answer is
    // settled by the mark, which also keeps the first id and the step.
    match run_transaction(conn, sql).await {
        // One row has no step to follow (and the transaction does not ask
        // for it: a result set is half the cost of a single sale's answer).
        Ok((Some(first_id), id_step)) if id_step.is_some() || single => Ok(Mark {
            batch: mark.batch,
            first_id,
            id_step: id_step.unwrap_or(1).max(1),
        }),
        Ok(_) => Err(CommitFailure::Unknown(StoreError::Unavailable(
            mysql_async::Error::Other("the batch reported no first id or step".into()),
        ))),
        Err(e) if outcome_known(&e) => {
            // A statement failed inside the open transaction: undo the rest.
            let _ = conn.query_drop("ROLLBACK").await;
            if is_fenced(&e) {
                Err(CommitFailure::Fenced)
            } else if is_lease_lost(&e) {
                Err(CommitFailure::LeaseLost)
            } else if is_step_changed(&e) {
                // Nothing stored; the next attempt reads the new step.
                Err(CommitFailure::NotStored(StoreError::Unavailable(e)))
            } else {
                Err(CommitFailure::NotStored(e.into()))
            }
        }
        Err(e) => Err(CommitFailure::Unknown(e.into())),
    }
}

/// Whether an error of the one-round-trip transaction says for sure that
/// nothing was stored: MySQL answered with an error for one of its
/// statements, and not because the session was killed or the server shut
/// down (which may interrupt it after COMMIT).
fn outcome_known(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if !matches!(s.code, 1053 | 1317 | 1927))
}

/// The mark's compare-and-set failed: `-1` into the unsigned `batch_id`.
fn is_fenced(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1264 && s.message.contains("'batch_id'"))
}

/// The lease check failed: the mark's first id is `-1` when the lease's
/// fencing number is not the batch's (or the lease row is gone).
fn is_lease_lost(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1264 && s.message.contains("'first_id'"))
}

/// The step check failed: the mark's step is `-1` when the session's
/// auto-increment step changed during the batch (see [`STEP_BEFORE`]).
fn is_step_changed(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1264 && s.message.contains("'id_step'"))
}

/// Sends the transaction and reads every statement's answer: the first id
/// (the history INSERT's; the statements before it generate none) and, for
/// more than one row, the auto-increment step, which the mark's statement
/// reports as its insert id (see [`push_mark`]). Every statement answers
/// OK without rows: a result set (a `SELECT` of the step) cost MariaDB
/// about 45 µs a commit.
async fn run_transaction(
    conn: &mut Conn,
    sql: String,
) -> mysql_async::Result<(Option<SaleId>, Option<u64>)> {
    let mut result = conn.query_iter(sql).await?;
    let (mut first_id, mut id_step) = (None, None);
    loop {
        if let Some(id) = result.last_insert_id() {
            match first_id {
                None => first_id = SaleId::new(id),
                Some(_) => id_step = id_step.or(Some(id)),
            }
        }
        if result.is_empty() {
            break;
        }
        result.collect::<mysql_async::Row>().await?;
    }
    result.drop_result().await?;
    Ok((first_id, id_step))
}

/// A writer's mark (`None`: it never committed a batch): the batch that
/// last moved it, and that batch's ids if it stored rows. A catalog
/// numbering moves the mark with none, its first id whatever
/// `LAST_INSERT_ID()` its connection had (0 on a fresh one). The read locks the
/// marker row, so it waits for a transaction of that writer still running
/// in the server that already moved it (a client that lost its connection
/// does not mean the server stopped working on it). `causal`: on a Galera
/// node, wait first until every write set the cluster certified is applied
/// here, so a batch committed through a node that died is seen.
pub async fn read_mark(
    conn: &mut Conn,
    writer: u64,
    causal: bool,
) -> Result<Option<(u64, Option<Mark>)>> {
    let read = "SELECT batch_id, first_id, id_step FROM commit_markers \
                WHERE writer_id = ? LOCK IN SHARE MODE";
    let sql = if causal {
        format!("SET STATEMENT wsrep_sync_wait = 1 FOR {read}")
    } else {
        read.to_string()
    };
    let row: Option<(u64, u64, u64)> = conn.exec_first(sql, (writer,)).await?;
    Ok(row.map(|(batch, first_id, id_step)| {
        let mark = SaleId::new(first_id).map(|first_id| Mark {
            batch,
            first_id,
            id_step: id_step.max(1),
        });
        (batch, mark)
    }))
}

/// `START TRANSACTION`, the summary upsert, the history INSERT, the mark's
/// compare-and-set (with the INSERT's first id and, for more than one row,
/// the step it used; and the lease check) and `COMMIT`, as one text. No
/// statement before the INSERT may report an insert id: the answer's
/// first one is taken as the INSERT's (see [`run_transaction`]).
fn transaction_sql(sales: &[&NewSale], seqs: &[u64], mark: BatchMark) -> String {
    let mut sql = String::with_capacity(700 + sales.len() * 144);
    sql.push_str("START TRANSACTION;");
    push_upsert_totals(&mut sql, sales);
    sql.push(';');
    let many = sales.len() > 1;
    if many {
        sql.push_str(STEP_BEFORE);
    }
    push_insert_sales(&mut sql, sales, seqs);
    push_mark(&mut sql, mark, many);
    sql
}

/// The auto-increment step before a batch's multi-row INSERT, kept in the
/// session for the mark to compare. A Galera node changes a session's
/// step when the cluster's size changes (`wsrep_auto_increment_control`),
/// also between two statements of one transaction: the step read after
/// the INSERT would then not be the one its ids followed, and a batch's
/// answered ids would name other rows. A batch whose step changed is
/// refused before COMMIT (see [`push_mark`]) and sent again.
pub(super) const STEP_BEFORE: &str = "SET @pos_step=@@auto_increment_increment;";

/// `;` and the mark's compare-and-set (with the first id of the INSERT
/// just before it, its step, and the lease check), then `COMMIT`.
/// `step_checked`: the step is stored only if it is still the one
/// [`STEP_BEFORE`] kept, else `-1` fails the statement (strict mode), so
/// COMMIT never runs; and the statement reports the step as its insert id
/// (`LAST_INSERT_ID(step)`, evaluated after the first id's
/// `LAST_INSERT_ID()` in the row), which the client reads from its OK.
pub(super) fn push_mark(sql: &mut String, mark: BatchMark, step_checked: bool) {
    sql.push_str(
        ";INSERT INTO commit_markers (writer_id, batch_id, first_id, id_step, updated) VALUES ",
    );
    open_row(sql, [mark.writer, mark.batch]);
    push_first_id_under_lease(sql, mark.lease);
    // On a duplicate writer the row moves only from the expected mark; else
    // `-1` makes the statement fail (strict mode), so COMMIT never runs.
    sql.push_str(if step_checked {
        ",IF(@@auto_increment_increment=@pos_step,LAST_INSERT_ID(@@auto_increment_increment),-1)"
    } else {
        ",@@auto_increment_increment"
    });
    sql.push_str(
        ",UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE first_id = VALUES(first_id), id_step = VALUES(id_step), \
         updated = VALUES(updated), batch_id = IF(batch_id = ",
    );
    sql.push_str(itoa::Buffer::new().format(mark.expected));
    sql.push_str(", VALUES(batch_id), -1);COMMIT");
}

/// The mark's first id, or `-1` (refused in strict mode, so COMMIT never
/// runs) unless the shard's lease still has the batch's fencing number. A
/// subquery of an INSERT reads with a shared lock, held until the
/// transaction ends: a new holder cannot take the lease over before this
/// batch commits or rolls back. (It was a statement of its own, an
/// `INSERT … SELECT` from the lease table into itself; MariaDB built a
/// temporary table for it, about 95 µs of its CPU per commit.)
fn push_first_id_under_lease(sql: &mut String, lease: Lease) {
    let mut digits = itoa::Buffer::new();
    sql.push_str(",IF((SELECT fence FROM shard_leases WHERE shard_index = ");
    sql.push_str(digits.format(lease.shard_index));
    sql.push_str(")=");
    sql.push_str(digits.format(lease.fence));
    sql.push_str(",LAST_INSERT_ID(),-1)");
}

fn push_insert_sales(sql: &mut String, sales: &[&NewSale], seqs: &[u64]) {
    sql.push_str(
        "INSERT INTO sales_transactions \
         (event_seq, tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp, idempotency_key) VALUES ",
    );
    for (i, (s, seq)) in sales.iter().zip(seqs).enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let quantity = u64::from(s.quantity.get());
        open_row(
            sql,
            [
                *seq,
                s.tenant_id.get(),
                s.branch_id.get(),
                s.product_id.get(),
                quantity,
            ],
        );
        sql.push(',');
        sql.push_str(&s.price.text());
        sql.push_str(",'");
        let _ = s.timestamp.write_to(sql, b' ');
        sql.push_str("',");
        match &s.idempotency_key {
            Some(k) => {
                sql.push('\'');
                sql.push_str(k.as_str());
                sql.push_str("')");
            }
            None => sql.push_str("NULL)"),
        }
    }
}

/// `(a,b,c`: a VALUES row's leading integers, without `write!`'s
/// formatting machinery (this runs per row).
pub(super) fn open_row<const N: usize>(sql: &mut String, ints: [u64; N]) {
    let mut digits = itoa::Buffer::new();
    for (i, n) in ints.into_iter().enumerate() {
        sql.push(if i == 0 { '(' } else { ',' });
        sql.push_str(digits.format(n));
    }
}

/// One row per (tenant, product), in key order so that upserts of
/// overlapping batches always lock summary rows in the same order.
fn push_upsert_totals(sql: &mut String, sales: &[&NewSale]) {
    let mut sums: BTreeMap<(TenantId, ProductId), (u64, Money)> = BTreeMap::new();
    for s in sales {
        let e = sums.entry((s.tenant_id, s.product_id)).or_default();
        e.0 += u64::from(s.quantity.get());
        e.1 += s.revenue();
    }
    sql.push_str(
        "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) VALUES ",
    );
    for (i, ((t, p), (q, r))) in sums.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        open_row(sql, [t.get(), p.get(), *q]);
        sql.push(',');
        sql.push_str(&r.text());
        sql.push(')');
    }
    sql.push_str(
        " ON DUPLICATE KEY UPDATE quantity_sold = quantity_sold + VALUES(quantity_sold), revenue = revenue + VALUES(revenue)",
    );
}

/// The stored sales of `tenant` carrying any of `keys`.
pub async fn find_by_keys(
    conn: &mut Conn,
    tenant: TenantId,
    keys: &[IdempotencyKey],
) -> Result<Vec<StoredSale>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = format!(
        "SELECT {SALE_COLUMNS} FROM sales_transactions WHERE tenant_id = ? AND idempotency_key IN "
    );
    push_key_list(&mut sql, keys);
    let rows: Vec<SaleColumns> = conn.exec(sql, (tenant,)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| stored_sale(tenant, row))
        .collect())
}

/// `('a','b')`: keys for an `IN` (written as text: a key is
/// `A-Z a-z 0-9 . _ : -` only).
pub(super) fn push_key_list(sql: &mut String, keys: &[IdempotencyKey]) {
    sql.push('(');
    for (i, k) in keys.iter().enumerate() {
        let _ = write!(sql, "{}'{}'", if i > 0 { "," } else { "" }, k.as_str());
    }
    sql.push(')');
}

/// The columns of [`SaleColumns`].
pub(super) const SALE_COLUMNS: &str =
    "id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp, idempotency_key";

/// A history row's leading columns: id, branch, product, quantity, price,
/// time, key.
pub(super) type SaleColumns = (
    SaleId,
    BranchId,
    ProductId,
    u32,
    Decimal,
    NaiveDateTime,
    Option<String>,
);

/// A history row of `tenant` as a stored sale (rows passed the same rules
/// on their way in; `None` only for one typed in by hand that did not).
pub(super) fn stored_sale(tenant: TenantId, row: SaleColumns) -> Option<StoredSale> {
    let (id, branch_id, product_id, quantity, price, ts, key) = row;
    Some(StoredSale {
        id,
        sale: NewSale {
            tenant_id: tenant,
            branch_id,
            product_id,
            quantity: Quantity::new(quantity.into())?,
            price: Money::new(price),
            timestamp: Timestamp::from_naive_utc(ts),
            idempotency_key: key.as_deref().and_then(IdempotencyKey::parse),
        },
    })
}
