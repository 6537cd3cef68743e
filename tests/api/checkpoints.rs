//! Sales transactions write the history only; checkpoints add it to the
//! summary table. The summary then holds exactly the history up to its
//! checkpoint, whatever commits ran alongside, and a start adds the history
//! above it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::{eventually, start_app, tenant_id, Options, TestDb};

fn sale(product: u64, quantity: u64, price: &str) -> Value {
    json!({"productID": product, "quantitySold": quantity, "pricePerUnit": price})
}

fn options(checkpoint_ms: &str) -> Options {
    Options {
        extra: vec![("POS_CHECKPOINT_MS".into(), checkpoint_ms.into())],
        ..Options::default()
    }
}

fn prefix() -> String {
    format!("{{t{}}}:", uuid::Uuid::new_v4().simple())
}

/// Every (tenant, product) as `quantity/revenue`, from the summary table
/// alone and summed from the whole history.
async fn summary_alone_and_history(db: &TestDb) -> (String, String) {
    let summary = db
        .scalar(
            "SELECT COALESCE(GROUP_CONCAT(CONCAT(tenant_id, ':', product_id, '=', quantity_sold, '/', revenue) \
             ORDER BY tenant_id, product_id), '') FROM product_sales_totals",
        )
        .await;
    let history = db
        .scalar(
            "SELECT COALESCE(GROUP_CONCAT(s ORDER BY t, p), '') FROM (SELECT tenant_id t, product_id p, \
             CONCAT(tenant_id, ':', product_id, '=', SUM(quantity_sold), '/', SUM(quantity_sold * price_per_unit)) s \
             FROM sales_transactions GROUP BY tenant_id, product_id) h",
        )
        .await;
    (summary, history)
}

async fn through_id(db: &TestDb) -> u64 {
    db.scalar("SELECT through_id FROM sales_checkpoint")
        .await
        .parse()
        .expect("a number")
}

async fn last_id(db: &TestDb) -> u64 {
    db.scalar("SELECT COALESCE(MAX(id), 0) FROM sales_transactions")
        .await
        .parse()
        .expect("a number")
}

/// Checkpoints every 10 ms while two persistence actors commit batches of
/// many tills: ids are taken in one order and committed in another, and a
/// checkpoint that chose its last id while a lower one was uncommitted
/// would leave that row out of the summary for good.
#[actix_web::test]
async fn checkpoints_taken_during_concurrent_commits_leave_the_summary_exactly_the_history() {
    let db = TestDb::create().await;
    let mut tenants = Vec::new();
    for _ in 0..4 {
        tenants.push(db.tenant(1, 3).await);
    }
    let mut app = start_app(db, prefix(), options("10")).await;
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let loading = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (db, seen, loading) = (app.db.clone(), seen.clone(), loading.clone());
        actix_web::rt::spawn(async move {
            while loading.load(Ordering::SeqCst) {
                let through = through_id(&db).await;
                seen.lock().expect("not poisoned").insert(through);
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for till in 0..8u64 {
        let (client, base) = (app.client.clone(), app.base.clone());
        let t = tenants[(till % 4) as usize].clone();
        tasks.push(actix_web::rt::spawn(async move {
            for n in 0..40u64 {
                let p = t.products[(n % 3) as usize];
                let body = if n % 4 == 0 {
                    json!([
                        sale(p, 1, "1.25"),
                        sale(p, 2, "0.50"),
                        sale(t.products[0], 3, "9.99")
                    ])
                } else {
                    sale(p, 1 + n % 5, "2.10")
                };
                let url = format!("{base}{}", t.sales_path(0));
                let status = crate::support::post_status(&client, &url, &t.till, &body).await;
                assert_eq!(status, 201, "till {till} request {n}");
            }
        }));
    }
    for task in futures_util::future::join_all(tasks).await {
        task.expect("the till ran");
    }
    loading.store(false, Ordering::SeqCst);
    watcher.await.expect("the watcher ran");
    let last = last_id(&app.db).await;
    let during: Vec<u64> = seen
        .lock()
        .expect("not poisoned")
        .iter()
        .copied()
        .filter(|&t| t > 0 && t < last)
        .collect();
    assert!(
        during.len() >= 2,
        "checkpoints ran while sales committed: {during:?}"
    );
    let db = app.db.clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            through_id(&db).await == last
        })
        .await,
        "a checkpoint reached the last sale"
    );
    let (summary, history) = summary_alone_and_history(&app.db).await;
    assert_eq!(summary, history, "the summary is exactly the history");
    assert_eq!(app.db.count("sales_transactions").await, 8 * (30 + 10 * 3));
    app.stop().await;
    app.cleanup().await;
}

