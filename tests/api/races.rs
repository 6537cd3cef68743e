//! Sequences in which a sale could be stored but not counted, stored
//! twice, or refused although stored: each forced deterministically (a
//! lock the test holds, a proxy that cuts a connection at a chosen
//! statement, rows a predecessor committed late), never by timing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, keyed, sale, start_app_behind_proxy, TestApp, TestDb};

/// `product:quantity/revenue` of each product, in product order.
fn totals_text(rows: impl IntoIterator<Item = (u64, u64, String)>) -> String {
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort();
    rows.iter()
        .map(|(p, q, r)| format!("{p}:{q}/{r}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The tenant's totals as its sales endpoint answers them.
async fn api_totals(app: &TestApp, tenant: u64) -> String {
    let sales = app.get(&format!("/v1/tenants/{tenant}/sales")).await;
    totals_text(
        crate::support::listed(&sales.body["sales_per_product"])
            .into_iter()
            .map(|(_, p, q, r)| (p, q, r)),
    )
}

/// The tenant's products as the global ranking holds them.
async fn ranked_totals(app: &TestApp, tenant: u64) -> String {
    let top = app.get("/v1/top-selling?limit=100&by=revenue").await;
    totals_text(
        crate::support::listed(&top.body["top_selling_products"])
            .into_iter()
            .filter(|(t, ..)| *t == tenant)
            .map(|(_, p, q, r)| (p, q, r)),
    )
}

/// Summary = history = API, and the ranking follows (it may take a moment
/// after a reload: it is fed asynchronously).
async fn assert_all_agree(app: &TestApp, tenant: u64) {
    let (summary, history) = app.db.summary_and_history(tenant).await;
    assert_eq!(summary, history, "the summary differs from the history");
    assert_eq!(
        api_totals(app, tenant).await,
        summary,
        "the API differs from MySQL"
    );
    let ranked = eventually(Duration::from_secs(10), || async {
        ranked_totals(app, tenant).await == summary
    })
    .await;
    assert!(
        ranked,
        "the ranking differs from MySQL: {}",
        ranked_totals(app, tenant).await
    );
}

/// Ends the transaction that held the lock, and gives its connection back
/// (the test database cannot be dropped while it is out).
async fn release(mut lock: mysql_async::Conn) {
    mysql_async::prelude::Queryable::query_drop(&mut lock, "ROLLBACK")
        .await
        .expect("release the lock");
}

/// A batch whose connection dies while MySQL still runs it (it waits for a
/// lock the test holds): the service settles, finds no mark, sends the
/// batch again, and then both could commit once the lock goes.
async fn a_batch_still_running_when_its_connection_dies(key: Option<&str>) {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    // A long retry window: the retry must wait for the lock, not give up.
    let (app, proxy) = start_app_behind_proxy(db, &[("POS_STORAGE_RETRY_MS", "60000")]).await;
    let first = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "2.00"))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let lock = app.db.lock_totals(t.id).await;

    proxy.cut_right_after_next_commit();
    let body = match key {
        Some(k) => keyed(sale(t.products[0], 3, "2.00"), k),
        None => sale(t.products[0], 3, "2.00"),
    };
    let client = app.client.clone();
    let (url, token) = (format!("{}{}", app.base, t.sales_path(0)), t.till.clone());
    let post = actix_web::rt::spawn(async move {
        let mut res = client
            .post(url)
            .bearer_auth(token)
            .send_json(&body)
            .await
            .expect("an answer");
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap_or_default())
    });
    // The first attempt waits for the lock in MySQL, its connection gone;
    // the service sends the batch again, and that attempt waits too.
    let retried = eventually(Duration::from_secs(30), || async {
        proxy.commits_sent() >= 3
    })
    .await;
    assert!(retried, "the service did not send the batch again");
    assert!(
        crate::support::until_lock_waits(&app.db, 2).await,
        "the lost attempt and its retry did not both reach the lock"
    );
    release(lock).await;

    let (status, body) = post.await.expect("the request ends");
    assert_eq!(status, 201, "{body:?}");
    assert_eq!(app.db.count("sales_transactions").await, 2, "stored once");
    assert_eq!(body["quantitySold"], 3);
    let id = app
        .db
        .scalar("SELECT MAX(id) FROM sales_transactions")
        .await;
    assert_eq!(
        body["id"].to_string(),
        id,
        "the answer names the stored row"
    );
    assert_all_agree(&app, t.id).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_batch_without_keys_still_running_when_its_connection_dies_is_stored_once() {
    a_batch_still_running_when_its_connection_dies(None).await;
}

#[actix_web::test]
async fn a_keyed_batch_still_running_when_its_connection_dies_is_answered_201_and_counted() {
    a_batch_still_running_when_its_connection_dies(Some("till-1:0001")).await;
}

/// A predecessor's last transaction commits after this server read the
/// tenant's totals (as when `pos` restarts while its old process still
/// finishes a commit): the till's retry finds its key stored.
#[actix_web::test]
async fn a_stored_key_the_actor_never_counted_reloads_the_totals_before_the_replay_answer() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let first = app.post_json(&t.sales_path(0), &sale(p, 1, "5.00")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    // The late commit, as the predecessor wrote it: history and summary together.
    app.db
        .exec(&format!(
            "START TRANSACTION; \
             INSERT INTO sales_transactions (tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp, idempotency_key) \
               VALUES ({t}, {b}, {p}, 4, 5.00, UTC_TIMESTAMP(6), 'till-9:late'); \
             UPDATE product_sales_totals SET quantity_sold = quantity_sold + 4, revenue = revenue + 20.00 \
               WHERE tenant_id = {t} AND product_id = {p}; COMMIT",
            t = t.id,
            b = t.branches[0],
        ))
        .await;

    let retry = app
        .post_json(&t.sales_path(0), &keyed(sale(p, 4, "5.00"), "till-9:late"))
        .await;
    assert_eq!(retry.status, 200, "a replay: {:?}", retry.body);
    assert_eq!(app.db.count("sales_transactions").await, 2);
    assert_all_agree(&app, t.id).await;
    assert_eq!(api_totals(&app, t.id).await, format!("{p}:5/25.00"));
    app.cleanup().await;
}

/// A commit whose answer is lost and MySQL away past the retry window: 500
/// (outcome unknown). The rows are stored; once MySQL is back the tenant's
/// totals are read again at once, with no request for that tenant, and the
/// ranking follows.
#[actix_web::test]
async fn after_an_unknown_outcome_the_totals_and_the_ranking_are_reloaded_at_once() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[("POS_STORAGE_RETRY_MS", "300")]).await;
    let p = t.products[0];
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(p, 1, "3.00"))
            .await
            .status,
        201
    );

    proxy.lose_next_commit_answer_and_go_down();
    let lost = app.post_json(&t.sales_path(0), &sale(p, 2, "3.00")).await;
    assert_eq!(lost.status, 500, "outcome unknown: {:?}", lost.body);
    assert!(proxy.commit_answer_dropped(), "the COMMIT reached MySQL");
    assert_eq!(app.db.count("sales_transactions").await, 2, "it is stored");
    proxy.restore();

    let ranked = eventually(Duration::from_secs(20), || async {
        ranked_totals(&app, t.id).await == format!("{p}:3/9.00")
    })
    .await;
    assert!(
        ranked,
        "the ranking still lacks the stored sale: {}",
        ranked_totals(&app, t.id).await
    );
    assert_all_agree(&app, t.id).await;
    app.cleanup().await;
}

