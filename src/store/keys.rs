//! API keys in `api_keys`: made by `pos keys create` and `pos seed`, read by
//! the servers on a cache miss, polled for revocations, listed and revoked
//! by `pos keys`. No statement here ever sees a secret, only its hash.

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, TxOpts};

use super::Result;
use crate::clock::UnixMs;
use crate::domain::{BranchId, KeyId, Role, Scope, SecretHash, TenantId};

/// A key as a server needs it to check a token.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: KeyId,
    pub hash: SecretHash,
    pub scope: Scope,
    pub revoked: bool,
    /// Its back-office sessions that began at or before this were ended
    /// by a sign-out; 0: none.
    pub sessions_ended: UnixMs,
}

/// A key as `pos keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyListing {
    pub id: KeyId,
    pub scope: Scope,
    pub label: String,
    pub created: NaiveDateTime,
    pub revoked: Option<NaiveDateTime>,
}

/// A key to store.
pub struct KeyInsert<'a> {
    pub id: &'a KeyId,
    pub hash: SecretHash,
    pub scope: Scope,
    pub label: &'a str,
}

/// What `revoke_key` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    Already,
    NoSuchKey,
}

/// Keys revoked, or whose sessions a sign-out ended, in a time window, and
/// the database's clock when asked.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    pub ids: Vec<KeyId>,
    pub now: Option<NaiveDateTime>,
}

const INSERT_KEY: &str =
    "INSERT INTO api_keys (id, secret_hash, role, tenant_id, branch_id, label, created) \
     VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))";

fn insert_params(k: &KeyInsert<'_>) -> mysql_async::Params {
    (
        k.id.as_str(),
        k.hash.0.to_vec(),
        k.scope.role().as_str(),
        k.scope.tenant(),
        k.scope.branch(),
        k.label,
    )
        .into()
}

/// Stores one key.
pub async fn insert_key(conn: &mut Conn, key: &KeyInsert<'_>) -> Result<()> {
    conn.exec_drop(INSERT_KEY, insert_params(key)).await?;
    Ok(())
}

