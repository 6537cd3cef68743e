//! Request bodies: JSON only, at most [`MAX_BODY_BYTES`] (complete within
//! the body timeout of the headers, as every body: see `deadline`). The buffer grows with what arrives,
//! never with what a client announces. A gzip body (an offline till's big
//! batch) is decoded with the same bound on what it decodes to, so a small
//! bomb allocates no more than a plain body may.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::ApiError;
use crate::domain::clip;

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Buffer reserved before any byte arrived.
const FIRST_BUFFER_BYTES: usize = 16 << 10;

/// The body of a JSON request.
pub async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::BytesMut, ApiError> {
    require_json(req)?;
    let gzip = gzip_encoded(req)?;
    // The body's time bound is `deadline`'s, in front of every route.
    let body = read_body(req, payload).await?;
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
/// Every gzip member is decoded, under the one bound: what follows the
/// first is never dropped unread, and what is not gzip is refused.
fn gunzip(compressed: &[u8]) -> Result<web::BytesMut, ApiError> {
    use std::io::Read;
    let limit = MAX_BODY_BYTES as u64 + 1;
    let mut decoded = Vec::with_capacity(compressed.len().min(FIRST_BUFFER_BYTES));
    flate2::read::MultiGzDecoder::new(compressed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).expect("in memory");
        e.finish().expect("in memory")
    }

    #[test]
    fn every_gzip_member_is_decoded_and_trailing_bytes_are_refused() {
        let mut two = gzip(b"[1,");
        two.extend(gzip(b"2]"));
        assert_eq!(&gunzip(&two).expect("two members")[..], b"[1,2]");
        let mut trailing = gzip(b"[1]");
        trailing.extend_from_slice(b"not gzip");
        assert!(matches!(gunzip(&trailing), Err(ApiError::BadJson(_))));
    }

    #[test]
    fn the_bound_covers_all_members_together() {
        let half = vec![b' '; MAX_BODY_BYTES / 2 + 1];
        let mut two = gzip(&half);
        two.extend(gzip(&half));
        assert!(matches!(gunzip(&two), Err(ApiError::PayloadTooLarge(_))));
    }
}
