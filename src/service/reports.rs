//! Sales reports, from the reports actor's pool (its lanes and fair turns
//! between tenants are its own).

use super::{ServiceError, Services};
use crate::domain::{ReportPage, ReportQuery};
use crate::store::ReportOutcome;

pub use crate::actors::reports::ReportKind;

/// The page of `query`'s report, in `kind`'s lane.
pub async fn run_report(
    s: &Services,
    kind: ReportKind,
    query: ReportQuery,
) -> Result<ReportPage, ServiceError> {
    match s.reports.run(kind, query).await? {
        ReportOutcome::Page(page) => Ok(page),
        ReportOutcome::UnknownTenant => Err(ServiceError::UnknownTenant),
        ReportOutcome::TooManyGroups => Err(ServiceError::TooManyGroups),
    }
}
