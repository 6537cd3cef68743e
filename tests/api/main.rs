//! Black-box tests over HTTP against the real MariaDB and Redis (one test
//! binary, so one link step).

mod auth;
mod batches;
mod bounds;
mod browser;
mod catalog;
mod deploy;
mod docs;
mod events;
mod faults;
mod feed;
mod galera;
mod harness;
mod health;
mod hostile;
mod idempotency;
mod ingest;
mod leases;
mod merchant;
mod mirror;
mod money;
mod nemesis;
mod operator;
mod pods;
mod races;
mod reads;
mod reports;
mod resilience;
mod rollups;
mod security;
mod shards;
mod stored_values;
mod support;
mod webhooks;
