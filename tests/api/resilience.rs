use std::time::Duration;

use serde_json::{json, Value};

use crate::support::child::ChildServer;
use crate::support::{
    eventually, post_status, sale, spawn_app, start_app_behind_proxy, Tenant, TestApp, TestDb,
};

#[actix_web::test]
async fn a_panicking_tenant_actor_is_replaced_and_keeps_correct_totals() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 2, "1.50"))
            .await
            .status,
        201
    );
    let tenants = app.app.as_ref().and_then(|a| a.tenants()).expect("booted");
    tenants.crash(crate::support::tenant_id(t.id)).await;
    let a = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 3, "1.50"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.body["sales_per_product"][0]["quantitySold"], 5);
    assert_eq!(sales.body["sales_per_product"][0]["totalSales"], "7.50");
    let top = app.get("/v1/top-selling").await;
    assert_eq!(top.body["top_selling_products"][0]["quantitySold"], 5);
    assert_eq!(top.body["top_selling_products"][0]["totalSales"], "7.50");
    let text = app.get_metrics().await;
    assert_eq!(
        crate::support::sample_of(&text, "pos_tenant_actor_restarts_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        crate::support::sample_of(&text, "pos_tenant_actors"),
        Some(1.0),
        "{text}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn losing_mysql_answers_503_with_retry_after_and_stores_nothing_half_way() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[]).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await
            .status,
        201
    );

    // The back office has read before: its key is in the server's cache.
    assert_eq!(
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.status,
        200
    );
    proxy.cut();
    // MySQL is seen gone before the batch is sent: a batch sent into a
    // link as it is cut has an unknown outcome (500, retry with the key),
    // which `a_commit_whose_answer_is_lost…` tests.
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.get("/ready").await.status == 503
        })
        .await
    );
    let batch = Value::Array((0..50).map(|_| sale(t.products[0], 1, "1.00")).collect());
    let a = app.post_json(&t.sales_path(0), &batch).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert_eq!(a.body["error"]["code"], "unavailable");
    assert!(a.retry_after.is_some());
    // Not at once: the batch waited for MySQL within its retry window.
    assert!(app.metric("pos_persistence_retries_total").await > 0.0);
    // Without news of revocations for 3 s, keys are not trusted: reads
    // fail closed too (503), until MySQL is back.
    let closed = eventually(Duration::from_secs(8), || async {
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.status == 503
    })
    .await;
    assert!(closed, "keys were trusted without news of revocations");

    proxy.restore();
    assert_eq!(
        app.db.count("sales_transactions").await,
        1,
        "the failed batch left rows behind"
    );
    let open = eventually(Duration::from_secs(8), || async {
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.status == 200
    })
    .await;
    assert!(open, "keys were not trusted again once MySQL was back");
    let again = app.post_json(&t.sales_path(0), &batch).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(app.db.count("sales_transactions").await, 51);
    assert_eq!(
        app.db
            .scalar("SELECT quantity_sold FROM product_sales_totals")
            .await,
        "51"
    );
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.body["sales_per_product"][0]["quantitySold"], 51);
    let text = app.get_metrics().await;
    assert_eq!(
        crate::support::sample_of(&text, "pos_persistence_failures_total"),
        Some(1.0),
        "{text}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_commit_whose_answer_is_lost_is_settled_and_stored_once() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[]).await;
    let batch: Value = (0..3)
        .map(|i| {
            let mut s = sale(t.products[0], 2, "1.25");
            s["idempotencyKey"] = json!(format!("till-1:{i}"));
            s
        })
        .collect();

    proxy.lose_next_commit_answer();
    let first = app.post_json(&t.sales_path(0), &batch).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let ids: Vec<u64> = first.body["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|s| s["id"].as_u64().expect("id"))
        .collect();
    let stored = app
        .db
        .scalar("SELECT GROUP_CONCAT(id ORDER BY id) FROM sales_transactions")
        .await;
    let answered = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(
        stored, answered,
        "the answered ids are the stored rows, once"
    );
    assert_eq!(
        app.db
            .scalar("SELECT CONCAT(quantity_sold, ' ', revenue) FROM product_sales_totals")
            .await,
        "6 7.50"
    );
    let text = app.get_metrics().await;
    assert!(
        text.contains(r#"pos_commit_settles_total{outcome="stored"} 1"#),
        "{text}"
    );

    let replay = app.post_json(&t.sales_path(0), &batch).await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.body["transactions"], first.body["transactions"]);
    assert_eq!(app.db.count("sales_transactions").await, 3);

    // Without a key nothing but the settling keeps a retry from storing it twice.
    proxy.lose_next_commit_answer();
    let keyless = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.25"))
        .await;
    assert_eq!(keyless.status, 201, "{:?}", keyless.body);
    assert_eq!(app.db.count("sales_transactions").await, 4);
    let last = app
        .db
        .scalar("SELECT MAX(id) FROM sales_transactions")
        .await;
    assert_eq!(keyless.body["id"].to_string(), last);
    assert_eq!(
        crate::events::assert_events_number_the_history(&app.db, t.id).await,
        4,
        "a settled batch's event numbers are not given again"
    );
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.body["sales_per_product"][0]["quantitySold"], 7);
    assert_eq!(sales.body["sales_per_product"][0]["totalSales"], "8.75");
    app.cleanup().await;
}

