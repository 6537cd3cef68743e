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
use mysql_async::{Conn, IsolationLevel, Transaction, TxOpts};
use rust_decimal::Decimal;

use super::{Lease, Result, StoreError};
use crate::domain::{
    fixed_offset, time_zone, Fact, Level, RolledUp, RollupKey, Shard, Sums, TenantId,
};

/// Ids rolled up to (or to roll up to), of the sales and of the refunds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollMarks {
    pub sales: u64,
    pub refunds: u64,
}

impl RollMarks {
    /// `self` moved at most `chunk` ids on, never past `upto`.
    fn step(self, upto: RollMarks, chunk: u64) -> RollMarks {
        let step = |at: u64, upto: u64| upto.min(at.saturating_add(chunk)).max(at);
        RollMarks {
            sales: step(self.sales, upto.sales),
            refunds: step(self.refunds, upto.refunds),
        }
    }

    fn reached(self, upto: RollMarks) -> bool {
        self.sales >= upto.sales && self.refunds >= upto.refunds
    }

    fn max(self, other: RollMarks) -> RollMarks {
        RollMarks {
            sales: self.sales.max(other.sales),
            refunds: self.refunds.max(other.refunds),
        }
    }
}

/// A shard's marks: up to where its quarter-hour rollups (levels 1, 2)
/// and its zoned ones (levels 3 to 5) hold the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    pub quarters: RollMarks,
    pub zoned: RollMarks,
}

