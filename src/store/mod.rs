//! Every SQL statement of the service, and the migrations runner. Nothing
//! outside this module writes SQL; nothing in it knows HTTP. Rows come back
//! as domain types.

mod catalog;
mod events;
mod feed;
mod keys;
mod migrate;
mod refunds;
mod reports;
mod rollups;
mod sales;
mod seed;
mod shards;
mod tenants;
mod values;
mod webhooks;

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, PoolConstraints, PoolOpts};

use crate::domain::TenantId;

pub use catalog::{
    adopt_tenant, create_branch, create_products, create_tenant, create_tenant_on_a_pod,
    fill_currencies, find_tenant, find_tenants, list_tenants, load_catalog, record_tenant,
    update_branch, update_product, update_tenant, CatalogRefusal, Conflicts, TenantRefusal,
    TenantRow,
};
pub use events::{
    event_heads, feed_page, insert_catalog_event, number_catalog_events, read_events,
    tenants_with_unnumbered_events, FeedPage,
};
pub use feed::{feed_cursors, save_feed_cursors, tenant_ids};
pub use keys::{
    end_sessions, find_key, find_tenant_key, insert_key, insert_keys, insert_tenant_key, list_keys,
    list_tenant_keys, revoke_key, revoke_tenant_key, revoked_since, scope_exists, KeyInsert,
    KeyListing, KeyRefusal, NewTenantKey, Revocations, Revoked, StoredKey, TenantKeyRevocation,
};
pub use migrate::{ensure_database, grant_service_user, migrate, migrate_if_pending, MigrateError};
pub use refunds::{
    find_refundable, find_refunds_by_keys, insert_refunds, list_sales, sale_with_refunds,
};
pub use reports::{report_params, report_sql, sales_report, ReportOutcome};
pub use rollups::{
    newest_ids, reset as reset_rollups, reshard, roll, roll_all, verify as verify_rollups,
    RollMarks, Rolled, Verified,
};
pub use sales::{find_by_keys, insert_sales, read_mark, BatchMark, CommitFailure, Lease, Mark};
pub use seed::{count_tenants, insert_seed_chunk, SeedChunk};
pub use shards::{
    acquire_lease, fence_pod, release_lease, renew_lease, resize_shards, Acquired, LeaseHolder,
    Resized,
};
pub use tenants::{load_all_totals, load_tenant};
pub use webhooks::{
    create_webhook, delete_webhook, find_delivery, find_webhook, list_deliveries, list_webhooks,
    live_webhooks, prune_deliveries, record_deliveries, save_webhook_state, webhook_tenants,
};

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
    /// A refund would take back more of a sale than is left of it.
    #[error("a refund would pass what is left of its sale")]
    OverRefunded,
}

impl From<mysql_async::Error> for StoreError {
    fn from(e: mysql_async::Error) -> Self {
        use mysql_async::Error as E;
        match &e {
            // An event number given twice: the writer numbered from a stale
            // head; it learns the heads again and retries.
            E::Server(s) if s.code == 1062 && s.message.contains("_event'") => {
                StoreError::Unavailable(e)
            }
            E::Server(s) if s.code == 1062 => StoreError::DuplicateKey(duplicate_entry(&s.message)),
            // `refunds.rs` raises a sale's refunded quantity to NULL
            // rather than past what it sold.
            E::Server(s) if s.code == 1048 && s.message.contains("'quantity_refunded'") => {
                StoreError::OverRefunded
            }
            // Deadlock, lock wait timeout, too many connections, shutdown,
            // killed, interrupted, or past its time limit (MariaDB's 1969,
            // MySQL's 3024): the statement may succeed if run again.
            E::Server(s)
                if matches!(
                    s.code,
                    1213 | 1205
                        | 1040
                        | 1053
                        | 1317
                        | 1927
                        | 2006
                        | 2013
                        | 1290
                        | 1836
                        | 1969
                        | 3024
                ) =>
            {
                StoreError::Unavailable(e)
            }
            E::Server(_) | E::Url(_) => StoreError::Rejected(e),
            _ => StoreError::Unavailable(e),
        }
    }
}

impl StoreError {
    /// A failure worth retrying later that MySQL did not report itself.
    pub fn unavailable(why: &str) -> StoreError {
        StoreError::Unavailable(mysql_async::Error::Other(why.into()))
    }

