//! Rollups (migration V20): rolling the history up by id range, in
//! transactions that move the shard's marks with the rows they add, so a
//! history row is in the rollups exactly when its id is at most its
//! shard's mark; rebuilding and verifying them; moving the marks when the
//! shard count changes.
//!
//! The caller of [`roll`] promises that no row at or below the ids it
//! passes can still commit (the rollup actor waits for the persistence
//! actors' flushes in flight; the CLI passes marks already rolled).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use mysql_async::prelude::*;
use mysql_async::{Conn, Transaction, TxOpts};
use rust_decimal::Decimal;

use super::{Result, StoreError};
use crate::domain::{roll_up, time_zone, Fact, Level, RollupKey, Shard, Sums, TenantId};

/// Ids rolled up to (or to roll up to), of the sales and of the refunds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollMarks {
    pub sales: u64,
    pub refunds: u64,
}

/// What one [`roll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolled {
    /// The shard's marks after it.
    pub marks: RollMarks,
    /// History rows it rolled up.
    pub rows: usize,
    /// Whether the marks reached the ids it was asked to roll up to.
    pub caught_up: bool,
}

/// The newest sale and refund ids. `causal`: on a Galera node, wait first
/// for every write set the cluster certified.
pub async fn newest_ids(conn: &mut Conn, causal: bool) -> Result<RollMarks> {
    let read = "SELECT (SELECT COALESCE(MAX(id), 0) FROM sales_transactions), \
                (SELECT COALESCE(MAX(id), 0) FROM refunds)";
    let sql = match causal {
        true => format!("SET STATEMENT wsrep_sync_wait = 1 FOR {read}"),
        false => read.to_string(),
    };
    let ids: Option<(u64, u64)> = conn.query_first(sql).await?;
    let (sales, refunds) = ids.unwrap_or_default();
    Ok(RollMarks { sales, refunds })
}

/// Rolls `shard`'s rows after its marks up, at most `chunk` ids of each
/// table, never past `upto`; one transaction.
pub async fn roll(conn: &mut Conn, shard: Shard, upto: RollMarks, chunk: u64) -> Result<Rolled> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let marks = lock_marks(&mut tx, shard).await?;
    let to = RollMarks {
        sales: upto
            .sales
            .min(marks.sales.saturating_add(chunk))
            .max(marks.sales),
        refunds: upto
            .refunds
            .min(marks.refunds.saturating_add(chunk))
            .max(marks.refunds),
    };
    let mut facts = Vec::new();
    for source in [Source::Sales, Source::Refunds] {
        let (after, through) = source.pick(marks, to);
        if through > after {
            let sql = format!(
                "{} WHERE id > ? AND id <= ?{}",
                source.select(),
                shard_filter(shard)
            );
            read_facts(&mut tx, source, sql, (after, through), |f| facts.push(f)).await?;
        }
    }
    if to != marks {
        let tenants: HashSet<TenantId> = facts.iter().map(|f| f.tenant).collect();
        let zones = zones_for(&mut tx, tenants, marks).await?;
        let rows = roll_up(&facts, &Level::ALL, |t| {
            zones.get(&t).copied().unwrap_or(Tz::UTC)
        });
        upsert(&mut tx, &rows).await?;
        tx.exec_drop(
            "UPDATE rollup_marks SET sales_through = ?, refunds_through = ?, updated = UTC_TIMESTAMP(6) \
             WHERE shard_index = ?",
            (to.sales, to.refunds, shard.index),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Rolled {
        marks: to,
        rows: facts.len(),
        caught_up: to.sales >= upto.sales && to.refunds >= upto.refunds,
    })
}

/// The shard's marks, locked until the transaction ends (two rollers of a
/// shard take turns); made at 0 for a shard that never rolled.
async fn lock_marks(tx: &mut Transaction<'_>, shard: Shard) -> Result<RollMarks> {
    let read = "SELECT shard_count, sales_through, refunds_through FROM rollup_marks \
                WHERE shard_index = ? FOR UPDATE";
    let mut row: Option<(u64, u64, u64)> = tx.exec_first(read, (shard.index,)).await?;
    if row.is_none() {
        tx.exec_drop(
            "INSERT IGNORE INTO rollup_marks VALUES (?, ?, 0, 0, UTC_TIMESTAMP(6))",
            (shard.index, shard.count),
        )
        .await?;
        row = tx.exec_first(read, (shard.index,)).await?;
    }
    match row {
        Some((count, sales, refunds)) if count == shard.count => Ok(RollMarks { sales, refunds }),
        Some((count, _, _)) => Err(StoreError::invariant(if count > shard.count {
            "the rollup marks are of more shards than this one's count: run pos shards resize"
        } else {
            "the rollup marks are of fewer shards than this one's count: run pos shards resize"
        })),
        None => Err(StoreError::invariant("the rollup marks row is missing")),
    }
}

