//! Every SQL statement of the service, and the migrations runner. Nothing
//! outside this module writes SQL; nothing in it knows HTTP. Rows come back
//! as domain types.

mod keys;
mod migrate;
mod sales;
mod seed;
mod tenants;
mod values;

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, PoolConstraints, PoolOpts};

use crate::domain::TenantId;

pub use keys::{
    find_key, insert_key, insert_keys, list_keys, revoke_key, revoked_since, scope_exists,
    KeyInsert, KeyListing, Revocations, Revoked, StoredKey,
};
pub use migrate::{ensure_database, migrate, migrate_if_pending, MigrateError};
pub use sales::{batch_committed, find_by_keys, insert_sales, BatchMark, CommitFailure};
pub use seed::{count_tenants, insert_seed_chunk, load_shops, SeedChunk, Shop};
pub use tenants::{load_all_totals, load_catalog, load_tenant};

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
    Some((TenantId::parse(tenant)?, key.to_string()))
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
}
