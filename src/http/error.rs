//! The one place where errors become HTTP answers, in the spec's error body:
//! `{"error": {"code": "...", "message": "...", "fields": {...}}}`.

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::parse::{BodyError, ReportProblem, MAX_ERROR_FIELDS};
use crate::auth::{AuthError, Refusal};
use crate::domain::{ErrorCode, Field, ItemProblem, Shard};
use crate::service::{LookupError, ReportError, SaveError, ServiceError, TenantError};
use crate::telemetry::LogBudget;

/// Seconds a client should wait after a 503.
const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadJson(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this route answers {allow} only")]
    MethodNotAllowed { allow: &'static str },
    #[error("{message}")]
    Validation {
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("a valid API key is required: Authorization: Bearer pos_<keyid>_<secret>")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(Refusal),
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The caller has its most of something in flight (429, like a rate limit).
    #[error("{0}")]
    TooManyInFlight(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("this instance is shard {0}: that tenant belongs to another one; nothing was stored")]
    Misdirected(Shard),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A natural key (`sku`, `code`) names a row with other content.
    #[error("{message}")]
    Conflict {
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error("this tenant is suspended: its tills are refused, and its back office may read but not change anything")]
    TenantSuspended,
}

impl ApiError {
    /// The spec's error code; also the `reason` label of rejection metrics.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadJson(_) => ErrorCode::BadJson,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Validation { .. } => ErrorCode::ValidationFailed,
            ApiError::IdempotencyConflict(_) => ErrorCode::IdempotencyConflict,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::RateLimited { .. } | ApiError::TooManyInFlight(_) => ErrorCode::RateLimited,
            ApiError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            ApiError::Misdirected(_) => ErrorCode::Misdirected,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::Conflict { .. } => ErrorCode::Conflict,
            ApiError::TenantSuspended => ErrorCode::TenantSuspended,
        }
    }

    /// A validation error of a request's items.
    fn items(message: &str, problems: Vec<ItemProblem>, is_array: bool) -> Self {
        ApiError::Validation {
            message: message.to_string(),
            fields: field_names(problems, is_array),
        }
    }

    pub fn validation(field: &str, problem: &str) -> Self {
        ApiError::Validation {
            message: format!("{field} {problem}"),
            fields: BTreeMap::from([(field.to_string(), problem.to_string())]),
        }
    }

    pub fn unknown_branch() -> Self {
        ApiError::NotFound("unknown branch for this tenant".into())
    }

    pub fn unknown_product() -> Self {
        ApiError::NotFound("unknown product for this tenant".into())
    }

    /// 404 for a tenant that does not exist (or a path that names none).
    pub fn unknown_tenant() -> Self {
        ApiError::NotFound("unknown tenant".into())
    }

    /// Not booted yet: whatever it waits for (MySQL, or the shard's lease
    /// held by another instance) is in the log and the metrics port's
    /// `/ready`, not on the API port.
    pub fn starting() -> Self {
        ApiError::Unavailable("the service is starting".into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::TooManyInFlight(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TenantSuspended => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // In the request's span (with its id). Refusals are the client's
        // business and can be provoked at will: never above debug.
        let code = self.code();
        if self.status_code().is_server_error() {
            // Anyone can cause these while MySQL is away: a budget of lines.
            if let Some(left_out) = server_error_logs().admit() {
                tracing::error!(code = code.as_str(), error = %self, left_out, "request failed");
            }
        } else {
            tracing::debug!(code = code.as_str(), error = %self, "request refused");
        }
        let mut body = json!({"code": code.as_str(), "message": self.to_string()});
        if let ApiError::Validation { fields, .. } | ApiError::Conflict { fields, .. } = self {
            body["fields"] = json!(fields);
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) | ApiError::TooManyInFlight(_) => {
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
            }
            ApiError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, *allow));
            }
            // The rest of the body may still be on its way: the connection
            // cannot be reused.
            ApiError::RequestTimeout(_) | ApiError::PayloadTooLarge(_) => {
                res.force_close();
            }
            _ => {}
        }
        let mut res = res.json(json!({ "error": body }));
        // For whoever counts refusals (see `gate::count_rejections`).
        res.extensions_mut().insert(code);
        res
    }
}

