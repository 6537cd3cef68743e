//! Events (SPEC §3): the heads a writer numbers a tenant's events from, a
//! catalog change's event and its numbering, and a tenant's events read in
//! `seq` order. A sale's and a refund's event is its own row (`event_seq`,
//! written by the batch that stores it, see `sales.rs` and `refunds.rs`).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use super::refunds::{id_list, stored_refund, RefundRow, REFUND_COLUMNS};
use super::sales::{push_mark, BatchMark, CommitFailure};
use super::sales::{stored_sale, SaleColumns, SALE_COLUMNS};
use super::Result;
use crate::domain::{Currency, Event, EventData, EventType, EventsQuery, TenantId, Timestamp};

/// The last event number stored for each of `tenants` (0 for none yet).
/// `causal`: on a Galera node, wait first for every write set the cluster
/// certified (a batch committed through a node that died).
pub async fn event_heads(
    conn: &mut Conn,
    tenants: &[TenantId],
    causal: bool,
) -> Result<HashMap<TenantId, u64>> {
    heads_in(conn, tenants, causal).await
}

/// The last event number stored for `tenant` (0 for none), in `conn`'s
/// transaction if it is one.
pub(super) async fn head_of(
    conn: &mut impl Queryable,
    tenant: TenantId,
    causal: bool,
) -> Result<u64> {
    Ok(heads_in(conn, &[tenant], causal)
        .await?
        .get(&tenant)
        .copied()
        .unwrap_or(0))
}

pub(super) async fn heads_in(
    conn: &mut impl Queryable,
    tenants: &[TenantId],
    causal: bool,
) -> Result<HashMap<TenantId, u64>> {
    let ids = id_list(tenants.iter().map(|t| t.get()));
    // Each MAX is one dive into its table's (tenant_id, seq) key.
    let sql = format!(
        "{}SELECT t, MAX(s) FROM (\
           SELECT tenant_id t, MAX(event_seq) s FROM sales_transactions WHERE tenant_id IN {ids} GROUP BY tenant_id \
           UNION ALL SELECT tenant_id, MAX(event_seq) FROM refunds WHERE tenant_id IN {ids} GROUP BY tenant_id \
           UNION ALL SELECT tenant_id, MAX(seq) FROM catalog_events WHERE tenant_id IN {ids} GROUP BY tenant_id\
         ) heads GROUP BY t",
        if causal {
            "SET STATEMENT wsrep_sync_wait = 1 FOR "
        } else {
            ""
        }
    );
    let rows: Vec<(TenantId, Option<u64>)> = conn.query(sql).await?;
    let mut heads: HashMap<TenantId, u64> = tenants.iter().map(|t| (*t, 0)).collect();
    for (tenant, head) in rows {
        heads.insert(tenant, head.unwrap_or(0));
    }
    Ok(heads)
}

/// Writes a catalog change's event, unnumbered, in the change's own
/// transaction: it exists once the change commits, and joins the feed when
/// the tenant's writer numbers it ([`number_catalog_events`]).
pub async fn insert_catalog_event(
    conn: &mut impl Queryable,
    tenant: TenantId,
    kind: EventType,
    data: &impl serde::Serialize,
) -> Result<()> {
    let data = serde_json::to_string(data)
        .map_err(|_| super::StoreError::invariant("a catalog object did not render"))?;
    conn.exec_drop(
        "INSERT INTO catalog_events (tenant_id, type, created_at, data) \
         VALUES (?, ?, UTC_TIMESTAMP(6), ?)",
        (tenant, kind.as_str(), data),
    )
    .await?;
    Ok(())
}

