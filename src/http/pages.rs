//! Lists in pages: `limit` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`])
//! items after `cursor`, the `nextCursor` of the page before (absent on
//! the last page). A cursor is the last item's id, never a count, so a
//! list that grows meanwhile is neither skipped nor repeated.

use actix_web::web;
use serde::Serialize;

use super::ApiError;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Longest cursor accepted (ids are shorter).
const MAX_CURSOR_LEN: usize = 64;

/// What a list request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn from_query(query: &str) -> Result<PageRequest, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|_| ApiError::validation("query", "is not a valid query string"))?;
        let mut page = PageRequest {
            limit: DEFAULT_LIMIT,
            cursor: None,
        };
        for (name, value) in pairs.iter() {
            match name.as_str() {
                "limit" => {
                    page.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::validation("limit", "must be an integer between 1 and 1000")
                        })?;
                }
                "cursor" if value.len() <= MAX_CURSOR_LEN => page.cursor = Some(value.clone()),
                "cursor" => return Err(bad_cursor()),
                _ => {}
            }
        }
        Ok(page)
    }

    /// The cursor as an id of this list.
    pub fn cursor_as<T>(
        &self,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| parse(c).ok_or_else(bad_cursor))
            .transpose()
    }

    /// The answer's `nextCursor`: the last item's id when the page is full.
    pub fn next_cursor(&self, shown: usize, last: Option<String>) -> Option<String> {
        (shown == self.limit).then_some(last).flatten()
    }
}

fn bad_cursor() -> ApiError {
    ApiError::validation("cursor", "must be the nextCursor of an earlier page")
}

/// A page of a list, as `{"<items>": [...], "nextCursor": ...}`.
#[derive(Serialize)]
pub struct Page<T> {
    #[serde(flatten)]
    pub items: T,
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
