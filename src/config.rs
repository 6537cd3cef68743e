//! Service settings: every `POS_*` variable, its default, and the checks that
//! turn a bad value into one line naming the variable (exit code 2).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

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
    /// The URL migrations run with.
    pub fn migration_url(&self) -> &str {
        self.migrate_database_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }
}

/// A setting that could not be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

/// Raw values as envy reads them; every one is text so that the parse errors
/// below are ours, with the full variable name and the offending value.
#[derive(Deserialize, Default)]
struct RawEnv {
    database_url: Option<String>,
    migrate_database_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    http_addr: Option<String>,
    metrics_addr: Option<String>,
    batch_rows: Option<String>,
    batch_linger_ms: Option<String>,
    persistence_actors: Option<String>,
    http_workers: Option<String>,
    max_rows_waiting: Option<String>,
    storage_retry_ms: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
    auth: Option<String>,
    rate_limit_per_key: Option<String>,
    rate_limit_burst: Option<String>,
    auth_failures_per_address: Option<String>,
    auth_ipv6_prefix: Option<String>,
    key_cache_secs: Option<String>,
    body_timeout_ms: Option<String>,
    max_connections: Option<String>,
    max_connections_per_address: Option<String>,
    max_products_per_tenant: Option<String>,
    max_branches_per_tenant: Option<String>,
    max_keys_per_tenant: Option<String>,
    max_requests_per_tenant: Option<String>,
    reports_per_tenant: Option<String>,
    tenant_idle_secs: Option<String>,
    shard: Option<String>,
    shard_lease_secs: Option<String>,
    trusted_proxies: Option<String>,
    session_secret: Option<String>,
    app_streams_per_key: Option<String>,
}

/// Every variable `pos` reads, with its default and a one-line meaning
/// (`pos serve --help` prints them; the README's table and the Docker files
/// use these names, and tests check both).
pub const SETTINGS: &[(&str, &str)] = &[
    ("POS_DATABASE_URL", "MySQL/MariaDB URL of the service's user [mysql://root@127.0.0.1:3306/pos]"),
    ("POS_MIGRATE_DATABASE_URL", "privileged URL for migrations [POS_DATABASE_URL]"),
    ("POS_REDIS_URL", "Redis mirror (redis://, rediss://, redis-cluster://); empty disables it [redis://127.0.0.1:6379]"),
    ("POS_REDIS_PREFIX", "key prefix of the mirror [pos:]"),
    ("POS_HTTP_ADDR", "API listener, host:port [0.0.0.0:8080]"),
    ("POS_METRICS_ADDR", "/metrics listener, host:port [127.0.0.1:8081]"),
    ("POS_BATCH_ROWS", "rows after which a batch is flushed [1000]"),
    ("POS_BATCH_LINGER_MS", "longest a row waits for its batch [2]"),
    ("POS_PERSISTENCE_ACTORS", "persistence actors, each its own thread and pool [2]"),
    ("POS_HTTP_WORKERS", "HTTP worker threads [number of cores]"),
    ("POS_MAX_ROWS_WAITING", "rows not yet committed past which requests get 503 [50000]"),
    ("POS_STORAGE_RETRY_MS", "how long a batch retries a lost MySQL [5000]"),
    ("POS_LOG_LEVEL", "tracing filter, e.g. info,pos=debug [info]"),
    ("POS_LOG_FORMAT", "text or json [text]"),
    ("POS_AUTH", "enabled, or disabled for a local trial [enabled]"),
    ("POS_RATE_LIMIT_PER_KEY", "requests per second per key [100]"),
    ("POS_RATE_LIMIT_BURST", "burst above the per-key rate [200]"),
    ("POS_AUTH_FAILURES_PER_ADDRESS", "failed authentications per second per client address [10]"),
    ("POS_AUTH_IPV6_PREFIX", "IPv6 clients share the failure budget of this prefix [64]"),
    ("POS_KEY_CACHE_SECS", "a key read from MySQL is read again after this long [600]"),
    ("POS_BODY_TIMEOUT_MS", "longest a request body may take after its headers [10000]"),
    ("POS_MAX_CONNECTIONS", "open API connections over all workers [10000]"),
    ("POS_MAX_CONNECTIONS_PER_ADDRESS", "open API connections of one client address; trusted proxies are not bounded [256]"),
    ("POS_MAX_PRODUCTS_PER_TENANT", "products a tenant may have, inactive ones included [20000]"),
    ("POS_MAX_BRANCHES_PER_TENANT", "branches a tenant may have, closed ones included [1000]"),
    ("POS_MAX_KEYS_PER_TENANT", "unrevoked till and back-office keys a tenant may have [5000]"),
    ("POS_MAX_REQUESTS_PER_TENANT", "sales requests of one tenant in flight at once; more get 503 [1024]"),
    ("POS_REPORTS_PER_TENANT", "reports of one tenant running or waiting at once [2]"),
    ("POS_TENANT_IDLE_SECS", "a tenant's actor stops after this long unused [300]"),
    ("POS_SHARD", "i/n: own the tenants with tenant_id % n == i [0/1]"),
    ("POS_SHARD_LEASE_SECS", "life of the shard's lease, renewed every third of it [10]"),
    ("POS_TRUSTED_PROXIES", "proxies whose X-Forwarded-For names the client [none]"),
    ("POS_SESSION_SECRET", "signs web back-office sessions, at least 32 bytes; the same on every shard [random per start]"),
    ("POS_APP_STREAMS_PER_KEY", "live top-seller streams one key may hold open [4]"),
];