/// Numbers `tenant`'s unnumbered catalog events in the order they were
/// written, in one transaction, after the tenant's last event; returns the
/// tenant's head after it. Like a batch, the transaction first moves its
/// writer's mark (`mark`: from the mark the writer expects, under its
/// shard's lease) and only then reads the head: a batch of that writer
/// whose answer was lost and that the server still runs either moved the
/// mark first (this then fails: the head may be stale) or finds it moved
/// and rolls back (its numbers are not stored). So a catalog event never
/// takes a number such a batch holds.
pub async fn number_catalog_events(
    conn: &mut Conn,
    tenant: TenantId,
    mark: BatchMark,
    causal: bool,
) -> Result<u64, CommitFailure> {
    let mut tx = conn
        .start_transaction(TxOpts::default())
        .await
        .map_err(|e| CommitFailure::NotStored(e.into()))?;
    let mut moved = String::new();
    push_mark(&mut moved, mark, false);
    let moved = moved.trim_start_matches(';').trim_end_matches(";COMMIT");
    if let Err(e) = tx.query_drop(moved).await {
        let _ = tx.rollback().await;
        return Err(mark_failure(e));
    }
    let numbered = number_in(&mut tx, tenant, causal).await;
    match numbered {
        Ok(head) => match tx.commit().await {
            Ok(()) => Ok(head),
            Err(e) => Err(CommitFailure::Unknown(e.into())),
        },
        Err(e) => {
            let _ = tx.rollback().await;
            Err(CommitFailure::NotStored(e))
        }
    }
}

/// Why the mark did not move: another attempt of the writer moved it, the
/// lease is another's, or MySQL failed.
fn mark_failure(e: mysql_async::Error) -> CommitFailure {
    match &e {
        mysql_async::Error::Server(s) if s.code == 1264 && s.message.contains("'batch_id'") => {
            CommitFailure::Fenced
        }
        mysql_async::Error::Server(s) if s.code == 1264 && s.message.contains("'first_id'") => {
            CommitFailure::LeaseLost
        }
        _ => CommitFailure::NotStored(e.into()),
    }
}

/// The numbering itself, in the transaction that moved the mark.
async fn number_in(
    tx: &mut mysql_async::Transaction<'_>,
    tenant: TenantId,
    causal: bool,
) -> Result<u64> {
    let ids: Vec<u64> = tx
        .exec(
            "SELECT id FROM catalog_events WHERE tenant_id = ? AND seq IS NULL ORDER BY id FOR UPDATE",
            (tenant,),
        )
        .await?;
    let head = head_of(&mut *tx, tenant, causal).await?;
    if ids.is_empty() {
        return Ok(head);
    }
    let mut cases = String::with_capacity(ids.len() * 24);
    for (n, id) in (head + 1..).zip(&ids) {
        cases.push_str(&format!(" WHEN {id} THEN {n}"));
    }
    tx.exec_drop(
        format!(
            "UPDATE catalog_events SET seq = CASE id{cases} END WHERE tenant_id = ? AND id IN {}",
            id_list(ids.iter().copied())
        ),
        (tenant,),
    )
    .await?;
    Ok(head + ids.len() as u64)
}

/// Tenants with catalog events left unnumbered (their writer stopped
/// between the change's commit and the numbering).
pub async fn tenants_with_unnumbered_events(conn: &mut Conn) -> Result<Vec<TenantId>> {
    Ok(conn
        .query("SELECT DISTINCT tenant_id FROM catalog_events WHERE seq IS NULL")
        .await?)
}

/// `tenant`'s events after `query.after`, of its types, at most
/// `query.limit`, in `seq` order, read in one consistent snapshot.
pub async fn read_events(
    conn: &mut Conn,
    tenant: TenantId,
    query: &EventsQuery,
) -> Result<Vec<Event>> {
    let mut tx = conn.start_transaction(snapshot()).await?;
    let rows = event_rows(&mut tx, &[(tenant, query.after)], &query.types, query.limit).await?;
    tx.commit().await?;
    let mut events: Vec<Event> = rows.events.into_iter().map(|(_, e)| e).collect();
    events.truncate(query.limit);
    // The page covers up to its last event, or all that was read.
    let covered = match events.last() {
        Some(last) if events.len() == query.limit => last.seq,
        _ => u64::MAX,
    };
    if let Some((_, seq)) = rows.undecodable.iter().find(|(_, seq)| *seq <= covered) {
        // Answering around it would show a gap the feed never fills.
        return Err(super::StoreError::invariant(&format!(
            "event {seq} of tenant {tenant} cannot be read"
        )));
    }
    Ok(events)
}

