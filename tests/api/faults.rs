//! Crashes and slow peers, on resources each test starts itself: a private
//! `mariadbd` killed with SIGKILL, `pos serve` killed with SIGKILL, a
//! private Redis that stalls. Clients retry like tills (same keys until
//! confirmed); afterwards every confirmed sale is stored exactly once, the
//! summary equals the history, and the API equals the summary.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::feed::assert_feed_holds_the_history;
use crate::rollups::assert_rollups_hold_the_history;
use crate::support::child::ChildServer;
use crate::support::ledger::{assert_exactly_once, drive, Ledger};
use crate::support::mariadb_server::MariadbServer;
use crate::support::redis_server::RedisServer;
use crate::support::{amqp_url, FeedConsumer};
use crate::support::{eventually, listed, spawn_app_with, start_app_behind_proxy, Options, TestDb};
use crate::webhooks::{hooks, Receiver};

const CLIENTS: usize = 8;
const SALES_EACH: usize = 40;
const LOAD_DEADLINE: Duration = Duration::from_secs(180);

/// Waits until at least `n` sales are confirmed.
async fn confirmed_at_least(ledger: &Ledger, n: usize) {
    let reached = eventually(Duration::from_secs(60), || async {
        ledger.confirmed_count() >= n
    })
    .await;
    assert!(reached, "the load did not get going");
}

/// Settles that found their batch stored (the lost COMMIT had committed).
const STORED_SETTLES: &str = r#"pos_commit_settles_total{outcome="stored"}"#;

