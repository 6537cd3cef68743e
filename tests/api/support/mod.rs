//! Test harness: every test gets its own database (random name, migrated by
//! the service's own code), its own Redis key prefix and its own app on
//! random ports, so tests run in parallel against the real MariaDB and Redis.

#![allow(dead_code)]

mod amqp;
mod app;
mod bodies;
mod db;
mod wait;
mod web;

pub mod browser;
pub mod child;
pub mod galera;
pub mod ledger;
pub mod mariadb_server;
pub mod peers;
pub mod proxy;
pub mod rabbitmq_server;
pub mod redis_server;

pub use amqp::*;
pub use app::*;
pub use bodies::*;
pub use db::*;
pub use wait::*;
pub use web::*;

use pos::domain::{BranchId, TenantId};

/// The MariaDB the tests use, as a URL without a database: from
/// `POS_TEST_MYSQL_URL` (`scripts/test` passes its own admin's), else root
/// on 127.0.0.1 without a password.
pub fn mysql_server_url() -> String {
    std::env::var("POS_TEST_MYSQL_URL")
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// `host:port` of a `mysql://user:password@host:port` URL.
pub fn host_port(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("a MySQL URL");
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    format!("{host}:{}", parsed.port().unwrap_or(3306))
}

/// `server` (a URL without a database) with another address.
pub fn at_address(server: &str, address: &str) -> String {
    let mut parsed = url::Url::parse(server).expect("a MySQL URL");
    let (host, port) = address.rsplit_once(':').expect("host:port");
    parsed.set_host(Some(host)).expect("a host");
    parsed.set_port(port.parse().ok()).expect("a port");
    parsed.to_string().trim_end_matches('/').to_string()
}

pub fn redis_url() -> String {
    std::env::var("POS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether `var` is `1`: a test that needs what this machine lacks leaves
/// itself out, and says so (any other value, `0` too, runs it). scripts/test
/// clears these, so CI never skips.
pub fn skipped_on_purpose(var: &str) -> bool {
    let skip = std::env::var(var).is_ok_and(|v| v.trim() == "1");
    if skip {
        eprintln!(
            "SKIPPED on purpose ({var}=1): {}",
            std::thread::current().name().unwrap_or("a test")
        );
    }
    skip
}

/// Tenant `n` as the service's type.
pub fn tenant_id(n: u64) -> TenantId {
    TenantId::new(n).expect("tenant ids are positive")
}

/// Branch `n` as the service's type.
pub fn branch_id(n: u64) -> BranchId {
    BranchId::new(n).expect("branch ids are positive")
}

/// A free local TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The key id of a token (`pos_<id>_<secret>`).
pub fn key_id_of(token: &str) -> pos::domain::KeyId {
    token
        .split('_')
        .nth(1)
        .and_then(pos::domain::KeyId::parse)
        .expect("a token names a key id")
}