#[actix_web::test]
async fn too_many_rows_waiting_answers_503_at_once_instead_of_queueing() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let settings = [
        ("POS_MAX_ROWS_WAITING", "1000"),
        ("POS_PERSISTENCE_ACTORS", "1"),
        // Long enough that the first batch outlives the outage.
        ("POS_STORAGE_RETRY_MS", "60000"),
    ];
    let (app, proxy) = start_app_behind_proxy(db, &settings).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await
            .status,
        201
    );

    // With MySQL gone, a first batch waits in its retries...
    proxy.cut();
    let batch = Value::Array((0..600).map(|_| sale(t.products[0], 1, "1.00")).collect());
    let (client, first_url, first_body, token) = (
        app.client.clone(),
        format!("{}{}", app.base, t.sales_path(0)),
        batch.clone(),
        t.till.clone(),
    );
    let first = actix_web::rt::spawn(async move {
        client
            .post(first_url)
            .bearer_auth(token)
            .send_json(&first_body)
            .await
            .map(|r| r.status())
    });
    assert!(
        eventually(Duration::from_secs(3), || async {
            crate::support::sample_of(&app.get_metrics().await, "pos_rows_waiting") == Some(600.0)
        })
        .await
    );
    // ...and a second one that would exceed the bound is refused while the
    // first still waits: it did not queue behind it.
    let second = app.post_json(&t.sales_path(0), &batch).await;
    assert_eq!(second.status, 503, "{:?}", second.body);
    assert!(second.retry_after.is_some());
    assert!(!first.is_finished(), "the refusal waited for storage");
    proxy.restore();
    let first = first.await.expect("task").expect("answer");
    assert_eq!(first, 201);
    assert_eq!(app.db.count("sales_transactions").await, 601);
    app.cleanup().await;
}

#[actix_web::test]
async fn sigterm_answers_the_requests_in_flight_then_exits_cleanly() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    // A long linger keeps the requests waiting for their batch when the signal comes.
    let mut server = ChildServer::start(&db.url, &[("POS_BATCH_LINGER_MS", "3000")]).await;
    let (client, base) = (server.client.clone(), server.base.clone());

    let posts: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}{}", t.sales_path(0)));
            let (body, token) = (sale(t.products[0], 1, "2.00"), t.till.clone());
            actix_web::rt::spawn(async move { post_status(&client, &url, &token, &body).await })
        })
        .collect();
    // Signal only once all 20 are inside the server, waiting for their batch.
    let all_waiting = eventually(Duration::from_secs(10), || async {
        crate::support::sample_of(&server.metrics().await, "pos_rows_waiting") == Some(20.0)
    })
    .await;
    assert!(all_waiting, "the requests did not reach the server");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());

    let mut created = 0;
    for p in posts {
        if let Ok(201) = p.await {
            created += 1;
        }
    }
    let status = server.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    assert_eq!(created, 20, "requests in flight were not all answered");
    assert_eq!(db.count("sales_transactions").await, 20);
    assert_eq!(
        db.scalar("SELECT quantity_sold FROM product_sales_totals")
            .await,
        "20"
    );
    db.drop_database().await;
}