#[actix_web::test]
async fn mariadb_killed_under_load_right_after_a_commit_whose_answer_was_lost_loses_and_doubles_nothing(
) {
    let mut mariadb = MariadbServer::start().await;
    let db = TestDb::create_on(&mariadb.url()).await;
    let t = db.tenant(2, 6).await;
    // The feed's consumers, both sinks: they end with exactly the history.
    let mut consumer = FeedConsumer::bind(&format!("{}.#", t.id)).await;
    let receiver = Receiver::start().await;
    let amqp = amqp_url();
    // Batches wait for MySQL instead of failing: the lost COMMIT is then
    // settled by its mark once MySQL is back.
    let settings = [
        ("POS_STORAGE_RETRY_MS", "60000"),
        ("POS_AMQP_URL", amqp.as_str()),
        ("POS_AMQP_EXCHANGE", consumer.exchange.as_str()),
        ("POS_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("POS_WEBHOOKS_ALLOW_HTTP", "true"),
    ];
    let (app, proxy) = start_app_behind_proxy(db, &settings).await;
    let hook = json!({"url": receiver.url, "types": ["sale.created"]});
    assert_eq!(app.post_json(&hooks(t.id), &hook).await.status, 201);
    let ledger = Arc::new(Ledger::default());
    let load = actix_web::rt::spawn(drive(
        app.base.clone(),
        t.clone(),
        CLIENTS,
        SALES_EACH,
        LOAD_DEADLINE,
        ledger.clone(),
    ));
    confirmed_at_least(&ledger, 40).await;

    // A COMMIT reaches MySQL, its answer does not reach the service, and
    // the way to MySQL goes down with it: nothing can settle it before
    // MySQL dies. The settle has to run after the restart.
    proxy.lose_next_commit_answer_and_go_down();
    let lost = eventually(Duration::from_secs(30), || async {
        proxy.commit_answer_dropped()
    })
    .await;
    assert!(lost, "no COMMIT answer was dropped");
    mariadb.kill();
    let waiting = eventually(Duration::from_secs(30), || async {
        app.metric("pos_persistence_retries_total").await > 0.0
    })
    .await;
    assert!(waiting, "the service never noticed MySQL was gone");
    assert_eq!(
        app.metric(STORED_SETTLES).await,
        0.0,
        "settled before MySQL was killed"
    );
    mariadb.restart().await;
    proxy.restore();
    let settled = eventually(Duration::from_secs(60), || async {
        app.metric(STORED_SETTLES).await >= 1.0
    })
    .await;
    assert!(
        settled,
        "the lost COMMIT was not settled as stored after the restart"
    );

    load.await.expect("load finished");
    assert_eq!(ledger.confirmed_count(), CLIENTS * SALES_EACH);
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.status, 200);
    assert_exactly_once(&app.db, &t, &ledger, &sales.body).await;
    assert_ranking_matches(&app, &sales.body).await;
    assert_rollups_hold_the_history(&app.base, &app.db, &t).await;
    assert_feed_holds_the_history(&mut consumer, &app.db, &t).await;
    let n = CLIENTS * SALES_EACH;
    let hooked = eventually(Duration::from_secs(60), || async {
        receiver.seqs().len() == n
    })
    .await;
    assert!(hooked, "the webhook got {} of {n}", receiver.seqs().len());
    assert_eq!(receiver.seqs(), (1..=n as u64).collect::<Vec<_>>());
    receiver.server.stop(false).await;
    consumer.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn pos_serve_killed_under_load_and_restarted_loses_and_doubles_nothing() {
    let db = TestDb::create().await;
    let t = db.tenant(2, 6).await;
    let mut server = ChildServer::start(&db.url, &[]).await;
    let ledger = Arc::new(Ledger::default());
    let load = actix_web::rt::spawn(drive(
        server.base.clone(),
        t.clone(),
        CLIENTS,
        SALES_EACH,
        LOAD_DEADLINE,
        ledger.clone(),
    ));
    confirmed_at_least(&ledger, 40).await;
    server.kill().await;
    let noticed = eventually(Duration::from_secs(30), || async {
        ledger.retries.load(Ordering::Relaxed) > 0
    })
    .await;
    assert!(noticed, "the clients never saw the server gone");
    server.restart().await;

    load.await.expect("load finished");
    assert_eq!(ledger.confirmed_count(), CLIENTS * SALES_EACH);
    let mut res = server
        .client
        .get(format!("{}/v1/tenants/{}/sales", server.base, t.id))
        .bearer_auth(&t.backoffice)
        .send()
        .await
        .expect("answer");
    let sales: Value = res.json().limit(1 << 20).await.expect("json");
    assert_exactly_once(&db, &t, &ledger, &sales).await;
    assert_rollups_hold_the_history(&server.base, &db, &t).await;
    // The restarted server's ranking (read from the summary at start) too.
    let mut res = server
        .client
        .get(format!(
            "{}/v1/top-selling?limit=100&by=revenue",
            server.base
        ))
        .bearer_auth(&db.operator)
        .send()
        .await
        .expect("answer");
    let top: Value = res.json().limit(1 << 20).await.expect("json");
    assert_same_products(&top, &sales);
    db.drop_database().await;
}

#[actix_web::test]
async fn a_stalled_redis_neither_fails_nor_holds_answers_and_the_mirror_converges() {
    let redis = RedisServer::start().await;
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 3).await;
    let sale = |p: u64| json!({"productID": p, "quantitySold": 2, "pricePerUnit": "3.10"});
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0]))
            .await
            .status,
        201
    );
    let mut stall = redis.stall(6);
    // Only once Redis really answers nothing (redis-cli may take a while to
    // send its DEBUG SLEEP): then sales and reads go on.
    let stalled = eventually(Duration::from_secs(3), || redis.is_stalled()).await;
    assert!(stalled, "Redis never stalled");
    for p in &t.products {
        let a = app.post_json(&t.sales_path(0), &sale(*p)).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }
    assert_eq!(app.get("/v1/top-selling").await.status, 200);
    assert_eq!(app.get("/ready").await.status, 200);
    assert!(
        stall.try_wait().expect("redis-cli").is_none(),
        "Redis was not stalled while the sales were answered"
    );
    // (Waited for without blocking the test's thread, which runs the app's
    // actors and the client's connections too.)
    let woke = eventually(Duration::from_secs(10), || {
        let done = stall.try_wait().ok().flatten().is_some();
        async move { done }
    })
    .await;
    assert!(woke, "Redis never woke up");
    let converged = eventually(Duration::from_secs(20), || async {
        let top = app.get("/v1/top-selling?limit=100").await.body;
        let want: Vec<(String, f64)> = top["top_selling_products"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["productID"].to_string(),
                    p["quantitySold"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect();
        let mut have = app.redis_set("quantity").await;
        have.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        have.len() == 3 && have == want
    })
    .await;
    assert!(converged, "the mirror did not catch up");
    app.cleanup().await;
}

/// The global ranking holds exactly the tenant's totals (it is the only tenant).
async fn assert_ranking_matches(app: &crate::support::TestApp, sales: &Value) {
    let top = app.get("/v1/top-selling?limit=100&by=revenue").await;
    assert_same_products(&top.body, sales);
}

/// The top sellers hold exactly the tenant's products with their totals.
fn assert_same_products(top: &Value, sales: &Value) {
    let products = |list: &Value| {
        let mut rows: Vec<_> = listed(list)
            .into_iter()
            .map(|(_, p, q, r)| (p, q, r))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        products(&top["top_selling_products"]),
        products(&sales["sales_per_product"]),
        "the ranking differs from the tenant's totals"
    );
}
