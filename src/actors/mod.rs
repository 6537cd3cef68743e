//! The actors: one per tenant (writes and live totals), a few for
//! persistence (group commit), one for the global ranking and its mirror,
//! and one for reads that stay off the write path (keys, catalogs).

pub mod lease;
pub mod lookup;
pub mod persistence;
pub mod ranking;
pub mod registry;
pub mod tenant;