/// What the feed delivers next: events of many tenants after their
/// cursors, and each tenant's currency (a sale's data names it).
#[derive(Debug, Default)]
pub struct FeedPage {
    /// By tenant, then `seq`. A tenant's may stop short of its head and,
    /// read from three tables under one limit, skip a number that a later
    /// page holds: deliver each tenant's only as far as they run on.
    pub events: Vec<(TenantId, Event)>,
    pub currencies: HashMap<TenantId, Currency>,
    /// No kind's read stopped at its limit: a tenant with nothing here has
    /// nothing after its cursor.
    pub complete: bool,
    /// Events whose rows this build cannot read (changed by hand?): missing
    /// from `events`, so each stops its tenant's delivery until fixed.
    pub undecodable: Vec<(TenantId, u64)>,
}

impl FeedPage {
    /// Whether `tenant`'s next event after `cursor` is one that cannot be
    /// read (its delivery cannot go on).
    pub fn stuck_at(&self, tenant: TenantId, cursor: u64) -> bool {
        self.undecodable.contains(&(tenant, cursor + 1))
    }
}

/// The events after each `(tenant, cursor)`, at most `limit` of each kind,
/// in one consistent snapshot.
pub async fn feed_page(
    conn: &mut Conn,
    cursors: &[(TenantId, u64)],
    limit: usize,
) -> Result<FeedPage> {
    if cursors.is_empty() {
        return Ok(FeedPage {
            complete: true,
            ..FeedPage::default()
        });
    }
    let mut tx = conn.start_transaction(snapshot()).await?;
    let read = event_rows(&mut tx, cursors, &[], limit).await?;
    let ids = id_list(cursors.iter().map(|(t, _)| t.get()));
    let rows: Vec<(TenantId, Option<String>)> = tx
        .query(format!(
            "SELECT id, currency FROM tenants WHERE id IN {ids}"
        ))
        .await?;
    tx.commit().await?;
    let currencies = rows
        .into_iter()
        .map(|(t, c)| {
            (
                t,
                c.as_deref().and_then(Currency::stored).unwrap_or_default(),
            )
        })
        .collect();
    Ok(FeedPage {
        events: read.events,
        currencies,
        complete: read.complete,
        undecodable: read.undecodable,
    })
}

fn snapshot() -> TxOpts {
    TxOpts::default()
        .with_consistent_snapshot(true)
        .with_readonly(Some(true))
        .clone()
}

/// `(tenant_id = 1 AND col > 5) OR …`: the ranges after each cursor, which
/// MySQL reads as ranges of the table's `(tenant_id, seq)` key.
fn after_cursors(column: &str, cursors: &[(TenantId, u64)]) -> String {
    let mut sql = String::from("(");
    let mut digits = itoa::Buffer::new();
    for (i, (tenant, after)) in cursors.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str("(tenant_id = ");
        sql.push_str(digits.format(tenant.get()));
        sql.push_str(" AND ");
        sql.push_str(column);
        sql.push_str(" > ");
        sql.push_str(digits.format(*after));
        sql.push(')');
    }
    sql.push(')');
    sql
}

/// What [`event_rows`] read.
#[derive(Default)]
struct EventRows {
    /// By tenant and `seq`.
    events: Vec<(TenantId, Event)>,
    /// No table's read stopped at the limit.
    complete: bool,
    /// Rows numbered as events that did not decode.
    undecodable: Vec<(TenantId, u64)>,
}

impl EventRows {
    /// Keeps `event`, or notes the row `(tenant, seq)` as undecodable.
    fn push(&mut self, row: Option<(TenantId, u64)>, event: Option<Event>) {
        match (row, event) {
            (Some((tenant, _)), Some(event)) => self.events.push((tenant, event)),
            (Some(at), None) => {
                tracing::error!(tenant = %at.0, seq = at.1, "a stored event cannot be read: its tenant's feed stops before it");
                self.undecodable.push(at);
            }
            (None, _) => tracing::error!("a stored event's tenant or number cannot be read"),
        }
    }
}

