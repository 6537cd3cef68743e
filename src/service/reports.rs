//! Sales reports, from the reports actor's pool (its lanes and fair turns
//! between tenants are its own), after the rollup actor's roll.

use super::{ServiceError, Services};
use crate::domain::{ReportPage, ReportQuery};
use crate::store::ReportOutcome;

pub use crate::actors::reports::ReportKind;

/// The page of `query`'s report, in `kind`'s lane: from the rollups where
/// they answer, once they hold every sale committed before it was asked.
pub async fn run_report(
    s: &Services,
    kind: ReportKind,
    query: ReportQuery,
) -> Result<ReportPage, ServiceError> {
    match s.reports.run(kind, query, s.rollups.clone()).await? {
        ReportOutcome::Page(page) => Ok(page),
        ReportOutcome::UnknownTenant => Err(ServiceError::UnknownTenant),
        ReportOutcome::TooManyGroups => Err(ServiceError::TooManyGroups),
    }
}
