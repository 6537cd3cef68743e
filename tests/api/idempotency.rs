use serde_json::json;

use crate::support::{keyed, sale, spawn_app, start_app};

#[actix_web::test]
async fn replayed_idempotency_key_returns_original_ids_and_counts_once() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = keyed(sale(t.products[0], 2, "2.00"), "till-1:0001");
    let first = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(first.status, 201);
    let again = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    assert_eq!(
        app.db
            .scalar("SELECT quantity_sold FROM product_sales_totals")
            .await,
        "2"
    );
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.body["sales_per_product"][0]["quantitySold"], 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_key_reused_with_other_content_is_409_and_stores_nothing() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    assert_eq!(
        app.post_json(
            &t.sales_path(0),
            &keyed(sale(t.products[0], 2, "2.00"), "k-1")
        )
        .await
        .status,
        201
    );
    let a = app
        .post_json(
            &t.sales_path(0),
            &keyed(sale(t.products[0], 3, "2.00"), "k-1"),
        )
        .await;
    assert_eq!(a.status, 409);
    assert_eq!(a.body["error"]["code"], "idempotency_conflict");
    let mixed = json!([
        keyed(sale(t.products[1], 1, "2.00"), "k-2"),
        keyed(sale(t.products[1], 9, "2.00"), "k-1")
    ]);
    assert_eq!(app.post_json(&t.sales_path(0), &mixed).await.status, 409);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn an_array_mixing_replays_and_new_items_stores_only_the_new_ones() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let first = app
        .post_json(&t.sales_path(0), &keyed(sale(p, 1, "2.00"), "a"))
        .await;
    let a = app
        .post_json(
            &t.sales_path(0),
            &json!([
                keyed(sale(p, 1, "2.00"), "a"),
                keyed(sale(p, 4, "2.00"), "b")
            ]),
        )
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["transactions"][0]["id"], first.body["id"]);
    assert_ne!(a.body["transactions"][1]["id"], first.body["id"]);
    assert_eq!(app.db.count("sales_transactions").await, 2);
    assert_eq!(
        app.db
            .scalar("SELECT quantity_sold FROM product_sales_totals")
            .await,
        "5"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn concurrent_requests_with_one_key_store_one_row() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = keyed(sale(t.products[0], 1, "2.00"), "same-key");
    let path = t.sales_path(0);
    let posts = (0..8).map(|_| app.post_json(&path, &body));
    let answers = futures_util::future::join_all(posts).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let replayed = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!((created, replayed), (1, 7));
    assert!(answers
        .iter()
        .all(|a| a.body["id"] == answers[0].body["id"]));
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_replay_after_a_restart_is_read_from_mysql() {
    let mut app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = keyed(sale(t.products[0], 2, "2.00"), "before-restart");
    let first = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(first.status, 201);
    app.stop().await;
    let app = start_app(app.db.clone(), app.prefix.clone(), app.options.clone()).await;
    let again = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body, first.body);
    let other = app
        .post_json(
            &t.sales_path(0),
            &keyed(sale(t.products[0], 5, "2.00"), "before-restart"),
        )
        .await;
    assert_eq!(other.status, 409);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_retry_without_a_timestamp_is_still_a_replay() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = keyed(sale(t.products[0], 1, "2.00"), "no-time");
    let first = app.post_json(&t.sales_path(0), &body).await;
    // The retry must come at a later receive time.
    let first_time = first.body["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("a receive time");
    let later = crate::support::eventually(std::time::Duration::from_secs(5), || async {
        chrono::Utc::now() > first_time
    })
    .await;
    assert!(later, "the clock never passed {first_time}");
    let again = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["timestamp"], first.body["timestamp"]);
    app.cleanup().await;
}

/// A second request with a key the first still holds waits for the first's
/// outcome, never runs beside it: forced by a lock that keeps the first in
/// MySQL, the second is seen waiting for the key (not for MySQL: one lock
/// wait, not two), then answered as the first's replay.
#[actix_web::test]
async fn a_request_whose_key_is_in_flight_waits_for_the_first_and_replays_it() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = keyed(sale(t.products[0], 2, "2.00"), "held-key");
    let path = t.sales_path(0);
    let lock = app.db.lock_totals(t.id).await;
    let tenants = app.app.as_ref().and_then(|a| a.tenants()).expect("booted");
    let tenant = crate::support::tenant_id(t.id);
    let first = app.post_json(&path, &body);
    let second = async {
        let held = crate::support::until_lock_waits(&app.db, 1).await;
        assert!(held, "the first request never reached MySQL");
        let (answer, waited) = futures_util::join!(app.post_json(&path, &body), async {
            let waits = crate::support::eventually(std::time::Duration::from_secs(10), || async {
                tenants.claim_waiters(tenant).await == 1
            })
            .await;
            let in_mysql = app.db.lock_waits().await;
            mysql_async::prelude::Queryable::query_drop(&mut { lock }, "ROLLBACK")
                .await
                .expect("release the lock");
            (waits, in_mysql)
        });
        (answer, waited)
    };
    let (first, (second, (waited, in_mysql))) = futures_util::join!(first, second);
    assert!(waited, "the second request did not wait for the key");
    assert_eq!(
        in_mysql, 1,
        "the second request reached MySQL beside the first"
    );
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}
