//! Events (SPEC §3): every committed sale, refund and catalog change is one
//! event of its tenant, numbered 1, 2, 3… in commit order with no gap, and
//! pulled with `GET /v1/tenants/{t}/events`.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::support::{eventually, keyed, sale, spawn_app, start_app, TestApp, TestDb};

fn events_path(tenant: u64, query: &str) -> String {
    format!("/v1/tenants/{tenant}/events{query}")
}

/// Every event of `tenant`, pulled page by page (`limit` a page).
async fn all_events(app: &TestApp, tenant: u64, limit: u64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(&events_path(
                tenant,
                &format!("?after={after}&limit={limit}"),
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let got = page.body["events"].as_array().cloned().unwrap_or_default();
        if got.is_empty() {
            assert_eq!(
                page.body["nextAfter"],
                json!(after),
                "an empty page keeps the cursor"
            );
            return events;
        }
        after = page.body["nextAfter"].as_u64().expect("nextAfter");
        assert_eq!(json!(after), got[got.len() - 1]["seq"]);
        events.extend(got);
    }
}

/// What MySQL holds of `tenant`'s events: every sale, refund and catalog
/// event numbered, the numbers 1..=n, each once. Returns n.
pub(crate) async fn assert_events_number_the_history(db: &TestDb, tenant: u64) -> u64 {
    let row = db
        .scalar(&format!(
            "SELECT CONCAT_WS(' ', COUNT(*), COUNT(DISTINCT s), COALESCE(MIN(s), 0), \
             COALESCE(MAX(s), 0), SUM(s IS NULL)) FROM (\
               SELECT event_seq s FROM sales_transactions WHERE tenant_id = {tenant} \
               UNION ALL SELECT event_seq FROM refunds WHERE tenant_id = {tenant} \
               UNION ALL SELECT seq FROM catalog_events WHERE tenant_id = {tenant}) e"
        ))
        .await;
    let n: Vec<u64> = row
        .split(' ')
        .map(|x| x.parse().unwrap_or(u64::MAX))
        .collect();
    let count = n[0];
    let expected = if count == 0 {
        vec![0, 0, 0, 0, 0]
    } else {
        vec![count, count, 1, count, 0]
    };
    assert_eq!(
        n, expected,
        "tenant {tenant}'s events (rows, distinct numbers, first, last, unnumbered) are not 1..=n each once"
    );
    count
}

#[actix_web::test]
async fn every_committed_sale_refund_and_catalog_change_is_one_event_in_commit_order() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let office = Some(t.backoffice.as_str());
    let made = app
        .post_json(
            &format!("/v1/tenants/{}/products", t.id),
            &json!({"sku": "LATTE", "name": "Latte", "price": "3.20"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let latte = made.body["id"].as_u64().expect("a product id");
    let patch = json!({"name": "Oat latte"});
    let path = format!("/v1/tenants/{}/products/{latte}", t.id);
    let changed = app.send_as("PATCH", &path, office, Some(&patch)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let one = app
        .post_json(
            &t.sales_path(0),
            &keyed(sale(t.products[0], 2, "1.50"), "k-1"),
        )
        .await;
    assert_eq!(one.status, 201);
    let batch = json!([sale(latte, 1, "3.20"), sale(t.products[0], 4, "1.50")]);
    let two = app.post_json(&t.sales_path(1), &batch).await;
    assert_eq!(two.status, 201, "{}", two.body);
    // Refused, replayed and other-content requests store nothing: no event.
    let refused = app
        .post_json(&t.sales_path(0), &sale(999_999, 1, "1.00"))
        .await;
    assert_eq!(refused.status, 422);
    let replay = app
        .post_json(
            &t.sales_path(0),
            &keyed(sale(t.products[0], 2, "1.50"), "k-1"),
        )
        .await;
    assert_eq!(replay.status, 200);
    let sale_id = one.body["id"].as_u64().expect("a sale id");
    let refund = app
        .post_json_as(
            &format!("/v1/tenants/{}/branches/{}/refunds", t.id, t.branches[0]),
            Some(&t.till),
            &json!({"saleID": sale_id, "quantity": 1}),
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.body);
    let branch = app
        .post_json(
            &format!("/v1/tenants/{}/branches", t.id),
            &json!({"code": "B-9", "name": "Harbour"}),
        )
        .await;
    assert_eq!(branch.status, 201, "{}", branch.body);

    let events = all_events(&app, t.id, 2).await;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "{events:#?}");
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "product.created",
            "product.updated",
            "sale.created",
            "sale.created",
            "sale.created",
            "refund.created",
            "branch.created"
        ]
    );
    for e in &events {
        assert_eq!(e["id"], json!(format!("evt_{}_{}", t.id, e["seq"])));
        assert!(e["createdAt"].is_string(), "{e}");
    }
    // `data` is the object as the API answered it.
    assert_eq!(events[0]["data"], made.body);
    assert_eq!(events[1]["data"], changed.body);
    assert_eq!(events[2]["data"], one.body);
    assert_eq!(events[3]["data"], two.body["transactions"][0]);
    assert_eq!(events[4]["data"], two.body["transactions"][1]);
    assert_eq!(events[5]["data"], refund.body);
    assert_eq!(events[6]["data"], branch.body);
    assert_eq!(assert_events_number_the_history(&app.db, t.id).await, 7);

    let sales_only = app
        .get(&events_path(
            t.id,
            "?after=3&types=sale.created,refund.created&limit=2",
        ))
        .await;
    assert_eq!(sales_only.status, 200);
    let picked: Vec<u64> = sales_only.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(
        (picked, &sales_only.body["nextAfter"]),
        (vec![4, 5], &json!(5))
    );
    let bad = app.get(&events_path(t.id, "?types=sale.deleted")).await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body["error"]["fields"]["types"].is_string(),
        "{}",
        bad.body
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn tills_and_other_tenants_read_no_events_and_the_operator_reads_any() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let other = app.db.tenant(1, 1).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await
            .status,
        201
    );
    let path = events_path(t.id, "");
    let till = app.get_as(&path, Some(&t.till)).await;
    assert_eq!(till.status, 403, "{}", till.body);
    let foreign = app.get_as(&path, Some(&other.backoffice)).await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let operator = app.get_as(&path, Some(&app.db.operator)).await;
    assert_eq!(operator.status, 200);
    assert_eq!(operator.body["events"].as_array().map(Vec::len), Some(1));
    app.cleanup().await;
}