/// The names a client reads for problems with items: `[3].quantitySold`
/// in an array, `quantitySold` for a single object (`[3]` and `body` for
/// the item itself); at most [`MAX_ERROR_FIELDS`], the first items first.
pub fn field_names(mut problems: Vec<ItemProblem>, is_array: bool) -> BTreeMap<String, String> {
    problems.truncate(MAX_ERROR_FIELDS);
    problems
        .into_iter()
        .map(|p| {
            let name = match (is_array, p.field) {
                (true, Field::Whole) => format!("[{}]", p.index),
                (true, Field::Unknown(f)) => format!("[{}].{f}", p.index),
                (true, f) => format!("[{}].{}", p.index, wire_name(&f)),
                (false, Field::Whole) => "body".to_string(),
                (false, Field::Unknown(f)) => f,
                (false, f) => wire_name(&f).to_string(),
            };
            (name, p.problem)
        })
        .collect()
}

/// A field's member name in the request body, as the client wrote it.
fn wire_name(field: &Field) -> &str {
    match field {
        Field::Product => "productID",
        Field::Quantity => "quantitySold",
        Field::UnitPrice => "pricePerUnit",
        Field::Timestamp => "timestamp",
        Field::Sku => "sku",
        Field::Code => "code",
        Field::Named(name) => name,
        Field::Unknown(name) => name,
        Field::Whole => "",
    }
}

impl From<ReportProblem> for ApiError {
    fn from(p: ReportProblem) -> Self {
        ApiError::validation(p.parameter, &p.problem)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::Unauthorized,
            AuthError::Forbidden(why) => ApiError::Forbidden(why),
            AuthError::RateLimited(wait) => ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            },
            AuthError::Unavailable => {
                ApiError::Unavailable("API keys cannot be checked right now; retry shortly".into())
            }
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::Busy => ApiError::Unavailable("too many lookups; retry shortly".into()),
            LookupError::Unavailable => {
                ApiError::Unavailable("storage is unavailable; retry shortly".into())
            }
            LookupError::Refused => ApiError::Internal("storage refused the statement".into()),
        }
    }
}

impl ApiError {
    /// The answer to an operation that failed, for a request whose body
    /// was an array (`is_array`: its items are named `[i]`) or not.
    pub fn from_service(e: ServiceError, is_array: bool) -> Self {
        match e {
            ServiceError::Tenant(e) => ApiError::from_tenant(e, is_array),
            ServiceError::Storage(e) => e.into(),
            ServiceError::Report(e) => e.into(),
            ServiceError::UnknownTenant => ApiError::unknown_tenant(),
            ServiceError::NotABranch => {
                ApiError::validation("branchID", "is not a branch of this tenant")
            }
            ServiceError::TooManyKeys(most) => ApiError::Conflict {
                message: format!(
                    "the tenant holds {most} keys that are not revoked, the most it may \
                     (POS_MAX_KEYS_PER_TENANT); revoke one first"
                ),
                fields: BTreeMap::new(),
            },

            ServiceError::Forbidden(why) => ApiError::Forbidden(why),
            ServiceError::NoSuchKey => ApiError::NotFound("no such key for this tenant".into()),
            ServiceError::NoSuchSale => ApiError::NotFound("no such sale for this tenant".into()),
            ServiceError::TooManyGroups => ApiError::validation(
                "groupBy",
                &format!(
                    "gives more than {} rows; narrow the range, the grouping or the filters",
                    crate::domain::MAX_GROUPS
                ),
            ),
            ServiceError::Invalid { field, problem } => ApiError::validation(field, &problem),
            ServiceError::MirrorUnavailable => ApiError::Unavailable(
                "the merged top sellers are unavailable (Redis); retry shortly".into(),
            ),
            ServiceError::NotRunning(what) => ApiError::Internal(format!("{what} is not running")),
            ServiceError::NoSuchWebhook => {
                ApiError::NotFound("no such webhook for this tenant".into())
            }
            ServiceError::NoSuchDelivery => {
                ApiError::NotFound("no such delivery of this webhook".into())
            }
            ServiceError::RetryRunning => ApiError::Conflict {
                message: "a retry of this webhook is already running; wait for its answer".into(),
                fields: BTreeMap::new(),
            },
            ServiceError::TooManyWebhooks(most) => ApiError::Conflict {
                message: format!(
                    "the tenant holds {most} webhooks, the most it may; delete one first"
                ),
                fields: BTreeMap::new(),
            },
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::from_service(e, false)
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            // The tenant's own load: it waits for its own reports.
            ReportError::TenantBusy(n) => ApiError::TooManyInFlight(format!(
                "this tenant has {n} reports running or waiting, the most it may at once \
                 (POS_REPORTS_PER_TENANT); retry when one is done"
            )),
            ReportError::Busy => {
                ApiError::Unavailable("too many reports are waiting; retry shortly".into())
            }
            ReportError::Unavailable => ApiError::Unavailable(
                "the report could not be made in time (storage away, or a report too big: narrow the range, grouping or filters); retry shortly".into(),
            ),
            ReportError::Refused => ApiError::Internal("storage refused the report".into()),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::BadJson(m) => ApiError::BadJson(format!("malformed JSON: {m}")),
            e @ BodyError::TooManyItems(_) => ApiError::PayloadTooLarge(e.to_string()),
            BodyError::Invalid {
                message,
                problems,
                is_array,
            } => ApiError::items(&message, problems, is_array),
        }
    }
}

