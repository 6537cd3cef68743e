//! Probe tills: one per shard, selling one sale at a time through HAProxy,
//! each sent again with its idempotency key until it is answered 200 or
//! 201. They keep a key-by-key ledger for the checker, and they time the
//! shard's outages: a gap between two confirmed sales longer than [`GAP`]
//! is a time the shard took no writes if a try in it was refused (or went
//! unanswered), or took longer than [`SLOW`]; slow answers over a slow
//! link are not an outage.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::json;

use super::platform::{Platform, Shop};

/// Between two sales of a probe, and between tries of one.
const PACE: Duration = Duration::from_millis(50);
/// A gap between confirmed sales longer than this may be an outage…
pub const GAP: Duration = Duration::from_millis(300);
/// …if a try in it failed or took this long.
const SLOW: Duration = Duration::from_secs(1);
/// Once the run is over, the sale in hand gets this long to be confirmed.
const LAST_CALL: Duration = Duration::from_secs(60);

/// Whether the run ended more than [`LAST_CALL`] ago (its end is noted
/// the first time it is seen).
fn past_last_call(stop: &RefCell<bool>, ended: &mut Option<Instant>) -> bool {
    if !*stop.borrow() {
        return false;
    }
    ended.get_or_insert_with(Instant::now).elapsed() > LAST_CALL
}

/// One confirmed sale: product, quantity, unit price.
pub type Sold = (u64, u32, Decimal);

#[derive(Default)]
pub struct ProbeLog {
    pub confirmed: HashMap<String, Sold>,
    /// Gaps between confirmed sales longer than [`GAP`]: (from, to).
    pub outages: Vec<(Instant, Instant)>,
    /// Answers by status (0: none).
    pub statuses: BTreeMap<u16, usize>,
    /// 503s without `Retry-After`.
    pub unavailable_without_retry_after: usize,
    /// Answers no till should ever get.
    pub unexpected: Vec<String>,
}

/// Sells on `shop` until `stop` is set, then finishes the sale in hand.
pub async fn probe(platform: Rc<Platform>, shop: Shop, stop: Rc<RefCell<bool>>) -> ProbeLog {
    let mut log = ProbeLog::default();
    let path = shop.sales_path();
    let mut last = Instant::now();
    let mut ended = None;
    let mut n = 0u64;
    while !*stop.borrow() {
        n += 1;
        let key = format!("probe-{}-{n}", shop.shard());
        let product = shop.products[(n % shop.products.len() as u64) as usize];
        let sold: Sold = (
            product,
            1 + (n % 3) as u32,
            Decimal::new(150 + (n % 5) as i64, 2),
        );
        let body = json!({
            "productID": sold.0,
            "quantitySold": sold.1,
            "pricePerUnit": sold.2.to_string(),
            "idempotencyKey": key,
        });
        let mut stalled = false;
        loop {
            let sent = Instant::now();
            let a = platform.send("POST", &path, &shop.till, Some(&body)).await;
            stalled |= !matches!(a.status, 200 | 201) || sent.elapsed() > SLOW;
            *log.statuses.entry(a.status).or_default() += 1;
            if a.status == 503 && !a.retry_after {
                log.unavailable_without_retry_after += 1;
            }
            match a.status {
                200 | 201 => break,
                0 | 429 | 500 | 502 | 503 | 504 => {}
                other => log.unexpected.push(format!("{key}: {other} {}", a.body)),
            }
            if past_last_call(&stop, &mut ended) {
                log.unexpected.push(format!(
                    "{key} was never confirmed (last answer {})",
                    a.status
                ));
                return log;
            }
            actix_web::rt::time::sleep(PACE).await;
        }
        let now = Instant::now();
        if now - last > GAP && stalled {
            log.outages.push((last, now));
        }
        last = now;
        log.confirmed.insert(key, sold);
        actix_web::rt::time::sleep(PACE).await;
    }
    log
}

/// Catalog changes while the faults go on: every second a product of one of
/// `shops` is renamed by the operator, again until answered 200.
pub async fn rename(platform: Rc<Platform>, shops: Vec<Shop>, stop: Rc<RefCell<bool>>) -> usize {
    let mut ended = None;
    let mut n = 0usize;
    while !*stop.borrow() {
        n += 1;
        let shop = &shops[n % shops.len()];
        let product = shop.products[n % shop.products.len()];
        let path = format!("/v1/tenants/{}/products/{product}", shop.id);
        let body = json!({"name": format!("Product {product} mark {n}")});
        loop {
            let a = platform
                .send("PATCH", &path, &platform.control.operator, Some(&body))
                .await;
            if a.status == 200 {
                break;
            }
            assert!(
                matches!(a.status, 0 | 500 | 502 | 503 | 504),
                "{path}: {} {}",
                a.status,
                a.body
            );
            assert!(
                !past_last_call(&stop, &mut ended),
                "{path} was never answered 200"
            );
            actix_web::rt::time::sleep(PACE).await;
        }
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    }
    n
}