/// What one [`roll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolled {
    /// Rollup rows it added to or changed.
    pub rows: u64,
    /// Whether each kind reached the ids it was asked to roll up to.
    pub quarters_caught_up: bool,
    pub zoned_caught_up: bool,
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
/// table, never past `upto`, in one transaction: always its quarter
/// hours; with `zoned`, its days and months too. Quarter hours cost a few
/// rollup rows per tenant and branch each quarter hour; days and months,
/// where sales are spread thin over products, about one per sale, so the
/// rollup actor takes them on less often.
pub async fn roll(
    conn: &mut Conn,
    shard: Shard,
    lease: Option<Lease>,
    (upto, chunk): (RollMarks, u64),
    zoned: bool,
) -> Result<Rolled> {
    // Read committed: the sums' reads of the history are consistent reads,
    // not shared locks on its newest rows (which would hold every insert
    // of the sales' transactions until this one commits). What they read
    // is committed and never changes; the marks' row lock orders rollers.
    let opts = TxOpts::default()
        .with_isolation_level(IsolationLevel::ReadCommitted)
        .clone();
    let mut tx = conn.start_transaction(opts).await?;
    if let Some(lease) = lease {
        // As the writes do: an instance that lost its shard must not move
        // the marks past rows its successor may still commit.
        let fence: Option<u64> = tx
            .exec_first(
                "SELECT fence FROM shard_leases WHERE shard_index = ? LOCK IN SHARE MODE",
                (lease.shard_index,),
            )
            .await?;
        if fence != Some(lease.fence) {
            return Err(StoreError::unavailable(
                "this instance no longer holds its shard's lease",
            ));
        }
    }
    let marks = lock_marks(&mut tx, shard).await?;
    let after = Marks {
        quarters: marks.quarters.step(upto, chunk),
        zoned: match zoned {
            true => marks.zoned.step(upto, chunk),
            false => marks.zoned,
        },
    };
    let mut rows = roll_quarters(&mut tx, shard, marks.quarters, after.quarters).await?;
    if after.zoned != marks.zoned {
        rows += roll_zoned(&mut tx, shard, marks.zoned, after.zoned).await?;
    }
    if after != marks {
        tx.exec_drop(
            "UPDATE rollup_marks SET sales_through = ?, refunds_through = ?, \
             zoned_sales_through = ?, zoned_refunds_through = ?, updated = UTC_TIMESTAMP(6) \
             WHERE shard_index = ?",
            (
                after.quarters.sales,
                after.quarters.refunds,
                after.zoned.sales,
                after.zoned.refunds,
                shard.index,
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Rolled {
        rows,
        quarters_caught_up: after.quarters.reached(upto),
        zoned_caught_up: after.zoned.reached(upto),
    })
}

/// The columns every rollup upsert names, and what a duplicate adds.
const ROLLUP_COLUMNS: &str = "INSERT INTO sales_rollups (tenant_id, level, start, branch_id, \
    product_id, quantity, revenue, sales, refunded, refunds, refund_count) ";
const ADD_TO_ROLLUP: &str = " ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity), \
    revenue = revenue + VALUES(revenue), sales = sales + VALUES(sales), \
    refunded = refunded + VALUES(refunded), refunds = refunds + VALUES(refunds), \
    refund_count = refund_count + VALUES(refund_count)";

/// Levels 1 and 2 of the rows in `(from, to]`, summed in SQL (quarter
/// hours are UTC's: no zone needed); rollup rows written.
async fn roll_quarters(
    tx: &mut Transaction<'_>,
    shard: Shard,
    from: RollMarks,
    to: RollMarks,
) -> Result<u64> {
    let mut rows = 0;
    for (source, after, through) in Source::ranges(from, to) {
        let quarter = format!(
            "'1970-01-01' + INTERVAL TIMESTAMPDIFF(MINUTE, '1970-01-01', {}) DIV 15 * 15 MINUTE",
            source.time()
        );
        let rows_of = source.rows(
            &quarter,
            &format!("id > ? AND id <= ?{}", shard_filter(shard)),
        );
        let sums = source.sums();
        // One pass: per branch (level 2), and WITH ROLLUP's subtotal of
        // each tenant's quarter hour (branch NULL: level 1).
        let sql = format!(
            "{ROLLUP_COLUMNS}SELECT tenant_id, IF(branch_id IS NULL, 1, 2), t, COALESCE(branch_id, 0), 0, \
             {sums} FROM {rows_of} h GROUP BY tenant_id, t, branch_id WITH ROLLUP \
             HAVING t IS NOT NULL{ADD_TO_ROLLUP}"
        );
        tx.exec_drop(sql, (after, through)).await?;
        rows += tx.affected_rows();
    }
    Ok(rows)
}

/// Levels 3 to 5 of the rows in `(from, to]`. A tenant whose zone keeps
/// one offset over its rows' times (nearly always) is summed in SQL with
/// that offset; one whose rows span a change of offset, row by row here.
async fn roll_zoned(
    tx: &mut Transaction<'_>,
    shard: Shard,
    from: RollMarks,
    to: RollMarks,
) -> Result<u64> {
    let range = format!("id > ? AND id <= ?{}", shard_filter(shard));
    let spans: Vec<(TenantId, NaiveDateTime, NaiveDateTime)> = tx
        .exec(
            format!(
                "SELECT tenant_id, MIN(t), MAX(t) FROM (\
                 SELECT tenant_id, log_timestamp t FROM sales_transactions WHERE {range} \
                 UNION ALL SELECT tenant_id, created_at FROM refunds WHERE {range}) x GROUP BY tenant_id"
            ),
            (from.sales, to.sales, from.refunds, to.refunds),
        )
        .await?;
    let zones = zones_for(tx, spans.iter().map(|s| s.0).collect(), from).await?;
    let mut by_offset: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let mut varying = Vec::new();
    for (tenant, first, last) in spans {
        let zone = zones.get(&tenant).copied().unwrap_or(Tz::UTC);
        match fixed_offset(zone, first.and_utc(), last.and_utc()) {
            Some(offset) => by_offset.entry(offset).or_default().push(tenant.get()),
            None => varying.push(tenant.get()),
        }
    }
    let mut rows = 0;
    for (offset, tenants) in &by_offset {
        for chunk in tenants.chunks(1000) {
            rows += roll_zoned_at(tx, *offset, chunk, from, to).await?;
        }
    }
    for chunk in varying.chunks(1000) {
        let mut facts = BTreeMap::new();
        for (source, after, through) in Source::ranges(from, to) {
            let sql = format!(
                "{} WHERE id > ? AND id <= ? AND tenant_id IN ({})",
                source.select(),
                join_ids(chunk.iter().copied())
            );
            read_facts(tx, source, sql, (after, through), |f| {
                let zone = zones.get(&f.tenant).copied().unwrap_or(Tz::UTC);
                f.add_to(&mut facts, &Level::ZONED, zone)
            })
            .await?;
        }
        rows += facts.len() as u64;
        upsert(tx, &facts).await?;
    }
    Ok(rows)
}

/// Levels 3 to 5 of `tenants`' rows in `(from, to]`, their local time
/// being UTC plus `offset` seconds.
async fn roll_zoned_at(
    tx: &mut Transaction<'_>,
    offset: i32,
    tenants: &[u64],
    from: RollMarks,
    to: RollMarks,
) -> Result<u64> {
    let mut rows = 0;
    for (source, after, through) in Source::ranges(from, to) {
        let local = format!("{} + INTERVAL {offset} SECOND", source.time());
        let filter = format!(
            "id > ? AND id <= ? AND tenant_id IN ({})",
            join_ids(tenants.iter().copied())
        );
        let days = source.rows(&format!("CAST(DATE({local}) AS DATETIME)"), &filter);
        let months = source.rows(
            &format!("CAST(DATE({local}) - INTERVAL DAYOFMONTH({local}) - 1 DAY AS DATETIME)"),
            &filter,
        );
        let sums = source.sums();
        // Days per branch and product (level 3) with WITH ROLLUP's subtotal
        // per branch (product NULL: level 5) in one pass; months in another.
        let by_day = format!(
            "{ROLLUP_COLUMNS}SELECT tenant_id, IF(product_id IS NULL, 5, 3), t, branch_id, \
             COALESCE(product_id, 0), {sums} FROM {days} h \
             GROUP BY tenant_id, t, branch_id, product_id WITH ROLLUP \
             HAVING branch_id IS NOT NULL{ADD_TO_ROLLUP}"
        );
        let by_month = format!(
            "{ROLLUP_COLUMNS}SELECT tenant_id, 4, t, branch_id, product_id, {sums} FROM {months} h \
             GROUP BY tenant_id, t, branch_id, product_id{ADD_TO_ROLLUP}"
        );
        for sql in [by_day, by_month] {
            tx.exec_drop(sql, (after, through)).await?;
            rows += tx.affected_rows();
        }
    }
    Ok(rows)
}

/// The shard's marks, locked until the transaction ends (two rollers of a
/// shard take turns); made at 0 for a shard that never rolled.
async fn lock_marks(tx: &mut Transaction<'_>, shard: Shard) -> Result<Marks> {
    let read = "SELECT shard_count, sales_through, refunds_through, zoned_sales_through, \
                zoned_refunds_through FROM rollup_marks WHERE shard_index = ? FOR UPDATE";
    let mut row: Option<(u64, u64, u64, u64, u64)> = tx.exec_first(read, (shard.index,)).await?;
    let other_counts: Option<u64> = tx
        .exec_first(
            "SELECT COUNT(*) FROM rollup_marks WHERE shard_count <> ?",
            (shard.count,),
        )
        .await?;
    if other_counts.unwrap_or(0) > 0 {
        // A resize not finished: rolling from 0 would count rows again.
        return Err(StoreError::invariant(
            "the rollup marks are of another shard count than this one's: run pos shards resize",
        ));
    }
    if row.is_none() {
        tx.exec_drop(
            "INSERT IGNORE INTO rollup_marks VALUES (?, ?, 0, 0, 0, 0, UTC_TIMESTAMP(6))",
            (shard.index, shard.count),
        )
        .await?;
        row = tx.exec_first(read, (shard.index,)).await?;
    }
    match row {
        Some((count, sales, refunds, zoned_sales, zoned_refunds)) if count == shard.count => {
            Ok(Marks {
                quarters: RollMarks { sales, refunds },
                zoned: RollMarks {
                    sales: zoned_sales,
                    refunds: zoned_refunds,
                },
            })
        }
        Some(_) => Err(StoreError::invariant(
            "the rollup marks are of another shard count than this one's: run pos shards resize",
        )),
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

    /// Each table with the ids `(after, through]` between two marks, where
    /// that range holds any.
    fn ranges(from: RollMarks, to: RollMarks) -> impl Iterator<Item = (Source, u64, u64)> {
        [Source::Sales, Source::Refunds]
            .into_iter()
            .map(move |s| (s, s.pick(from), s.pick(to)))
            .filter(|(_, after, through)| through > after)
    }

    fn pick(self, marks: RollMarks) -> u64 {
        match self {
            Source::Sales => marks.sales,
            Source::Refunds => marks.refunds,
        }
    }

    fn time(self) -> &'static str {
        match self {
            Source::Sales => "log_timestamp",
            Source::Refunds => "created_at",
        }
    }

    /// A derived table of the rows `filter` picks: tenant, branch,
    /// product, `start` as `t`, units as `u`, amount as `a`.
    fn rows(self, start: &str, filter: &str) -> String {
        let (table, units, amount) = match self {
            Source::Sales => (
                "sales_transactions",
                "quantity_sold",
                "quantity_sold * price_per_unit",
            ),
            Source::Refunds => ("refunds", "quantity", "amount"),
        };
        format!(
            "(SELECT tenant_id, branch_id, product_id, {start} t, {units} u, {amount} a \
             FROM {table} WHERE {filter})"
        )
    }

    /// The six sums of a rollup row from such a derived table's rows.
    fn sums(self) -> &'static str {
        match self {
            Source::Sales => "SUM(u), SUM(a), COUNT(*), 0, 0, 0",
            Source::Refunds => "0, 0, 0, SUM(u), SUM(a), COUNT(*)",
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
            Source::Sales => Fact::sale(tenant, (branch, product), at, quantity, amount),
            Source::Refunds => Fact::refund(tenant, (branch, product), at, quantity, amount),
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
    let zoned: Vec<String> = Level::ZONED.iter().map(|l| l.code().to_string()).collect();
    tx.exec_drop(
        format!(
            "DELETE FROM sales_rollups WHERE tenant_id = ? AND level IN ({})",
            zoned.join(",")
        ),
        (tenant,),
    )
    .await?;
    let mut rows = BTreeMap::new();
    for source in [Source::Sales, Source::Refunds] {
        let through = source.pick(marks);
        let sql = format!("{} WHERE tenant_id = ? AND id <= ?", source.select());
        read_facts(tx, source, sql, (tenant, through), |f| {
            f.add_to(&mut rows, &Level::ZONED, zone)
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

/// `rolled` as far as the marks of `tenant`'s shard, read in the report's
/// snapshot, bear it out: a level whose marks are below the ids the roll
/// reached (a rebuild emptied it since) is not read.
pub async fn rolled_in_snapshot(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
    rolled: RolledUp,
) -> Result<RolledUp> {
    if !rolled.quarters && !rolled.zoned {
        return Ok(rolled);
    }
    let marks: Option<(u64, u64, u64, u64)> = tx
        .exec_first(
            "SELECT sales_through, refunds_through, zoned_sales_through, zoned_refunds_through \
             FROM rollup_marks WHERE shard_index = ? % shard_count",
            (tenant,),
        )
        .await?;
    let (sales, refunds, zoned_sales, zoned_refunds) = marks.unwrap_or_default();
    Ok(RolledUp {
        quarters: rolled.quarters && sales >= rolled.sales && refunds >= rolled.refunds,
        zoned: rolled.zoned && zoned_sales >= rolled.sales && zoned_refunds >= rolled.refunds,
        ..rolled
    })
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
/// transaction; up to where each shard had rolled (which the caller rolls
/// up to again: no row at or below it can still commit).
pub async fn reset(conn: &mut Conn) -> Result<Vec<(Shard, RollMarks)>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let marks = all_marks(&mut tx, " FOR UPDATE").await?;
    tx.query_drop("DELETE FROM sales_rollups").await?;
    tx.query_drop("DELETE FROM rollup_zones").await?;
    tx.query_drop(
        "UPDATE rollup_marks SET sales_through = 0, refunds_through = 0, zoned_sales_through = 0, \
         zoned_refunds_through = 0, updated = UTC_TIMESTAMP(6)",
    )
    .await?;
    tx.commit().await?;
    Ok(marks
        .into_iter()
        .map(|(shard, m)| (shard, m.quarters.max(m.zoned)))
        .collect())
}

async fn all_marks(tx: &mut Transaction<'_>, lock: &str) -> Result<Vec<(Shard, Marks)>> {
    let rows: Vec<(u64, u64, u64, u64, u64, u64)> = tx
        .query(format!(
            "SELECT shard_index, shard_count, sales_through, refunds_through, zoned_sales_through, \
             zoned_refunds_through FROM rollup_marks ORDER BY shard_index{lock}"
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(index, count, sales, refunds, zoned_sales, zoned_refunds)| {
                let marks = Marks {
                    quarters: RollMarks { sales, refunds },
                    zoned: RollMarks {
                        sales: zoned_sales,
                        refunds: zoned_refunds,
                    },
                };
                (Shard { index, count }, marks)
            },
        )
        .collect())
}

/// Rolls `shard` (quarter hours, days and months) up to `upto`.
pub async fn roll_all(conn: &mut Conn, shard: Shard, upto: RollMarks, chunk: u64) -> Result<u64> {
    let mut rows = 0;
    loop {
        let rolled = roll(conn, shard, None, (upto, chunk), true).await?;
        rows += rolled.rows;
        if rolled.quarters_caught_up && rolled.zoned_caught_up {
            return Ok(rows);
        }
    }
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
    // Every shard of the old count, those that never rolled too (all
    // their rows are after their 0 marks).
    let old_count = old.first().map_or(1, |(s, _)| s.count);
    for index in 0..old_count {
        let shard = Shard {
            index,
            count: old_count,
        };
        roll_all(conn, shard, newest, 100_000).await?;
    }
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    tx.query_drop("DELETE FROM rollup_marks").await?;
    for index in 0..count {
        tx.exec_drop(
            "INSERT INTO rollup_marks VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
            (
                index,
                count,
                newest.sales,
                newest.refunds,
                newest.sales,
                newest.refunds,
            ),
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
        let mut zoned_rows = 0;
        for source in [Source::Sales, Source::Refunds] {
            let sql = format!("{} WHERE tenant_id = ? AND id <= ?", source.select());
            let through = source.pick(mark.quarters);
            read_facts(&mut tx, source, sql.clone(), (tenant, through), |f| {
                f.add_to(
                    &mut expected,
                    &[Level::Quarter, Level::QuarterBranch],
                    Tz::UTC,
                )
            })
            .await?;
            let through = source.pick(mark.zoned);
            read_facts(&mut tx, source, sql, (tenant, through), |f| {
                zoned_rows += 1;
                if let Some(zone) = zone {
                    f.add_to(&mut expected, &Level::ZONED, zone);
                }
            })
            .await?;
        }
        if zone.is_none() && zoned_rows > 0 && verified.differences.len() < MAX_DIFFERENCES {
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
