//! What the database commands (`pos keys`, `pos shards`, `pos seed`) share:
//! their error type, and the way to the database (migrated first if a
//! migration is pending, one pooled connection, the pool closed after).

use mysql_async::{Conn, Pool};

use crate::store::{self, MigrateError, StoreError};

/// Why a command failed; `main` prints it as one line after the command's
/// name (`keys: cannot reach MySQL: …`).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot prepare the database: {0}")]
    Prepare(#[from] MigrateError),
    #[error("{0}")]
    Url(#[from] mysql_async::UrlError),
    #[error("cannot reach MySQL: {0}")]
    Connect(mysql_async::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    KeysFile(#[from] super::keys_file::KeysFileError),
    /// What the user asked for cannot be done (the message says why).
    #[error("{0}")]
    Refused(String),
}

impl From<mysql_async::Error> for CliError {
    fn from(e: mysql_async::Error) -> Self {
        CliError::Store(e.into())
    }
}

impl CliError {
    pub fn refused(message: impl Into<String>) -> Self {
        CliError::Refused(message.into())
    }
}

/// A pool of one connection on `url`, after migrating with `migration_url`
/// if anything is pending. Close it with `Pool::disconnect`.
pub async fn prepared_pool(url: &str, migration_url: &str) -> Result<Pool, CliError> {
    store::migrate_if_pending(url, migration_url).await?;
    Ok(Pool::new(store::pool_opts(url, 1)?))
}

/// Runs `work` on a connection of a [`prepared_pool`], then closes it.
pub async fn with_connection<T>(
    url: &str,
    migration_url: &str,
    work: impl AsyncFnOnce(&mut Conn) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let pool = prepared_pool(url, migration_url).await?;
    let result = async {
        let mut conn = pool.get_conn().await.map_err(CliError::Connect)?;
        work(&mut conn).await
    }
    .await;
    let _ = pool.disconnect().await;
    result
}
