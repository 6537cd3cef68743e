//! Every SQL statement of the service, and the migrations runner. Nothing
//! outside this module writes SQL; nothing in it knows HTTP.
//!
//! Multi-row statements are written as SQL text rather than prepared: the
//! number of rows changes with every batch (a prepared statement per shape
//! would thrash the statement cache) and every value is a parsed domain type
//! (numbers, decimals, times, keys of `A-Z a-z 0-9 . _ : -`), so no value
//! can carry quoting.

mod keys;
mod migrate;
mod seed;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, PoolConstraints, PoolOpts};
use rust_decimal::Decimal;

use crate::config::Shard;
use crate::domain::{
    BranchId, IdempotencyKey, Money, NewSale, ProductId, StoredSale, TenantId, Timestamp,
};

pub use keys::{
    find_key, insert_key, insert_keys, list_keys, revoke_key, revoked_since, scope_exists,
    KeyInsert, KeyListing, Revocations, Revoked, StoredKey,
};
pub use migrate::{ensure_database, migrate, migrate_if_pending, MigrateError};
pub use seed::{count_tenants, insert_seed_chunk, load_shops, SeedChunk, Shop};

/// A storage failure, split by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server or the connection went away, or is overloaded: try again later.
    #[error("MySQL unavailable: {0}")]
    Unavailable(mysql_async::Error),
    /// An idempotency key is already stored: which one (tenant and key), if
    /// MySQL's message names it.
    #[error("duplicate idempotency key")]
    DuplicateKey(Option<(TenantId, String)>),
    /// The statement itself was refused (a constraint, a bad value).
    #[error("MySQL refused the statement: {0}")]
    Rejected(mysql_async::Error),
}

