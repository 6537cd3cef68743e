//! Schema migrations (`migrations/*.sql`, embedded at build time) run by
//! refinery over the service's own `mysql_async` driver.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Pool};

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("bad database URL: {0}")]
    Url(#[from] mysql_async::UrlError),
    #[error("the database URL names no database")]
    NoDatabase,
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    #[error("another process holds the migration lock")]
    Locked,
}

/// Creates the database named in `url` if it does not exist.
pub async fn ensure_database(url: &str) -> Result<(), MigrateError> {
    let opts = Opts::from_url(url)?;
    let name = opts.db_name().ok_or(MigrateError::NoDatabase)?.to_string();
    let server = OptsBuilder::from_opts(opts).db_name(None::<String>);
    let mut conn = Conn::new(server).await?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{}`",
        name.replace('`', "``")
    ))
    .await?;
    conn.disconnect().await?;
    Ok(())
}

/// Applies pending migrations with `migration_url` only if `url` shows some
/// pending: a service user that may only read and write its tables starts
/// without needing DDL rights once the schema is current. Anything that
/// cannot be read (no database yet, no history table) counts as pending.
/// With a migration URL of its own, the service's user is then narrowed to
/// its rights (see [`grant_service_user`]); if that fails (the migration
/// user may not grant, its password changed), a warning says so and the
/// service starts with the rights it has.
pub async fn migrate_if_pending(
    url: &str,
    migration_url: &str,
) -> Result<Vec<String>, MigrateError> {
    let applied = if pending(url).await.unwrap_or(true) {
        migrate(migration_url).await?
    } else {
        Vec::new()
    };
    if url != migration_url {
        if let Err(e) = grant_service_user(url, migration_url).await {
            tracing::warn!(error = %e, "the service's MySQL user keeps the rights it has (its grants could not be narrowed)");
        }
    }
    Ok(applied)
}

/// When the service runs as another MySQL account than migrations do,
/// gives every account of the service's user name what it needs and no
/// more: `SELECT, INSERT, UPDATE` on each of the database's tables but two,
/// `SELECT` on `api_keys` and on the migration history, and `EXECUTE` on
/// the two key procedures (V16), so that it can neither mint an operator
/// key nor take a revocation back. Grants on the whole database are taken
/// away (they would cover `api_keys` too). Run after migrations, so a new
/// table is granted with them.
pub async fn grant_service_user(url: &str, migration_url: &str) -> Result<(), MigrateError> {
    // As the service connects (over TCP unless its URL asks for the
    // socket): MySQL may match another account through the socket.
    let service = super::pool_opts(url, 1)?;
    let db = service
        .db_name()
        .ok_or(MigrateError::NoDatabase)?
        .to_string();
    let service_account =
        current_user(OptsBuilder::from_opts(service).db_name(None::<String>)).await?;
    let mut admin = Conn::new(Opts::from_url(migration_url)?).await?;
    let admin_account: Option<String> = admin.query_first("SELECT CURRENT_USER()").await?;
    let Some((user, _)) = service_account.as_deref().and_then(|a| a.rsplit_once('@')) else {
        return Ok(());
    };
    // One account through two URLs: nothing to narrow (and a REVOKE would
    // lock the migrations out).
    if service_account == admin_account
        || admin_account
            .as_deref()
            .and_then(|a| a.rsplit_once('@'))
            .map(|(u, _)| u)
            == Some(user)
    {
        let _ = admin.disconnect().await;
        return Ok(());
    }
    let hosts: Vec<String> = admin
        .exec("SELECT Host FROM mysql.user WHERE User = ?", (user,))
        .await?;
    let tables: Vec<String> = admin
        .exec(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = ? AND table_type = 'BASE TABLE'",
            (db.as_str(),),
        )
        .await?;
    let db = db.replace('`', "``");
    for host in hosts {
        let to = format!("{}@{}", quoted(user), quoted(&host));
        match admin
            .query_drop(format!("REVOKE ALL PRIVILEGES ON `{db}`.* FROM {to}"))
            .await
        {
            // 1141: there was no grant on the whole database.
            Err(mysql_async::Error::Server(e)) if e.code == 1141 => {}
            other => other?,
        }
        for table in &tables {
            let rights = match table.as_str() {
                "api_keys" | "refinery_schema_history" => "SELECT",
                // Attempts older than a week are forgotten.
                "webhook_deliveries" => "SELECT, INSERT, UPDATE, DELETE",
                _ => "SELECT, INSERT, UPDATE",
            };
            let table = table.replace('`', "``");
            admin
                .query_drop(format!("GRANT {rights} ON `{db}`.`{table}` TO {to}"))
                .await?;
        }
        for procedure in ["pos_make_tenant_key", "pos_revoke_key"] {
            admin
                .query_drop(format!(
                    "GRANT EXECUTE ON PROCEDURE `{db}`.`{procedure}` TO {to}"
                ))
                .await?;
        }
    }
    let _ = admin.disconnect().await;
    Ok(())
}

/// The account MySQL matched for a connection made with `opts`.
async fn current_user(opts: OptsBuilder) -> Result<Option<String>, MigrateError> {
    let mut conn = Conn::new(opts).await?;
    let account = conn.query_first("SELECT CURRENT_USER()").await?;
    let _ = conn.disconnect().await;
    Ok(account)
}

/// A user or host name as an SQL string (quotes and backslashes escaped).
fn quoted(name: &str) -> String {
    format!("'{}'", name.replace('\\', "\\\\").replace('\'', "''"))
}

/// Whether the database at `url` lacks any embedded migration.
async fn pending(url: &str) -> Result<bool, MigrateError> {
    let mut conn = Conn::new(Opts::from_url(url)?).await?;
    let applied: Result<Vec<i64>, _> = conn
        .query("SELECT version FROM refinery_schema_history")
        .await;
    let _ = conn.disconnect().await;
    let applied = applied?;
    Ok(embedded::migrations::runner()
        .get_migrations()
        .iter()
        .any(|m| !applied.contains(&i64::from(m.version()))))
}

/// Creates the database if needed and applies pending migrations; returns the
/// names of those applied. Two processes starting together are serialized by
/// a named lock (refinery takes none).
pub async fn migrate(url: &str) -> Result<Vec<String>, MigrateError> {
    ensure_database(url).await?;
    let mut pool = Pool::new(super::pool_opts(url, 2)?);
    let result = migrate_locked(&mut pool).await;
    let _ = pool.disconnect().await;
    result
}

async fn migrate_locked(pool: &mut Pool) -> Result<Vec<String>, MigrateError> {
    let mut lock_conn = pool.get_conn().await?;
    let got: Option<i64> = lock_conn
        .query_first("SELECT GET_LOCK('pos_migrate', 60)")
        .await?;
    if got != Some(1) {
        return Err(MigrateError::Locked);
    }
    let report = tokio::time::timeout(
        Duration::from_secs(600),
        embedded::migrations::runner().run_async(pool),
    )
    .await;
    let _ = lock_conn
        .query_drop("SELECT RELEASE_LOCK('pos_migrate')")
        .await;
    drop(lock_conn);
    let report = report.map_err(|_| MigrateError::Locked)??;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect())
}
