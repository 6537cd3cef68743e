//! The error codes of the API (SPEC §3): the `code` of every error body,
//! and the `reason` label of the metrics that count refusals.

/// One error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    ValidationFailed,
    IdempotencyConflict,
    Unauthorized,
    Forbidden,
    RateLimited,
    RequestTimeout,
    Misdirected,
    Unavailable,
    Internal,
    Conflict,
    TenantSuspended,
}

impl ErrorCode {
    /// Every code, in the order of the spec.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadJson,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ValidationFailed,
        ErrorCode::IdempotencyConflict,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::RequestTimeout,
        ErrorCode::Misdirected,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::Conflict,
        ErrorCode::TenantSuspended,
    ];

    /// The codes the API key check refuses with.
    pub const AUTH: [ErrorCode; 4] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Misdirected => "misdirected",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TenantSuspended => "tenant_suspended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_name() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