/// A tenant actor that dies between a commit and counting it: the request
/// gets 500; the rows are stored; the successor, started at once, reads
/// them from MySQL (not from the ranking, which lacks them), and the
/// ranking takes them too, with no further request for the tenant.
#[actix_web::test]
async fn an_actor_dying_between_commit_and_count_is_replaced_at_once_from_mysql() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(p, 2, "1.50"))
            .await
            .status,
        201
    );
    let tenants = app.app.as_ref().and_then(|a| a.tenants()).expect("booted");
    tenants
        .crash_after_next_commit(crate::support::tenant_id(t.id))
        .await;

    let lost = app.post_json(&t.sales_path(0), &sale(p, 3, "1.50")).await;
    assert_eq!(lost.status, 500, "{:?}", lost.body);
    assert_eq!(app.db.count("sales_transactions").await, 2, "it is stored");

    let ranked = eventually(Duration::from_secs(10), || async {
        ranked_totals(&app, t.id).await == format!("{p}:5/7.50")
    })
    .await;
    assert!(
        ranked,
        "the ranking lacks the stored sale: {}",
        ranked_totals(&app, t.id).await
    );
    assert_all_agree(&app, t.id).await;
    let text = app.get_metrics().await;
    assert_eq!(
        crate::support::sample_of(&text, "pos_tenant_actor_restarts_total"),
        Some(1.0),
        "{text}"
    );
    app.cleanup().await;
}

/// The retry of a stored sale is a replay whatever the limits say now: a
/// sale that brought a product to its column's edge, retried after a
/// restart (the actor no longer remembers its key).
#[actix_web::test]
async fn a_replay_at_the_columns_edge_is_answered_200_after_a_restart() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let p = t.products[0];
    db.exec(&format!(
        "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) \
         VALUES ({id}, {p}, 1, 99999999999999999999999900.00)",
        id = t.id
    ))
    .await;
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let mut app = crate::support::start_app(db, prefix.clone(), Default::default()).await;
    let edge = keyed(sale(p, 1, "99.99"), "till-2:edge");
    let first = app.post_json(&t.sales_path(0), &edge).await;
    assert_eq!(first.status, 201, "{:?}", first.body);

    app.stop().await;
    let app = crate::support::start_app(app.db.clone(), prefix, Default::default()).await;
    let retry = app.post_json(&t.sales_path(0), &edge).await;
    assert_eq!(
        retry.status, 200,
        "a replay, not a refusal: {:?}",
        retry.body
    );
    assert_eq!(retry.body["id"], first.body["id"]);
    let fresh = app.post_json(&t.sales_path(0), &sale(p, 1, "0.01")).await;
    assert_eq!(
        fresh.status, 422,
        "a new sale past the edge is still refused"
    );
    app.cleanup().await;
}