#[actix_web::test]
async fn a_swallowed_commit_is_stored_once_even_when_its_ids_are_taken_by_another_writer() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[("POS_STORAGE_RETRY_MS", "30000")]).await;
    let warm = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(warm.status, 201);
    let last_id = warm.body["id"].as_u64().expect("id");

    // The batch's transaction never reaches MySQL; the ids it would have
    // had (last_id+1..=last_id+3) are next.
    proxy.swallow_next_commit_and_cut();
    let batch: Value = (0..3).map(|_| sale(t.products[0], 7, "2.00")).collect();
    let (client, url, token, body) = (
        app.client.clone(),
        format!("{}{}", app.base, t.sales_path(0)),
        t.till.clone(),
        batch.clone(),
    );
    let pending = actix_web::rt::spawn(async move {
        let mut res = client
            .post(url)
            .bearer_auth(token)
            .send_json(&body)
            .await
            .expect("answer");
        let body: Value = res.json().await.expect("json");
        (res.status().as_u16(), body)
    });
    assert!(
        eventually(Duration::from_secs(10), || async { proxy.is_cut() }).await,
        "the COMMIT never came"
    );
    // Another writer stores rows under exactly those ids meanwhile (as a
    // crash-recovered server may hand them out again).
    let taken: Vec<String> = (1..=3)
        .map(|k| {
            format!(
                "({}, {}, {}, {}, 1, 1.00, UTC_TIMESTAMP(6))",
                last_id + k,
                t.id,
                t.branches[0],
                t.products[0]
            )
        })
        .collect();
    app.db
        .exec(&format!(
            "INSERT INTO sales_transactions (id, tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp) VALUES {}",
            taken.join(",")
        ))
        .await;
    proxy.restore();

    let (status, body) = pending.await.expect("task");
    assert_eq!(status, 201, "{body}");
    let ids: Vec<u64> = body["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|s| s["id"].as_u64().expect("id"))
        .collect();
    for id in &ids {
        assert!(*id > last_id + 3, "answered another writer's row {id}");
        assert_eq!(
            app.db
                .scalar(&format!(
                    "SELECT quantity_sold FROM sales_transactions WHERE id = {id}"
                ))
                .await,
            "7",
            "row {id} is not this request's"
        );
    }
    assert_eq!(app.db.count("sales_transactions").await, 1 + 3 + 3);
    assert_eq!(
        app.db
            .scalar("SELECT quantity_sold FROM product_sales_totals")
            .await,
        "22",
        "the summary counts the warm sale and the batch once"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn totals_at_the_columns_edge_refuse_a_sale_with_422_and_the_products_still_sell() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 2).await;
    let (rich, busy) = (t.products[0], t.products[1]);
    // Revenue 99.99 short of DECIMAL(28,2)'s end; quantity 5 short of BIGINT UNSIGNED's.
    db.exec(&format!(
        "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) VALUES \
         ({id}, {rich}, 1, 99999999999999999999999900.00), ({id}, {busy}, 18446744073709551610, 1.00)",
        id = t.id
    ))
    .await;
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let app = crate::support::start_app(db, prefix, crate::support::Options::default()).await;

    let a = app
        .post_json(&t.sales_path(0), &sale(rich, 1, "100.00"))
        .await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert!(a.body["error"]["fields"]["pricePerUnit"]
        .as_str()
        .is_some_and(|m| m.contains("99999999999999999999999999.99")));
    let a = app
        .post_json(
            &t.sales_path(0),
            &json!([sale(busy, 1, "1.00"), sale(busy, 5, "1.00")]),
        )
        .await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert!(a.body["error"]["fields"]["[1].quantitySold"].is_string());
    assert_eq!(app.db.count("sales_transactions").await, 0);

    // Up to the edge still sells.
    let a = app
        .post_json(&t.sales_path(0), &sale(rich, 1, "99.00"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = app
        .post_json(&t.sales_path(0), &sale(busy, 5, "1.00"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    // What a settled request reserved is given back: the last cent up to
    // the edge still fits.
    let a = app
        .post_json(&t.sales_path(0), &sale(rich, 1, "0.99"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let stored = app
        .db
        .scalar("SELECT GROUP_CONCAT(CONCAT(quantity_sold, '/', revenue) ORDER BY product_id) FROM product_sales_totals")
        .await;
    assert_eq!(
        stored,
        "3/99999999999999999999999999.99,18446744073709551615/6.00"
    );
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(
        sales.body["sales_per_product"][0]["totalSales"],
        "99999999999999999999999999.99"
    );
    assert_eq!(
        sales.body["sales_per_product"][1]["quantitySold"],
        json!(u64::MAX)
    );
    let top = app.get("/v1/top-selling?by=revenue").await;
    assert_eq!(top.body["top_selling_products"][0]["productID"], rich);
    app.cleanup().await;
}

#[actix_web::test]
async fn the_service_connections_run_in_strict_mode_whatever_the_server_default() {
    let db = TestDb::create().await;
    let pool = mysql_async::Pool::new(pos::store::pool_opts(&db.url, 1).expect("url"));
    let mut conn = pool.get_conn().await.expect("connects");
    let mode: Option<String> =
        mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT @@SESSION.sql_mode")
            .await
            .expect("query");
    assert!(
        mode.as_deref().unwrap_or("").contains("STRICT_ALL_TABLES"),
        "{mode:?}"
    );
    // An out-of-range value is an error, not a clamped number.
    let clamped = mysql_async::prelude::Queryable::query_drop(
        &mut conn,
        "INSERT INTO tenants (id, name) VALUES (-1, 'x')",
    )
    .await;
    assert!(clamped.is_err());
    drop(conn);
    let _ = pool.disconnect().await;
    db.drop_database().await;
}

#[actix_web::test]
async fn an_idle_tenant_actor_stops_and_its_successor_has_the_same_totals_and_keys() {
    let app = crate::support::spawn_app_with(crate::support::Options {
        extra: vec![("POS_TENANT_IDLE_SECS".into(), "1".into())],
        ..Default::default()
    })
    .await;
    let t = app.db.tenant(1, 2).await;
    let mut first = sale(t.products[0], 2, "1.50");
    first["idempotencyKey"] = json!("till-1:0001");
    let stored = app.post_json(&t.sales_path(0), &first).await;
    assert_eq!(stored.status, 201);
    assert_eq!(app.metric("pos_tenant_actors").await, 1.0);

    let passivated = eventually(Duration::from_secs(10), || async {
        app.metric("pos_tenant_actors").await == 0.0
            && app.metric("pos_tenant_actor_passivations_total").await == 1.0
    })
    .await;
    assert!(passivated, "the idle actor kept running");

    // Its remembered keys went with it; the answer is still the original.
    let replay = app.post_json(&t.sales_path(0), &first).await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.body["id"], stored.body["id"]);
    let more = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 3, "1.50"))
        .await;
    assert_eq!(more.status, 201);
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.body["sales_per_product"][0]["quantitySold"], 5);
    assert_eq!(sales.body["sales_per_product"][0]["totalSales"], "7.50");
    let top = app.get("/v1/top-selling").await;
    assert_eq!(top.body["top_selling_products"][0]["quantitySold"], 5);
    assert_eq!(app.db.count("sales_transactions").await, 2);
    assert_eq!(app.metric("pos_tenant_actor_restarts_total").await, 0.0);
    app.cleanup().await;
}

/// A store that MySQL keeps refusing as a duplicate while no stored key
/// explains it (here a trigger; a foreign or corrupt row would do the
/// same) is given up after a few rounds: the till gets its answer instead
/// of a request retried for ever, nothing is stored, and the tenant goes
/// on selling.
#[actix_web::test]
async fn a_duplicate_no_stored_key_explains_is_given_up_after_a_few_rounds() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    app.db
        .exec(&format!(
            "CREATE TRIGGER refuse_one_product BEFORE INSERT ON sales_transactions FOR EACH ROW \
             IF NEW.product_id = {} THEN \
             SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = 'Duplicate entry'; \
             END IF",
            t.products[0]
        ))
        .await;
    let (path, body) = (t.sales_path(0), sale(t.products[0], 1, "1.25"));
    let refused = app.post_json(&path, &body);
    // A guard against hanging the suite, not a measure: the rounds are few.
    let refused = actix_web::rt::time::timeout(Duration::from_secs(60), refused)
        .await
        .expect("an answer, not a store retried for ever");
    assert_eq!(refused.status, 500, "{:?}", refused.body);
    assert_eq!(app.db.count("sales_transactions").await, 0);
    // No stored key was found, so no commit can be missing from the
    // totals: they are not read again.
    let text = app.get_metrics().await;
    assert!(text.contains("pos_tenant_reloads_total 0"), "{text}");
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[1], 1, "1.25"))
        .await;
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