#[actix_web::test]
async fn concurrent_sales_and_refunds_of_one_tenant_are_numbered_without_gap_or_repeat() {
    let app = spawn_app().await;
    let t = app.db.tenant(3, 4).await;
    let posts = (0..120).map(|i| {
        let (app, t) = (&app, &t);
        async move {
            let body = if i % 10 == 0 {
                // Two requests with one key: one stores, one replays or conflicts.
                keyed(sale(t.products[0], 1, "1.00"), &format!("dup-{}", i / 20))
            } else if i % 7 == 0 {
                json!([
                    sale(t.products[1], 1, "2.00"),
                    sale(t.products[2], 3, "2.00")
                ])
            } else {
                sale(t.products[i % 4], 1 + (i as u64 % 3), "1.25")
            };
            let branch = if i % 10 == 0 { 0 } else { i % 3 };
            app.post_json(&t.sales_path(branch), &body).await
        }
    });
    let answers = join_all(posts).await;
    let odd: Vec<_> = answers
        .iter()
        .filter(|a| ![200, 201].contains(&a.status.as_u16()))
        .map(|a| (a.status, a.body.clone()))
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    let sales = app.db.count("sales_transactions").await;
    let refunds = join_all(
        answers
            .iter()
            .filter(|a| a.status == 201 && a.body["id"].is_u64())
            .take(15)
            .map(|a| {
                let body = json!({"saleID": a.body["id"], "quantity": 1});
                let path = format!("/v1/tenants/{}/branches/{}/refunds", t.id, t.branches[0]);
                let (app, t) = (&app, &t);
                async move { app.post_json_as(&path, Some(&t.till), &body).await }
            }),
    )
    .await;
    assert!(refunds.iter().all(|r| r.status == 201));
    let n = assert_events_number_the_history(&app.db, t.id).await;
    assert_eq!(n, sales + 15);
    let events = all_events(&app, t.id, 1000).await;
    assert_eq!(events.len() as u64, n);
    let sale_ids: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "sale.created")
        .filter_map(|e| e["data"]["id"].as_u64())
        .collect();
    let mut sorted = sale_ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len() as u64, sales, "every stored sale once");
    assert_eq!(
        sale_ids, sorted,
        "a tenant's sales are numbered in the order they committed"
    );
    assert_eq!(
        app.metric("pos_persistence_retries_total").await,
        0.0,
        "a batch numbered from a head it knows never meets the unique keys' guard"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn numbering_goes_on_after_a_restart_and_a_boot_numbers_what_was_left_unnumbered() {
    let mut app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    for _ in 0..3 {
        let sold = app
            .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await;
        assert_eq!(sold.status, 201);
    }
    app.stop().await;
    // A change committed by a process that stopped before numbering it.
    app.db
        .exec(&format!(
            "INSERT INTO catalog_events (tenant_id, type, created_at, data) VALUES \
             ({}, 'product.updated', UTC_TIMESTAMP(6), '{{\"id\": {}}}')",
            t.id, t.products[0]
        ))
        .await;
    let app = start_app(app.db.clone(), app.prefix.clone(), app.options.clone()).await;
    let numbered = eventually(Duration::from_secs(10), || async {
        app.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM catalog_events WHERE tenant_id = {} AND seq IS NOT NULL",
                t.id
            ))
            .await
            == "1"
    })
    .await;
    assert!(numbered, "the boot left the catalog event unnumbered");
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(sold.status, 201);
    assert_eq!(assert_events_number_the_history(&app.db, t.id).await, 5);
    let events = all_events(&app, t.id, 100).await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "sale.created",
            "sale.created",
            "sale.created",
            "product.updated",
            "sale.created"
        ]
    );
    assert_eq!(events[3]["data"], json!({"id": t.products[0]}));
    app.cleanup().await;
}

#[actix_web::test]
async fn a_page_is_refused_only_if_it_would_hold_an_event_that_cannot_be_read() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    app.sell_one(&t).await;
    let made = app
        .post_json(
            &format!("/v1/tenants/{}/products", t.id),
            &json!({"sku": "TEA", "name": "Tea", "price": "2.00"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    app.sell_one(&t).await;
    // Sale 3's row broken by hand: no quantity this build can read.
    app.db
        .exec(&format!(
            "UPDATE sales_transactions SET quantity_sold = 0 WHERE tenant_id = {} AND event_seq = 3",
            t.id
        ))
        .await;
    let whole = app.get(&events_path(t.id, "")).await;
    assert_eq!(whole.status, 500, "never a page with a gap: {}", whole.body);
    // Two sales are read to fill a page of two, and sale 3 is among them,
    // but the page (sale 1, the product) stops before it.
    let before = app.get(&events_path(t.id, "?limit=2")).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let seqs: Vec<u64> = before.body["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["seq"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(seqs, vec![1, 2]);
    app.cleanup().await;
}