/// Stores many keys in one transaction (`pos seed`).
pub async fn insert_keys(conn: &mut Conn, keys: &[KeyInsert<'_>]) -> Result<()> {
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await?;
    tx.exec_batch(INSERT_KEY, keys.iter().map(insert_params))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the tenant of `scope` exists and its branch (if any) is the tenant's.
pub async fn scope_exists(conn: &mut Conn, scope: Scope) -> Result<bool> {
    let found: Option<u64> = match (scope.tenant(), scope.branch()) {
        (None, _) => return Ok(true),
        (Some(t), None) => {
            conn.exec_first("SELECT id FROM tenants WHERE id = ?", (t,))
                .await?
        }
        (Some(t), Some(b)) => {
            conn.exec_first(
                "SELECT id FROM branches WHERE tenant_id = ? AND id = ?",
                (t, b),
            )
            .await?
        }
    };
    Ok(found.is_some())
}

type KeyRow = (
    String,
    Vec<u8>,
    String,
    Option<TenantId>,
    Option<BranchId>,
    Option<NaiveDateTime>,
    Option<u64>,
);

fn scope_of(role: &str, tenant: Option<TenantId>, branch: Option<BranchId>) -> Option<Scope> {
    Scope::new(Role::parse(role)?, tenant, branch).ok()
}

/// The key with this public id; `None` if there is none (or its row is
/// not one a server can use).
pub async fn find_key(conn: &mut Conn, id: &KeyId) -> Result<Option<StoredKey>> {
    let row: Option<KeyRow> = conn
        .exec_first(
            "SELECT k.id, k.secret_hash, k.role, k.tenant_id, k.branch_id, k.revoked, s.began_ms \
             FROM api_keys k LEFT JOIN session_ends s ON s.key_id = k.id WHERE k.id = ?",
            (id.as_str(),),
        )
        .await?;
    let Some((stored_id, hash, role, tenant, branch, revoked, sessions_ended)) = row else {
        return Ok(None);
    };
    let (Some(id), Ok(hash), Some(scope)) = (
        KeyId::parse(&stored_id),
        <[u8; 32]>::try_from(hash),
        scope_of(&role, tenant, branch),
    ) else {
        tracing::warn!(key = %stored_id, "api_keys row is malformed; the key is refused");
        return Ok(None);
    };
    Ok(Some(StoredKey {
        id,
        hash: SecretHash(hash),
        scope,
        revoked: revoked.is_some(),
        sessions_ended: UnixMs(sessions_ended.unwrap_or(0)),
    }))
}

/// Ids of keys revoked, or whose sessions a sign-out ended, at or after
/// `since` (none when `None`: the first poll only learns the database's
/// clock), with the database's UTC clock, which the next call passes back.
pub async fn revoked_since(conn: &mut Conn, since: Option<NaiveDateTime>) -> Result<Revocations> {
    let now: Option<NaiveDateTime> = conn.query_first("SELECT UTC_TIMESTAMP(6)").await?;
    let ids: Vec<String> = match since {
        Some(t) => {
            conn.exec(
                "SELECT id FROM api_keys WHERE revoked >= ? \
                 UNION SELECT key_id FROM session_ends WHERE ended >= ?",
                (t, t),
            )
            .await?
        }
        None => Vec::new(),
    };
    let ids = ids.iter().filter_map(|id| KeyId::parse(id)).collect();
    Ok(Revocations { ids, now })
}

/// Ends the back-office sessions of key `id` that began at or before
/// `began` (a later sign-out only moves that forward).
pub async fn end_sessions(conn: &mut Conn, id: &KeyId, began: UnixMs) -> Result<()> {
    conn.exec_drop(
        "INSERT INTO session_ends (key_id, began_ms, ended) VALUES (?, ?, UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE began_ms = GREATEST(began_ms, VALUES(began_ms)), ended = VALUES(ended)",
        (id.as_str(), began.0),
    )
    .await?;
    Ok(())
}

type ListingRow = (
    String,
    String,
    Option<TenantId>,
    Option<BranchId>,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

/// Every key (or a tenant's), oldest first.
pub async fn list_keys(conn: &mut Conn, tenant: Option<TenantId>) -> Result<Vec<KeyListing>> {
    let rows: Vec<ListingRow> = conn
        .exec(
            format!(
                "SELECT {LISTING_COLUMNS} FROM api_keys \
                 WHERE ? IS NULL OR tenant_id = ? ORDER BY created, id"
            ),
            (tenant, tenant),
        )
        .await?;
    Ok(rows.into_iter().filter_map(listing).collect())
}

/// Marks a key revoked (once: the first revocation time is kept).
pub async fn revoke_key(conn: &mut Conn, id: &KeyId) -> Result<Revoked> {
    conn.exec_drop(
        "UPDATE api_keys SET revoked = UTC_TIMESTAMP(6) WHERE id = ? AND revoked IS NULL",
        (id.as_str(),),
    )
    .await?;
    if conn.affected_rows() == 1 {
        return Ok(Revoked::Now);
    }
    let exists: Option<String> = conn
        .exec_first("SELECT id FROM api_keys WHERE id = ?", (id.as_str(),))
        .await?;
    Ok(if exists.is_some() {
        Revoked::Already
    } else {
        Revoked::NoSuchKey
    })
}

const LISTING_COLUMNS: &str = "id, role, tenant_id, branch_id, label, created, revoked";

fn listing((id, role, tenant, branch, label, created, revoked): ListingRow) -> Option<KeyListing> {
    Some(KeyListing {
        scope: scope_of(&role, tenant, branch)?,
        id: KeyId::parse(&id)?,
        label,
        created,
        revoked,
    })
}

/// At most `limit` of a tenant's keys with ids after `after`, by id (the API's pages).
pub async fn list_tenant_keys(
    conn: &mut Conn,
    tenant: TenantId,
    role: Option<Role>,
    after: Option<&KeyId>,
    limit: usize,
) -> Result<Option<Vec<KeyListing>>> {
    if !scope_exists(conn, Scope::Backoffice { tenant }).await? {
        return Ok(None);
    }
    // `role IS NULL`-free: an absent role matches every row.
    let rows: Vec<ListingRow> = conn
        .exec(
            format!(
                "SELECT {LISTING_COLUMNS} FROM api_keys WHERE tenant_id = ? AND id > ? \
                 AND (? = '' OR role = ?) ORDER BY id LIMIT ?"
            ),
            (
                tenant,
                after.map_or("", KeyId::as_str),
                role.map_or("", Role::as_str),
                role.map_or("", Role::as_str),
                limit as u64,
            ),
        )
        .await?;
    Ok(Some(rows.into_iter().filter_map(listing).collect()))
}

/// One key of a tenant; `None` if the tenant has no key with this id.
pub async fn find_tenant_key(
    conn: &mut Conn,
    tenant: TenantId,
    id: &KeyId,
) -> Result<Option<KeyListing>> {
    let row: Option<ListingRow> = conn
        .exec_first(
            format!("SELECT {LISTING_COLUMNS} FROM api_keys WHERE tenant_id = ? AND id = ?"),
            (tenant, id.as_str()),
        )
        .await?;
    Ok(row.and_then(listing))
}

/// What revoking one of a tenant's keys found.
#[derive(Debug, Clone)]
pub enum TenantKeyRevocation {
    /// Revoked now or before (the first revocation time is kept).
    Revoked(KeyListing),
    /// The key's role is not one the caller may revoke.
    NotAllowed,
    NoSuchKey,
}

/// Revokes a tenant's key if its role is one of `allowed`.
pub async fn revoke_tenant_key(
    conn: &mut Conn,
    tenant: TenantId,
    id: &KeyId,
    allowed: &[Role],
) -> Result<TenantKeyRevocation> {
    let Some(key) = find_tenant_key(conn, tenant, id).await? else {
        return Ok(TenantKeyRevocation::NoSuchKey);
    };
    if !allowed.contains(&key.scope.role()) {
        return Ok(TenantKeyRevocation::NotAllowed);
    }
    if key.revoked.is_some() {
        return Ok(TenantKeyRevocation::Revoked(key));
    }
    conn.exec_drop("CALL pos_revoke_key(?, ?)", (id.as_str(), tenant))
        .await?;
    let key = find_tenant_key(conn, tenant, id).await?;
    Ok(key.map_or(TenantKeyRevocation::NoSuchKey, TenantKeyRevocation::Revoked))
}

/// A key of a tenant to store (made through the API).
#[derive(Debug, Clone)]
pub struct NewTenantKey {
    pub id: KeyId,
    pub hash: SecretHash,
    pub scope: Scope,
    pub label: String,
    /// Keys not revoked the tenant may hold, this one included.
    pub max_keys: usize,
}

/// How the key procedure (V18) says a tenant holds its most keys.
const KEY_LIMIT_SIGNAL: &str = "pos: the tenant holds its most keys";

/// Why a tenant's key was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    NoSuchTenant,
    /// The tenant holds `max_keys` keys not revoked already.
    TooMany,
}

/// Stores a tenant's key if its tenant exists (the caller checked its
/// branch, which is in the pod's database); the key as listed.
pub async fn insert_tenant_key(
    conn: &mut Conn,
    key: &NewTenantKey,
) -> Result<std::result::Result<KeyListing, KeyRefusal>> {
    let Some(tenant) = key.scope.tenant() else {
        return Err(super::StoreError::invariant(
            "a tenant's key names a tenant",
        ));
    };
    let tenant_only = Scope::Backoffice { tenant };
    if !scope_exists(conn, tenant_only).await? {
        return Ok(Err(KeyRefusal::NoSuchTenant));
    }
    // Through the procedure: the service's user may not write api_keys.
    // In a transaction: the tenant's row it locks keeps the count true
    // until the key is in.
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let made = tx
        .exec_drop(
            "CALL pos_make_tenant_key(?, ?, ?, ?, ?, ?, ?)",
            (
                key.id.as_str(),
                key.hash.0.to_vec(),
                key.scope.role().as_str(),
                key.scope.tenant(),
                key.scope.branch(),
                key.label.as_str(),
                u32::try_from(key.max_keys).unwrap_or(u32::MAX),
            ),
        )
        .await;
    match made {
        Err(mysql_async::Error::Server(e)) if e.message.starts_with(KEY_LIMIT_SIGNAL) => {
            return Ok(Err(KeyRefusal::TooMany));
        }
        other => other?,
    }
    tx.commit().await?;
    let made = find_tenant_key(conn, tenant, &key.id).await?;
    made.map(Ok)
        .ok_or_else(|| super::StoreError::invariant("a key just made is gone"))
}
