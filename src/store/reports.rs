//! Sales reports straight from the history: per stretch of constant UTC
//! offset, one grouped query of the sales, read from the covering index
//! `ix_sales_report` (`tenant_id, log_timestamp, branch_id, product_id,
//! quantity_sold, price_per_unit`), and one of the refunds, from
//! `ix_refunds_report` (the same shape: a refund counts at its branch and
//! time), so a report reads only its tenant's index ranges and never a
//! table row. Local days and hours are computed in SQL from the stretch's
//! offset; names are today's.
//!
//! A page after the first reads only what can be after its cursor: from
//! the cursor's time bucket on, or (grouped without time) the groups
//! after the cursor's, so page 2 never costs more than page 1. MariaDB
//! (or MySQL) stops a grouped query that outlives its time limit itself.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Transaction, TxOpts, Value};
use rust_decimal::Decimal;

use super::rollups::{rolled_in_snapshot, rollup_zone};
use super::{Result, StoreError};
use crate::domain::{
    BranchId, Currency, GroupBy, GroupKey, Groups, Level, Money, Part, ProductId, ReportPage,
    ReportQuery, ReportRow, Span, Stretch, Sums, TenantId, TimeBucket, MAX_GROUPS,
};

/// What a report request found.
#[derive(Debug)]
pub enum ReportOutcome {
    UnknownTenant,
    TooManyGroups,
    Page(ReportPage),
}

/// The page of `query`'s report, read in one snapshot; each grouped query
/// is stopped by the server once it ran `time_limit`.
pub async fn sales_report(
    conn: &mut Conn,
    query: &ReportQuery,
    time_limit: Duration,
) -> Result<ReportOutcome> {
    let opts = TxOpts::default()
        .with_consistent_snapshot(true)
        .with_readonly(Some(true))
        .clone();
    let mut tx = conn.start_transaction(opts).await?;
    let tenant: Option<Option<String>> = tx
        .exec_first("SELECT currency FROM tenants WHERE id = ?", (query.tenant,))
        .await?;
    let Some(currency) = tenant else {
        return Ok(ReportOutcome::UnknownTenant);
    };
    let currency = currency
        .as_deref()
        .and_then(Currency::stored)
        .unwrap_or_default();
    let rolled = rolled_in_snapshot(&mut tx, query.tenant, query.rollups).await?;
    let query = &ReportQuery {
        rollups: rolled,
        ..query.clone()
    };
    // A tenant with no rollup zone has no day rolled up: any zone reads.
    let zone = match query.rollups.zoned {
        true => rollup_zone(&mut tx, query.tenant)
            .await?
            .unwrap_or(query.tz),
        false => query.tz,
    };
    let mut groups = Groups::after(query.after);
    for window in query.windows() {
        for part in window.plan(zone) {
            let found = read_part(&mut tx, &window, part, time_limit).await?;
            for (key, sums) in found {
                if groups.add(key, sums).is_err() {
                    return Ok(ReportOutcome::TooManyGroups);
                }
            }
        }
        // The page and one row more: whether another page follows.
        if groups.len() > query.limit {
            break;
        }
    }
    let (page, more) = groups.page(query.limit);
    let next = more.then(|| page.last().map(|(k, _)| *k)).flatten();
    let names = Names::read(&mut tx, query.tenant, &page).await?;
    tx.commit().await?;
    let rows = page
        .into_iter()
        .map(|(key, sums)| ReportRow {
            key,
            branch_name: key.branch.and_then(|b| names.branches.get(&b).cloned()),
            product_name: key.product.and_then(|p| names.products.get(&p).cloned()),
            quantity: sums.quantity,
            total: Money::new(sums.total),
            count: sums.count,
            refunded: sums.refunded,
            refunds: Money::new(sums.refunds),
            refund_count: sums.refund_count,
        })
        .collect();
    Ok(ReportOutcome::Page(ReportPage {
        rows,
        next,
        currency,
    }))
}

/// The groups of one part of a report, from where the plan says.
async fn read_part(
    tx: &mut Transaction<'_>,
    query: &ReportQuery,
    part: Part,
    time_limit: Duration,
) -> Result<Vec<(GroupKey, Sums)>> {
    match part {
        Part::History(span) => read_history(tx, query, span, time_limit).await,
        Part::Quarters(level, span) => {
            let mut found = Vec::new();
            for stretch in query.stretches_of(span) {
                let read = RollupRead::quarters(level, &stretch);
                found.extend(read_rollups(tx, query, &read, time_limit).await?);
            }
            Ok(found)
        }
        Part::Zoned(level, from, to) => {
            let read = RollupRead::zoned(level, from, to);
            read_rollups(tx, query, &read, time_limit).await
        }
    }
}