/// Every variable `pos` reads.
pub fn variables() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|(name, _)| *name)
}

/// The settings as `pos serve --help` lists them.
pub fn settings_help() -> String {
    let mut text =
        String::from("Settings (environment variables, or a .env file here; [default]):\n");
    for (name, meaning) in SETTINGS {
        text.push_str(&format!("  {name:<30} {meaning}\n"));
    }
    text
}

pub const DEFAULT_DATABASE_URL: &str = "mysql://root@127.0.0.1:3306/pos";

impl Config {
    /// Reads `POS_*` from the process environment (after `.env`, see `main`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: RawEnv = envy::prefixed("POS_").from_env().map_err(|e| ConfigError {
            var: "POS_*".into(),
            problem: e.to_string(),
        })?;
        Self::from_raw(raw)
    }

    /// Reads settings from explicit pairs, as if they were the environment.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let raw: RawEnv = envy::prefixed("POS_")
            .from_iter(vars)
            .map_err(|e| ConfigError {
                var: "POS_*".into(),
                problem: e.to_string(),
            })?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawEnv) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let database_url = raw
            .database_url
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        mysql_url("POS_DATABASE_URL", &database_url)?;
        let migrate_database_url = raw.migrate_database_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &migrate_database_url {
            mysql_url("POS_MIGRATE_DATABASE_URL", url)?;
        }
        let redis_url = match raw.redis_url {
            None => Some("redis://127.0.0.1:6379".to_string()),
            Some(u) if u.trim().is_empty() => None,
            Some(u) => {
                if !(u.starts_with("redis://")
                    || u.starts_with("rediss://")
                    || u.starts_with("redis-cluster://"))
                {
                    return Err(problem(
                        "POS_REDIS_URL",
                        format!(
                            "expected redis://… or redis-cluster://…, got {:?}",
                            redact_url(&u)
                        ),
                    ));
                }
                Some(u)
            }
        };
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(problem(
                    "POS_LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };
        let log_level = raw.log_level.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(problem(
                "POS_LOG_LEVEL",
                format!("not a log filter: {log_level:?}"),
            ));
        }
        let auth_enabled = match raw.auth.as_deref().map(str::trim) {
            None | Some("") | Some("enabled") => true,
            Some("disabled") => false,
            Some(other) => {
                return Err(problem(
                    "POS_AUTH",
                    format!("expected enabled or disabled, got {other:?}"),
                ))
            }
        };
        let shard = shard(raw.shard)?;
        let trusted_proxies = TrustedProxies::parse(raw.trusted_proxies.as_deref().unwrap_or(""))
            .map_err(|e| problem("POS_TRUSTED_PROXIES", e))?;
        let session_secret = match raw.session_secret {
            Some(s) if s.is_empty() => None,
            Some(s) if s.len() >= MIN_SESSION_SECRET => Some(SessionSecret(s.into_bytes())),
            Some(_) => {
                return Err(problem(
                    "POS_SESSION_SECRET",
                    format!(
                        "must be at least {MIN_SESSION_SECRET} bytes (e.g. openssl rand -hex 32)"
                    ),
                ))
            }
            None => None,
        };
        if shard.is_partial() && session_secret.is_none() {
            return Err(problem(
                "POS_SESSION_SECRET",
                format!("{shard}: a back-office session must be valid on every shard; set the same secret on each"),
            ));
        }
        if shard.is_partial() && redis_url.is_none() {
            return Err(problem(
                "POS_SHARD",
                format!("{shard} shares the top sellers through Redis: set POS_REDIS_URL"),
            ));
        }
        Ok(Config {
            database_url,
            migrate_database_url,
            redis_url,
            redis_prefix: raw.redis_prefix.unwrap_or_else(|| "pos:".into()),
            http_addr: addr("POS_HTTP_ADDR", raw.http_addr, "0.0.0.0:8080")?,
            metrics_addr: addr("POS_METRICS_ADDR", raw.metrics_addr, "127.0.0.1:8081")?,
            batch_rows: int("POS_BATCH_ROWS", raw.batch_rows, 1000, 1, 100_000)?,
            batch_linger: Duration::from_millis(int(
                "POS_BATCH_LINGER_MS",
                raw.batch_linger_ms,
                2,
                0,
                10_000,
            )?),
            persistence_actors: int("POS_PERSISTENCE_ACTORS", raw.persistence_actors, 2, 1, 64)?,
            http_workers: int("POS_HTTP_WORKERS", raw.http_workers, cores, 1, 256)?,
            max_rows_waiting: int(
                "POS_MAX_ROWS_WAITING",
                raw.max_rows_waiting,
                50_000,
                1000,
                10_000_000,
            )?,
            storage_retry: Duration::from_millis(int(
                "POS_STORAGE_RETRY_MS",
                raw.storage_retry_ms,
                5_000,
                0,
                600_000,
            )?),
            log_level,
            log_format,
            auth_enabled,
            rate_limit_per_key: nonzero(int(
                "POS_RATE_LIMIT_PER_KEY",
                raw.rate_limit_per_key,
                100,
                1,
                1_000_000,
            )?),
            rate_limit_burst: nonzero(int(
                "POS_RATE_LIMIT_BURST",
                raw.rate_limit_burst,
                200,
                1,
                1_000_000,
            )?),
            auth_failures_per_address: nonzero(int(
                "POS_AUTH_FAILURES_PER_ADDRESS",
                raw.auth_failures_per_address,
                10,
                1,
                1_000_000,
            )?),
            auth_ipv6_prefix: int("POS_AUTH_IPV6_PREFIX", raw.auth_ipv6_prefix, 64, 1, 128)? as u8,
            key_cache: Duration::from_secs(int(
                "POS_KEY_CACHE_SECS",
                raw.key_cache_secs,
                600,
                1,
                86_400,
            )?),
            body_timeout: Duration::from_millis(int(
                "POS_BODY_TIMEOUT_MS",
                raw.body_timeout_ms,
                10_000,
                100,
                600_000,
            )?),
            max_connections: int(
                "POS_MAX_CONNECTIONS",
                raw.max_connections,
                10_000,
                1,
                1_000_000,
            )?,
            max_connections_per_address: int(
                "POS_MAX_CONNECTIONS_PER_ADDRESS",
                raw.max_connections_per_address,
                256,
                1,
                1_000_000,
            )?,
            tenant_limits: TenantLimits {
                products: int(
                    "POS_MAX_PRODUCTS_PER_TENANT",
                    raw.max_products_per_tenant,
                    TenantLimits::default().products,
                    1,
                    10_000_000,
                )?,
                branches: int(
                    "POS_MAX_BRANCHES_PER_TENANT",
                    raw.max_branches_per_tenant,
                    TenantLimits::default().branches,
                    1,
                    1_000_000,
                )?,
                keys: int(
                    "POS_MAX_KEYS_PER_TENANT",
                    raw.max_keys_per_tenant,
                    TenantLimits::default().keys,
                    1,
                    1_000_000,
                )?,
                requests_in_flight: int(
                    "POS_MAX_REQUESTS_PER_TENANT",
                    raw.max_requests_per_tenant,
                    TenantLimits::default().requests_in_flight,
                    1,
                    1_000_000,
                )?,
            },
            reports_per_tenant: int("POS_REPORTS_PER_TENANT", raw.reports_per_tenant, 2, 1, 64)?,
            tenant_idle: Duration::from_secs(int(
                "POS_TENANT_IDLE_SECS",
                raw.tenant_idle_secs,
                300,
                1,
                604_800,
            )?),
            shard,
            shard_lease: Duration::from_secs(int(
                "POS_SHARD_LEASE_SECS",
                raw.shard_lease_secs,
                10,
                2,
                600,
            )?),
            trusted_proxies,
            session_secret,
            app_streams_per_key: int(
                "POS_APP_STREAMS_PER_KEY",
                raw.app_streams_per_key,
                4,
                1,
                100_000,
            )?,
        })
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

/// `i/n` with 0 <= i < n <= 1024; unset is the only shard.
fn shard(value: Option<String>) -> Result<Shard, ConfigError> {
    let Some(text) = value.filter(|t| !t.trim().is_empty()) else {
        return Ok(Shard::ALL);
    };
    Shard::parse(&text).ok_or_else(|| {
        problem(
            "POS_SHARD",
            format!("expected i/n with 0 <= i < n <= 1024, like 0/2, got {text:?}"),
        )
    })
}

fn mysql_url(var: &str, url: &str) -> Result<(), ConfigError> {
    mysql_async::Opts::from_url(url)
        .map(|_| ())
        .map_err(|_| problem(var, format!("not a MySQL URL: {:?}", redact_url(url))))
}

/// `int` checked the value is at least 1.
fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn problem(var: &str, problem: String) -> ConfigError {
    ConfigError {
        var: var.into(),
        problem,
    }
}

/// `ip:port`, or `host:port` with a host name that resolves (the first
/// address it resolves to, as a listener binds one address).
fn addr(var: &str, value: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    let text = value.unwrap_or_else(|| default.into());
    let bad = |why: &str| {
        problem(
            var,
            format!("expected host:port like {default}, got {text:?}{why}"),
        )
    };
    if let Ok(addr) = text.trim().parse() {
        return Ok(addr);
    }
    let mut resolved = text.trim().to_socket_addrs().map_err(|_| bad(""))?;
    resolved
        .next()
        .ok_or_else(|| bad(" (the host resolves to no address)"))
}

fn int<T>(var: &str, value: Option<String>, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = value else {
        return Ok(default);
    };
    let n: T = text
        .trim()
        .parse()
        .map_err(|_| problem(var, format!("expected an integer, got {text:?}")))?;
    if n < min || n > max {
        return Err(problem(
            var,
            format!("must be between {min} and {max}, got {n}"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
