//! `/health` (the process runs) and `/ready` (MySQL answers, the shard's
//! lease is held, the actors run). Readiness is checked in the background,
//! once per [`READY_INTERVAL`], and `/ready` answers from that state: a
//! flood of `/ready` costs no query and never queues before the commits.
//! The API port says only ready or not (and whether keys are required);
//! the metrics port's `/ready` gives the details.

use std::sync::RwLock;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::json;

use super::AppState;

/// How often readiness is checked while ready…
pub const READY_INTERVAL: Duration = Duration::from_secs(1);
/// …and while not: an instance whose database came back says so within a
/// fifth of a second, and HAProxy (checking a down server every 250 ms)
/// sends it traffic soon after.
const NOT_READY_INTERVAL: Duration = Duration::from_millis(200);

/// When to check again after finding `ready`.
fn next_check(ready: bool) -> Duration {
    if ready {
        READY_INTERVAL
    } else {
        NOT_READY_INTERVAL
    }
}

/// The last readiness check's findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// Every persistence pool answered a ping.
    pub mysql: bool,
    /// This instance holds its shard's lease.
    pub lease: bool,
    pub redis: &'static str,
}

/// The findings, shared by every worker.
#[derive(Default)]
pub struct ReadyState {
    found: RwLock<Readiness>,
    /// Asks for a check now rather than at the next interval (boot done).
    check_now: tokio::sync::Notify,
}

impl ReadyState {
    pub fn get(&self) -> Readiness {
        match self.found.read() {
            Ok(r) => *r,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Something readiness depends on changed: check at once.
    pub fn changed(&self) {
        self.check_now.notify_one();
    }

    fn set(&self, r: Readiness) {
        match self.found.write() {
            Ok(mut w) => *w = r,
            Err(poisoned) => *poisoned.into_inner() = r,
        }
    }
}

/// Checks readiness once per [`READY_INTERVAL`] (more often while not
/// ready), forever (aborted at stop).
pub async fn watch_readiness(state: web::Data<AppState>) {
    loop {
        let found = check(&state).await;
        state.readiness.set(found);
        tokio::select! {
            () = tokio::time::sleep(next_check(found.ready)) => {}
            () = state.readiness.check_now.notified() => {}
        }
    }
}

async fn check(state: &AppState) -> Readiness {
    let (mysql, lease) = match state.core.get() {
        None => (false, false),
        Some(core) => {
            let pings = core.tenants.writers().map(|w| w.ping());
            let mysql = join_all(pings).await.into_iter().all(|up| up);
            (mysql, core.shard_lease.current().is_some())
        }
    };
    let redis = match &state.mirror {
        None => "disabled",
        Some(m) if m.is_connected() => "up",
        Some(_) => "down",
    };
    Readiness {
        ready: mysql && lease,
        mysql,
        lease,
        redis,
    }
}

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `/ready` on the API port: ready or not, nothing more.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let r = state.readiness.get();
    answer(
        r.ready,
        json!({
            "status": if r.ready { "ready" } else { "unavailable" },
            "auth": if state.auth.is_some() { "enabled" } else { "disabled" },
        }),
    )
}

/// `/ready` on the metrics port: the same, with what was found.
pub async fn ready_details(state: web::Data<AppState>) -> HttpResponse {
    let r = state.readiness.get();
    answer(
        r.ready,
        json!({
            "status": if r.ready { "ready" } else { "unavailable" },
            "mysql": if r.mysql { "up" } else { "down" },
            "lease": if r.lease { "held" } else { "not held" },
            "redis": r.redis,
            "auth": if state.auth.is_some() { "enabled" } else { "disabled" },
        }),
    )
}

fn answer(ready: bool, body: serde_json::Value) -> HttpResponse {
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_that_is_not_ready_looks_again_within_a_fifth_of_a_second() {
        assert_eq!(next_check(true), READY_INTERVAL);
        assert!(next_check(false) <= Duration::from_millis(200));
    }
}
