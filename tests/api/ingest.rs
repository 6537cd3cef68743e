use serde_json::{json, Value};

use crate::support::{sale, spawn_app, spawn_app_with, Options, TestApp};

async fn stored_rows(app: &TestApp) -> (u64, u64) {
    (
        app.db.count("sales_transactions").await,
        app.db.count("product_sales_totals").await,
    )
}

#[actix_web::test]
async fn a_single_sale_is_committed_before_the_201() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = json!({
        "tenantID": t.id, "branchID": t.branches[0], "productID": t.products[0],
        "quantitySold": 3, "pricePerUnit": "12.3", "timestamp": "2026-01-02T03:04:05.123456789+02:00"
    });
    let a = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["pricePerUnit"], "12.30");
    assert_eq!(a.body["timestamp"], "2026-01-02T01:04:05.123456Z");
    assert_eq!(a.body["tenantID"], t.id);
    let id = a.body["id"].as_u64().expect("id");
    let row = app
        .db
        .scalar(&format!(
            "SELECT CONCAT_WS('|', tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp) FROM sales_transactions WHERE id = {id}"
        ))
        .await;
    assert_eq!(
        row,
        format!(
            "{}|{}|{}|3|12.30|2026-01-02 01:04:05.123456",
            t.id, t.branches[0], t.products[0]
        )
    );
    let totals = app
        .db
        .scalar("SELECT CONCAT(quantity_sold, '|', revenue) FROM product_sales_totals")
        .await;
    assert_eq!(totals, "3|36.90");
    app.cleanup().await;
}

#[actix_web::test]
async fn an_array_is_answered_in_request_order_with_consecutive_ids() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 3).await;
    let body = json!([
        sale(t.products[2], 1, "1.00"),
        sale(t.products[0], 2, "2.50"),
        sale(t.products[1], 3, "0.99")
    ]);
    let a = app.post_json(&t.sales_path(0), &body).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let txs = a.body["transactions"].as_array().expect("transactions");
    assert_eq!(txs.len(), 3);
    let products: Vec<u64> = txs
        .iter()
        .map(|t| t["productID"].as_u64().unwrap())
        .collect();
    assert_eq!(products, vec![t.products[2], t.products[0], t.products[1]]);
    let ids: Vec<u64> = txs.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    for (i, id) in ids.iter().enumerate() {
        let p = app
            .db
            .scalar(&format!(
                "SELECT product_id FROM sales_transactions WHERE id = {id}"
            ))
            .await;
        assert_eq!(p, products[i].to_string());
    }
    assert_eq!(stored_rows(&app).await, (3, 3));
    app.cleanup().await;
}

#[actix_web::test]
async fn every_field_rule_is_enforced_and_nothing_is_stored() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"quantitySold": 1, "pricePerUnit": "1.00"}),
            "productID",
        ),
        (
            json!({"productID": 0, "quantitySold": 1, "pricePerUnit": "1.00"}),
            "productID",
        ),
        (
            json!({"productID": "7", "quantitySold": 1, "pricePerUnit": "1.00"}),
            "productID",
        ),
        (
            json!({"productID": p, "quantitySold": 0, "pricePerUnit": "1.00"}),
            "quantitySold",
        ),
        (
            json!({"productID": p, "quantitySold": 1_000_001, "pricePerUnit": "1.00"}),
            "quantitySold",
        ),
        (
            json!({"productID": p, "quantitySold": 1.5, "pricePerUnit": "1.00"}),
            "quantitySold",
        ),
        (json!({"productID": p, "quantitySold": 1}), "pricePerUnit"),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.001"}),
            "pricePerUnit",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "0"}),
            "pricePerUnit",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "-1.00"}),
            "pricePerUnit",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "100000000.00"}),
            "pricePerUnit",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "abc"}),
            "pricePerUnit",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "timestamp": "yesterday"}),
            "timestamp",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "timestamp": future}),
            "timestamp",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "tenantID": t.id + 1}),
            "tenantID",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "branchID": 999_999}),
            "branchID",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "idempotencyKey": ""}),
            "idempotencyKey",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "idempotencyKey": "a b"}),
            "idempotencyKey",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "idempotencyKey": "k".repeat(65)}),
            "idempotencyKey",
        ),
        (
            json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "discount": 5}),
            "discount",
        ),
        (
            json!({"productID": p + 1000, "quantitySold": 1, "pricePerUnit": "1.00"}),
            "productID",
        ),
    ];
    for (body, field) in cases {
        let a = app.post_json(&t.sales_path(0), &body).await;
        assert_eq!(a.status, 422, "{body} -> {:?}", a.body);
        assert_eq!(a.body["error"]["code"], "validation_failed");
        assert!(
            a.body["error"]["fields"][field].is_string(),
            "{body}: no field {field} in {:?}",
            a.body
        );
    }
    // 18 significant digits would silently become 12.34 through a float.
    let raw =
        format!(r#"{{"productID":{p},"quantitySold":1,"pricePerUnit":12.340000000000000001}}"#);
    let a = app
        .post_raw(&t.sales_path(0), Some("application/json"), raw.into_bytes())
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(stored_rows(&app).await, (0, 0));
    app.cleanup().await;
}

