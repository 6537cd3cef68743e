//! Reading the raw values into a [`Config`]: defaults, bounds, and one
//! line naming the variable for a value that cannot be used.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::Currency;

use super::{
    redact_url, Config, ConfigError, LogFormat, SessionSecret, Shard, TenantLimits, TrustedProxies,
    DEFAULT_DATABASE_URL, MIN_SESSION_SECRET,
};

/// Raw values as envy reads them; every one is text so that the parse errors
/// below are ours, with the full variable name and the offending value.
#[derive(Deserialize, Default)]
pub(super) struct RawEnv {
    database_url: Option<String>,
    migrate_database_url: Option<String>,
    control_database_url: Option<String>,
    control_migrate_database_url: Option<String>,
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
    default_currency: Option<String>,
    void_window_secs: Option<String>,
    amqp_url: Option<String>,
    amqp_exchange: Option<String>,
    webhooks_allow_private: Option<String>,
    webhooks_allow_http: Option<String>,
}

/// The settings a valid environment makes.
pub(super) fn from_raw(raw: RawEnv) -> Result<Config, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let database_url = raw
        .database_url
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    mysql_url("POS_DATABASE_URL", &database_url)?;
    let migrate_database_url =
        optional_mysql_url("POS_MIGRATE_DATABASE_URL", raw.migrate_database_url)?;
    let control_database_url =
        optional_mysql_url("POS_CONTROL_DATABASE_URL", raw.control_database_url)?;
    let control_migrate_database_url = optional_mysql_url(
        "POS_CONTROL_MIGRATE_DATABASE_URL",
        raw.control_migrate_database_url,
    )?;
    if control_migrate_database_url.is_some() && control_database_url.is_none() {
        return Err(problem(
            "POS_CONTROL_MIGRATE_DATABASE_URL",
            "is for a control database of its own: set POS_CONTROL_DATABASE_URL too (with one database, POS_MIGRATE_DATABASE_URL is the privileged URL)".into(),
        ));
    }
    let redis_url = redis_url(raw.redis_url)?;
    let log_format = log_format(raw.log_format.as_deref())?;
    let log_level = log_level(raw.log_level)?;
    let auth_enabled = auth_enabled(raw.auth.as_deref())?;
    let shard = shard(raw.shard)?;
    let trusted_proxies = TrustedProxies::parse(raw.trusted_proxies.as_deref().unwrap_or(""))
        .map_err(|e| problem("POS_TRUSTED_PROXIES", e))?;
    let session_secret = session_secret(raw.session_secret)?;
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
        control_database_url,
        control_migrate_database_url,
        redis_url,
        redis_prefix: raw.redis_prefix.unwrap_or_else(|| "pos:".into()),
        http_addr: addr("POS_HTTP_ADDR", raw.http_addr, "0.0.0.0:8080")?,
        metrics_addr: addr("POS_METRICS_ADDR", raw.metrics_addr, "127.0.0.1:8081")?,
        batch_rows: int("POS_BATCH_ROWS", raw.batch_rows, 1000, 1, 100_000)?,
        batch_linger: Duration::from_millis(int(
            "POS_BATCH_LINGER_MS",
            raw.batch_linger_ms,
            0,
            0,
            10_000,
        )?),
        persistence_actors: int(
            "POS_PERSISTENCE_ACTORS",
            raw.persistence_actors,
            // A commit stream keeps about a core and a half busy between pos
            // and MariaDB; more streams than that only make smaller batches.
            (cores / 2).clamp(1, 64),
            1,
            64,
        )?,
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
            void_window: Duration::from_secs(int(
                "POS_VOID_WINDOW_SECS",
                raw.void_window_secs,
                900,
                0,
                604_800,
            )?),
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
        default_currency: default_currency(raw.default_currency)?,
        amqp_url: amqp_url(raw.amqp_url)?,
        amqp_exchange: amqp_exchange(raw.amqp_exchange)?,
        webhooks_allow_private: boolean("POS_WEBHOOKS_ALLOW_PRIVATE", raw.webhooks_allow_private)?,
        webhooks_allow_http: boolean("POS_WEBHOOKS_ALLOW_HTTP", raw.webhooks_allow_http)?,
    })
}

/// The currency of tenants made without one, and of those made before
/// currencies existed.
fn default_currency(value: Option<String>) -> Result<Currency, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(Currency::EUR),
        Some(code) => Currency::parse(code)
            .map_err(|e| problem("POS_DEFAULT_CURRENCY", format!("{code:?}: {e}"))),
    }
}

/// Redis's URL: unset is the local default, empty turns the mirror off.
fn redis_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    Ok(match value {
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
    })
}

fn amqp_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(u) if u.trim().is_empty() => Ok(None),
        None => Ok(None),
        Some(u) if u.starts_with("amqp://") => Ok(Some(u)),
        Some(u) => Err(problem(
            "POS_AMQP_URL",
            format!(
                "expected amqp://… (no TLS in this build), got {:?}",
                redact_url(&u)
            ),
        )),
    }
}

/// A name RabbitMQ takes for an exchange (1 to 127 of `A-Z a-z 0-9 - _ . :`).
fn amqp_exchange(value: Option<String>) -> Result<String, ConfigError> {
    let name = value
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "pos.events".into());
    let fits = name.len() <= 127
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if fits {
        Ok(name)
    } else {
        Err(problem(
            "POS_AMQP_EXCHANGE",
            "must be 1 to 127 of A-Z a-z 0-9 - _ . :".into(),
        ))
    }
}

fn boolean(name: &str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(problem(
            name,
            format!(
                "expected true or false, got {:?}",
                crate::domain::clip(other)
            ),
        )),
    }
}

fn log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    Ok(match value.unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(problem(
                "POS_LOG_FORMAT",
                format!("expected text or json, got {other:?}"),
            ))
        }
    })
}

fn log_level(value: Option<String>) -> Result<String, ConfigError> {
    let log_level = value.unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(problem(
            "POS_LOG_LEVEL",
            format!("not a log filter: {log_level:?}"),
        ));
    }
    Ok(log_level)
}

fn auth_enabled(value: Option<&str>) -> Result<bool, ConfigError> {
    Ok(match value.map(str::trim) {
        None | Some("") | Some("enabled") => true,
        Some("disabled") => false,
        Some(other) => {
            return Err(problem(
                "POS_AUTH",
                format!("expected enabled or disabled, got {other:?}"),
            ))
        }
    })
}

/// At least [`MIN_SESSION_SECRET`] bytes; unset or empty: random per start.
fn session_secret(value: Option<String>) -> Result<Option<SessionSecret>, ConfigError> {
    Ok(match value {
        Some(s) if s.is_empty() => None,
        Some(s) if s.len() >= MIN_SESSION_SECRET => Some(SessionSecret(s.into_bytes())),
        Some(_) => {
            return Err(problem(
                "POS_SESSION_SECRET",
                format!("must be at least {MIN_SESSION_SECRET} bytes (e.g. openssl rand -hex 32)"),
            ))
        }
        None => None,
    })
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

/// A MySQL URL that may be unset (or empty: the same).
fn optional_mysql_url(var: &str, url: Option<String>) -> Result<Option<String>, ConfigError> {
    let url = url.filter(|u| !u.trim().is_empty());
    if let Some(u) = &url {
        mysql_url(var, u)?;
    }
    Ok(url)
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