/// A writer's mark that moved under it (an earlier attempt of its own that
/// committed unseen; here moved by hand to the attempt after the last it
/// saw) fences the next attempt: the writer reads where the mark stands
/// and tries again at once. A fence is
/// no storage failure: no backoff, no retry counted, and the sale is
/// stored once.
#[actix_web::test]
async fn a_fenced_attempt_is_tried_again_at_once_and_stores_its_sale_once() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let first = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    sell_past_a_moved_mark(&app, &t, 2).await;
    assert_eq!(app.metric("pos_persistence_retries_total").await, 0.0);
    app.cleanup().await;
}

/// Moves the writer's mark by hand, then sells: the sale meets the fence,
/// the writer reads its mark once and finds nothing of this batch stored,
/// and the sale is stored once (`rows` in the history then).
async fn sell_past_a_moved_mark(app: &TestApp, t: &Tenant, rows: u64) {
    app.db
        .exec("UPDATE commit_markers SET batch_id = batch_id + 1")
        .await;
    let fenced = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 2, "1.00"))
        .await;
    assert_eq!(fenced.status, 201, "{:?}", fenced.body);
    assert_eq!(app.db.count("sales_transactions").await, rows);
    let settled = r#"pos_commit_settles_total{outcome="not_stored"}"#;
    assert_eq!(app.metric(settled).await, 1.0);
}

