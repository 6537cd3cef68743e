//! `pos`: a multi-tenant POS transaction processor. See README.md,
//! "Architecture", for the bird's-eye view.

pub mod actors;
pub mod auth;
pub mod cli;
pub mod client_address;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod mirror;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
