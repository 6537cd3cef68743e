//! One request, one batch, one outcome: when MySQL refuses a batch because
//! of one of its requests, that request alone fails and the others commit
//! (`persistence/flush.rs` splits by the key MySQL names, else in halves).
//! Each test puts an innocent request and a refused one into one batch (one
//! persistence actor, a long linger) and proves the split ran.

use serde_json::{json, Value};

use crate::support::{spawn_app_with, Options, TestApp};

/// One persistence actor whose batches wait 300 ms for more rows: two
/// requests sent together share a batch.
async fn one_slow_writer() -> TestApp {
    spawn_app_with(Options {
        extra: vec![
            ("POS_PERSISTENCE_ACTORS".into(), "1".into()),
            ("POS_BATCH_LINGER_MS".into(), "300".into()),
        ],
        ..Options::default()
    })
    .await
}

fn sale(product: u64, quantity: u64, price: &str) -> Value {
    json!({"productID": product, "quantitySold": quantity, "pricePerUnit": price})
}

const SPLITS: &str = "pos_batch_splits_total";

#[actix_web::test]
async fn a_key_mysql_already_holds_fails_only_its_own_request_and_the_rest_of_its_batch_commits() {
    let app = one_slow_writer().await;
    let t = app.db.tenant(1, 2).await;
    // Stored behind this instance's back (say, by the shard's last owner):
    // no cache of this instance knows the key, MySQL's unique index does.
    app.db
        .exec(&format!(
            "INSERT INTO sales_transactions (tenant_id, branch_id, product_id, quantity_sold, \
             price_per_unit, log_timestamp, idempotency_key) \
             VALUES ({}, {}, {}, 2, 1.50, '2026-01-01 00:00:00', 'till-1:7')",
            t.id, t.branches[0], t.products[0]
        ))
        .await;
    let stored_id = app
        .db
        .scalar("SELECT id FROM sales_transactions WHERE idempotency_key = 'till-1:7'")
        .await;
    let mut replay = sale(t.products[0], 2, "1.50");
    replay["timestamp"] = json!("2026-01-01T00:00:00Z");
    replay["idempotencyKey"] = json!("till-1:7");
    let innocent = sale(t.products[1], 1, "2.00");
    let path = t.sales_path(0);
    let (a, b) = futures_util::join!(
        app.post_json(&path, &replay),
        app.post_json(&path, &innocent)
    );
    assert_eq!(b.status, 201, "the innocent request: {}", b.body);
    assert_eq!(a.status, 200, "the replay: {}", a.body);
    assert_eq!(a.body["id"].to_string(), stored_id);
    assert!(
        app.metric(SPLITS).await >= 1.0,
        "the two never shared a batch"
    );
    let innocent_id = b.body["id"].as_u64().expect("an id");
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT product_id FROM sales_transactions WHERE id = {innocent_id}"
            ))
            .await,
        t.products[1].to_string()
    );
    assert_eq!(app.db.count("sales_transactions").await, 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_product_deleted_in_mysql_while_cached_fails_only_its_own_request() {
    let app = one_slow_writer().await;
    let t = app.db.tenant(1, 3).await;
    // The tenant's actor reads its catalog, then a product goes behind its
    // back (nothing sold it yet, so MySQL lets it go).
    let first = app
        .post_json(&t.sales_path(0), &sale(t.products[2], 1, "1.00"))
        .await;
    assert_eq!(first.status, 201);
    app.db
        .exec(&format!(
            "DELETE FROM products WHERE id = {}",
            t.products[0]
        ))
        .await;
    let (path, gone, innocent) = (
        t.sales_path(0),
        sale(t.products[0], 1, "1.00"),
        sale(t.products[1], 2, "3.00"),
    );
    let (a, b) = futures_util::join!(app.post_json(&path, &gone), app.post_json(&path, &innocent));
    assert_eq!(b.status, 201, "the innocent request: {}", b.body);
    assert!(
        a.status.is_server_error(),
        "the refused one: {} {}",
        a.status,
        a.body
    );
    assert!(
        app.metric(SPLITS).await >= 1.0,
        "the two never shared a batch"
    );
    let (summary, history) = app.db.summary_and_history(t.id).await;
    assert_eq!(summary, history);
    assert_eq!(
        history,
        format!("{}:2/6.00,{}:1/1.00", t.products[1], t.products[2])
    );
    app.cleanup().await;
}
