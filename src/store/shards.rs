//! One owner per shard, in MySQL: the deployment's shard count and a lease
//! per shard (see migration V12). Times are the database's, so instances
//! on machines whose clocks differ still agree on when a lease ends.

use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use super::Result;
use crate::domain::Shard;

/// Who asks for a lease: the address it serves on (a restarted process on
/// the same address is its own predecessor's successor) and this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub address: String,
    pub instance: u64,
}

/// What asking for a shard's lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is ours, with this fencing number.
    Held { fence: u64 },
    /// Another live instance holds it, for this many more milliseconds.
    Busy { holder: String, for_ms: u64 },
    /// The deployment was recorded with another shard count.
    Mismatch { recorded: u64 },
}

/// Takes `shard`'s lease for `ttl_secs` if it is free, expired, or held at
/// `me`'s address by an earlier process (which is gone: this process
/// serves on that address now). The first instance of a deployment records
/// its shard count.
pub async fn acquire_lease(
    conn: &mut Conn,
    shard: Shard,
    me: &LeaseHolder,
    ttl_secs: u64,
) -> Result<Acquired> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let recorded: Option<u64> = tx
        .query_first("SELECT shard_count FROM shard_deployment WHERE id = 1 FOR UPDATE")
        .await?;
    match recorded {
        Some(n) if n != shard.count => return Ok(Acquired::Mismatch { recorded: n }),
        Some(_) => {}
        None => {
            tx.exec_drop(
                "INSERT INTO shard_deployment (id, shard_count, updated) VALUES (1, ?, UTC_TIMESTAMP(6))",
                (shard.count,),
            )
            .await?;
        }
    }
    type Row = (String, u64, i64);
    let current: Option<Row> = tx
        .exec_first(
            "SELECT holder, instance, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires) \
             FROM shard_leases WHERE shard_index = ? FOR UPDATE",
            (shard.index,),
        )
        .await?;
    if let Some((holder, instance, left_us)) = current {
        let ours = instance == me.instance || holder == me.address;
        if left_us > 0 && !ours {
            return Ok(Acquired::Busy {
                holder,
                for_ms: (left_us / 1000) as u64,
            });
        }
    }
    tx.exec_drop(
        "INSERT INTO shard_leases (shard_index, holder, instance, fence, expires) \
         VALUES (?, ?, ?, 1, UTC_TIMESTAMP(6) + INTERVAL ? SECOND) \
         ON DUPLICATE KEY UPDATE holder = VALUES(holder), instance = VALUES(instance), \
         fence = fence + 1, expires = VALUES(expires)",
        (shard.index, &me.address, me.instance, ttl_secs),
    )
    .await?;
    let fence: Option<u64> = tx
        .exec_first(
            "SELECT fence FROM shard_leases WHERE shard_index = ?",
            (shard.index,),
        )
        .await?;
    tx.commit().await?;
    Ok(Acquired::Held {
        fence: fence.unwrap_or(0),
    })
}

/// Copies the lease's fencing number into a pod's own database, where
/// every batch checks it (SPEC 9a): the control database elects the
/// holder, the pod's row fences the ones before it. Run by a new holder
/// before it reads anything or writes: a batch of an earlier holder either
/// committed before this (it holds the row's shared lock until then) or
/// fails the check after. The number only grows; false if the pod already
/// carries a later one (a newer holder fenced it).
pub async fn fence_pod(
    conn: &mut Conn,
    shard: Shard,
    me: &LeaseHolder,
    fence: u64,
) -> Result<bool> {
    conn.exec_drop(
        "INSERT INTO shard_leases (shard_index, holder, instance, fence, expires) \
         VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE holder = IF(VALUES(fence) >= fence, VALUES(holder), holder), \
         instance = IF(VALUES(fence) >= fence, VALUES(instance), instance), \
         fence = GREATEST(fence, VALUES(fence))",
        (shard.index, &me.address, me.instance, fence),
    )
    .await?;
    let now: Option<u64> = conn
        .exec_first(
            "SELECT fence FROM shard_leases WHERE shard_index = ?",
            (shard.index,),
        )
        .await?;
    Ok(now == Some(fence))
}

/// Extends the lease held with `fence`; false if another instance took it.
pub async fn renew_lease(
    conn: &mut Conn,
    shard: Shard,
    me: &LeaseHolder,
    fence: u64,
    ttl_secs: u64,
) -> Result<bool> {
    conn.exec_drop(
        "UPDATE shard_leases SET expires = UTC_TIMESTAMP(6) + INTERVAL ? SECOND \
         WHERE shard_index = ? AND instance = ? AND fence = ?",
        (ttl_secs, shard.index, me.instance, fence),
    )
    .await?;
    Ok(conn.affected_rows() == 1)
}

/// Ends the lease held with `fence` now (a clean stop): the next instance
/// need not wait for it to expire.
pub async fn release_lease(
    conn: &mut Conn,
    shard: Shard,
    me: &LeaseHolder,
    fence: u64,
) -> Result<()> {
    conn.exec_drop(
        "UPDATE shard_leases SET expires = UTC_TIMESTAMP(6) \
         WHERE shard_index = ? AND instance = ? AND fence = ?",
        (shard.index, me.instance, fence),
    )
    .await?;
    Ok(())
}

/// What `pos shards resize` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resized {
    /// The deployment now has this many shards (it had `from`, if any).
    Done { from: Option<u64> },
    /// Leases are still held: every instance must stop first.
    Held(Vec<(u64, String)>),
}

/// Records `count` shards, only while no instance holds a lease.
pub async fn resize_shards(conn: &mut Conn, count: u64) -> Result<Resized> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let held: Vec<(u64, String)> = tx
        .query(
            "SELECT shard_index, holder FROM shard_leases \
             WHERE expires > UTC_TIMESTAMP(6) ORDER BY shard_index FOR UPDATE",
        )
        .await?;
    if !held.is_empty() {
        return Ok(Resized::Held(held));
    }
    let from: Option<u64> = tx
        .query_first("SELECT shard_count FROM shard_deployment WHERE id = 1 FOR UPDATE")
        .await?;
    tx.exec_drop(
        "INSERT INTO shard_deployment (id, shard_count, updated) VALUES (1, ?, UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE shard_count = VALUES(shard_count), updated = VALUES(updated)",
        (count,),
    )
    .await?;
    tx.commit().await?;
    Ok(Resized::Done { from })
}