/// The retry of a stored sale is a replay whatever the clock says now: the
/// sale was stored when the server's clock was ahead (its timestamp is more
/// than 60 s past the server's clock today).
#[actix_web::test]
async fn a_replay_with_a_timestamp_ahead_of_the_clock_is_answered_200() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let ahead = (chrono::Utc::now() + chrono::Duration::minutes(10))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let mut body = keyed(sale(p, 2, "1.00"), "till-3:ahead");
    body["timestamp"] = json!(ahead);
    app.db
        .exec(&format!(
            "INSERT INTO sales_transactions (tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp, idempotency_key) \
             VALUES ({t}, {b}, {p}, 2, 1.00, '{ts}', 'till-3:ahead'); \
             INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) VALUES ({t}, {p}, 2, 2.00)",
            t = t.id,
            b = t.branches[0],
            ts = ahead.trim_end_matches('Z').replace('T', " "),
        ))
        .await;

    let retry = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(
        retry.status, 200,
        "a replay, not a refusal: {:?}",
        retry.body
    );
    let mut fresh = keyed(sale(p, 1, "1.00"), "till-3:new");
    fresh["timestamp"] = json!(ahead);
    let refused = app.post_json(&t.sales_path(0), &fresh).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert!(refused.body["error"]["fields"]["timestamp"].is_string());
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

/// Two requests in flight together may not push a product past its
/// column, though each alone would fit: the second is refused while the
/// first waits for its commit (it waits for a lock the test holds).
#[actix_web::test]
async fn two_requests_in_flight_together_never_pass_the_columns_edge() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let p = t.products[0];
    db.exec(&format!(
        "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) \
         VALUES ({id}, {p}, 1, 99999999999999999999999900.00)",
        id = t.id
    ))
    .await;
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let app = crate::support::start_app(db, prefix, Default::default()).await;
    let lock = app.db.lock_totals(t.id).await;
    let client = app.client.clone();
    let (url, token) = (format!("{}{}", app.base, t.sales_path(0)), t.till.clone());
    let first = actix_web::rt::spawn(async move {
        crate::support::post_status(&client, &url, &token, &sale(p, 1, "60.00")).await
    });
    assert!(
        crate::support::until_lock_waits(&app.db, 1).await,
        "the first request did not reach its commit"
    );
    let second = app.post_json(&t.sales_path(0), &sale(p, 1, "60.00")).await;
    assert_eq!(second.status, 422, "{:?}", second.body);
    release(lock).await;
    assert_eq!(first.await.expect("ends"), 201);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

/// A tenant actor that dies while one of its batches waits in MySQL (for a
/// lock the test holds): its successor starts at once, and its read of the
/// tenant's totals queues behind that batch on the same persistence actor,
/// so once the lock goes it counts the sale exactly once. A successor that
/// read the totals before the batch committed would miss it for good.
#[actix_web::test]
async fn a_successor_reads_the_totals_behind_the_writes_its_predecessor_queued() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let path = t.sales_path(0);
    assert_eq!(app.post_json(&path, &sale(p, 2, "1.50")).await.status, 201);
    let lock = app.db.lock_totals(t.id).await;
    let waiting = keyed(sale(p, 3, "1.50"), "till-1:queued");
    let tenants = app.app.as_ref().and_then(|a| a.tenants()).expect("booted");
    let (answer, ()) = futures_util::join!(app.post_json(&path, &waiting), async {
        let queued = crate::support::until_lock_waits(&app.db, 1).await;
        assert!(queued, "the batch never waited for the lock");
        tenants.crash(crate::support::tenant_id(t.id)).await;
        let replaced = eventually(Duration::from_secs(10), || async {
            app.metric("pos_tenant_actor_restarts_total").await == 1.0
        })
        .await;
        assert!(replaced, "the actor was not replaced");
        release(lock).await;
    });
    // The request's actor died under it: its outcome is unknown to it.
    assert_eq!(answer.status, 500, "{}", answer.body);
    // Its batch commits once the lock is gone, a moment after the answer.
    let stored = eventually(Duration::from_secs(10), || async {
        app.db.count("sales_transactions").await == 2
    })
    .await;
    assert!(stored, "it is stored");
    assert_all_agree(&app, t.id).await;
    assert_eq!(api_totals(&app, t.id).await, format!("{p}:5/7.50"));
    // The retry is the replay it is.
    assert_eq!(app.post_json(&path, &waiting).await.status, 200);
    assert_eq!(api_totals(&app, t.id).await, format!("{p}:5/7.50"));
    app.cleanup().await;
}