/// The groups of the history rows (sales and refunds) in `span`, a
/// grouped query per stretch of constant offset and table.
async fn read_history(
    tx: &mut Transaction<'_>,
    query: &ReportQuery,
    span: Span,
    time_limit: Duration,
) -> Result<Vec<(GroupKey, Sums)>> {
    let keyset = query.after.is_some();
    let (branches, products) = (query.branches.len(), query.products.len());
    let mut found = Vec::new();
    for stretch in query.stretches_of(span) {
        for source in [History::Sales, History::Refunds] {
            let sql = grouped_sql(source, query.group_by, branches, products, keyset);
            let rows: Vec<Row> = tx
                .exec(
                    time_limited(&sql, time_limit),
                    report_params(query, &stretch),
                )
                .await?;
            for row in rows {
                let (key, sums) = decode(source, query.group_by, stretch.offset, row)?;
                // Without GROUP BY, a stretch with nothing is one row of NULLs.
                if !sums.is_empty() {
                    found.push((key, sums));
                }
            }
        }
    }
    Ok(found)
}

/// Which rollup rows one query reads: a level, the range of their
/// `start`, and the zone offset that turns a quarter hour's UTC start into
/// its local day or hour (0 for days and months, whose start is local).
struct RollupRead {
    level: Level,
    from: NaiveDateTime,
    to: NaiveDateTime,
    offset: Option<i32>,
}

impl RollupRead {
    fn quarters(level: Level, stretch: &Stretch) -> RollupRead {
        RollupRead {
            level,
            from: stretch.from.naive_utc(),
            to: stretch.to.naive_utc(),
            offset: Some(stretch.offset),
        }
    }

    fn zoned(level: Level, from: NaiveDate, to: NaiveDate) -> RollupRead {
        RollupRead {
            level,
            from: from.and_time(NaiveTime::MIN),
            to: to.and_time(NaiveTime::MIN),
            offset: None,
        }
    }
}

/// The groups of the rollup rows `read` names.
async fn read_rollups(
    tx: &mut Transaction<'_>,
    query: &ReportQuery,
    read: &RollupRead,
    time_limit: Duration,
) -> Result<Vec<(GroupKey, Sums)>> {
    let group = query.group_by;
    let keyset = query.after.is_some() && group.time.is_none();
    let local = match read.offset {
        Some(_) => "start + INTERVAL ? SECOND",
        None => "start",
    };
    let columns = key_columns(group, local);
    let mut params = Vec::new();
    if let (Some(offset), Some(_)) = (read.offset, group.time) {
        params.push(Value::from(offset));
    }
    let mut sql = String::from("SELECT ");
    for c in &columns {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str(
        "SUM(quantity), SUM(revenue), SUM(sales), SUM(refunded), SUM(refunds), SUM(refund_count) \
         FROM sales_rollups WHERE tenant_id = ? AND level = ? AND start >= ? AND start < ?",
    );
    params.extend([
        Value::from(query.tenant.get()),
        Value::from(read.level.code()),
        Value::from(read.from),
        Value::from(read.to),
    ]);
    filters(&mut sql, &mut params, query, keyset);
    if !columns.is_empty() {
        let positions: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
        sql.push_str(&format!(
            " GROUP BY {} LIMIT {}",
            positions.join(", "),
            MAX_GROUPS + 1
        ));
    }
    let rows: Vec<Row> = tx.exec(time_limited(&sql, time_limit), params).await?;
    let mut found = Vec::new();
    for row in rows {
        let (key, sums) = decode_rollup(group, read.offset.unwrap_or(0), row)?;
        if !sums.is_empty() {
            found.push((key, sums));
        }
    }
    Ok(found)
}

/// The group keys a report selects first: the local day or hour number
/// of `local` (a time in SQL), then branch, then product.
fn key_columns(group: GroupBy, local: &str) -> Vec<String> {
    let time = group.time.map(|t| {
        let unit = match t {
            TimeBucket::Day => "DAY",
            TimeBucket::Hour => "HOUR",
        };
        format!("TIMESTAMPDIFF({unit}, '1970-01-01', {local})")
    });
    let branch = group.branch.then(|| "branch_id".to_string());
    let product = group.product.then(|| "product_id".to_string());
    [time, branch, product].into_iter().flatten().collect()
}

/// The branch and product filters, and the keyset after the cursor's
/// group for a report grouped without time, with their parameters.
fn filters(sql: &mut String, params: &mut Vec<Value>, query: &ReportQuery, keyset: bool) {
    for (column, ids) in [
        (
            "branch_id",
            query.branches.iter().map(|b| b.get()).collect::<Vec<_>>(),
        ),
        (
            "product_id",
            query.products.iter().map(|p| p.get()).collect(),
        ),
    ] {
        if !ids.is_empty() {
            sql.push_str(&format!(
                " AND {column} IN ({})",
                vec!["?"; ids.len()].join(", ")
            ));
            params.extend(ids.into_iter().map(Value::from));
        }
    }
    let Some(after) = query.after.filter(|_| keyset) else {
        return;
    };
    match (query.group_by.branch, query.group_by.product) {
        (true, true) => sql.push_str(" AND (branch_id, product_id) > (?, ?)"),
        (true, false) => sql.push_str(" AND branch_id > ?"),
        (false, true) => sql.push_str(" AND product_id > ?"),
        (false, false) => return,
    }
    params.extend(after.branch.map(|b| Value::from(b.get())));
    params.extend(after.product.map(|p| Value::from(p.get())));
}

/// `sql` (one `SELECT`) stopped by the server once it ran `limit`:
/// MariaDB runs what is in its `/*M! */` comments, MySQL reads the
/// optimizer hint, and each takes the other's for a comment.
fn time_limited(sql: &str, limit: Duration) -> String {
    let select = sql.strip_prefix("SELECT ").unwrap_or(sql);
    format!(
        "/*M!100301 SET STATEMENT max_statement_time={} FOR */ SELECT /*+ MAX_EXECUTION_TIME({}) */ {select}",
        limit.as_secs().max(1),
        limit.as_millis().max(1),
    )
}

/// Where a report's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum History {
    Sales,
    Refunds,
}

