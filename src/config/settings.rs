//! The table of every `POS_*` variable, its meaning and its default: the
//! one list that `pos serve --help`, the docs' settings table and the
//! Docker files are checked against.

/// Every variable `pos` reads, with its default and a one-line meaning
/// (`pos serve --help` prints them; the README's table and the Docker files
/// use these names, and tests check both).
pub const SETTINGS: &[(&str, &str)] = &[
    ("POS_DATABASE_URL", "MySQL/MariaDB URL of the service's user [mysql://root@127.0.0.1:3306/pos]"),
    ("POS_MIGRATE_DATABASE_URL", "privileged URL for migrations [POS_DATABASE_URL]"),
    ("POS_CONTROL_DATABASE_URL", "the control database (tenants directory, keys, leases) when each shard has a database of its own [POS_DATABASE_URL]"),
    ("POS_CONTROL_MIGRATE_DATABASE_URL", "privileged URL for the control database's migrations [POS_CONTROL_DATABASE_URL]"),
    ("POS_REDIS_URL", "Redis mirror (redis://, rediss://, redis-cluster://); empty disables it [redis://127.0.0.1:6379]"),
    ("POS_REDIS_PREFIX", "key prefix of the mirror [pos:]"),
    ("POS_HTTP_ADDR", "API listener, host:port [0.0.0.0:8080]"),
    ("POS_METRICS_ADDR", "/metrics listener, host:port [127.0.0.1:8081]"),
    ("POS_BATCH_ROWS", "rows after which a batch is flushed [1000]"),
    ("POS_BATCH_LINGER_MS", "longest a row waits for its batch [0]"),
    ("POS_PERSISTENCE_ACTORS", "persistence actors, each its own thread, pool and commit stream [half the cores, at least 1]"),
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
    ("POS_DEFAULT_CURRENCY", "ISO 4217 currency of tenants made without one, and of tenants made before currencies [EUR]"),
    ("POS_VOID_WINDOW_SECS", "a sale may be voided this long after it was stored [900]"),
    ("POS_AMQP_URL", "RabbitMQ (amqp://user:password@host:5672/vhost) the feed publishes every event to; empty disables it [none]"),
    ("POS_AMQP_EXCHANGE", "the feed's durable topic exchange; routing key <tenantID>.<type> [pos.events]"),
    ("POS_WEBHOOKS_ALLOW_PRIVATE", "true: webhooks may target loopback, private and link-local addresses [false]"),
    ("POS_WEBHOOKS_ALLOW_HTTP", "true: webhooks may use http:// (else https:// only) [false]"),
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