impl From<SaveError> for ApiError {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::Overloaded => ApiError::Unavailable(
                "too many sales are waiting to be stored; retry shortly".into(),
            ),
            SaveError::Unavailable => ApiError::Unavailable(
                "storage is unavailable; nothing was stored, retry shortly".into(),
            ),
            SaveError::OutcomeUnknown => ApiError::Internal(
                "storage failed during the commit; retry with the same idempotencyKey to learn the outcome".into(),
            ),
            SaveError::OverRefunded => ApiError::validation(
                "quantity",
                "is more than is left of the sale (refunded meanwhile); nothing was stored",
            ),
            SaveError::DuplicateKey | SaveError::Rejected(_) => {
                ApiError::Internal("storage refused the transaction".into())
            }
        }
    }
}

impl ApiError {
    /// The answer to a tenant's refusal of a request whose body was an
    /// array (`is_array`) or a single object.
    pub fn from_tenant(e: TenantError, is_array: bool) -> Self {
        match e {
            TenantError::TenantNotFound => ApiError::unknown_tenant(),
            TenantError::BranchNotFound => ApiError::unknown_branch(),
            TenantError::ProductNotFound => ApiError::unknown_product(),
            TenantError::Suspended => ApiError::TenantSuspended,
            TenantError::BranchClosed => {
                ApiError::validation("branchID", "is closed: it takes no new sales")
            }
            TenantError::InactiveProducts(problems) => {
                ApiError::items("inactive products take no new sales", problems, is_array)
            }
            TenantError::NaturalKeyTaken(problems) => ApiError::Conflict {
                // One conflict says itself; several are listed by field.
                message: match problems.as_slice() {
                    [one] => one.problem.clone(),
                    many => format!(
                        "{} SKUs or codes are already used by other rows, with other content",
                        many.len()
                    ),
                },
                fields: field_names(problems, is_array),
            },
            TenantError::RepeatedKeys(problems) => {
                ApiError::items("a sku is given twice", problems, is_array)
            }
            TenantError::CatalogFull { what, held, limit } => ApiError::Conflict {
                message: format!(
                    "the tenant holds {held} {what} and may hold at most {limit} \
                     (POS_MAX_{}_PER_TENANT); nothing was made",
                    what.to_ascii_uppercase()
                ),
                fields: BTreeMap::new(),
            },
            TenantError::UnknownProducts(problems) => {
                ApiError::items("unknown products for this tenant", problems, is_array)
            }
            TenantError::Invalid { message, problems } => {
                ApiError::items(message, problems, is_array)
            }
            TenantError::CurrencyInUse => ApiError::Conflict {
                message: "the tenant has sales: its currency can no longer change".into(),
                fields: BTreeMap::from([(
                    "currency".to_string(),
                    "may change only while the tenant has no sales".to_string(),
                )]),
            },
            TenantError::TotalsFull(problems) => ApiError::items(
                "a product's all-time totals would overflow",
                problems,
                is_array,
            ),
            TenantError::TimestampsAhead(problems) => {
                ApiError::items("timestamps are too far ahead of the clock", problems, is_array)
            }
            TenantError::Busy => ApiError::Unavailable(
                "too many requests in flight for this tenant; retry shortly".into(),
            ),
            TenantError::IdempotencyConflict(key) => {
                ApiError::IdempotencyConflict(format!("idempotencyKey {:?} was already used for a different transaction", key.as_str()))
            }
            TenantError::Save(e) => e.into(),
            TenantError::Lookup(e) => e.into(),
            TenantError::Crashed => ApiError::Internal(
                "the request was interrupted; retry with the same idempotencyKey to learn its outcome".into(),
            ),
        }
    }
}

/// For reads, where no request items are involved.
impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        ApiError::from_tenant(e, false)
    }
}

/// At most 10 lines a second (50 at once) for failed requests.
fn server_error_logs() -> &'static LogBudget {
    static BUDGET: std::sync::OnceLock<LogBudget> = std::sync::OnceLock::new();
    BUDGET.get_or_init(|| {
        let n = |v| std::num::NonZeroU32::new(v).unwrap_or(std::num::NonZeroU32::MIN);
        LogBudget::new(n(10), n(50))
    })
}
