//! A tenant's webhook endpoints (made, listed, deleted; their cursors and
//! failing state) and the record of their delivery attempts.

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use super::events::head_of;
use super::Result;
use crate::domain::{
    types_from_text, types_text, Delivery, NewWebhook, TenantId, Timestamp, Webhook, WebhookUrl,
};

const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, url, types, delivered_seq, failing_since, failed, created_at";

type WebhookRow = (
    u64,
    TenantId,
    String,
    String,
    u64,
    Option<NaiveDateTime>,
    bool,
    NaiveDateTime,
);

fn webhook(row: WebhookRow) -> Option<Webhook> {
    let (id, tenant, url, types, delivered_seq, failing_since, failed, created_at) = row;
    Some(Webhook {
        id,
        tenant,
        url: WebhookUrl::stored(&url)?,
        types: types_from_text(&types),
        delivered_seq,
        failing_since: failing_since.map(Timestamp::from_naive_utc),
        failed,
        created_at: Timestamp::from_naive_utc(created_at),
    })
}

/// Makes an endpoint that receives the tenant's events from its next one
/// on; `Ok(None)` when the tenant holds `limit` endpoints already.
pub async fn create_webhook(
    conn: &mut Conn,
    tenant: TenantId,
    new: &NewWebhook,
    secret: &str,
    limit: usize,
) -> Result<Option<Webhook>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    // The tenant's row orders two creates, so the limit holds.
    tx.exec_drop("SELECT id FROM tenants WHERE id = ? FOR UPDATE", (tenant,))
        .await?;
    let held: Option<u64> = tx
        .exec_first(
            "SELECT COUNT(*) FROM webhooks WHERE tenant_id = ? AND NOT deleted",
            (tenant,),
        )
        .await?;
    if held.unwrap_or(0) >= limit as u64 {
        return Ok(None);
    }
    let head = head_of(&mut tx, tenant, false).await?;
    tx.exec_drop(
        "INSERT INTO webhooks (tenant_id, url, types, secret, delivered_seq, created_at) \
         VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
        (
            tenant,
            new.url.as_str(),
            types_text(&new.types),
            secret,
            head,
        ),
    )
    .await?;
    let id = tx.last_insert_id().unwrap_or(0);
    let row: Option<WebhookRow> = tx
        .exec_first(
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?"),
            (id,),
        )
        .await?;
    tx.commit().await?;
    Ok(row.and_then(webhook))
}

/// The tenant's endpoints, oldest first.
pub async fn list_webhooks(conn: &mut Conn, tenant: TenantId) -> Result<Vec<Webhook>> {
    let rows: Vec<WebhookRow> = conn
        .exec(
            format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = ? AND NOT deleted ORDER BY id"
            ),
            (tenant,),
        )
        .await?;
    Ok(rows.into_iter().filter_map(webhook).collect())
}

/// The tenants that have an endpoint (deleted ones aside).
pub async fn webhook_tenants(conn: &mut Conn) -> Result<Vec<TenantId>> {
    Ok(conn
        .query("SELECT DISTINCT tenant_id FROM webhooks WHERE NOT deleted")
        .await?)
}

/// The tenant's endpoints not deleted, with their secrets (for the
/// deliveries).
pub async fn live_webhooks(conn: &mut Conn, tenant: TenantId) -> Result<Vec<(Webhook, String)>> {
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            format!(
                "SELECT {WEBHOOK_COLUMNS}, secret FROM webhooks \
                 WHERE tenant_id = ? AND NOT deleted ORDER BY id"
            ),
            (tenant,),
        )
        .await?;
    Ok(rows.into_iter().filter_map(with_secret).collect())
}

/// One live endpoint of the tenant, with its secret.
pub async fn find_webhook(
    conn: &mut Conn,
    tenant: TenantId,
    id: u64,
) -> Result<Option<(Webhook, String)>> {
    let row: Option<mysql_async::Row> = conn
        .exec_first(
            format!(
                "SELECT {WEBHOOK_COLUMNS}, secret FROM webhooks \
                 WHERE tenant_id = ? AND id = ? AND NOT deleted"
            ),
            (tenant, id),
        )
        .await?;
    Ok(row.and_then(with_secret))
}

/// A row of `WEBHOOK_COLUMNS` and the secret.
fn with_secret(row: mysql_async::Row) -> Option<(Webhook, String)> {
    let secret: String = row.get(8)?;
    let columns = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    );
    Some((webhook(columns)?, secret))
}

