use serde_json::{json, Value};

use crate::support::{sale, spawn_app, start_app};

#[actix_web::test]
async fn sales_per_product_are_exact_and_ordered_by_total_then_product() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 4).await;
    let p = &t.products;
    let body = json!([
        sale(p[0], 3, "0.10"),  // 0.30
        sale(p[1], 1, "10.00"), // 10.00
        sale(p[2], 2, "5.00"),  // 10.00: ties with p[1], lower id first
        sale(p[0], 1, "0.05"),  // p[0] = 0.35, 4 units
    ]);
    assert_eq!(app.post_json(&t.sales_path(0), &body).await.status, 201);
    let a = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body,
        json!({"tenantID": t.id, "currency": "EUR", "sales_per_product": [
            {"productID": p[1], "productName": "Product 1", "quantitySold": 1, "totalSales": "10.00",
             "quantityRefunded": 0, "refunds": "0.00", "netQuantity": 1, "netSales": "10.00"},
            {"productID": p[2], "productName": "Product 2", "quantitySold": 2, "totalSales": "10.00",
             "quantityRefunded": 0, "refunds": "0.00", "netQuantity": 2, "netSales": "10.00"},
            {"productID": p[0], "productName": "Product 0", "quantitySold": 4, "totalSales": "0.35",
             "quantityRefunded": 0, "refunds": "0.00", "netQuantity": 4, "netSales": "0.35"},
        ]})
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_tenant_without_sales_has_an_empty_list_and_an_unknown_one_is_404() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let a = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(
        a.body,
        json!({"tenantID": t.id, "currency": "EUR", "sales_per_product": []})
    );
    assert_eq!(
        app.get(&format!("/v1/tenants/{}/sales", t.id + 1))
            .await
            .status,
        404
    );
    assert_eq!(app.get("/v1/tenants/x/sales").await.status, 404);
    app.cleanup().await;
}