impl From<mysql_async::Error> for StoreError {
    fn from(e: mysql_async::Error) -> Self {
        use mysql_async::Error as E;
        match &e {
            E::Server(s) if s.code == 1062 => StoreError::DuplicateKey(duplicate_entry(&s.message)),
            // Deadlock, lock wait timeout, too many connections, shutdown,
            // killed or interrupted: the statement may succeed if run again.
            E::Server(s)
                if matches!(
                    s.code,
                    1213 | 1205 | 1040 | 1053 | 1317 | 1927 | 2006 | 2013 | 1290 | 1836
                ) =>
            {
                StoreError::Unavailable(e)
            }
            E::Server(_) | E::Url(_) => StoreError::Rejected(e),
            _ => StoreError::Unavailable(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The (tenant, key) of `Duplicate entry '12-till-1:34' for key
/// 'uq_sales_tenant_idempotency'`, MySQL's and MariaDB's wording of a
/// refused idempotency key.
fn duplicate_entry(message: &str) -> Option<(TenantId, String)> {
    let rest = message.strip_prefix("Duplicate entry '")?;
    let (entry, index) = rest.split_once("' for key ")?;
    if !index.contains("uq_sales_tenant_idempotency") {
        return None;
    }
    let (tenant, key) = entry.split_once('-')?;
    Some((tenant.parse().ok()?, key.to_string()))
}

/// The SQL mode of every connection: a value that does not fit its column
/// is an error, never clamped or truncated, whatever the server's default.
pub const SQL_MODE: &str = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

/// Connection options for `url` with a pool of at most `pool_max` connections.
pub fn pool_opts(url: &str, pool_max: usize) -> Result<Opts, mysql_async::UrlError> {
    let opts = Opts::from_url(url)?;
    let constraints = PoolConstraints::new(0, pool_max.max(1)).unwrap_or_default();
    Ok(OptsBuilder::from_opts(opts)
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                // A TTL keeps idle connections pooled; with none, mysql_async
                // closes every returned connection beyond `min` (here 0).
                .with_inactive_connection_ttl(Duration::from_secs(60))
                .with_reset_connection(false),
        )
        .stmt_cache_size(64)
        .init(vec![format!("SET SESSION sql_mode = '{SQL_MODE}'")])
        .into())
}

/// The branches and products of one tenant.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub branches: HashSet<BranchId>,
    pub products: HashMap<ProductId, Arc<str>>,
}

/// All-time totals of one product of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductTotal {
    pub tenant_id: TenantId,
    pub product_id: ProductId,
    pub name: Arc<str>,
    pub quantity: u64,
    pub revenue: Money,
}

/// What a tenant actor starts from.
#[derive(Debug, Default, Clone)]
pub struct TenantSnapshot {
    pub catalog: Catalog,
    pub totals: Vec<ProductTotal>,
}

/// Reads a tenant's branches and products; `None` if the tenant does not exist.
pub async fn load_catalog(conn: &mut Conn, tenant: TenantId) -> Result<Option<Catalog>> {
    let exists: Option<u64> = conn
        .exec_first("SELECT id FROM tenants WHERE id = ?", (tenant,))
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let branches: Vec<u64> = conn
        .exec("SELECT id FROM branches WHERE tenant_id = ?", (tenant,))
        .await?;
    let products: Vec<(u64, String)> = conn
        .exec(
            "SELECT id, name FROM products WHERE tenant_id = ?",
            (tenant,),
        )
        .await?;
    Ok(Some(Catalog {
        branches: branches.into_iter().collect(),
        products: products
            .into_iter()
            .map(|(id, name)| (id, Arc::from(name)))
            .collect(),
    }))
}

/// Reads a tenant's catalog and its per-product totals (from the summary
/// table, never from the history).
pub async fn load_tenant(conn: &mut Conn, tenant: TenantId) -> Result<Option<TenantSnapshot>> {
    let Some(catalog) = load_catalog(conn, tenant).await? else {
        return Ok(None);
    };
    let rows: Vec<(u64, u64, Decimal)> = conn
        .exec("SELECT product_id, quantity_sold, revenue FROM product_sales_totals WHERE tenant_id = ?", (tenant,))
        .await?;
    let totals = rows
        .into_iter()
        .map(|(product_id, quantity, revenue)| ProductTotal {
            tenant_id: tenant,
            product_id,
            name: catalog
                .products
                .get(&product_id)
                .cloned()
                .unwrap_or_else(|| Arc::from("")),
            quantity,
            revenue: Money::new(revenue),
        })
        .collect();
    Ok(Some(TenantSnapshot { catalog, totals }))
}

/// Every product total of the tenants `shard` owns, for the ranking.
pub async fn load_all_totals(conn: &mut Conn, shard: Shard) -> Result<Vec<ProductTotal>> {
    let mut out = Vec::new();
    conn.query_iter(format!(
        "SELECT t.tenant_id, t.product_id, p.name, t.quantity_sold, t.revenue \
         FROM product_sales_totals t JOIN products p ON p.id = t.product_id \
         WHERE t.tenant_id % {} = {}",
        shard.count, shard.index
    ))
    .await?
    .for_each(|row| {
        let (tenant_id, product_id, name, quantity, revenue): (u64, u64, String, u64, Decimal) =
            mysql_async::from_row(row);
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

/// How a failed commit ended.
#[derive(Debug)]
pub enum CommitFailure {
    /// MySQL refused a statement: it stops there, COMMIT never runs and
    /// the transaction is rolled back. Nothing is stored.
    NotStored(StoreError),
    /// The connection failed, or the server was killed or shut down, once
    /// the transaction was sent: whether it committed is unknown until
    /// [`batch_committed`] says.
    Unknown(StoreError),
}

/// Which writer wrote a batch, and which of its batches (attempts) it is.
/// Written in the batch's own transaction; reading it back settles a
/// COMMIT whose answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMark {
    pub writer: u64,
    pub batch: u64,
}

/// Stores `sales` and adds them to the summary table in one transaction,
/// with `mark`. Returns the id of the first row; the others follow it at
/// the server's auto-increment step (the service checks at start that ids
/// of one statement are not interleaved with others').
pub async fn insert_sales(
    conn: &mut Conn,
    sales: &[&NewSale],
    mark: BatchMark,
) -> Result<u64, CommitFailure> {
    // The whole transaction, COMMIT included, is one round trip: MySQL
    // runs the statements in order and stops at the first that fails, so
    // COMMIT runs only if every other statement did. A lost answer is
    // settled by the mark, which also keeps the first id.
    match run_transaction(conn, transaction_sql(sales, mark)).await {
        Ok(Some(first_id)) => Ok(first_id),
        Ok(None) => Err(CommitFailure::Unknown(StoreError::Unavailable(
            mysql_async::Error::Other("the history INSERT reported no id".into()),
        ))),
        Err(e) if outcome_known(&e) => {
            // A statement failed inside the open transaction: undo the rest.
            let _ = conn.query_drop("ROLLBACK").await;
            Err(CommitFailure::NotStored(e.into()))
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

/// Sends the transaction and reads every statement's answer; the first id
/// is the history INSERT's (the statements before it generate none).
async fn run_transaction(conn: &mut Conn, sql: String) -> mysql_async::Result<Option<u64>> {
    let mut result = conn.query_iter(sql).await?;
    let mut first_id = None;
    loop {
        first_id = first_id.or(result.last_insert_id());
        if result.is_empty() {
            break;
        }
        result.collect::<mysql_async::Row>().await?;
    }
    result.drop_result().await?;
    Ok(first_id)
}

/// The first id of the batch `mark` names if it is stored: its writer's
/// marker holds it only if that transaction committed (a later batch of
/// the same writer cannot have run: a writer settles each batch before the
/// next). The read locks the marker row, so it waits for a transaction of
/// that batch still running in the server (a client that lost its
/// connection does not mean the server stopped working on it).
pub async fn batch_committed(conn: &mut Conn, mark: BatchMark) -> Result<Option<u64>> {
    let row: Option<(u64, u64)> = conn
        .exec_first(
            "SELECT batch_id, first_id FROM commit_markers WHERE writer_id = ? LOCK IN SHARE MODE",
            (mark.writer,),
        )
        .await?;
    Ok(row.and_then(|(batch, first_id)| (batch == mark.batch).then_some(first_id)))
}

/// `START TRANSACTION`, the summary upsert, the history INSERT, the mark
/// (with the INSERT's first id) and `COMMIT`, as one text.
fn transaction_sql(sales: &[&NewSale], mark: BatchMark) -> String {
    let mut sql = String::with_capacity(512 + sales.len() * 144);
    sql.push_str("START TRANSACTION;");
    push_upsert_totals(&mut sql, sales);
    sql.push(';');
    push_insert_sales(&mut sql, sales);
    sql.push_str(";INSERT INTO commit_markers (writer_id, batch_id, first_id, updated) VALUES ");
    open_row(&mut sql, [mark.writer, mark.batch]);
    sql.push_str(
        ",LAST_INSERT_ID(),UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE batch_id = VALUES(batch_id), first_id = VALUES(first_id), \
         updated = VALUES(updated);COMMIT",
    );
    sql
}

fn push_insert_sales(sql: &mut String, sales: &[&NewSale]) {
    sql.push_str(
        "INSERT INTO sales_transactions \
         (tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp, idempotency_key) VALUES ",
    );
    for (i, s) in sales.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let quantity = u64::from(s.quantity);
        open_row(sql, [s.tenant_id, s.branch_id, s.product_id, quantity]);
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
fn open_row<const N: usize>(sql: &mut String, ints: [u64; N]) {
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
        e.0 += u64::from(s.quantity);
        e.1 += s.revenue();
    }
    sql.push_str(
        "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) VALUES ",
    );
    for (i, ((t, p), (q, r))) in sums.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        open_row(sql, [*t, *p, *q]);
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
    let mut sql = String::from(
        "SELECT id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp, idempotency_key \
         FROM sales_transactions WHERE tenant_id = ? AND idempotency_key IN (",
    );
    for (i, k) in keys.iter().enumerate() {
        let _ = write!(sql, "{}'{}'", if i > 0 { "," } else { "" }, k.as_str());
    }
    sql.push(')');
    let rows: Vec<(u64, u64, u64, u32, Decimal, NaiveDateTime, String)> =
        conn.exec(sql, (tenant,)).await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, branch_id, product_id, quantity, price, ts, key)| StoredSale {
                id,
                sale: NewSale {
                    tenant_id: tenant,
                    branch_id,
                    product_id,
                    quantity,
                    price: Money::new(price),
                    timestamp: Timestamp::from_naive_utc(ts),
                    idempotency_key: IdempotencyKey::parse(&key),
                },
            },
        )
        .collect())
}

/// How the server numbers the rows of one multi-row INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoIncrement {
    /// Ids of one statement are never interleaved with other connections'
    /// (`innodb_autoinc_lock_mode` below 2).
    pub statement_ids_in_order: bool,
    /// Distance between consecutive ids (`auto_increment_increment`; more
    /// than 1 on Galera and multi-primary setups).
    pub step: u64,
}

pub async fn auto_increment(conn: &mut Conn) -> Result<AutoIncrement> {
    let row: Option<(u32, u64)> = conn
        .query_first("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment")
        .await?;
    let (mode, step) = row.unwrap_or((2, 1));
    Ok(AutoIncrement {
        statement_ids_in_order: mode < 2,
        step: step.max(1),
    })
}

/// A cheap round trip, for `/ready`.
pub async fn ping(conn: &mut Conn) -> Result<()> {
    conn.query_drop("SELECT 1").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_idempotency_key_is_read_from_mysqls_message() {
        assert_eq!(
            duplicate_entry(
                "Duplicate entry '12-till-1:00:34' for key 'uq_sales_tenant_idempotency'"
            ),
            Some((12, "till-1:00:34".to_string()))
        );
        // MySQL 8 names the index with its table.
        assert_eq!(
            duplicate_entry(
                "Duplicate entry '7-k' for key 'sales_transactions.uq_sales_tenant_idempotency'"
            ),
            Some((7, "k".to_string()))
        );
        assert_eq!(
            duplicate_entry("Duplicate entry '7' for key 'PRIMARY'"),
            None
        );
        assert_eq!(duplicate_entry("Lock wait timeout exceeded"), None);
    }
}