/// A writer's mark last moved by numbering a catalog change names no
/// first id (0: the connection had inserted nothing yet). Read back after
/// a fence it is a mark like any other: the sale is tried again and stored
/// once. (Its 0 failed to decode as a sale id, and the panic lost the
/// writer's flush.)
#[actix_web::test]
async fn a_mark_last_moved_by_a_catalog_change_is_read_back_after_a_fence() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let path = format!("/v1/tenants/{}/products", t.id);
    let tea = json!({"sku": "TEA", "name": "Tea"});
    let made = app
        .send_as("POST", &path, Some(&t.backoffice), Some(&tea))
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let numbered = eventually(Duration::from_secs(10), || async {
        app.db.count("commit_markers").await == 1
    })
    .await;
    assert!(
        numbered,
        "the catalog event was numbered under the writer's mark"
    );
    let first_id = app.db.scalar("SELECT first_id FROM commit_markers").await;
    assert_eq!(
        first_id, "0",
        "a numbering on a fresh connection stores no first id"
    );
    sell_past_a_moved_mark(&app, &t, 1).await;
    app.cleanup().await;
}

/// MySQL gone: a batch waits for it within `POS_STORAGE_RETRY_MS`, with
/// pauses that double from 50 ms up to 250 ms (50, 100, 200, 250, 250: a
/// 1 s window holds five and not a sixth), then answers 503; never past
/// the window, never in a tight loop.
#[actix_web::test]
async fn a_lost_mysql_is_waited_for_with_doubling_pauses_within_the_window() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[("POS_STORAGE_RETRY_MS", "1000")]).await;
    let warm = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(warm.status, 201, "{:?}", warm.body);
    assert_eq!(app.metric("pos_transactions_committed_total").await, 1.0);
    proxy.cut();
    // Seen gone first: a sale sent into the link as it is cut has an
    // unknown outcome, not a refusal.
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.get("/ready").await.status == 503
        })
        .await
    );
    let lost = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(lost.status, 503, "{:?}", lost.body);
    let retries = app.metric("pos_persistence_retries_total").await;
    assert!((1.0..=5.0).contains(&retries), "{retries} retries");
    proxy.restore();
    app.cleanup().await;
}