#[actix_web::test]
async fn every_answered_sale_is_visible_to_the_next_read() {
    let app = spawn_app().await;
    // Each task sells a product of its own: what it reads of that product
    // is its own sales, never another task's.
    let t = app.db.tenant(1, 16).await;
    let tasks = (0..16).map(|task| {
        let (client, base, t) = (app.client.clone(), app.base.clone(), t.clone());
        async move {
            let mine = t.products[task];
            for sold in 1..=5u64 {
                let res = client
                    .post(format!("{base}{}", t.sales_path(0)))
                    .bearer_auth(&t.till)
                    .send_json(&sale(mine, 1, "1.00"))
                    .await
                    .expect("POST answers");
                assert_eq!(res.status(), 201);
                let mut read = client
                    .get(format!("{base}/v1/tenants/{}/sales", t.id))
                    .bearer_auth(&t.backoffice)
                    .send()
                    .await
                    .expect("GET answers");
                let body: Value = read.json().await.expect("JSON");
                let q = body["sales_per_product"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["productID"] == mine)
                    .and_then(|p| p["quantitySold"].as_u64());
                assert_eq!(q, Some(sold), "a committed sale was missing from the read");
            }
        }
    });
    futures_util::future::join_all(tasks).await;
    let a = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    let each: Vec<u64> = a.body["sales_per_product"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["quantitySold"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(each, vec![5; 16]);
    app.cleanup().await;
}

#[actix_web::test]
async fn top_selling_ranks_across_tenants_by_quantity_and_by_revenue() {
    let app = spawn_app().await;
    let a = app.db.tenant(1, 2).await;
    let b = app.db.tenant(1, 2).await;
    app.post_json(
        &a.sales_path(0),
        &json!([
            sale(a.products[0], 10, "1.00"),
            sale(a.products[1], 2, "100.00")
        ]),
    )
    .await;
    app.post_json(
        &b.sales_path(0),
        &json!([
            sale(b.products[0], 10, "2.00"),
            sale(b.products[1], 5, "3.00")
        ]),
    )
    .await;
    let q = app.get("/v1/top-selling?by=quantity&limit=3").await;
    assert_eq!(q.status, 200);
    let ids: Vec<u64> = q.body["top_selling_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["productID"].as_u64().unwrap())
        .collect();
    // a.p0 and b.p0 tie at 10: lower product id first.
    assert_eq!(ids, vec![a.products[0], b.products[0], b.products[1]]);
    let first = &q.body["top_selling_products"][0];
    assert_eq!(first["rank"], 1);
    assert_eq!(first["tenantID"], a.id);
    assert_eq!(first["productName"], "Product 0");
    assert_eq!(first["quantitySold"], 10);
    assert_eq!(first["totalSales"], "10.00");
    assert!(q.body["asOf"].as_str().unwrap().ends_with('Z'));
    let r = app.get("/v1/top-selling?by=revenue").await;
    let ids: Vec<u64> = r.body["top_selling_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["productID"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![a.products[1], b.products[0], b.products[1], a.products[0]]
    );
    assert_eq!(
        app.get("/v1/top-selling?limit=1").await.body["top_selling_products"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/v1/top-selling?limit=100").await.body["top_selling_products"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn top_selling_refuses_bad_parameters_with_422() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("by=price", "by"),
    ] {
        let a = app.get(&format!("/v1/top-selling?{query}")).await;
        assert_eq!(a.status, 422, "{query}");
        assert_eq!(a.body["error"]["code"], "validation_failed");
        assert!(a.body["error"]["fields"][field].is_string(), "{query}");
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn a_restart_loads_totals_from_the_summary_table_not_the_history() {
    let mut app = spawn_app().await;
    let t = app.db.tenant(1, 3).await;
    for i in 0..3 {
        let body = json!([
            sale(t.products[i], (i + 1) as u64, "1.25"),
            sale(t.products[(i + 1) % 3], 2, "0.50")
        ]);
        assert_eq!(app.post_json(&t.sales_path(0), &body).await.status, 201);
    }
    let sales_before = app.get(&format!("/v1/tenants/{}/sales", t.id)).await.body;
    let top_before =
        app.get("/v1/top-selling?by=revenue").await.body["top_selling_products"].clone();
    app.stop().await;
    // With the history gone, only the summary table can give the same totals.
    app.db.exec("DELETE FROM sales_transactions").await;
    let app = start_app(app.db.clone(), app.prefix.clone(), app.options.clone()).await;
    assert_eq!(
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.body,
        sales_before
    );
    assert_eq!(
        app.get("/v1/top-selling?by=revenue").await.body["top_selling_products"],
        top_before
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn sales_are_gzipped_for_clients_that_accept_it_and_stay_current() {
    use std::io::Read;
    let app = spawn_app().await;
    let t = app.db.tenant(1, 3).await;
    let path = format!("{}/v1/tenants/{}/sales", app.base, t.id);
    let get = |encoding: &'static str| {
        let (client, path, token) = (app.client.clone(), path.clone(), t.backoffice.clone());
        async move {
            let mut res = client
                .get(path)
                .bearer_auth(token)
                .insert_header(("Accept-Encoding", encoding))
                .send()
                .await
                .expect("answer");
            let gzipped = res
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v == "gzip");
            let raw = res.body().await.expect("body").to_vec();
            let body = if gzipped {
                let mut out = String::new();
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_string(&mut out)
                    .expect("valid gzip");
                out
            } else {
                String::from_utf8(raw).expect("utf-8")
            };
            (gzipped, serde_json::from_str::<Value>(&body).expect("json"))
        }
    };
    for (i, p) in t.products.iter().enumerate() {
        assert_eq!(
            app.post_json(&t.sales_path(0), &sale(*p, (i + 1) as u64, "2.50"))
                .await
                .status,
            201
        );
        let (gzipped, zipped) = get("gzip, deflate").await;
        let (plain_flag, plain) = get("identity").await;
        let (refused_flag, _) = get("gzip;q=0").await;
        assert!(gzipped && !plain_flag && !refused_flag);
        // Both renderings follow every sale (read-your-writes holds for both caches).
        assert_eq!(zipped, plain);
        assert_eq!(
            zipped["sales_per_product"].as_array().expect("list").len(),
            i + 1
        );
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn start_up_loads_every_tenants_totals_before_serving() {
    let mut app = spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    let body = json!([
        sale(t.products[0], 3, "1.10"),
        sale(t.products[1], 1, "9.00")
    ]);
    assert_eq!(app.post_json(&t.sales_path(0), &body).await.status, 201);
    let before = app.get(&format!("/v1/tenants/{}/sales", t.id)).await.body;
    app.stop().await;
    let app = start_app(app.db.clone(), app.prefix.clone(), app.options.clone()).await;
    // Once booted, the totals are in memory: the tenant's first request does
    // not need the summary table any more.
    app.db.exec("DELETE FROM product_sales_totals").await;
    assert_eq!(
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.body,
        before
    );
    app.cleanup().await;
}