    /// MySQL answered something the statements here rule out.
    pub fn invariant(why: &str) -> StoreError {
        StoreError::Rejected(mysql_async::Error::Other(why.into()))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The (tenant, key) of `Duplicate entry '12-till-1:34' for key
/// 'uq_sales_tenant_idempotency'`, MySQL's and MariaDB's wording of a
/// refused idempotency key.
fn duplicate_entry(message: &str) -> Option<(TenantId, String)> {
    let rest = message.strip_prefix("Duplicate entry '")?;
    let (entry, index) = rest.split_once("' for key ")?;
    if !index.contains("uq_sales_tenant_idempotency")
        && !index.contains("uq_refunds_tenant_idempotency")
    {
        return None;
    }
    let (tenant, key) = entry.split_once('-')?;
    Some((TenantId::parse(tenant)?, key.to_string()))
}

/// The SQL mode of every connection: a value that does not fit its column
/// is an error, never clamped or truncated, whatever the server's default.
pub const SQL_MODE: &str = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION";

/// Connection options for `url` with a pool of at most `pool_max` connections.
/// Connections go where the URL says, over TCP: mysql_async would otherwise
/// ask the server for its socket and, for a local host, switch to it, going
/// around a proxy on this machine (HAProxy before Galera, ProxySQL) to
/// whatever server owns that socket. `?prefer_socket=true` asks for it.
pub fn pool_opts(url: &str, pool_max: usize) -> Result<Opts, mysql_async::UrlError> {
    let opts = Opts::from_url(url)?;
    let socket_asked = url.contains("prefer_socket=");
    let prefer_socket = socket_asked && opts.prefer_socket();
    let constraints = PoolConstraints::new(0, pool_max.max(1)).unwrap_or_default();
    Ok(OptsBuilder::from_opts(opts)
        .prefer_socket(prefer_socket)
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

/// What start-up learns about the database server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerTraits {
    /// Ids of one statement are never interleaved with other connections'
    /// (`innodb_autoinc_lock_mode` below 2).
    pub statement_ids_in_order: bool,
    /// A MariaDB Galera node (`wsrep_on`): settling reads wait for the
    /// cluster's certified writes (`wsrep_sync_wait`).
    pub galera: bool,
    /// Why a commit the server acknowledged might still be lost, if it
    /// might (for a warning at start).
    pub durability_doubts: Vec<String>,
}

/// Reads the settings that decide how the service writes and settles.
pub async fn server_traits(conn: &mut Conn) -> Result<ServerTraits> {
    let vars: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('innodb_autoinc_lock_mode', \
             'innodb_flush_log_at_trx_commit', 'wsrep_on', 'log_bin', \
             'rpl_semi_sync_master_enabled', 'rpl_semi_sync_master_wait_point')",
        )
        .await?;
    let var = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_uppercase())
    };
    let on = |name: &str| var(name).is_some_and(|v| v == "ON" || v == "1");
    let galera = on("wsrep_on");
    let mut doubts = Vec::new();
    if var("innodb_flush_log_at_trx_commit").is_some_and(|v| v != "1") {
        doubts.push(
            "innodb_flush_log_at_trx_commit is not 1: a server crash may lose commits already answered 201"
                .to_string(),
        );
    }
    let semi_sync_after_sync = on("rpl_semi_sync_master_enabled")
        && var("rpl_semi_sync_master_wait_point").is_some_and(|v| v == "AFTER_SYNC");
    if !galera && on("log_bin") && !semi_sync_after_sync {
        doubts.push(
            "binary logging is on without Galera or semi-synchronous replication (AFTER_SYNC): \
             a failover to an asynchronous replica may lose sales already answered 201"
                .to_string(),
        );
    }
    Ok(ServerTraits {
        statement_ids_in_order: var("innodb_autoinc_lock_mode")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|mode| mode < 2),
        galera,
        durability_doubts: doubts,
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
    fn connections_use_tcp_unless_the_url_asks_for_the_socket() {
        let tcp = pool_opts("mysql://root@127.0.0.1:3306/pos", 1).expect("valid");
        assert!(!tcp.prefer_socket());
        let socket =
            pool_opts("mysql://root@127.0.0.1:3306/pos?prefer_socket=true", 1).expect("valid");
        assert!(socket.prefer_socket());
    }

    #[test]
    fn a_refused_idempotency_key_is_read_from_mysqls_message() {
        assert_eq!(
            duplicate_entry(
                "Duplicate entry '12-till-1:00:34' for key 'uq_sales_tenant_idempotency'"
            ),
            Some((
                TenantId::new(12).expect("positive"),
                "till-1:00:34".to_string()
            ))
        );
        // MySQL 8 names the index with its table.
        assert_eq!(
            duplicate_entry(
                "Duplicate entry '7-k' for key 'sales_transactions.uq_sales_tenant_idempotency'"
            ),
            Some((TenantId::new(7).expect("positive"), "k".to_string()))
        );
        assert_eq!(
            duplicate_entry("Duplicate entry '7' for key 'PRIMARY'"),
            None
        );
        assert_eq!(duplicate_entry("Lock wait timeout exceeded"), None);
    }

    #[test]
    fn an_event_number_given_twice_is_retried_and_a_key_given_twice_is_a_duplicate() {
        let refused = |message: &str| {
            StoreError::from(mysql_async::Error::Server(mysql_async::ServerError {
                code: 1062,
                message: message.into(),
                state: "23000".into(),
            }))
        };
        for index in ["uq_sales_tenant_event", "refunds.uq_refunds_tenant_event"] {
            let e = refused(&format!("Duplicate entry '3-41' for key '{index}'"));
            assert!(matches!(e, StoreError::Unavailable(_)), "{index}: {e:?}");
        }
        let key = refused("Duplicate entry '3-k' for key 'uq_sales_tenant_idempotency'");
        assert!(matches!(key, StoreError::DuplicateKey(Some(_))), "{key:?}");
    }
}
