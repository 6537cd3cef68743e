//! Waiting for a condition (never for a fixed time), and reading metrics.

use std::time::{Duration, Instant};

use super::TestDb;

/// The value of the sample `sample` (`name{labels}` exactly as exported)
/// in Prometheus text `text`: the whole name, never a prefix of another.
pub fn sample_of(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_every(Duration::from_millis(25), timeout, check).await
}

/// Polls `check` every `period` until it holds or `timeout` passes.
pub async fn eventually_every<F, Fut>(period: Duration, timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        actix_web::rt::time::sleep(period).await;
    }
}

/// Waits until `n` transactions of `db` wait for a row lock. InnoDB
/// refreshes what `INNODB_TRX` shows only when nobody read it for 0.1 s,
/// so this polls less often than that.
pub async fn until_lock_waits(db: &TestDb, n: u64) -> bool {
    eventually_every(
        Duration::from_millis(250),
        Duration::from_secs(30),
        || async { db.lock_waits().await == n },
    )
    .await
}
