//! Every queue is bounded: past each bound a request is refused at once
//! (503 with `Retry-After`) rather than queued, and the others go on. Each
//! test fills one bound for real, with work held in MySQL by a lock the
//! test takes, then releases it.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::support::{eventually, spawn_app_with, until_lock_waits, Options};

fn options(extra: &[(&str, &str)]) -> Options {
    Options {
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    }
}

#[actix_web::test]
async fn a_tenant_with_its_most_requests_in_flight_is_refused_at_once_and_others_still_sell() {
    let app = spawn_app_with(options(&[
        ("POS_MAX_REQUESTS_PER_TENANT", "4"),
        ("POS_PERSISTENCE_ACTORS", "2"),
    ]))
    .await;
    let busy = app.db.tenant(1, 1).await;
    // The next tenant runs on the other persistence actor: not behind the lock.
    let other = app.db.tenant(1, 1).await;
    let sale = |p: u64| json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00"});
    // One row locked exactly (a record lock, no gap: the other tenant's
    // inserts are not held by it).
    let first = app
        .post_json(&busy.sales_path(0), &sale(busy.products[0]))
        .await;
    assert_eq!(first.status, 201);
    let mut lock = app.db.conn().await;
    lock.query_drop("START TRANSACTION").await.expect("begin");
    lock.query_drop(format!(
        "SELECT * FROM product_sales_totals WHERE tenant_id = {} AND product_id = {} FOR UPDATE",
        busy.id, busy.products[0]
    ))
    .await
    .expect("lock");
    let (path, one) = (busy.sales_path(0), sale(busy.products[0]));
    let held = futures_util::future::join_all((0..4).map(|_| app.post_json(&path, &one)));
    let (held, ()) = futures_util::join!(held, async {
        let stuck = until_lock_waits(&app.db, 1).await;
        assert!(stuck, "the first batch never waited for the lock");
        // All four are the tenant's, handed over and not committed.
        let four = eventually(Duration::from_secs(10), || async {
            app.metric("pos_rows_waiting").await == 4.0
        })
        .await;
        assert!(four, "the four requests never were in flight together");
        let refused = app.post_json(&path, &sale(busy.products[0])).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert!(refused.retry_after.is_some());
        let elsewhere = app
            .post_json(&other.sales_path(0), &sale(other.products[0]))
            .await;
        assert_eq!(elsewhere.status, 201, "{}", elsewhere.body);
        lock.query_drop("ROLLBACK").await.expect("release the lock");
    });
    assert!(held.iter().all(|a| a.status == 201));
    assert_eq!(app.db.count("sales_transactions").await, 6);
    drop(lock);
    app.cleanup().await;
}

#[actix_web::test]
async fn the_back_offices_statements_past_their_bound_are_refused_at_once() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 0).await;
    // A create of products locks its tenant's row: this one waits for ours.
    let mut lock = app.db.conn().await;
    lock.query_drop("START TRANSACTION").await.expect("begin");
    lock.query_drop(format!(
        "SELECT id FROM tenants WHERE id = {} FOR UPDATE",
        t.id
    ))
    .await
    .expect("lock the tenant");
    let path = format!("/v1/tenants/{}/products", t.id);
    let create = |i: usize| json!({"sku": format!("S{i}"), "name": format!("Product {i}")});
    let (app_ref, path_ref, key) = (&app, &path, &t.backoffice);
    let held = futures_util::future::join_all(
        (0..64).map(|i| async move { app_ref.post_json_as(path_ref, Some(key), &create(i)).await }),
    );
    let (held, ()) = futures_util::join!(held, async {
        let full = eventually(Duration::from_secs(10), || async {
            app.metric(r#"pos_statements_in_flight{pool="office"}"#)
                .await
                == 64.0
        })
        .await;
        assert!(full, "the office never had 64 statements in flight");
        let refused = app
            .post_json_as(&path, Some(&t.backoffice), &create(64))
            .await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert!(refused.retry_after.is_some());
        lock.query_drop("ROLLBACK").await.expect("release the lock");
    });
    assert!(
        held.iter().all(|a| a.status == 201),
        "{:?}",
        held.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(app.db.count("products").await, 64);
    drop(lock);
    app.cleanup().await;
}