fn shard_filter(shard: Shard) -> String {
    match shard.is_partial() {
        true => format!(" AND tenant_id % {} = {}", shard.count, shard.index),
        false => String::new(),
    }
}

/// The history tables rollups read.
#[derive(Debug, Clone, Copy)]
enum Source {
    Sales,
    Refunds,
}

impl Source {
    fn select(self) -> &'static str {
        match self {
            Source::Sales => {
                "SELECT tenant_id, branch_id, product_id, quantity_sold, \
                 quantity_sold * price_per_unit, log_timestamp FROM sales_transactions"
            }
            Source::Refunds => {
                "SELECT tenant_id, branch_id, product_id, quantity, amount, created_at FROM refunds"
            }
        }
    }

    fn pick(self, a: RollMarks, b: RollMarks) -> (u64, u64) {
        match self {
            Source::Sales => (a.sales, b.sales),
            Source::Refunds => (a.refunds, b.refunds),
        }
    }
}

type FactRow = (TenantId, u64, u64, u64, Decimal, NaiveDateTime);

/// Streams the rows `sql` selects (as [`Source::select`] words them) as facts.
async fn read_facts(
    tx: &mut Transaction<'_>,
    source: Source,
    sql: String,
    params: impl Into<mysql_async::Params> + Send,
    mut each: impl FnMut(Fact) + Send,
) -> Result<()> {
    let mut result = tx.exec_iter(sql, params).await?;
    while let Some(row) = result.next().await? {
        let (tenant, branch, product, quantity, amount, at): FactRow =
            mysql_async::from_row_opt(row)
                .map_err(|_| StoreError::invariant("a history row has unexpected columns"))?;
        each(match source {
            Source::Sales => Fact::sale(tenant, branch, product, at, quantity, amount),
            Source::Refunds => Fact::refund(tenant, branch, product, at, quantity, amount),
        });
    }
    Ok(())
}

/// The zone each of `tenants`' days and months are cut in: the one in
/// `rollup_zones`, or its time zone for a tenant rolled for the first
/// time. A tenant whose time zone changed has its days and months of the
/// rows up to `marks` made again in its new zone first.
async fn zones_for(
    tx: &mut Transaction<'_>,
    tenants: HashSet<TenantId>,
    marks: RollMarks,
) -> Result<HashMap<TenantId, Tz>> {
    let tenants: Vec<TenantId> = tenants.into_iter().collect();
    let mut zones = HashMap::new();
    for chunk in tenants.chunks(1000) {
        let sql = format!(
            "SELECT t.id, t.time_zone, z.zone FROM tenants t \
             LEFT JOIN rollup_zones z ON z.tenant_id = t.id WHERE t.id IN ({})",
            join_ids(chunk.iter().map(|t| t.get()))
        );
        let rows: Vec<(TenantId, String, Option<String>)> = tx.query(sql).await?;
        for (tenant, current, rolled) in rows {
            let current_zone = time_zone(&current).unwrap_or(Tz::UTC);
            match rolled {
                Some(r) if r == current_zone.name() => {}
                Some(_) => rezone(tx, tenant, current_zone, marks).await?,
                None => {
                    tx.exec_drop(
                        "INSERT INTO rollup_zones (tenant_id, zone) VALUES (?, ?)",
                        (tenant, current_zone.name()),
                    )
                    .await?
                }
            }
            zones.insert(tenant, current_zone);
        }
    }
    Ok(zones)
}

/// Makes `tenant`'s day and month rollups of its rows up to `marks` again,
/// cut in `zone`.
async fn rezone(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
    zone: Tz,
    marks: RollMarks,
) -> Result<()> {
    tx.exec_drop(
        "DELETE FROM sales_rollups WHERE tenant_id = ? AND level IN (?, ?)",
        (tenant, Level::Day.code(), Level::Month.code()),
    )
    .await?;
    let mut rows = BTreeMap::new();
    for source in [Source::Sales, Source::Refunds] {
        let (through, _) = source.pick(marks, marks);
        let sql = format!("{} WHERE tenant_id = ? AND id <= ?", source.select());
        read_facts(tx, source, sql, (tenant, through), |f| {
            f.add_to(&mut rows, &[Level::Day, Level::Month], zone)
        })
        .await?;
    }
    upsert(tx, &rows).await?;
    tx.exec_drop(
        "UPDATE rollup_zones SET zone = ? WHERE tenant_id = ?",
        (zone.name(), tenant),
    )
    .await?;
    tracing::info!(
        tenant = tenant.get(),
        zone = zone.name(),
        "rolled a tenant's days up again in its new zone"
    );
    Ok(())
}

