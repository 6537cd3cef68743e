//! Request bodies: JSON only, at most [`MAX_BODY_BYTES`], complete within
//! the body timeout of the headers. The buffer grows with what arrives,
//! never with what a client announces. A gzip body (an offline till's big
//! batch) is decoded with the same bound on what it decodes to, so a small
//! bomb allocates no more than a plain body may.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::{ApiError, AppState};
use crate::domain::clip;

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Buffer reserved before any byte arrived.
const FIRST_BUFFER_BYTES: usize = 16 << 10;

/// The body of a JSON request, read within the body timeout.
pub async fn json_body(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::BytesMut, ApiError> {
    require_json(req)?;
    let gzip = gzip_encoded(req)?;
    let body = tokio::time::timeout(state.body_timeout, read_body(req, payload))
        .await
        .map_err(|_| {
            ApiError::RequestTimeout(format!(
                "the body did not arrive within {} ms of the headers",
                state.body_timeout.as_millis()
            ))
        })??;
    if gzip {
        gunzip(&body)
    } else {
        Ok(body)
    }
}

/// Whether the body is gzip; any other coding than gzip or identity is 415.
fn gzip_encoded(req: &HttpRequest) -> Result<bool, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let coding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match coding.as_str() {
        "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding must be gzip or identity, got {:?}",
            clip(other)
        ))),
    }
}

/// The decoded body, refused once it decodes to more than [`MAX_BODY_BYTES`].
fn gunzip(compressed: &[u8]) -> Result<web::BytesMut, ApiError> {
    use std::io::Read;
    let limit = MAX_BODY_BYTES as u64 + 1;
    let mut decoded = Vec::with_capacity(compressed.len().min(FIRST_BUFFER_BYTES));
    flate2::read::GzDecoder::new(compressed)
        .take(limit)
        .read_to_end(&mut decoded)
        .map_err(|e| ApiError::BadJson(format!("the gzip body could not be decoded: {e}")))?;
    if decoded.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body may decode to at most {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(web::BytesMut::from(&decoded[..]))
}

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match mime.as_deref() {
        Some("application/json") => Ok(()),
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Ok(()),
        Some(m) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, got {:?}",
            clip(m)
        ))),
        None => Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        )),
    }
}

/// Reads at most [`MAX_BODY_BYTES`], refusing more without reading it all.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::BytesMut, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("the body may be at most {MAX_BODY_BYTES} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(FIRST_BUFFER_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
