//! `/health` (the process runs) and `/ready` (MySQL answers, actors run).

use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use serde_json::json;

use super::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let mysql_up = match state.core.get() {
        // Not ready while another instance holds this shard (or writes
        // paused for lack of a renewed lease).
        Some(core) if core.shard_lease.current().is_none() => false,
        None => false,
        Some(core) => {
            let pings = core.tenants.writers().map(|w| w.ping());
            join_all(pings).await.into_iter().all(|up| up)
        }
    };
    let redis = match &state.mirror {
        None => "disabled",
        Some(m) if m.is_connected() => "up",
        Some(_) => "down",
    };
    let body = json!({
        "status": if mysql_up { "ready" } else { "unavailable" },
        "mysql": if mysql_up { "up" } else { "down" },
        "redis": redis,
        "auth": if state.auth.is_some() { "enabled" } else { "disabled" },
    });
    if mysql_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}
