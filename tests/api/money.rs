//! Money a chain runs on: currencies, list prices, refunds and voids, and
//! the net totals they make.

use serde_json::{json, Value};

use pos::domain::Scope;

use crate::support::{
    branch_id, eventually, keyed, sale, spawn_app, start_app, tenant_id, TestApp,
};

fn refunds_path(tenant: u64, branch: u64) -> String {
    format!("/v1/tenants/{tenant}/branches/{branch}/refunds")
}

/// The first product's line of a tenant's `/sales`.
async fn sales_line(app: &TestApp, tenant: u64) -> Value {
    app.get(&format!("/v1/tenants/{tenant}/sales")).await.body["sales_per_product"][0].clone()
}

#[actix_web::test]
async fn a_refund_at_another_branch_takes_back_part_of_a_sale_and_every_total_is_net() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 5, "2.50"))
        .await;
    assert_eq!(sold.status, 201);
    assert_eq!(sold.body["currency"], "EUR");
    let sale_id = sold.body["id"].as_u64().expect("a sale id");
    let path = refunds_path(t.id, t.branches[1]);
    let body = json!({"saleID": sale_id, "quantity": 2, "reason": "damaged \"box\"", "idempotencyKey": "till-7:r-1"});
    let refund = app.post_json_as(&path, Some(&t.till), &body).await;
    assert_eq!(refund.status, 201, "{}", refund.body);
    let r = &refund.body;
    assert_eq!(
        (
            &r["saleID"],
            &r["branchID"],
            &r["productID"],
            &r["quantity"],
            &r["amount"],
            &r["currency"],
            &r["kind"],
            &r["reason"],
            &r["idempotencyKey"]
        ),
        (
            &json!(sale_id),
            &json!(t.branches[1]),
            &json!(t.products[0]),
            &json!(2),
            &json!("5.00"),
            &json!("EUR"),
            &json!("refund"),
            &json!("damaged \"box\""),
            &json!("till-7:r-1")
        )
    );
    assert!(r["id"].as_u64().is_some() && r["createdAt"].is_string());
    let line = sales_line(&app, t.id).await;
    assert_eq!(
        (
            &line["quantitySold"],
            &line["totalSales"],
            &line["quantityRefunded"],
            &line["refunds"],
            &line["netQuantity"],
            &line["netSales"]
        ),
        (
            &json!(5),
            &json!("12.50"),
            &json!(2),
            &json!("5.00"),
            &json!(3),
            &json!("7.50")
        ),
        "gross stays, net is beside it"
    );
    assert_eq!(
        app.db
            .scalar("SELECT CONCAT(quantity_refunded, '/', refunds) FROM product_sales_totals")
            .await,
        "2/5.00"
    );
    assert_eq!(
        app.db
            .scalar("SELECT CONCAT(quantity_refunded, '/', branch_id) FROM sales_transactions")
            .await,
        format!("2/{}", t.branches[0]),
        "the sale keeps its branch; what is refunded of it is counted on it"
    );
    // The same refund again is a replay; other content under its key, a conflict.
    let again = app.post_json_as(&path, Some(&t.till), &body).await;
    assert_eq!((again.status.as_u16(), &again.body), (200, &refund.body));
    let other = json!({"saleID": sale_id, "quantity": 1, "idempotencyKey": "till-7:r-1"});
    let conflict = app.post_json_as(&path, Some(&t.till), &other).await;
    assert_eq!(conflict.status, 409);
    // More than is left: refused, naming what is left, and nothing stored.
    let too_many = json!({"saleID": sale_id, "quantity": 4});
    let refused = app.post_json_as(&path, Some(&t.till), &too_many).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let problem = refused.body["error"]["fields"]["quantity"]
        .as_str()
        .unwrap_or("");
    assert!(problem.contains("at most 3"), "{problem}");
    assert_eq!(app.db.count("refunds").await, 1);
    // The sale, found by id, with its refund.
    let found = app
        .get_as(
            &format!("/v1/tenants/{}/sales-transactions/{sale_id}", t.id),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["quantityRefunded"], 2);
    assert_eq!(found.body["refunds"][0]["id"], refund.body["id"]);
    assert_eq!(found.body["quantitySold"], 5);
    // The ranking is net too.
    let top = app.get("/v1/top-selling").await.body["top_selling_products"][0].clone();
    assert_eq!(
        (&top["netQuantity"], &top["quantitySold"]),
        (&json!(3), &json!(5))
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn net_totals_come_back_from_the_summary_after_a_restart_and_rank_net_in_redis() {
    let mut app = spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    let a = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 10, "1.00"))
        .await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[1], 6, "1.00"))
            .await
            .status,
        201
    );
    let path = refunds_path(t.id, t.branches[0]);
    let body = json!({"saleID": a.body["id"], "quantity": 7});
    assert_eq!(
        app.post_json_as(&path, Some(&t.till), &body).await.status,
        201
    );
    // Product 1 (6 net) now ranks above product 0 (3 net), here and in Redis.
    let top = app.get("/v1/top-selling").await.body["top_selling_products"].clone();
    assert_eq!(top[0]["productID"], t.products[1]);
    let mirrored = eventually(std::time::Duration::from_secs(10), || async {
        let set = app.redis_set("quantity").await;
        set.iter()
            .any(|(m, s)| m == &t.products[0].to_string() && *s == 3.0)
    })
    .await;
    assert!(mirrored, "the mirror scores the net quantity");
    let before = app.get(&format!("/v1/tenants/{}/sales", t.id)).await.body;
    app.stop().await;
    app.db.exec("DELETE FROM refunds").await;
    let app = start_app(app.db.clone(), app.prefix.clone(), app.options.clone()).await;
    assert_eq!(
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.body,
        before,
        "read from the summary, not from the refunds"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn refunds_of_one_sale_sent_together_never_pass_its_quantity() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 3, "4.00"))
        .await;
    let path = refunds_path(t.id, t.branches[0]);
    let body = json!({"saleID": sold.body["id"], "quantity": 1});
    let sends = (0..12).map(|_| app.post_json_as(&path, Some(&t.till), &body));
    let answers = futures_util::future::join_all(sends).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused = answers.iter().filter(|a| a.status == 422).count();
    assert_eq!(
        (created, refused),
        (3, 9),
        "exactly what was sold comes back"
    );
    assert_eq!(
        app.db
            .scalar("SELECT CONCAT(SUM(quantity), '/', SUM(amount)) FROM refunds")
            .await,
        "3/12.00"
    );
    let line = sales_line(&app, t.id).await;
    assert_eq!(
        (&line["netQuantity"], &line["netSales"]),
        (&json!(0), &json!("0.00"))
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_void_takes_all_that_is_left_at_the_sales_own_branch_within_its_window() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 4, "1.50"))
        .await;
    let id = sold.body["id"].clone();
    let here = refunds_path(t.id, t.branches[0]);
    let there = refunds_path(t.id, t.branches[1]);
    let part = json!({"saleID": id, "quantity": 1});
    assert_eq!(
        app.post_json_as(&here, Some(&t.till), &part).await.status,
        201
    );
    let void = json!({"saleID": id, "kind": "void"});
    let elsewhere = app.post_json_as(&there, Some(&t.till), &void).await;
    assert_eq!(elsewhere.status, 422);
    assert!(elsewhere.body["error"]["fields"]["kind"].is_string());
    let voided = app.post_json_as(&here, Some(&t.till), &void).await;
    assert_eq!(voided.status, 201, "{}", voided.body);
    assert_eq!(
        (
            &voided.body["kind"],
            &voided.body["quantity"],
            &voided.body["amount"]
        ),
        (&json!("void"), &json!(3), &json!("4.50"))
    );
    let nothing = app.post_json_as(&here, Some(&t.till), &void).await;
    assert_eq!(nothing.status, 422);
    assert!(nothing.body["error"]["fields"]["quantity"].is_string());
    // A sale stored longer ago than the window is refunded, not voided.
    let old = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 2, "1.50"))
        .await;
    app.db
        .exec(&format!(
            "UPDATE sales_transactions SET stored_at = stored_at - INTERVAL 901 SECOND WHERE id = {}",
            old.body["id"]
        ))
        .await;
    let late = json!({"saleID": old.body["id"], "kind": "void"});
    let refused = app.post_json_as(&here, Some(&t.till), &late).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body["error"]["fields"]["kind"]
        .as_str()
        .is_some_and(|p| p.contains("900 s")));
    assert_eq!(app.db.count("refunds").await, 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn another_tenants_sale_is_neither_refunded_nor_found_and_nothing_tells_it_exists() {
    let app = spawn_app().await;
    let a = app.db.tenant(1, 1).await;
    let b = app.db.tenant(1, 1).await;
    let theirs = app
        .post_json(&a.sales_path(0), &sale(a.products[0], 1, "1.00"))
        .await;
    let id = theirs.body["id"].as_u64().expect("an id");
    let path = refunds_path(b.id, b.branches[0]);
    let refund = |sale: u64| json!({"saleID": sale, "quantity": 1});
    let other = app.post_json_as(&path, Some(&b.till), &refund(id)).await;
    let none = app
        .post_json_as(&path, Some(&b.till), &refund(id + 1000))
        .await;
    assert_eq!((other.status.as_u16(), none.status.as_u16()), (422, 422));
    assert_eq!(
        other.body, none.body,
        "another tenant's sale reads as no sale"
    );
    let find = |sale: u64| format!("/v1/tenants/{}/sales-transactions/{sale}", b.id);
    let found_other = app.get_as(&find(id), Some(&b.backoffice)).await;
    let found_none = app.get_as(&find(id + 1000), Some(&b.backoffice)).await;
    assert_eq!(found_other.status, 404);
    assert_eq!(found_other.body, found_none.body);
    assert_eq!(app.db.count("refunds").await, 0);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_yen_tenant_refuses_cents_and_keeps_its_currency_once_it_sold() {
    let app = spawn_app().await;
    let op = Some(app.db.operator.as_str());
    for (currency, problem) in [("KWD", "three fractional digits"), ("XYZ", "ISO 4217")] {
        let refused = app
            .post_json_as(
                "/v1/tenants",
                op,
                &json!({"name": "Kuwait", "currency": currency}),
            )
            .await;
        assert_eq!(refused.status, 422);
        let said = refused.body["error"]["fields"]["currency"]
            .as_str()
            .unwrap_or("");
        assert!(said.contains(problem), "{said}");
    }
    let made = app
        .post_json_as(
            "/v1/tenants",
            op,
            &json!({"name": "Tokyo", "currency": "JPY"}),
        )
        .await;
    assert_eq!(
        (made.status.as_u16(), &made.body["currency"]),
        (201, &json!("JPY"))
    );
    let t = made.body["id"].as_u64().expect("an id");
    let branch = app
        .post_json_as(
            &format!("/v1/tenants/{t}/branches"),
            op,
            &json!({"code": "SHIBUYA", "name": "Shibuya"}),
        )
        .await;
    let products = format!("/v1/tenants/{t}/products");
    let cents = app
        .post_json_as(
            &products,
            op,
            &json!({"sku": "TEA", "name": "Tea", "price": "120.50"}),
        )
        .await;
    assert_eq!(cents.status, 422);
    assert!(cents.body["error"]["fields"]["price"].is_string());
    let tea = app
        .post_json_as(
            &products,
            op,
            &json!({"sku": "TEA", "name": "Tea", "price": "120"}),
        )
        .await;
    assert_eq!(
        (tea.status.as_u16(), &tea.body["price"]),
        (201, &json!("120.00"))
    );
    let till = app
        .post_json_as(
            &format!("/v1/tenants/{t}/keys"),
            op,
            &json!({"role": "till", "label": "till 1"}),
        )
        .await;
    let till = till.body["token"].as_str().expect("a token").to_string();
    let sales = format!(
        "/v1/tenants/{t}/branches/{}/sales-transactions",
        branch.body["id"]
    );
    let product = tea.body["id"].as_u64().expect("an id");
    let listed = app
        .post_json_as(
            &sales,
            Some(&till),
            &json!({"productID": product, "quantitySold": 2}),
        )
        .await;
    assert_eq!(listed.status, 201, "{}", listed.body);
    assert_eq!(
        (&listed.body["pricePerUnit"], &listed.body["currency"]),
        (&json!("120.00"), &json!("JPY"))
    );
    let fine = app
        .post_json_as(&sales, Some(&till), &sale(product, 1, "99.50"))
        .await;
    assert_eq!(fine.status, 422);
    assert!(fine.body["error"]["fields"]["pricePerUnit"].is_string());
    let to_euros = json!({"currency": "EUR"});
    let locked = app
        .send_as("PATCH", &format!("/v1/tenants/{t}"), op, Some(&to_euros))
        .await;
    assert_eq!(locked.status, 409, "{}", locked.body);
    assert!(locked.body["error"]["fields"]["currency"].is_string());
    // A tenant without sales may still change it.
    let fresh = app
        .post_json_as("/v1/tenants", op, &json!({"name": "Berlin"}))
        .await;
    assert_eq!(fresh.body["currency"], "EUR", "the deployment's default");
    let moved = app
        .send_as(
            "PATCH",
            &format!("/v1/tenants/{}", fresh.body["id"]),
            op,
            Some(&json!({"currency": "USD"})),
        )
        .await;
    assert_eq!(
        (moved.status.as_u16(), &moved.body["currency"]),
        (200, &json!("USD"))
    );
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_list_price_stands_in_for_a_price_left_out_and_a_replay_keeps_the_price_it_had() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    let bo = Some(t.backoffice.as_str());
    let product = format!("/v1/tenants/{}/products/{}", t.id, t.products[0]);
    let priced = app
        .send_as("PATCH", &product, bo, Some(&json!({"price": "3.20"})))
        .await;
    assert_eq!(
        (priced.status.as_u16(), &priced.body["price"]),
        (200, &json!("3.20"))
    );
    let catalog = app
        .get_as(&format!("/v1/tenants/{}/catalog", t.id), Some(&t.till))
        .await;
    let listed = catalog.body["products"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == t.products[0]).cloned());
    assert_eq!(listed.map(|p| p["price"].clone()), Some(json!("3.20")));
    let no_price = |p: u64| keyed(json!({"productID": p, "quantitySold": 2}), "k-1");
    let first = app
        .post_json(&t.sales_path(0), &no_price(t.products[0]))
        .await;
    assert_eq!(
        (first.status.as_u16(), &first.body["pricePerUnit"]),
        (201, &json!("3.20"))
    );
    app.send_as("PATCH", &product, bo, Some(&json!({"price": "3.50"})))
        .await;
    let replay = app
        .post_json(&t.sales_path(0), &no_price(t.products[0]))
        .await;
    assert_eq!((replay.status.as_u16(), &replay.body), (200, &first.body));
    let unpriced = app
        .post_json(
            &t.sales_path(0),
            &json!({"productID": t.products[1], "quantitySold": 1}),
        )
        .await;
    assert_eq!(unpriced.status, 422);
    assert!(unpriced.body["error"]["fields"]["pricePerUnit"].is_string());
    let cleared = app
        .send_as("PATCH", &product, bo, Some(&json!({"price": null})))
        .await;
    assert_eq!(cleared.body["price"], Value::Null);
    let now_unpriced = app
        .post_json(
            &t.sales_path(0),
            &json!({"productID": t.products[0], "quantitySold": 1}),
        )
        .await;
    assert_eq!(now_unpriced.status, 422);
    assert_eq!(
        app.db
            .scalar("SELECT SUM(quantity_sold * price_per_unit) FROM sales_transactions")
            .await,
        "6.40"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn every_role_on_the_refund_and_sale_routes_gets_what_the_spec_allows() {
    let app = spawn_app().await;
    let a = app.db.tenant(2, 1).await;
    let b = app.db.tenant(1, 1).await;
    let branch_till = app
        .db
        .key(Scope::Till {
            tenant: tenant_id(a.id),
            branch: Some(branch_id(a.branches[0])),
        })
        .await;
    let mut ids = Vec::new();
    for (t, branch) in [(&a, 0), (&a, 1), (&b, 0)] {
        let sold = app
            .post_json(&t.sales_path(branch), &sale(t.products[0], 100, "1.00"))
            .await;
        ids.push(sold.body["id"].clone());
    }
    let (a0, a1, b0) = (&ids[0], &ids[1], &ids[2]);
    let unknown = b.id + 1000;
    let refund = |tenant: u64, branch: u64, sale: &Value| {
        (
            refunds_path(tenant, branch),
            json!({"saleID": sale, "quantity": 1}),
        )
    };
    let calls = [
        refund(a.id, a.branches[0], a0),
        refund(a.id, a.branches[1], a0),
        refund(b.id, b.branches[0], b0),
        refund(unknown, a.branches[0], a0),
    ];
    let finds = [
        format!("/v1/tenants/{}/sales-transactions/{a0}", a.id),
        format!("/v1/tenants/{}/sales-transactions/{a1}", a.id),
        format!("/v1/tenants/{}/sales-transactions/{b0}", b.id),
    ];
    // Per key: the four refunds above, then the three finds.
    let table: [(&str, &str, [u16; 7]); 5] = [
        ("till of A", &a.till, [201, 201, 403, 403, 200, 200, 403]),
        (
            "till of A's branch 0",
            &branch_till,
            [201, 403, 403, 403, 200, 404, 403],
        ),
        (
            "backoffice of A",
            &a.backoffice,
            [201, 201, 403, 403, 200, 200, 403],
        ),
        (
            "operator",
            &app.db.operator,
            [201, 201, 201, 404, 200, 200, 200],
        ),
        ("till of B", &b.till, [403, 403, 201, 403, 403, 403, 200]),
    ];
    let mut stored = 0;
    let mut forbidden: Vec<Value> = Vec::new();
    for (who, token, expected) in table {
        let posts = calls.iter().map(|(path, body)| (path, Some(body)));
        let gets = finds.iter().map(|path| (path, None));
        for ((path, body), want) in posts.chain(gets).zip(expected) {
            let answer = match body {
                Some(body) => app.post_json_as(path, Some(token), body).await,
                None => app.get_as(path, Some(token)).await,
            };
            assert_eq!(answer.status, want, "{who} {path}: {}", answer.body);
            stored += u64::from(want == 201);
            assert_eq!(app.db.count("refunds").await, stored, "{who} {path}");
            if want == 403 {
                forbidden.push(answer.body);
            }
        }
    }
    // A refusal names no tenant but the key's own: the unknown tenant and
    // another one read alike.
    for body in &forbidden {
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(!message.contains(&format!("tenant {unknown}")), "{message}");
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn a_refund_whose_commit_answer_is_lost_is_settled_and_stored_once() {
    let db = crate::support::TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = crate::support::start_app_behind_proxy(db, &[]).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 5, "2.00"))
        .await;
    let path = refunds_path(t.id, t.branches[0]);
    let batch = json!([
        {"saleID": sold.body["id"], "quantity": 1, "idempotencyKey": "r-1"},
        {"saleID": sold.body["id"], "quantity": 2, "idempotencyKey": "r-2"},
    ]);
    proxy.lose_next_commit_answer();
    let first = app.post_json_as(&path, Some(&t.till), &batch).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let answered: Vec<String> = first.body["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| r["id"].to_string())
        .collect();
    let stored = app
        .db
        .scalar("SELECT GROUP_CONCAT(id ORDER BY id) FROM refunds")
        .await;
    assert_eq!(
        stored,
        answered.join(","),
        "the answered ids are the stored rows, once"
    );
    assert!(app
        .get_metrics()
        .await
        .contains(r#"pos_commit_settles_total{outcome="stored"} 1"#));
    let replay = app.post_json_as(&path, Some(&t.till), &batch).await;
    assert_eq!((replay.status.as_u16(), &replay.body), (200, &first.body));
    // Without a key only the settling keeps a retry from storing it twice.
    proxy.lose_next_commit_answer();
    let keyless = json!({"saleID": sold.body["id"], "quantity": 1});
    assert_eq!(
        app.post_json_as(&path, Some(&t.till), &keyless)
            .await
            .status,
        201
    );
    assert_eq!(
        app.db
            .scalar(
                "SELECT CONCAT(s.quantity_refunded, '/', t.quantity_refunded, '/', t.refunds) \
                 FROM sales_transactions s JOIN product_sales_totals t USING (tenant_id, product_id)"
            )
            .await,
        "4/4/8.00"
    );
    let line = sales_line(&app, t.id).await;
    assert_eq!(
        (&line["netQuantity"], &line["netSales"]),
        (&json!(1), &json!("2.00"))
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn reports_count_a_return_at_its_branch_and_time_beside_the_sale() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 4, "2.50"))
        .await;
    let path = refunds_path(t.id, t.branches[1]);
    let body = json!({"saleID": sold.body["id"], "quantity": 3});
    assert_eq!(
        app.post_json_as(&path, Some(&t.till), &body).await.status,
        201
    );
    let today = chrono::Utc::now().date_naive();
    let report = |group: &str| {
        format!(
            "/v1/tenants/{}/reports/sales?from={}T00:00:00Z&to={}T00:00:00Z&groupBy={group}",
            t.id,
            today,
            today.succ_opt().expect("a next day")
        )
    };
    let rows = app.get(&report("branch")).await.body["rows"].clone();
    let cut = |r: &Value| {
        (
            r["branchID"].as_u64(),
            r["salesCount"].clone(),
            r["totalSales"].clone(),
            r["quantityRefunded"].clone(),
            r["refunds"].clone(),
            r["refundCount"].clone(),
            r["netSales"].clone(),
        )
    };
    let rows: Vec<_> = rows.as_array().expect("rows").iter().map(cut).collect();
    assert_eq!(
        rows,
        [
            (
                Some(t.branches[0]),
                json!(1),
                json!("10.00"),
                json!(0),
                json!("0.00"),
                json!(0),
                json!("10.00")
            ),
            (
                Some(t.branches[1]),
                json!(0),
                json!("0.00"),
                json!(3),
                json!("7.50"),
                json!(1),
                json!("-7.50")
            ),
        ],
        "the return counts where it was taken"
    );
    let by_product = app.get(&report("product")).await.body;
    assert_eq!(by_product["currency"], "EUR");
    let total = by_product["rows"][0].clone();
    assert_eq!(
        (
            &total["quantitySold"],
            &total["quantityRefunded"],
            &total["netSales"]
        ),
        (&json!(4), &json!(3), &json!("2.50"))
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn sales_are_listed_newest_first_in_pages_that_never_skip_or_repeat_a_batch() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let p = t.products[0];
    // A batch shares its receive time; two sales an hour and a day before.
    let batch = json!([sale(p, 1, "1.00"), sale(p, 2, "1.00"), sale(p, 3, "1.00")]);
    assert_eq!(app.post_json(&t.sales_path(0), &batch).await.status, 201);
    let at = |hours: i64| (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339();
    let mut earlier = sale(p, 4, "1.00");
    earlier["timestamp"] = json!(at(1));
    assert_eq!(app.post_json(&t.sales_path(1), &earlier).await.status, 201);
    let mut oldest = sale(p, 5, "1.00");
    oldest["timestamp"] = json!(at(24));
    assert_eq!(app.post_json(&t.sales_path(0), &oldest).await.status, 201);
    let list = format!("/v1/tenants/{}/sales-transactions", t.id);
    let bo = Some(t.backoffice.as_str());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let page = match &cursor {
            Some(c) => format!("{list}?limit=2&cursor={c}"),
            None => format!("{list}?limit=2"),
        };
        let answer = app.get_as(&page, bo).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        for s in answer.body["sales"].as_array().expect("sales") {
            seen.push(s["quantitySold"].as_u64().expect("a quantity"));
        }
        cursor = answer.body["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        [3, 2, 1, 4, 5],
        "newest first, a batch by id, once each"
    );
    // A branch's sales; a till bound to a branch sees its own only.
    let of_branch_1 = app
        .get_as(&format!("{list}?branchID={}", t.branches[1]), bo)
        .await;
    assert_eq!(of_branch_1.body["sales"].as_array().map(Vec::len), Some(1));
    let bound = app
        .db
        .key(Scope::Till {
            tenant: tenant_id(t.id),
            branch: Some(branch_id(t.branches[1])),
        })
        .await;
    let own = app.get_as(&list, Some(&bound)).await;
    assert_eq!(own.body["sales"][0]["quantitySold"], 4);
    assert_eq!(own.body["sales"].as_array().map(Vec::len), Some(1));
    let other = app
        .get_as(&format!("{list}?branchID={}", t.branches[0]), Some(&bound))
        .await;
    assert_eq!(other.status, 403);
    let bad = app.get_as(&format!("{list}?cursor=yesterday"), bo).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["error"]["fields"]["cursor"].is_string());
    app.cleanup().await;
}

#[actix_web::test]
async fn the_back_office_finds_a_sale_and_takes_it_back_once_however_often_the_form_is_sent() {
    use crate::support::{plain_client, web_session};
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 3, "2.00"))
        .await;
    let id = sold.body["id"].as_u64().expect("an id");
    let cookie = web_session(&app.base, &t.backoffice).await;
    let page = format!("{}/app/tenants/{}/returns", app.base, t.id);
    let read = |url: String| {
        let cookie = cookie.clone();
        async move {
            let mut res = plain_client()
                .get(url)
                .insert_header(("Cookie", cookie))
                .send()
                .await
                .expect("the page answers");
            let body = res.body().await.expect("a body");
            (
                res.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };
    let (status, listed) = read(page.clone()).await;
    assert_eq!(status, 200);
    assert!(listed.contains(&format!("data-sale=\"{id}\"")), "{listed}");
    let (_, found) = read(format!("{page}?sale={id}")).await;
    assert!(found.contains("0 of 3 taken back, 3 left."), "{found}");
    let key = found
        .split("name=\"key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's idempotency key")
        .to_string();
    let form = [
        ("sale", id.to_string()),
        ("key", key),
        ("quantity", "2".to_string()),
        ("branch", t.branches[1].to_string()),
        ("reason", "too big".to_string()),
        ("kind", "refund".to_string()),
    ];
    for _ in 0..2 {
        let res = plain_client()
            .post(&page)
            .insert_header(("Origin", app.base.as_str()))
            .insert_header(("Cookie", cookie.as_str()))
            .send_form(&form)
            .await
            .expect("the form answers");
        assert_eq!(res.status().as_u16(), 303);
    }
    assert_eq!(
        app.db.count("refunds").await,
        1,
        "a form sent twice takes back once"
    );
    let (_, after) = read(format!("{page}?sale={id}")).await;
    assert!(after.contains("2 of 3 taken back, 1 left."), "{after}");
    assert!(after.contains("too big"), "{after}");
    // More than is left: the page says why, and nothing is stored.
    let mut too_many = form.clone();
    too_many[1].1 = "app-other".to_string();
    too_many[2].1 = "5".to_string();
    let res = plain_client()
        .post(&page)
        .insert_header(("Origin", app.base.as_str()))
        .insert_header(("Cookie", cookie.as_str()))
        .send_form(&too_many)
        .await
        .expect("the form answers");
    assert_eq!(res.status().as_u16(), 422);
    assert_eq!(app.db.count("refunds").await, 1);
    let overview = read(format!("{}/app/tenants/{}/", app.base, t.id)).await.1;
    assert!(
        overview.contains("data-figure=\"refunds\">€4.00<"),
        "{overview}"
    );
    assert!(
        overview.contains("data-figure=\"net\">€2.00<"),
        "{overview}"
    );
    app.cleanup().await;
}

/// The refunds' batch meets the worst of the sales' faults: its COMMIT
/// reaches MariaDB, the answer is lost, and MariaDB is SIGKILLed before
/// anything can settle it; once MariaDB is back the refund is settled as
/// stored and answered, once.
#[actix_web::test]
async fn mariadb_killed_right_after_a_refunds_commit_whose_answer_was_lost_stores_it_once() {
    use crate::support::mariadb_server::MariadbServer;
    let mut mariadb = MariadbServer::start().await;
    let db = crate::support::TestDb::create_on(&mariadb.url()).await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) =
        crate::support::start_app_behind_proxy(db, &[("POS_STORAGE_RETRY_MS", "60000")]).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 6, "1.10"))
        .await;
    let path = refunds_path(t.id, t.branches[0]);
    let body = json!({"saleID": sold.body["id"], "quantity": 4, "idempotencyKey": "r-9"});
    proxy.lose_next_commit_answer_and_go_down();
    let (client, url, till) = (
        app.client.clone(),
        format!("{}{path}", app.base),
        t.till.clone(),
    );
    let refund = actix_web::rt::spawn(async move {
        let mut res = client
            .post(url)
            .bearer_auth(till)
            .timeout(std::time::Duration::from_secs(120))
            .send_json(&body)
            .await
            .expect("the refund answers");
        let json: Value = res.json().await.unwrap_or(Value::Null);
        (res.status().as_u16(), json)
    });
    let lost = eventually(std::time::Duration::from_secs(30), || async {
        proxy.commit_answer_dropped()
    })
    .await;
    assert!(lost, "no COMMIT answer was dropped");
    mariadb.kill();
    mariadb.restart().await;
    proxy.restore();
    let (status, answer) = refund.await.expect("the refund's task");
    assert_eq!(status, 201, "{answer}");
    assert_eq!(app.db.count("refunds").await, 1);
    assert_eq!(
        app.db
            .scalar("SELECT CONCAT(id, '/', quantity) FROM refunds WHERE idempotency_key = 'r-9'")
            .await,
        format!("{}/4", answer["id"])
    );
    let line = sales_line(&app, t.id).await;
    assert_eq!(
        (&line["quantityRefunded"], &line["netQuantity"]),
        (&json!(4), &json!(2))
    );
    app.cleanup().await;
}

/// The tenant's actor dies while its refund waits in MySQL (the summary
/// rows locked): the refund commits after, the successor reads the totals
/// behind it, and the retry is the replay it is.
#[actix_web::test]
async fn a_successor_reads_the_refunds_its_predecessor_queued() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 5, "1.50"))
        .await;
    let path = refunds_path(t.id, t.branches[0]);
    let body = json!({"saleID": sold.body["id"], "quantity": 2, "idempotencyKey": "r-queued"});
    let mut lock = app.db.lock_totals(t.id).await;
    let tenants = app.app.as_ref().and_then(|a| a.tenants()).expect("booted");
    let (answer, ()) = futures_util::join!(app.post_json_as(&path, Some(&t.till), &body), async {
        let queued = crate::support::until_lock_waits(&app.db, 1).await;
        assert!(queued, "the refund never waited for the lock");
        tenants.crash(tenant_id(t.id)).await;
        let replaced = eventually(std::time::Duration::from_secs(10), || async {
            app.metric("pos_tenant_actor_restarts_total").await == 1.0
        })
        .await;
        assert!(replaced, "the actor was not replaced");
        mysql_async::prelude::Queryable::query_drop(&mut lock, "ROLLBACK")
            .await
            .expect("release the lock");
    });
    // Back to the pool, or the test database could not be dropped.
    drop(lock);
    assert_eq!(
        answer.status, 500,
        "its actor died under it: {}",
        answer.body
    );
    // Its batch commits once the lock is gone, a moment after the answer.
    let stored = eventually(std::time::Duration::from_secs(10), || async {
        app.db.count("refunds").await == 1
    })
    .await;
    assert!(stored, "it is stored");
    let counted = eventually(std::time::Duration::from_secs(10), || async {
        sales_line(&app, t.id).await["quantityRefunded"] == 2
    })
    .await;
    assert!(counted, "the successor did not read the refund");
    let retry = app.post_json_as(&path, Some(&t.till), &body).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    let line = sales_line(&app, t.id).await;
    assert_eq!(
        (&line["quantityRefunded"], &line["netQuantity"]),
        (&json!(2), &json!(3))
    );
    app.cleanup().await;
}
