//! Sales from clients that behave like tills: every sale has its own
//! idempotency key and is sent again, with the same key, until the server
//! answers 200 or 201 (a 500, 502, 503, 504, 429, a refused or broken
//! connection all mean "try again"). The ledger holds what was confirmed; the checks say
//! whether the database holds exactly that, once each, and whether the
//! summary table and the API agree with the history.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{Tenant, TestDb};

/// One confirmed sale: product, quantity, unit price.
pub type Sold = (u64, u32, Decimal);

#[derive(Default)]
pub struct Ledger {
    pub confirmed: Mutex<HashMap<String, Sold>>,
    /// Attempts that had to be repeated.
    pub retries: AtomicUsize,
}

impl Ledger {
    pub fn confirmed_count(&self) -> usize {
        self.confirmed.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// Sends `sales_each` sales from each of `clients` tills of `tenant` to
/// `base`, one at a time per till, retrying each until confirmed; fails the
/// test if that takes longer than `deadline` in all.
pub async fn drive(
    base: String,
    tenant: Tenant,
    clients: usize,
    sales_each: usize,
    deadline: Duration,
    ledger: Arc<Ledger>,
) {
    let until = Instant::now() + deadline;
    let tills = (0..clients).map(|c| {
        let (base, tenant, ledger) = (base.clone(), tenant.clone(), ledger.clone());
        async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish();
            let url = format!("{base}{}", tenant.sales_path(c % tenant.branches.len()));
            for i in 0..sales_each {
                let key = format!("till-{c}:{i}");
                let product = tenant.products[(c + i) % tenant.products.len()];
                let quantity = 1 + (i % 3) as u32;
                let price = Decimal::new(125 + 10 * (product % 7) as i64, 2);
                let body = json!({
                    "productID": product,
                    "quantitySold": quantity,
                    "pricePerUnit": price.to_string(),
                    "idempotencyKey": key,
                });
                loop {
                    assert!(Instant::now() < until, "{key} was never confirmed");
                    let status = client
                        .post(&url)
                        .bearer_auth(&tenant.till)
                        .send_json(&body)
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    match status {
                        200 | 201 => break,
                        0 | 429 | 500 | 502 | 503 | 504 => {
                            ledger.retries.fetch_add(1, Ordering::Relaxed);
                            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("{key}: unexpected {other}"),
                    }
                }
                if let Ok(mut c) = ledger.confirmed.lock() {
                    c.insert(key, (product, quantity, price));
                }
            }
        }
    });
    futures_util::future::join_all(tills).await;
}

/// Four tills of `tenant` selling 60 sales each to `base` in the
/// background (see [`drive`]), once 20 are confirmed; the task and its ledger.
pub async fn load_under_way(
    base: &str,
    tenant: &Tenant,
) -> (actix_web::rt::task::JoinHandle<()>, Arc<Ledger>) {
    let ledger = Arc::new(Ledger::default());
    let load = actix_web::rt::spawn(drive(
        base.to_string(),
        tenant.clone(),
        4,
        60,
        Duration::from_secs(180),
        ledger.clone(),
    ));
    let going = super::eventually(Duration::from_secs(60), || async {
        ledger.confirmed_count() >= 20
    })
    .await;
    assert!(going, "the load did not get going");
    (load, ledger)
}

/// Every sale `tenant` has stored: key, product, quantity, unit price.
pub async fn stored_sales(
    conn: &mut mysql_async::Conn,
    tenant: u64,
) -> Vec<(String, u64, u32, Decimal)> {
    conn.exec(
        "SELECT idempotency_key, product_id, quantity_sold, price_per_unit \
         FROM sales_transactions WHERE tenant_id = ?",
        (tenant,),
    )
    .await
    .expect("the history")
}

/// The database holds every confirmed sale exactly once and nothing else;
/// the summary equals the history; the API (`sales` as read with the
/// tenant's back-office key) equals the summary.
pub async fn assert_exactly_once(db: &TestDb, tenant: &Tenant, ledger: &Ledger, api: &Value) {
    crate::events::assert_events_number_the_history(db, tenant.id).await;
    let confirmed = ledger.confirmed.lock().expect("ledger").clone();
    // A fresh connection: the pool's may predate a server restart.
    let mut conn = mysql_async::Conn::from_url(db.url.as_str())
        .await
        .expect("connects");
    let rows = stored_sales(&mut conn, tenant.id).await;
    assert_eq!(
        rows.len(),
        confirmed.len(),
        "rows stored vs sales confirmed"
    );
    for (key, product, quantity, price) in rows {
        let sold = confirmed
            .get(&key)
            .unwrap_or_else(|| panic!("{key} is stored but was never confirmed"));
        assert_eq!(
            *sold,
            (product, quantity, price),
            "{key} stored other content"
        );
    }
    let history: Vec<(u64, u64, Decimal)> = conn
        .exec(
            "SELECT product_id, CAST(SUM(quantity_sold) AS UNSIGNED), SUM(quantity_sold * price_per_unit) \
             FROM sales_transactions WHERE tenant_id = ? GROUP BY product_id ORDER BY product_id",
            (tenant.id,),
        )
        .await
        .expect("history sums");
    let summary: Vec<(u64, u64, Decimal)> = conn
        .exec(
            "SELECT product_id, quantity_sold, revenue FROM product_sales_totals \
             WHERE tenant_id = ? ORDER BY product_id",
            (tenant.id,),
        )
        .await
        .expect("summary");
    let _ = conn.disconnect().await;
    assert_eq!(summary, history, "the summary differs from the history");
    let from_api: BTreeMap<u64, (u64, Decimal)> = api["sales_per_product"]
        .as_array()
        .expect("sales_per_product")
        .iter()
        .map(|p| {
            (
                p["productID"].as_u64().expect("id"),
                (
                    p["quantitySold"].as_u64().expect("quantity"),
                    p["totalSales"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("money"),
                ),
            )
        })
        .collect();
    let from_summary: BTreeMap<u64, (u64, Decimal)> =
        summary.into_iter().map(|(p, q, r)| (p, (q, r))).collect();
    assert_eq!(from_api, from_summary, "the API differs from the summary");
}