#[actix_web::test]
async fn a_mixed_valid_and_invalid_array_stores_nothing_and_names_indexes() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let mut items: Vec<Value> = (0..5).map(|_| sale(p, 1, "1.00")).collect();
    items[3] = sale(p, 0, "1.00");
    let a = app
        .post_json(&t.sales_path(0), &Value::Array(items.clone()))
        .await;
    assert_eq!(a.status, 422);
    assert!(
        a.body["error"]["fields"]["[3].quantitySold"].is_string(),
        "{:?}",
        a.body
    );
    items[3] = sale(p + 1000, 1, "1.00");
    let a = app.post_json(&t.sales_path(0), &Value::Array(items)).await;
    assert_eq!(a.status, 422);
    assert!(
        a.body["error"]["fields"]["[3].productID"].is_string(),
        "{:?}",
        a.body
    );
    assert_eq!(stored_rows(&app).await, (0, 0));
    app.cleanup().await;
}

#[actix_web::test]
async fn malformed_oversized_and_non_json_bodies_get_their_codes() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let path = t.sales_path(0);
    let a = app
        .post_raw(
            &path,
            Some("application/json"),
            b"{\"productID\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].clone()),
        (400, json!("bad_json"))
    );
    let a = app
        .post_raw(&path, Some("text/plain"), b"{}".to_vec())
        .await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].clone()),
        (415, json!("unsupported_media_type"))
    );
    let a = app.post_raw(&path, None, b"{}".to_vec()).await;
    assert_eq!(a.status, 415);
    let big = vec![b' '; (1 << 20) + 1];
    let a = app.post_raw(&path, Some("application/json"), big).await;
    assert_eq!(
        (a.status.as_u16(), a.body["error"]["code"].clone()),
        (413, json!("payload_too_large"))
    );
    let many = Value::Array((0..1001).map(|_| sale(t.products[0], 1, "1.00")).collect());
    let a = app.post_json(&path, &many).await;
    assert_eq!(a.status, 413);
    let a = app.post_json(&path, &json!([])).await;
    assert_eq!(a.status, 422);
    assert_eq!(stored_rows(&app).await, (0, 0));
    assert_eq!(
        app.metric(r#"pos_transactions_rejected_total{reason="payload_too_large"}"#)
            .await,
        2.0
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn branches_outside_the_tenant_and_bad_branch_ids_are_404() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let other = app.db.tenant(1, 1).await;
    let body = sale(t.products[0], 1, "1.00");
    let paths = [
        format!(
            "/v1/tenants/{}/branches/{}/sales-transactions",
            t.id, other.branches[0]
        ),
        format!(
            "/v1/tenants/{}/branches/{}/sales-transactions",
            t.id, 999_999
        ),
        format!("/v1/tenants/{}/branches/-1/sales-transactions", t.id),
        format!("/v1/tenants/{}/branches/0/sales-transactions", t.id),
    ];
    for path in paths {
        let a = app.post_json_as(&path, Some(&t.till), &body).await;
        assert_eq!(a.status, 404, "{path}: {:?}", a.body);
        assert_eq!(a.body["error"]["code"], "not_found");
    }
    // Other tenants, known or not, are refused before anything is looked up
    // (tests/api/auth.rs covers every role).
    for tenant in [
        (t.id + 100).to_string(),
        other.id.to_string(),
        "abc".into(),
        "0".into(),
    ] {
        let path = format!(
            "/v1/tenants/{tenant}/branches/{}/sales-transactions",
            t.branches[0]
        );
        let a = app.post_json_as(&path, Some(&t.till), &body).await;
        assert_eq!(a.status, 403, "{path}: {:?}", a.body);
    }
    assert_eq!(stored_rows(&app).await, (0, 0));
    // Only the tenant that was written to has an actor.
    let text = app.get_metrics().await;
    assert_eq!(
        crate::support::sample_of(&text, "pos_tenant_actors"),
        Some(1.0),
        "{text}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_product_and_branch_added_straight_into_mysql_are_accepted_on_first_use() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await
            .status,
        201
    );
    app.db
        .exec(&format!(
            "INSERT INTO products (tenant_id, sku, name) VALUES ({}, 'SCONE', 'New scone')",
            t.id
        ))
        .await;
    app.db
        .exec(&format!(
            "INSERT INTO branches (tenant_id, code, name) VALUES ({}, 'NEW', 'New branch')",
            t.id
        ))
        .await;
    let product: u64 = app
        .db
        .scalar("SELECT MAX(id) FROM products")
        .await
        .parse()
        .unwrap();
    let branch: u64 = app
        .db
        .scalar("SELECT MAX(id) FROM branches")
        .await
        .parse()
        .unwrap();
    let path = format!("/v1/tenants/{}/branches/{branch}/sales-transactions", t.id);
    let a = app.post_json(&path, &sale(product, 2, "3.00")).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(
        sales.body["sales_per_product"][0]["productName"],
        "New scone"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn concurrent_writers_on_many_tenants_keep_summary_equal_to_history() {
    // Two persistence actors (the default is one on two cores): their
    // commits interleave.
    let app = spawn_app_with(Options {
        extra: vec![("POS_PERSISTENCE_ACTORS".into(), "2".into())],
        ..Options::default()
    })
    .await;
    let mut tenants = Vec::new();
    for _ in 0..6 {
        tenants.push(app.db.tenant(2, 4).await);
    }
    let mut tasks = Vec::new();
    for (n, t) in tenants.iter().enumerate() {
        for w in 0..4usize {
            let (t, client, base) = (t.clone(), app.client.clone(), app.base.clone());
            tasks.push(async move {
                for i in 0..15usize {
                    let items: Vec<Value> = (0..(1 + i % 3))
                        .map(|k| {
                            sale(
                                t.products[(i + k + w) % 4],
                                (1 + (i + n) % 5) as u64,
                                &format!("{}.{:02}", 1 + k, (i * 7) % 100),
                            )
                        })
                        .collect();
                    let res = client
                        .post(format!("{base}{}", t.sales_path(w % 2)))
                        .bearer_auth(&t.till)
                        .send_json(&Value::Array(items))
                        .await
                        .expect("post");
                    assert_eq!(res.status(), 201);
                }
            });
        }
    }
    futures_util::future::join_all(tasks).await;
    let expected_rows: u64 = 6 * 4 * (5 * (1 + 2 + 3));
    assert_eq!(app.db.count("sales_transactions").await, expected_rows);
    let mismatches = app
        .db
        .scalar(
            "SELECT COUNT(*) FROM product_sales_totals t LEFT JOIN (SELECT tenant_id, product_id, SUM(quantity_sold) q, \
             SUM(quantity_sold * price_per_unit) r FROM sales_transactions GROUP BY tenant_id, product_id) h \
             ON h.tenant_id = t.tenant_id AND h.product_id = t.product_id WHERE h.q IS NULL OR h.q <> t.quantity_sold OR h.r <> t.revenue",
        )
        .await;
    assert_eq!(mismatches, "0");
    // The live totals agree with MySQL too.
    for t in &tenants {
        let a = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
        let api_total: rust_decimal::Decimal = a.body["sales_per_product"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                p["totalSales"]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum();
        let db_total = app
            .db
            .scalar(&format!(
                "SELECT SUM(revenue) FROM product_sales_totals WHERE tenant_id = {}",
                t.id
            ))
            .await;
        assert_eq!(api_total.to_string(), db_total);
    }
    app.cleanup().await;
}