impl History {
    /// Table and index, time column, and what is summed (units, amount).
    fn columns(self) -> [&'static str; 4] {
        match self {
            History::Sales => [
                "sales_transactions FORCE INDEX (ix_sales_report)",
                "log_timestamp",
                "quantity_sold",
                "quantity_sold * price_per_unit",
            ],
            History::Refunds => [
                "refunds FORCE INDEX (ix_refunds_report)",
                "created_at",
                "quantity",
                "amount",
            ],
        }
    }
}

/// The grouped query of the sales of one stretch, with `branches` and
/// `products` ids in its filters and, with `keyset` and no time bucket,
/// only the groups after the cursor's. Parameters: the offset in seconds
/// (once per time column), the tenant, the stretch's bounds, the ids, then
/// the cursor's branch and product. Public so a test can `EXPLAIN` it.
pub fn report_sql(group: GroupBy, branches: usize, products: usize, keyset: bool) -> String {
    grouped_sql(History::Sales, group, branches, products, keyset)
}

/// [`report_sql`] of the sales or of the refunds (same parameters).
fn grouped_sql(
    source: History,
    group: GroupBy,
    branches: usize,
    products: usize,
    keyset: bool,
) -> String {
    let [table, time, units, amount] = source.columns();
    let local = format!("{time} + INTERVAL ? SECOND");
    let columns = key_columns(group, &local);
    let keys = columns.len();
    let mut sql = String::from("SELECT ");
    for c in &columns {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str(&format!(
        "SUM({units}), SUM({amount}), COUNT(*) FROM {table} \
         WHERE tenant_id = ? AND {time} >= ? AND {time} < ?"
    ));
    for (column, n) in [("branch_id", branches), ("product_id", products)] {
        if n > 0 {
            sql.push_str(&format!(" AND {column} IN ({})", vec!["?"; n].join(", ")));
        }
    }
    // With a time bucket, the stretches start at the cursor's bucket.
    match (keyset && group.time.is_none(), group.branch, group.product) {
        (true, true, true) => sql.push_str(" AND (branch_id, product_id) > (?, ?)"),
        (true, true, false) => sql.push_str(" AND branch_id > ?"),
        (true, false, true) => sql.push_str(" AND product_id > ?"),
        _ => {}
    }
    if keys > 0 {
        let positions: Vec<String> = (1..=keys).map(|i| i.to_string()).collect();
        sql.push_str(&format!(" GROUP BY {}", positions.join(", ")));
        // One group more than a report may hold says "too many" without
        // reading (or holding) the rest.
        sql.push_str(&format!(" LIMIT {}", MAX_GROUPS + 1));
    }
    sql
}

/// The parameters of [`report_sql`] for one stretch.
pub fn report_params(query: &ReportQuery, stretch: &Stretch) -> Vec<Value> {
    let mut params = Vec::new();
    if query.group_by.time.is_some() {
        params.push(Value::from(stretch.offset));
    }
    params.push(Value::from(query.tenant.get()));
    params.push(Value::from(stretch.from.naive_utc()));
    params.push(Value::from(stretch.to.naive_utc()));
    params.extend(query.branches.iter().map(|b| Value::from(b.get())));
    params.extend(query.products.iter().map(|p| Value::from(p.get())));
    if let (Some(after), None) = (query.after, query.group_by.time) {
        params.extend(after.branch.map(|b| Value::from(b.get())));
        params.extend(after.product.map(|p| Value::from(p.get())));
    }
    params
}

/// A result row read column by column.
struct Columns {
    row: Row,
    next: usize,
}

impl Columns {
    fn take<T: FromValue>(&mut self) -> Result<T> {
        self.next += 1;
        let value = self
            .row
            .take::<Value, usize>(self.next - 1)
            .ok_or_else(|| StoreError::invariant("a report row has unexpected columns"))?;
        from_value(value)
    }

    /// The group keys at the row's start; `offset` turns a local hour back
    /// into UTC.
    fn key(&mut self, group: GroupBy, offset: i32) -> Result<GroupKey> {
        let local: Option<i64> = match group.time {
            Some(_) => Some(self.take()?),
            None => None,
        };
        let branch: Option<BranchId> = match group.branch {
            true => Some(self.take()?),
            false => None,
        };
        let product: Option<ProductId> = match group.product {
            true => Some(self.take()?),
            false => None,
        };
        Ok(GroupKey::from_local(group, local, offset, branch, product))
    }

    /// A `SUM` of whole units (`NULL` over no rows).
    fn units(&mut self) -> Result<u64> {
        let sum: Option<Decimal> = self.take()?;
        Ok(sum.and_then(|q| u64::try_from(q).ok()).unwrap_or_default())
    }

    fn money(&mut self) -> Result<Decimal> {
        let sum: Option<Decimal> = self.take()?;
        Ok(sum.unwrap_or_default())
    }
}

fn decode(source: History, group: GroupBy, offset: i32, row: Row) -> Result<(GroupKey, Sums)> {
    let mut columns = Columns { row, next: 0 };
    let key = columns.key(group, offset)?;
    let (quantity, total) = (columns.units()?, columns.money()?);
    let count: u64 = columns.take()?;
    let sums = match source {
        History::Sales => Sums {
            quantity,
            total,
            count,
            ..Sums::default()
        },
        History::Refunds => Sums {
            refunded: quantity,
            refunds: total,
            refund_count: count,
            ..Sums::default()
        },
    };
    Ok((key, sums))
}

/// A row of [`read_rollups`]: its keys, then the six sums.
fn decode_rollup(group: GroupBy, offset: i32, row: Row) -> Result<(GroupKey, Sums)> {
    let mut columns = Columns { row, next: 0 };
    let key = columns.key(group, offset)?;
    let sums = Sums {
        quantity: columns.units()?,
        total: columns.money()?,
        count: columns.units()?,
        refunded: columns.units()?,
        refunds: columns.money()?,
        refund_count: columns.units()?,
    };
    Ok((key, sums))
}

fn from_value<T: FromValue>(value: Value) -> Result<T> {
    mysql_async::from_value_opt(value)
        .map_err(|_| StoreError::invariant("a report column has an unexpected type"))
}

/// Today's names of the branches and products on a page.
struct Names {
    branches: HashMap<BranchId, String>,
    products: HashMap<ProductId, String>,
}

impl Names {
    async fn read(
        tx: &mut Transaction<'_>,
        tenant: TenantId,
        page: &[(GroupKey, Sums)],
    ) -> Result<Names> {
        let mut branches: Vec<u64> = page
            .iter()
            .filter_map(|(k, _)| k.branch)
            .map(BranchId::get)
            .collect();
        let mut products: Vec<u64> = page
            .iter()
            .filter_map(|(k, _)| k.product)
            .map(ProductId::get)
            .collect();
        branches.sort_unstable();
        branches.dedup();
        products.sort_unstable();
        products.dedup();
        Ok(Names {
            branches: names_of(tx, "branches", tenant, &branches).await?,
            products: names_of(tx, "products", tenant, &products).await?,
        })
    }
}

/// `id -> name` of `table`'s rows of `tenant` among `ids`, a chunk at a time.
async fn names_of<Id>(
    tx: &mut Transaction<'_>,
    table: &'static str,
    tenant: TenantId,
    ids: &[u64],
) -> Result<HashMap<Id, String>>
where
    Id: FromValue + Eq + std::hash::Hash + Send + 'static,
    (Id, String): FromRow,
{
    let mut names = HashMap::new();
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "SELECT id, name FROM {table} WHERE tenant_id = ? AND id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut params = vec![Value::from(tenant.get())];
        params.extend(chunk.iter().map(|&id| Value::from(id)));
        let rows: Vec<(Id, String)> = tx.exec(sql, params).await?;
        names.extend(rows);
    }
    Ok(names)
}
