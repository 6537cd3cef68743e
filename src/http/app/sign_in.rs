//! Signing in with a key (back office or operator) and out again. The key
//! is read once, from the form; the browser keeps only the signed session
//! cookie, never the key.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use maud::html;
use serde::Deserialize;

use super::layout::shell;
use super::session::{self, COOKIE};
use super::{is_tls, see_other, signed_session, viewer_of, PageError, PageResult};
use crate::auth::Session;
use crate::auth::{Auth, AuthError};
use crate::clock::{UnixMs, UnixSecs};
use crate::http::gate::client_address;
use crate::http::{ApiError, AppState};
use crate::service::sessions;

/// `GET /app/`: the sign-in form, or the viewer's home when signed in.
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let now = UnixSecs::now();
    if let Ok((viewer, _)) = viewer_of(&state, &req, now).await {
        return Ok(see_other(&viewer.home()));
    }
    Ok(form(None))
}

fn form(problem: Option<(actix_web::http::StatusCode, &str)>) -> HttpResponse {
    let markup = shell(
        "Sign in",
        html! {
            main class="sign-in" {
                h1 { "POS back office" }
                @if let Some((_, message)) = problem {
                    p class="notice problem" role="alert" { (message) }
                }
                form method="post" action="/app/session" {
                    label for="key" { "Back-office or operator key" }
                    input id="key" name="key" type="password" autocomplete="off" required
                        placeholder="pos_…";
                    p { button type="submit" { "Sign in" } }
                }
                p class="muted" { "The key is checked once; this browser keeps only a session that ends after 12 hours without use." }
            }
        },
    );
    let status = problem.map_or(actix_web::http::StatusCode::OK, |(s, _)| s);
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

/// `POST /app/session`: checks the key and starts a session.
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Form<SignIn>,
) -> PageResult {
    use actix_web::http::StatusCode;
    let Some(auth) = &state.auth else {
        return Ok(see_other("/app/operator"));
    };
    let key = match auth.sign_in(&body.key, client_address(&state, &req)).await {
        Ok(key) => key,
        Err(e) => {
            let (status, message) = match e {
                AuthError::Unauthorized => (
                    StatusCode::UNAUTHORIZED,
                    "That key is not valid (unknown, mistyped or revoked).",
                ),
                AuthError::Forbidden(_) => (
                    StatusCode::FORBIDDEN,
                    "A till key cannot sign in; use a back-office key.",
                ),
                AuthError::RateLimited(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts from this address; wait a little.",
                ),
                AuthError::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Keys cannot be checked right now; try again shortly.",
                ),
            };
            return Ok(form(Some((status, message))));
        }
    };
    let began = key.next_session_start(UnixMs::now());
    let value = state.sessions.issue(&key.id, began, UnixSecs::now());
    let home = match key.scope.tenant() {
        Some(t) => format!("/app/tenants/{t}/"),
        None => "/app/operator".into(),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, home))
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(&value, is_tls(&state, &req)),
        ))
        .finish())
}

/// `POST /app/session/end`: the session (and any earlier one of its key)
/// ends on every instance, and the cookie is removed. The cookie's
/// signature is enough: a sign-out needs no look-up of the key. If the
/// end cannot be stored (MySQL away), it holds here at once all the same,
/// is stored when MySQL is back, and the answer says so.
pub async fn sign_out(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let signed_out = to_sign_in(&req, is_tls(&state, &req));
    let stored = match (&state.auth, signed_session(&state, &req, UnixSecs::now())) {
        (Some(auth), Some(session)) => end_sessions(&state, auth, &session).await,
        // No keys, or no valid session: nothing to end.
        _ => Ok(()),
    };
    let Err(e) = stored else {
        return Ok(signed_out);
    };
    tracing::warn!(error = %e, "a sign-out could not be stored yet");
    let why = ApiError::Unavailable(
        "this browser is signed out, and so is every copy of its session cookie on this \
         server; the other servers learn of it once the database is back"
            .into(),
    );
    let mut res = PageError(why).error_response();
    if let Some(cookie) = signed_out.headers().get(header::SET_COOKIE) {
        res.headers_mut().insert(header::SET_COOKIE, cookie.clone());
    }
    Ok(res)
}

/// Stores that `session`, and the earlier ones of its key, are over; in
/// force here at once, stored or not (the revocation watch then stores it
/// when MySQL is back).
async fn end_sessions(state: &AppState, auth: &Auth, session: &Session) -> Result<(), ApiError> {
    let (key, began) = (session.key_id.clone(), session.began);
    let stored = match state.services() {
        Ok(services) => sessions::end_sessions(services, key, began)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    auth.signed_out(&session.key_id, began, stored.is_ok())
        .await;
    stored
}

/// To the sign-in page, with the session cookie removed (it named no
/// valid session, or the viewer signed out).
pub fn to_sign_in(req: &HttpRequest, secure: bool) -> HttpResponse {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((header::LOCATION, "/app/"));
    let has_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(COOKIE));
    // (COOKIE is part of the `__Host-` name too.)
    if has_cookie {
        res.insert_header((header::SET_COOKIE, session::set_cookie("", secure)));
    }
    res.finish()
}