/// The events after each cursor, of `types` (all when empty), at most
/// `limit` of each table.
async fn event_rows(
    tx: &mut mysql_async::Transaction<'_>,
    cursors: &[(TenantId, u64)],
    types: &[EventType],
    limit: usize,
) -> Result<EventRows> {
    let wants = |kind| types.is_empty() || types.contains(&kind);
    let limit = limit as u64;
    let mut read = EventRows {
        complete: true,
        ..EventRows::default()
    };
    if wants(EventType::SaleCreated) {
        let rows: Vec<mysql_async::Row> = tx
            .exec(
                format!(
                    "SELECT tenant_id, event_seq, stored_at, {SALE_COLUMNS} FROM sales_transactions \
                     WHERE {} ORDER BY tenant_id, event_seq LIMIT ?",
                    after_cursors("event_seq", cursors)
                ),
                (limit,),
            )
            .await?;
        read.complete &= (rows.len() as u64) < limit;
        for row in rows {
            let at: Option<(TenantId, u64)> = row.get(0).zip(row.get(1));
            let event = sale_row(row).and_then(|(tenant, seq, stored_at, columns)| {
                let at = stored_at.unwrap_or(columns.5);
                Some(Event {
                    seq,
                    kind: EventType::SaleCreated,
                    created_at: Timestamp::from_naive_utc(at),
                    data: EventData::Sale(stored_sale(tenant, columns)?),
                })
            });
            read.push(at, event);
        }
    }
    if wants(EventType::RefundCreated) {
        let rows: Vec<mysql_async::Row> = tx
            .exec(
                format!(
                    "SELECT tenant_id, event_seq, {REFUND_COLUMNS} FROM refunds \
                     WHERE {} ORDER BY tenant_id, event_seq LIMIT ?",
                    after_cursors("event_seq", cursors)
                ),
                (limit,),
            )
            .await?;
        read.complete &= (rows.len() as u64) < limit;
        for row in rows {
            let at: Option<(TenantId, u64)> = row.get(0).zip(row.get(1));
            let event = refund_row(row).and_then(|(tenant, seq, columns)| {
                let refund = stored_refund(tenant, columns)?;
                Some(Event {
                    seq,
                    kind: EventType::RefundCreated,
                    created_at: refund.refund.created_at,
                    data: EventData::Refund(refund),
                })
            });
            read.push(at, event);
        }
    }
    let catalog: Vec<&str> = types
        .iter()
        .filter(|t| t.is_catalog())
        .map(|t| t.as_str())
        .collect();
    if types.is_empty() || !catalog.is_empty() {
        let only = if catalog.is_empty() {
            String::new()
        } else {
            // Names from `EventType`, never a client's text.
            format!(" AND type IN ('{}')", catalog.join("','"))
        };
        let rows: Vec<(TenantId, u64, String, NaiveDateTime, String)> = tx
            .exec(
                format!(
                    "SELECT tenant_id, seq, type, created_at, data FROM catalog_events \
                     WHERE {}{only} ORDER BY tenant_id, seq LIMIT ?",
                    after_cursors("seq", cursors)
                ),
                (limit,),
            )
            .await?;
        read.complete &= (rows.len() as u64) < limit;
        for (tenant, seq, kind, at, data) in rows {
            let event = EventType::parse(&kind).map(|kind| Event {
                seq,
                kind,
                created_at: Timestamp::from_naive_utc(at),
                data: EventData::Catalog(data),
            });
            read.push(Some((tenant, seq)), event);
        }
    }
    read.events.sort_by_key(|(tenant, e)| (*tenant, e.seq));
    Ok(read)
}

/// A sales row as (tenant, seq, stored at, the sale's columns).
fn sale_row(row: mysql_async::Row) -> Option<(TenantId, u64, Option<NaiveDateTime>, SaleColumns)> {
    let columns = (
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    );
    Some((row.get(0)?, row.get(1)?, row.get(2)?, columns))
}

/// A refunds row as (tenant, seq, the refund's columns).
fn refund_row(row: mysql_async::Row) -> Option<(TenantId, u64, RefundRow)> {
    let columns = (
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
    );
    Some((row.get(0)?, row.get(1)?, columns))
}
