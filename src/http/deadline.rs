//! Every request body, on every route, is read within `POS_BODY_TIMEOUT_MS`
//! of its headers: a client that announces a body and sends it slowly (or
//! never) gets 408 `request_timeout` and its connection is closed, whatever
//! the handler reads it with (JSON, a form, a file upload). The request
//! middleware (`track_requests`) arms it in front of routing, so it holds
//! before any key or session is checked: a sign-in form needs none, and
//! once held a connection for good.
//!
//! The clock starts when the headers are in. Bytes that already arrived
//! are always handed out; the deadline is looked at only when the handler
//! waits for more, and its timer is made only then (most bodies arrive with
//! their headers). What a handler leaves unread (an answer given before
//! the body, as a refused key's) is held and read here, and the connection
//! closes after its answer: actix itself would read a chunked body no one
//! wants for as long as the client sends it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use std::time::Duration;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, ResponseError};
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::app::PageError;
use super::ApiError;

/// A request body under its deadline: what [`arm`] leaves for [`settle`].
pub struct Armed {
    timeout: Duration,
    expired: Rc<Cell<bool>>,
}

/// Puts the request's body, if it has one, under the body deadline.
pub fn arm(req: &mut ServiceRequest, timeout: Duration) -> Option<Armed> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return None;
    }
    let expired = Rc::new(Cell::new(false));
    let body = Deadline {
        inner: Some(payload),
        at: Instant::now() + timeout,
        timer: None,
        last_turn: false,
        expired: expired.clone(),
        ended: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    Some(Armed { timeout, expired })
}

impl Armed {
    /// The handler's answer, or, for a body that missed its deadline, 408
    /// and the connection closed, whatever the handler answered.
    pub fn settle<B>(
        self,
        answered: Result<ServiceResponse<B>, actix_web::Error>,
    ) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
        if !self.expired.get() {
            return Ok(answered?.map_into_left_body());
        }
        let timed_out = || {
            ApiError::RequestTimeout(format!(
                "the body did not arrive within {} ms of the headers",
                self.timeout.as_millis()
            ))
        };
        // (A handler's error is an answer by now; an `Err` here would be a
        // middleware's, which left no request to answer with.)
        let (request, _) = answered.map_err(|_| timed_out())?.into_parts();
        let e = timed_out();
        // The pages answer in HTML, the API in its error format.
        let mut res = if request.path().starts_with("/app/") {
            PageError(e).error_response()
        } else {
            e.error_response()
        };
        // The rest of the body may still come: nothing more is read from
        // this connection.
        res.head_mut().set_connection_type(ConnectionType::Close);
        Ok(ServiceResponse::new(request, res).map_into_right_body())
    }
}

/// A body that ends in an error once its deadline passed.
struct Deadline {
    /// `None` once handed to [`drain`].
    inner: Option<Payload>,
    at: Instant,
    /// Made the first time the handler waits for bytes.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer fired once: the connection gets one more turn to read
    /// what the kernel holds (actix buffers only 32 KiB of a body, so a
    /// handler that starts reading late would otherwise find a body that
    /// came in time "missing").
    last_turn: bool,
    expired: Rc<Cell<bool>>,
    /// The body arrived whole (or failed): nothing is left to read.
    ended: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(item) = Pin::new(inner).poll_next(cx) {
            this.ended = !matches!(item, Some(Ok(_)));
            return Poll::Ready(item);
        }
        let at = this.at;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if !this.last_turn {
            this.last_turn = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.expired.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the body did not arrive in time",
        )))))
    }
}

impl Drop for Deadline {
    /// What the handler left unread stays held (so actix closes the
    /// connection after its answer rather than drain it) and is read and
    /// dropped here.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Some(body) = self.inner.take() {
            actix_web::rt::spawn(drain(body, self.at));
        }
    }
}

/// How long past its deadline an unread body is held at most: time for
/// the answer to go out before the connection closes.
const HOLD_AFTER_DEADLINE: Duration = Duration::from_secs(5);

/// Reads `body` to its end (or its connection's) and drops it. While it is
/// held, actix sees a body nobody finished and closes the connection once
/// its answer is sent; a body dropped unfinished it would read on for as
/// long as the client sends (a chunked one, for ever).
async fn drain(mut body: Payload, at: Instant) {
    let rest = async { while let Some(Ok(_)) = body.next().await {} };
    let _ = tokio::time::timeout_at(at.max(Instant::now()) + HOLD_AFTER_DEADLINE, rest).await;
}