/// Deletes an endpoint (kept as deleted, with its deliveries); whether the
/// tenant had it.
pub async fn delete_webhook(conn: &mut Conn, tenant: TenantId, id: u64) -> Result<bool> {
    conn.exec_drop(
        "UPDATE webhooks SET deleted = TRUE WHERE tenant_id = ? AND id = ? AND NOT deleted",
        (tenant, id),
    )
    .await?;
    Ok(conn.affected_rows() == 1)
}

/// The endpoint's state after a run of deliveries: its cursor (moved only
/// forward), since when it fails (`None`: it does not), and whether its
/// retries stopped.
pub async fn save_webhook_state(
    conn: &mut Conn,
    id: u64,
    delivered_seq: u64,
    failing_since: Option<Timestamp>,
    failed: bool,
) -> Result<()> {
    conn.exec_drop(
        "UPDATE webhooks SET delivered_seq = GREATEST(delivered_seq, ?), failing_since = ?, failed = ? \
         WHERE id = ?",
        (
            delivered_seq,
            failing_since.map(Timestamp::naive_utc),
            failed,
            id,
        ),
    )
    .await?;
    Ok(())
}

/// Records attempts (one statement).
pub async fn record_deliveries(conn: &mut Conn, attempts: &[Delivery]) -> Result<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let rows = vec!["(?, ?, ?, ?, ?, ?)"; attempts.len()].join(",");
    let params: Vec<mysql_async::Value> = attempts
        .iter()
        .flat_map(|d| {
            [
                d.webhook.into(),
                d.event_seq.into(),
                d.attempted_at.naive_utc().into(),
                d.status.into(),
                d.error.clone().into(),
                d.duration_ms.into(),
            ]
        })
        .collect();
    conn.exec_drop(
        format!(
            "INSERT INTO webhook_deliveries \
             (webhook_id, event_seq, attempted_at, status, error, duration_ms) VALUES {rows}"
        ),
        mysql_async::Params::Positional(params),
    )
    .await?;
    Ok(())
}

type DeliveryRow = (
    u64,
    u64,
    u64,
    NaiveDateTime,
    Option<u16>,
    Option<String>,
    u32,
);

fn delivery(row: DeliveryRow) -> Delivery {
    let (id, webhook, event_seq, at, status, error, duration_ms) = row;
    Delivery {
        id,
        webhook,
        event_seq,
        attempted_at: Timestamp::from_naive_utc(at),
        status,
        error,
        duration_ms,
    }
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.webhook_id, d.event_seq, d.attempted_at, d.status, d.error, d.duration_ms";

/// The endpoint's latest attempts, newest first; `None` if the tenant has
/// no such endpoint.
pub async fn list_deliveries(
    conn: &mut Conn,
    tenant: TenantId,
    webhook: u64,
    limit: usize,
) -> Result<Option<Vec<Delivery>>> {
    let known: Option<u64> = conn
        .exec_first(
            "SELECT id FROM webhooks WHERE tenant_id = ? AND id = ? AND NOT deleted",
            (tenant, webhook),
        )
        .await?;
    if known.is_none() {
        return Ok(None);
    }
    let rows: Vec<DeliveryRow> = conn
        .exec(
            format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
                 WHERE d.webhook_id = ? ORDER BY d.id DESC LIMIT ?"
            ),
            (webhook, limit as u64),
        )
        .await?;
    Ok(Some(rows.into_iter().map(delivery).collect()))
}

/// One attempt of one of the tenant's endpoints.
pub async fn find_delivery(
    conn: &mut Conn,
    tenant: TenantId,
    webhook: u64,
    id: u64,
) -> Result<Option<Delivery>> {
    let row: Option<DeliveryRow> = conn
        .exec_first(
            format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
                 JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE w.tenant_id = ? AND w.id = ? AND NOT w.deleted AND d.id = ?"
            ),
            (tenant, webhook, id),
        )
        .await?;
    Ok(row.map(delivery))
}

/// Forgets attempts older than `days`.
pub async fn prune_deliveries(conn: &mut Conn, days: u32) -> Result<u64> {
    conn.exec_drop(
        "DELETE FROM webhook_deliveries WHERE attempted_at < UTC_TIMESTAMP(6) - INTERVAL ? DAY LIMIT 10000",
        (days,),
    )
    .await?;
    Ok(conn.affected_rows())
}