/// The race made certain: a commit holds its ids uncommitted (it waits
/// for a lock the test holds on the writers' marks) while a later id is
/// committed. A checkpoint must not pass the uncommitted row: it waits (and
/// gives up, and tries again) until the commit ends.
#[actix_web::test]
async fn a_checkpoint_never_passes_a_commit_still_in_flight() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let p = t.products[0];
    let mut app = start_app(db, prefix(), options("10")).await;
    let first = app.post_json(&t.sales_path(0), &sale(p, 1, "1.00")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let mut marks = app.db.conn().await;
    marks.query_drop("START TRANSACTION").await.expect("begin");
    marks
        .query_drop("SELECT * FROM commit_markers FOR UPDATE")
        .await
        .expect("lock");
    let (client, url, token) = (
        app.client.clone(),
        format!("{}{}", app.base, t.sales_path(0)),
        t.till.clone(),
    );
    let held = actix_web::rt::spawn(async move {
        crate::support::post_status(&client, &url, &token, &sale(p, 5, "2.00")).await
    });
    let db = app.db.clone();
    assert!(
        crate::support::eventually_every(
            Duration::from_millis(250),
            Duration::from_secs(30),
            || async { db.lock_waits().await >= 1 }
        )
        .await,
        "the commit waits for the marks"
    );
    // Another writer's commit, with a later id, lands meanwhile.
    app.db
        .exec(&format!(
            "INSERT INTO sales_transactions (tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp) \
             VALUES ({}, {}, {p}, 7, 3.00, UTC_TIMESTAMP(6))",
            t.id, t.branches[0]
        ))
        .await;
    let later = last_id(&app.db).await;
    // A checkpoint either waited for the commit (and gave up) or passed it.
    assert!(
        eventually(Duration::from_secs(30), || async {
            app.metric("pos_checkpoints_total{outcome=\"failed\"}")
                .await
                >= 1.0
                || through_id(&db).await >= later
        })
        .await,
        "a checkpoint ran"
    );
    marks.query_drop("ROLLBACK").await.expect("release");
    drop(marks);
    assert_eq!(held.await.expect("the till ran"), 201);
    let last = last_id(&app.db).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            through_id(&db).await == last
        })
        .await,
        "a checkpoint reached the last sale"
    );
    let (summary, history) = summary_alone_and_history(&app.db).await;
    assert_eq!(summary, history, "the summary is exactly the history");
    app.stop().await;
    app.cleanup().await;
}

/// Sales leave the summary alone; a clean stop checkpoints; a start after
/// a stop that never checkpointed (a crash) adds the history above the
/// checkpoint, for the ranking and for a tenant's actor alike.
#[actix_web::test]
async fn a_start_adds_the_history_above_the_checkpoint() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 2).await;
    let (p, q) = (t.products[0], t.products[1]);
    let mut app = start_app(db, prefix(), options("3600000")).await;
    for body in [
        sale(p, 2, "1.50"),
        json!([sale(p, 1, "1.50"), sale(q, 4, "0.25")]),
    ] {
        let r = app.post_json(&t.sales_path(0), &body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    assert_eq!(
        app.db.count("product_sales_totals").await,
        0,
        "a sale does not touch the summary"
    );
    app.stop().await;
    let (summary, history) = summary_alone_and_history(&app.db).await;
    assert_eq!(summary, history, "the stop's checkpoint");
    assert_eq!(through_id(&app.db).await, last_id(&app.db).await);

    // As if the process had died before any checkpoint: the checkpoint
    // holds the first sale only.
    let first: u64 = app
        .db
        .scalar("SELECT MIN(id) FROM sales_transactions")
        .await
        .parse()
        .expect("an id");
    app.db
        .exec(&format!(
            "UPDATE product_sales_totals SET quantity_sold = IF(product_id = {p}, 2, 0), \
             revenue = IF(product_id = {p}, 3.00, 0); DELETE FROM product_sales_totals WHERE quantity_sold = 0; \
             UPDATE sales_checkpoint SET through_id = {first}"
        ))
        .await;
    let app = start_app(app.db.clone(), prefix(), options("3600000")).await;
    let top = app.get("/v1/top-selling?by=quantity").await;
    let listed: Vec<(u64, u64)> = top.body["top_selling_products"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["productID"].as_u64().unwrap_or(0),
                e["quantitySold"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(listed, vec![(q, 4), (p, 3)], "{:?}", top.body);
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(sales.status, 200);
    let revenue: Vec<&str> = sales.body["sales_per_product"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["totalSales"].as_str())
        .collect();
    assert_eq!(revenue.len(), 2, "{:?}", sales.body);
    assert!(
        revenue.contains(&"4.50") && revenue.contains(&"1.00"),
        "{revenue:?}"
    );
    app.cleanup().await;
}

/// The product guard: a batch naming a product of another tenant stores
/// nothing, though the history itself has no foreign key on products (the
/// service checks its catalog first; this is the database's word on it).
#[actix_web::test]
async fn a_batch_with_another_tenants_product_stores_nothing() {
    use pos::domain::{Money, NewSale, ProductId, Quantity, Timestamp};
    use pos::store::{insert_sales, BatchMark, CommitFailure, Lease};

    let db = TestDb::create().await;
    let (a, b) = (db.tenant(1, 1).await, db.tenant(1, 1).await);
    let new_sale = |product: u64| NewSale {
        tenant_id: tenant_id(a.id),
        branch_id: crate::support::branch_id(a.branches[0]),
        product_id: ProductId::new(product).expect("a product id"),
        quantity: Quantity::new(1).expect("a quantity"),
        price: Money::new(rust_decimal::Decimal::ONE),
        timestamp: Timestamp::from_naive_utc(chrono::Utc::now().naive_utc()),
        idempotency_key: None,
    };
    let (own, other) = (new_sale(a.products[0]), new_sale(b.products[0]));
    let mark = |batch| BatchMark {
        writer: 7,
        batch,
        expected: batch - 1,
        lease: Lease {
            shard_index: 0,
            fence: 1,
        },
    };
    let mut conn = db.conn().await;
    for (batch, sales) in [(1, vec![&other]), (1, vec![&own, &other])] {
        let refused = insert_sales(&mut conn, &sales, mark(batch)).await;
        assert!(
            matches!(refused, Err(CommitFailure::NotStored(_))),
            "{refused:?}"
        );
    }
    assert_eq!(db.count("sales_transactions").await, 0);
    assert_eq!(db.count("commit_markers").await, 0);
    let stored = insert_sales(&mut conn, &[&own, &own], mark(1)).await;
    assert!(stored.is_ok(), "{stored:?}");
    assert_eq!(db.count("sales_transactions").await, 2);
    drop(conn);
    db.drop_database().await;
}