/// Adds `rows` to the stored rollups, a statement per 500 rows. The
/// values are numbers and times the service made, written as literals (a
/// statement of that many placeholders would be prepared once per size).
async fn upsert(tx: &mut Transaction<'_>, rows: &BTreeMap<RollupKey, Sums>) -> Result<()> {
    let rows: Vec<(&RollupKey, &Sums)> = rows.iter().collect();
    for chunk in rows.chunks(500) {
        let mut sql = String::with_capacity(200 + chunk.len() * 120);
        sql.push_str(
            "INSERT INTO sales_rollups (tenant_id, level, start, branch_id, product_id, quantity, \
             revenue, sales, refunded, refunds, refund_count) VALUES ",
        );
        for (i, (k, s)) in chunk.iter().enumerate() {
            let _ = write!(
                sql,
                "{}({},{},'{}',{},{},{},{},{},{},{},{})",
                if i == 0 { "" } else { "," },
                k.tenant.get(),
                k.level.code(),
                k.start.format("%Y-%m-%d %H:%M:%S"),
                k.branch,
                k.product,
                s.quantity,
                s.total,
                s.count,
                s.refunded,
                s.refunds,
                s.refund_count
            );
        }
        sql.push_str(
            " ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity), \
             revenue = revenue + VALUES(revenue), sales = sales + VALUES(sales), \
             refunded = refunded + VALUES(refunded), refunds = refunds + VALUES(refunds), \
             refund_count = refund_count + VALUES(refund_count)",
        );
        tx.query_drop(sql).await?;
    }
    Ok(())
}

fn join_ids(ids: impl Iterator<Item = u64>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// The zone `tenant`'s day and month rollups are cut in (`None`: it has
/// none, nothing of it is rolled up).
pub async fn rollup_zone(tx: &mut Transaction<'_>, tenant: TenantId) -> Result<Option<Tz>> {
    let zone: Option<String> = tx
        .exec_first(
            "SELECT zone FROM rollup_zones WHERE tenant_id = ?",
            (tenant,),
        )
        .await?;
    Ok(zone.as_deref().and_then(time_zone))
}

/// Empties the rollups and sets every shard's marks to 0, in one
/// transaction; the marks they had (which the caller rolls up to again:
/// no row at or below them can still commit).
pub async fn reset(conn: &mut Conn) -> Result<Vec<(Shard, RollMarks)>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let marks = all_marks(&mut tx, " FOR UPDATE").await?;
    tx.query_drop("DELETE FROM sales_rollups").await?;
    tx.query_drop("DELETE FROM rollup_zones").await?;
    tx.query_drop("UPDATE rollup_marks SET sales_through = 0, refunds_through = 0, updated = UTC_TIMESTAMP(6)")
        .await?;
    tx.commit().await?;
    Ok(marks)
}

async fn all_marks(tx: &mut Transaction<'_>, lock: &str) -> Result<Vec<(Shard, RollMarks)>> {
    let rows: Vec<(u64, u64, u64, u64)> = tx
        .query(format!(
            "SELECT shard_index, shard_count, sales_through, refunds_through FROM rollup_marks \
             ORDER BY shard_index{lock}"
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(index, count, sales, refunds)| {
            (Shard { index, count }, RollMarks { sales, refunds })
        })
        .collect())
}

