//! The actors: one per tenant (writes and live totals), a few for
//! persistence (group commit), one for the global ranking and its mirror,
//! one for reads that stay off the write path (keys, catalogs), one for
//! the back office's statements (tenants, catalog changes, keys), and one
//! for sales reports; the feed's sinks (RabbitMQ, webhooks).

pub mod bounded_pool;
pub mod feed;
pub mod lease;
pub mod lookup;
pub mod office;
pub mod persistence;
pub mod ranking;
pub mod registry;
pub mod reports;
pub mod rollups;
pub mod tenant;
