//! `pos keys create|list|revoke`: API keys for tills, back offices and the
//! operator. A token is printed once, when its key is made, alone on the
//! last line of standard output; only a hash of its secret is stored, and
//! nothing here ever prints a secret again.

use std::fmt::Write as _;

use chrono::NaiveDateTime;

use super::database::{with_connection, CliError};
use crate::auth::NewKey;
use crate::domain::{BranchId, KeyId, Role, Scope, TenantId};
use crate::store::{self, KeyInsert, KeyListing, Revoked};

/// Longest label (the column's width).
const MAX_LABEL_CHARS: usize = 255;

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Make a key; its token is printed alone on the last line, this once only.
    Create {
        /// till (posts sales and refunds, reads the catalog and sales of its
        /// tenant, or of one branch with --branch), backoffice (runs one
        /// tenant: reads its sales and reports, changes its catalog and
        /// time zone, makes and revokes its till keys, signs in to /app/)
        /// or operator (makes tenants, reads and changes every tenant,
        /// never posts sales).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The tenant of a till or backoffice key (an operator key has none).
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Binds a till key to one branch of its tenant.
        #[arg(long)]
        branch: Option<BranchId>,
        /// A note for people, e.g. "Station Road till 2".
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys (id, role, tenant, branch, label, created, revoked); never secrets.
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Revoke a key; every server refuses it within 2 s.
    Revoke {
        /// The key's id (the part after `pos_` in its token).
        key_id: KeyId,
    },
}

/// A `--role` that names none.
#[derive(Debug, thiserror::Error)]
#[error("expected till, backoffice or operator, got {0:?}")]
pub struct NotARole(String);

fn parse_role(text: &str) -> Result<Role, NotARole> {
    Role::parse(text).ok_or_else(|| NotARole(text.to_string()))
}

/// Where `pos keys` looks a key's branch up: the tenant's pod (with one
/// database, the same URL as the keys'), and whether that is a pod.
pub struct Branches<'a> {
    pub url: &'a str,
    pub pods: bool,
}

/// Runs a `pos keys` command on the control database (`url`); the output
/// for stdout.
pub async fn run(
    command: &KeysCommand,
    url: &str,
    migration_url: &str,
    branches: Branches<'_>,
) -> Result<String, CliError> {
    if let KeysCommand::Create {
        role,
        tenant,
        branch: branch @ Some(_),
        ..
    } = command
    {
        let scope =
            Scope::new(*role, *tenant, *branch).map_err(|e| CliError::refused(e.to_string()))?;
        let found = with_connection(branches.url, branches.url, async |conn| {
            refuse_unknown(conn, scope).await
        })
        .await;
        if let (Err(CliError::Refused(why)), true) = (&found, branches.pods) {
            return Err(CliError::refused(format!(
                "{why} in this pod's database (POS_MIGRATE_DATABASE_URL if set, else POS_DATABASE_URL): with pods, point it at the tenant's pod (tenant_id % n)"
            )));
        }
        found?;
    }
    with_connection(url, migration_url, async |conn| match command {
        KeysCommand::Create {
            role,
            tenant,
            branch,
            label,
        } => create(conn, *role, *tenant, *branch, label).await,
        KeysCommand::List { tenant } => Ok(render_list(&store::list_keys(conn, *tenant).await?)),
        KeysCommand::Revoke { key_id } => revoke(conn, key_id).await,
    })
    .await
}

/// Refuses a scope whose tenant or branch does not exist.
async fn refuse_unknown(conn: &mut mysql_async::Conn, scope: Scope) -> Result<(), CliError> {
    if store::scope_exists(conn, scope).await? {
        return Ok(());
    }
    Err(CliError::refused(match (scope.tenant(), scope.branch()) {
        (Some(t), Some(b)) => format!("tenant {t} has no branch {b}"),
        (Some(t), None) => format!("there is no tenant {t}"),
        _ => "unknown scope".into(),
    }))
}

async fn create(
    conn: &mut mysql_async::Conn,
    role: Role,
    tenant: Option<TenantId>,
    branch: Option<BranchId>,
    label: &str,
) -> Result<String, CliError> {
    let scope = Scope::new(role, tenant, branch).map_err(|e| CliError::refused(e.to_string()))?;
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(CliError::refused(format!(
            "the label may be at most {MAX_LABEL_CHARS} characters, without control characters"
        )));
    }
    // The branch (if any) was checked where it lives: the tenant here.
    let tenant_only = match scope.tenant() {
        Some(tenant) => Scope::Backoffice { tenant },
        None => scope,
    };
    refuse_unknown(conn, tenant_only).await?;
    let key = NewKey::generate().map_err(|e| CliError::refused(format!("no randomness: {e}")))?;
    let insert = KeyInsert {
        id: &key.id,
        hash: key.hash,
        scope,
        label,
    };
    store::insert_key(conn, &insert).await?;
    Ok(format!(
        "created {} key {}{} (the token below is shown only now)\n{}\n",
        role,
        key.id,
        describe_scope(scope),
        key.token
    ))
}

async fn revoke(conn: &mut mysql_async::Conn, key_id: &KeyId) -> Result<String, CliError> {
    match store::revoke_key(conn, key_id).await? {
        Revoked::Now => Ok(format!(
            "revoked key {key_id}; servers refuse it within 2 s\n"
        )),
        Revoked::Already => Ok(format!("key {key_id} was already revoked\n")),
        Revoked::NoSuchKey => Err(CliError::refused(format!(
            "there is no key {:?}",
            key_id.as_str()
        ))),
    }
}

fn describe_scope(scope: Scope) -> String {
    match (scope.tenant(), scope.branch()) {
        (Some(t), Some(b)) => format!(" for tenant {t}, branch {b}"),
        (Some(t), None) => format!(" for tenant {t}"),
        _ => String::new(),
    }
}

fn render_list(keys: &[KeyListing]) -> String {
    let mut out = format!(
        "{:<17} {:<10} {:>8} {:>8} {:<20} {:<20} {}\n",
        "ID", "ROLE", "TENANT", "BRANCH", "CREATED (UTC)", "REVOKED (UTC)", "LABEL"
    );
    let dash = || "-".to_string();
    for k in keys {
        let _ = writeln!(
            out,
            "{:<17} {:<10} {:>8} {:>8} {:<20} {:<20} {}",
            k.id,
            k.scope.role(),
            k.scope.tenant().map_or_else(dash, |t| t.to_string()),
            k.scope.branch().map_or_else(dash, |b| b.to_string()),
            time(k.created),
            k.revoked.map_or_else(dash, time),
            k.label
        );
    }
    out
}

fn time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_list_lines_up_in_columns() {
        let created = chrono::DateTime::UNIX_EPOCH.naive_utc();
        let key = |id: &str, scope| KeyListing {
            id: KeyId::parse(id).expect("a key id"),
            scope,
            label: "a label".into(),
            created,
            revoked: None,
        };
        let t = TenantId::new(1).expect("positive");
        let keys = [
            key("operator0000001a", Scope::Operator),
            key(
                "till00000000001a",
                Scope::Till {
                    tenant: t,
                    branch: BranchId::new(12),
                },
            ),
            key("office000000001a", Scope::Backoffice { tenant: t }),
        ];
        let text = render_list(&keys);
        let column = |line: &str, word: &str| line.find(word).expect("column present");
        let lines: Vec<&str> = text.lines().collect();
        let created_at = column(lines[0], "CREATED");
        for line in &lines[1..] {
            assert_eq!(column(line, "1970-"), created_at, "{text}");
        }
    }
}