/// Rolls every shard of the recorded count up to the newest rows and
/// writes the marks of `count` shards at them. Only while no instance
/// writes (`pos shards resize` checks that no lease is held).
pub async fn reshard(conn: &mut Conn, count: u64) -> Result<()> {
    let newest = newest_ids(conn, false).await?;
    let old = {
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        let marks = all_marks(&mut tx, "").await?;
        tx.commit().await?;
        marks
    };
    if old.iter().all(|(s, _)| s.count == count) {
        return Ok(());
    }
    for (shard, _) in &old {
        while !roll(conn, *shard, newest, 100_000).await?.caught_up {}
    }
    // Shards that never rolled: every row of theirs is after their 0 marks.
    let old_count = old.first().map_or(1, |(s, _)| s.count);
    for index in 0..old_count {
        if old.iter().all(|(s, _)| s.index != index) {
            let shard = Shard {
                index,
                count: old_count,
            };
            while !roll(conn, shard, newest, 100_000).await?.caught_up {}
        }
    }
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    tx.query_drop("DELETE FROM rollup_marks").await?;
    for index in 0..count {
        tx.exec_drop(
            "INSERT INTO rollup_marks VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))",
            (index, count, newest.sales, newest.refunds),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What `pos rollups verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    pub tenants: usize,
    pub rows: usize,
    /// At most [`MAX_DIFFERENCES`], in words.
    pub differences: Vec<String>,
}

pub const MAX_DIFFERENCES: usize = 20;

/// Compares every tenant's rollups with its history up to its shard's
/// marks, in one snapshot.
pub async fn verify(conn: &mut Conn) -> Result<Verified> {
    let opts = TxOpts::default()
        .with_consistent_snapshot(true)
        .with_readonly(Some(true))
        .clone();
    let mut tx = conn.start_transaction(opts).await?;
    let marks = all_marks(&mut tx, "").await?;
    let count = marks.first().map_or(1, |(s, _)| s.count);
    let tenants: Vec<(TenantId, Option<String>)> = tx
        .query("SELECT t.id, z.zone FROM tenants t LEFT JOIN rollup_zones z ON z.tenant_id = t.id ORDER BY t.id")
        .await?;
    let mut verified = Verified::default();
    for (tenant, zone) in tenants {
        let mark = marks
            .iter()
            .find(|(s, _)| s.index == tenant.get() % count)
            .map(|(_, m)| *m)
            .unwrap_or_default();
        let zone = zone.as_deref().and_then(time_zone);
        let mut expected = BTreeMap::new();
        for source in [Source::Sales, Source::Refunds] {
            let (through, _) = source.pick(mark, mark);
            let sql = format!("{} WHERE tenant_id = ? AND id <= ?", source.select());
            read_facts(&mut tx, source, sql, (tenant, through), |f| {
                f.add_to(
                    &mut expected,
                    &[Level::Quarter, Level::QuarterBranch],
                    Tz::UTC,
                );
                if let Some(zone) = zone {
                    f.add_to(&mut expected, &[Level::Day, Level::Month], zone);
                }
            })
            .await?;
        }
        if zone.is_none() && !expected.is_empty() && verified.differences.len() < MAX_DIFFERENCES {
            verified.differences.push(format!(
                "tenant {} has rolled rows but no rollup zone",
                tenant.get()
            ));
        }
        let stored = stored_rows(&mut tx, tenant).await?;
        verified.tenants += 1;
        verified.rows += stored.len();
        compare(tenant, &expected, &stored, &mut verified.differences);
    }
    tx.commit().await?;
    Ok(verified)
}

async fn stored_rows(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
) -> Result<BTreeMap<RollupKey, Sums>> {
    let mut rows = BTreeMap::new();
    let mut result = tx
        .exec_iter(
            "SELECT level, start, branch_id, product_id, quantity, revenue, sales, refunded, refunds, \
             refund_count FROM sales_rollups WHERE tenant_id = ?",
            (tenant,),
        )
        .await?;
    while let Some(row) = result.next().await? {
        type Stored = (
            u8,
            NaiveDateTime,
            u64,
            u64,
            u64,
            Decimal,
            u64,
            u64,
            Decimal,
            u64,
        );
        let (code, start, branch, product, quantity, total, count, refunded, refunds, refund_count): Stored =
            mysql_async::from_row_opt(row).map_err(|_| StoreError::invariant("a rollup row has unexpected columns"))?;
        let Some(level) = Level::ALL.into_iter().find(|l| l.code() == code) else {
            return Err(StoreError::invariant("a rollup row has an unknown level"));
        };
        let key = RollupKey {
            tenant,
            level,
            start,
            branch,
            product,
        };
        let sums = Sums {
            quantity,
            total,
            count,
            refunded,
            refunds,
            refund_count,
        };
        rows.insert(key, sums);
    }
    Ok(rows)
}

fn compare(
    tenant: TenantId,
    expected: &BTreeMap<RollupKey, Sums>,
    stored: &BTreeMap<RollupKey, Sums>,
    differences: &mut Vec<String>,
) {
    let keys: std::collections::BTreeSet<&RollupKey> =
        expected.keys().chain(stored.keys()).collect();
    for key in keys {
        let (want, have) = (expected.get(key), stored.get(key));
        if want == have || differences.len() >= MAX_DIFFERENCES {
            continue;
        }
        differences.push(format!(
            "tenant {} {:?} {} branch {} product {}: history {} rollups {}",
            tenant.get(),
            key.level,
            key.start,
            key.branch,
            key.product,
            describe(want),
            describe(have)
        ));
    }
}

fn describe(sums: Option<&Sums>) -> String {
    match sums {
        Some(s) => format!(
            "{} sold for {} in {} sales, {} refunded for {} in {}",
            s.quantity, s.total, s.count, s.refunded, s.refunds, s.refund_count
        ),
        None => "nothing".to_string(),
    }
}
