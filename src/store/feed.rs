//! What the feed's sinks keep: how far each delivered each tenant's events
//! (`feed_cursors`), and the tenants it serves.

use std::collections::HashMap;

use mysql_async::prelude::*;
use mysql_async::Conn;

use super::refunds::id_list;
use super::Result;
use crate::domain::TenantId;

/// `sink`'s cursors of `tenants` (0 where it delivered nothing yet).
pub async fn feed_cursors(
    conn: &mut Conn,
    sink: &str,
    tenants: &[TenantId],
) -> Result<HashMap<TenantId, u64>> {
    let mut cursors: HashMap<TenantId, u64> = tenants.iter().map(|t| (*t, 0)).collect();
    if tenants.is_empty() {
        return Ok(cursors);
    }
    let rows: Vec<(TenantId, u64)> = conn
        .exec(
            format!(
                "SELECT tenant_id, seq FROM feed_cursors WHERE sink = ? AND tenant_id IN {}",
                id_list(tenants.iter().map(|t| t.get()))
            ),
            (sink,),
        )
        .await?;
    cursors.extend(rows);
    Ok(cursors)
}

/// Moves `sink`'s cursors forward (never back: a slower writer of the same
/// sink cannot undo a later one's).
pub async fn save_feed_cursors(
    conn: &mut Conn,
    sink: &str,
    cursors: &[(TenantId, u64)],
) -> Result<()> {
    if cursors.is_empty() {
        return Ok(());
    }
    let rows = vec!["(?, ?, ?, UTC_TIMESTAMP(6))"; cursors.len()].join(",");
    let params: Vec<mysql_async::Value> = cursors
        .iter()
        .flat_map(|(t, seq)| [sink.into(), (*t).into(), (*seq).into()])
        .collect();
    conn.exec_drop(
        format!(
            "INSERT INTO feed_cursors (sink, tenant_id, seq, updated) VALUES {rows} \
             ON DUPLICATE KEY UPDATE seq = GREATEST(seq, VALUES(seq)), updated = VALUES(updated)"
        ),
        mysql_async::Params::Positional(params),
    )
    .await?;
    Ok(())
}

/// Every tenant's id, in order.
pub async fn tenant_ids(conn: &mut Conn) -> Result<Vec<TenantId>> {
    Ok(conn.query("SELECT id FROM tenants ORDER BY id").await?)
}
