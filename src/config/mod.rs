//! Service settings: every `POS_*` variable, its default, and the checks that
//! turn a bad value into one line naming the variable (exit code 2).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

mod read;
mod settings;

pub use settings::{settings_help, variables, SETTINGS};

pub use crate::client_address::TrustedProxies;
pub use crate::domain::{Shard, TenantLimits};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parsed, validated settings of `pos serve` and `pos migrate`.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// A privileged URL for migrations; `None`: migrations use `database_url`.
    pub migrate_database_url: Option<String>,
    /// The control database (tenants directory, keys, sessions, leases);
    /// `None`: it is `database_url` (one database for everything).
    pub control_database_url: Option<String>,
    /// A privileged URL for the control database's migrations; `None`:
    /// they use the control URL.
    pub control_migrate_database_url: Option<String>,
    /// `None` disables the Redis mirror.
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub http_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// Rows after which a persistence batch is flushed at once.
    pub batch_rows: usize,
    /// Longest time a row waits for its batch to fill before it is flushed.
    pub batch_linger: Duration,
    pub persistence_actors: usize,
    pub http_workers: usize,
    /// Rows accepted but not yet committed, over all persistence actors, past
    /// which new requests are refused with 503.
    pub max_rows_waiting: usize,
    /// How long a batch keeps retrying a lost MySQL connection before its
    /// requests are answered 503.
    pub storage_retry: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    /// `false` only with `POS_AUTH=disabled` (a local trial).
    pub auth_enabled: bool,
    pub rate_limit_per_key: NonZeroU32,
    pub rate_limit_burst: NonZeroU32,
    /// Failed authentications per second per client address.
    pub auth_failures_per_address: NonZeroU32,
    /// IPv6 clients share the failure budget of their first this many bits
    /// (one host holds a whole /64).
    pub auth_ipv6_prefix: u8,
    /// How long a key read from MySQL is kept before it is read again.
    pub key_cache: Duration,
    /// Longest time a request body may take to arrive after its headers.
    pub body_timeout: Duration,
    /// Open API connections, over all workers.
    pub max_connections: usize,
    /// Open API connections of one client address (trusted proxies aside).
    pub max_connections_per_address: usize,
    /// Products, branches and keys one tenant may have.
    pub tenant_limits: TenantLimits,
    /// Reports of one tenant running or waiting at once.
    pub reports_per_tenant: usize,
    /// A tenant's actor stops after this long without a request.
    pub tenant_idle: Duration,
    pub shard: Shard,
    /// How long the shard's lease lasts unless renewed (it is renewed every
    /// third of that).
    pub shard_lease: Duration,
    /// Peers whose `X-Forwarded-For` names the client (our HAProxy).
    pub trusted_proxies: TrustedProxies,
    /// Signs back-office session cookies; `None`: a random one per start.
    pub session_secret: Option<SessionSecret>,
    /// Live top-seller streams one key may hold open at once.
    pub app_streams_per_key: usize,
    /// The currency of a tenant made without one.
    pub default_currency: crate::domain::Currency,
    /// The feed's RabbitMQ; `None` publishes nothing.
    pub amqp_url: Option<String>,
    pub amqp_exchange: String,
    /// Webhooks may target loopback, private and link-local addresses.
    pub webhooks_allow_private: bool,
    /// Webhooks may use `http://`.
    pub webhooks_allow_http: bool,
}

/// `POS_SESSION_SECRET`: never printed, not even by `{:?}`.
#[derive(Clone)]
pub struct SessionSecret(pub Vec<u8>);

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(..)")
    }
}

/// Shortest `POS_SESSION_SECRET` accepted, in bytes.
pub const MIN_SESSION_SECRET: usize = 32;

impl Config {
    /// What webhooks may target.
    pub fn webhook_rules(&self) -> crate::domain::TargetRules {
        crate::domain::TargetRules {
            allow_private: self.webhooks_allow_private,
            allow_http: self.webhooks_allow_http,
        }
    }
}

impl Config {
    /// The URL migrations run with.
    pub fn migration_url(&self) -> &str {
        self.migrate_database_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }
}

impl Config {
    /// The control database's URL: `POS_CONTROL_DATABASE_URL`, else the data's.
    pub fn control_url(&self) -> &str {
        self.control_database_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }

    /// The URL the control database's migrations run with.
    pub fn control_migration_url(&self) -> &str {
        match (
            &self.control_database_url,
            &self.control_migrate_database_url,
        ) {
            (Some(_), Some(url)) => url,
            (Some(url), None) => url,
            // A control migration URL alone is refused by the settings' checks.
            (None, _) => self.migration_url(),
        }
    }

    /// Whether this shard's data lives in a database of its own (a pod),
    /// apart from the control database.
    pub fn pods(&self) -> bool {
        self.control_url() != self.database_url
    }
}

/// A setting that could not be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

pub const DEFAULT_DATABASE_URL: &str = "mysql://root@127.0.0.1:3306/pos";

impl Config {
    /// Reads `POS_*` from the process environment (after `.env`, see `main`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: read::RawEnv = envy::prefixed("POS_").from_env().map_err(|e| ConfigError {
            var: "POS_*".into(),
            problem: e.to_string(),
        })?;
        read::from_raw(raw)
    }

    /// Reads settings from explicit pairs, as if they were the environment.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let raw: read::RawEnv =
            envy::prefixed("POS_")
                .from_iter(vars)
                .map_err(|e| ConfigError {
                    var: "POS_*".into(),
                    problem: e.to_string(),
                })?;
        read::from_raw(raw)
    }
}

/// A URL with its password replaced by `***`, for messages and logs.
/// A password with an unescaped `/`, `?` or `#` makes the text something
/// a URL parser reads differently (or not at all): then everything from
/// the scheme to the last `@` is hidden.
pub fn redact_url(text: &str) -> String {
    let ats = text.matches('@').count();
    if let Ok(mut url) = url::Url::parse(text) {
        if url.password().is_some() {
            // Only fails for URLs that cannot have a password at all.
            let _ = url.set_password(Some("***"));
            return url.to_string();
        }
        let in_userinfo = usize::from(!url.username().is_empty());
        if ats <= in_userinfo {
            return text.to_string();
        }
    }
    match (text.split_once("://"), text.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &text[at..]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
