//! What a till, a back office and the operator may do, as typed operations
//! in one place: the JSON API (`http/`) and the web back office
//! (`http/app/`) both translate a request into one of these calls and its
//! result into an answer, and neither reaches the actors or the store any
//! other way. Who may call what is the role table's (`auth::permits`, at
//! the gate); what a call needs besides (a suspended tenant's back office
//! changes nothing, a back office makes only till keys) is decided here.
//! Errors are this layer's own ([`ServiceError`]); `http/error.rs` maps them
//! to answers.

pub mod catalog;
pub mod events;
pub mod keys;
pub mod refunds;
pub mod reports;
pub mod sales;
pub mod sessions;
pub mod tenants;
pub mod webhooks;

use std::sync::Arc;

use actix::Addr;

use crate::actors::feed::webhooks::WebhookFeed;
use crate::actors::lease::{LeaseActor, ShardLease};
use crate::actors::office::Office;
use crate::actors::ranking::RankingActor;
use crate::actors::registry::TenantRegistry;
use crate::actors::reports::Reports;
use crate::actors::rollups::Rollups;
use crate::auth::Auth;
use crate::domain::{Currency, Shard, TargetRules, TenantLimits};
use crate::mirror::Mirror;

/// What the operations work with, once MySQL answered and the actors run.
pub struct Services {
    pub tenants: Arc<TenantRegistry>,
    /// The back office's statements that no tenant actor orders (tenants, keys).
    pub office: Office,
    /// The control database's statements (the tenants directory, keys,
    /// sessions) when each shard has a database of its own (pods); `None`:
    /// one database holds both, and `office` runs them.
    pub control: Option<Office>,
    /// Sales reports, on a pool of their own, shared fairly between tenants.
    pub reports: Reports,
    /// Rolls the history up for reports, and says when it holds all.
    pub rollups: Rollups,
    pub ranking: Addr<RankingActor>,
    /// Keeps this instance's shard lease.
    pub lease: Addr<LeaseActor>,
    /// Whether this instance may write now.
    pub shard_lease: ShardLease,
    /// The tenants this instance owns.
    pub shard: Shard,
    /// `None` when keys are off (`POS_AUTH=disabled`).
    pub auth: Option<Arc<Auth>>,
    /// The Redis mirror (the merged top sellers, with shards).
    pub mirror: Option<Mirror>,
    /// How much one tenant may have and ask at once.
    pub limits: TenantLimits,
    /// The currency of a tenant made without one.
    pub default_currency: Currency,
    /// Delivers the webhooks of this shard's tenants.
    pub webhooks: Addr<WebhookFeed>,
    /// What webhooks may target.
    pub webhook_rules: TargetRules,
}

impl Services {
    /// Where the tenants directory, keys and sessions are.
    pub fn directory(&self) -> &Office {
        self.control.as_ref().unwrap_or(&self.office)
    }
}

// The actors' refusals, which the front ends answer in their own words.
pub use crate::actors::lookup::LookupError;
pub use crate::actors::persistence::SaveError;
pub use crate::actors::reports::ReportError;
pub use crate::actors::tenant::TenantError;

/// Why an operation did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The tenant's actor refused (or could not answer).
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// The back office's or the lookups' pool refused or failed.
    #[error(transparent)]
    Storage(#[from] LookupError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The branch a till key was asked for is not the tenant's.
    #[error("not a branch of this tenant")]
    NotABranch,
    /// The tenant holds this many keys that are not revoked, its most.
    #[error("the tenant holds {0} keys, its most")]
    TooManyKeys(usize),
    /// The caller's role may not do this to that (a back office and a
    /// back-office key, say), decided once the path's ids were known.
    #[error("{0}")]
    Forbidden(crate::auth::Refusal),
    /// The tenant has no such sale (or the caller may not see it).
    #[error("no such sale")]
    NoSuchSale,
    #[error("unknown tenant")]
    UnknownTenant,
    #[error("no such key for this tenant")]
    NoSuchKey,
    /// A report with more groups than one may hold.
    #[error("the report has too many groups")]
    TooManyGroups,
    /// A value the operation's rules refuse, by the name of the field.
    #[error("{field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// The Redis mirror is away (the merged top sellers need it).
    #[error("the merged top sellers are unavailable")]
    MirrorUnavailable,
    /// An actor the operation needs is not running.
    #[error("{0} is not running")]
    NotRunning(&'static str),
    #[error("no such webhook for this tenant")]
    NoSuchWebhook,
    #[error("no such delivery of this webhook")]
    NoSuchDelivery,
    /// A retry of this webhook is still running (one at a time).
    #[error("a retry of this webhook is already running")]
    RetryRunning,
    /// The tenant holds this many webhooks, its most.
    #[error("the tenant holds {0} webhooks, its most")]
    TooManyWebhooks(usize),
}

/// The currency of a tenant this instance serves (its answers name it);
/// `UnknownTenant` otherwise.
async fn tenant_currency(
    s: &Services,
    tenant: crate::domain::TenantId,
) -> Result<Currency, ServiceError> {
    let handle = s
        .tenants
        .get(tenant)
        .await?
        .ok_or(ServiceError::UnknownTenant)?;
    Ok(handle.catalog.view().catalog.currency)
}
