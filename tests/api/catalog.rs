//! Catalog and onboarding over the API: the operator creates a tenant, its
//! back office creates branches, products and till keys, tills download the
//! catalog and sell at once; changes are live on the next sale.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, sale, spawn_app, tenant_id, TestApp};
use pos::domain::Scope;

fn id(v: &Value) -> u64 {
    v["id"].as_u64().expect("an id")
}

const OFFICE_OK: &str = r#"pos_lookups_total{kind="office",result="ok"}"#;

#[actix_web::test]
async fn a_chain_onboards_itself_through_the_api_and_sells_at_once() {
    let app = spawn_app().await;
    let op = app.db.operator.clone();
    let made = app
        .send_as(
            "POST",
            "/v1/tenants",
            Some(&op),
            Some(&json!({"name": " Café Nord "})),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(made.body["name"], "Café Nord");
    assert_eq!(made.body["suspended"], false);
    let t = id(&made.body);
    let keys = format!("/v1/tenants/{t}/keys");
    let office_key = app
        .send_as(
            "POST",
            &keys,
            Some(&op),
            Some(&json!({"role": "backoffice", "label": "head office"})),
        )
        .await;
    assert_eq!(office_key.status, 201, "{:?}", office_key.body);
    let office = office_key.body["token"]
        .as_str()
        .expect("token")
        .to_string();

    let branch = app
        .send_as(
            "POST",
            &format!("/v1/tenants/{t}/branches"),
            Some(&office),
            Some(&json!({"code": "HAM-1", "name": "Hamburg"})),
        )
        .await;
    assert_eq!(branch.status, 201, "{:?}", branch.body);
    assert_eq!(branch.body["open"], true);
    let b = id(&branch.body);
    let products = app
        .send_as(
            "POST",
            &format!("/v1/tenants/{t}/products"),
            Some(&office),
            Some(&json!([
                {"sku": "LAT", "name": "Latte"},
                {"sku": "ESP", "name": "Espresso"},
            ])),
        )
        .await;
    assert_eq!(products.status, 201, "{:?}", products.body);
    let latte = id(&products.body["products"][0]);
    assert_eq!(products.body["products"][1]["sku"], "ESP");

    let till_key = app
        .send_as(
            "POST",
            &keys,
            Some(&office),
            Some(&json!({"role": "till", "branchID": b, "label": "till 1"})),
        )
        .await;
    assert_eq!(till_key.status, 201, "{:?}", till_key.body);
    assert_eq!(till_key.body["branchID"], b);
    let till = till_key.body["token"].as_str().expect("token").to_string();

    // The till learns its catalog, then sells from it.
    let catalog_path = format!("/v1/tenants/{t}/catalog");
    let (status, etag, body) = get_catalog(&app, &catalog_path, &till, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["branches"],
        json!([{"id": b, "code": "HAM-1", "name": "Hamburg"}])
    );
    assert_eq!(
        body["products"][0],
        json!({"id": latte, "sku": "LAT", "name": "Latte", "price": null})
    );
    let etag = etag.expect("an ETag");
    let (status, again, body) = get_catalog(&app, &catalog_path, &till, Some(&etag)).await;
    assert_eq!((status, again.as_deref()), (304, Some(etag.as_str())));
    assert_eq!(body, Value::Null, "no body with 304");

    let sold = app
        .post_json_as(
            &format!("/v1/tenants/{t}/branches/{b}/sales-transactions"),
            Some(&till),
            &sale(latte, 1, "2.50"),
        )
        .await;
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    let sales = app
        .get_as(&format!("/v1/tenants/{t}/sales"), Some(&office))
        .await;
    assert_eq!(sales.body["sales_per_product"][0]["productName"], "Latte");
    assert_eq!(app.db.count("sales_transactions").await, 1);

    // Every tenant in pages, by id.
    let first = app
        .send_as("GET", "/v1/tenants?limit=1", Some(&op), None)
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["tenants"].as_array().map(Vec::len), Some(1));
    let cursor = first.body["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = app
        .send_as(
            "GET",
            &format!("/v1/tenants?cursor={cursor}"),
            Some(&op),
            None,
        )
        .await;
    assert!(rest.body["nextCursor"].is_null(), "{:?}", rest.body);
    assert!(rest.body["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .all(|x| id(x) > cursor.parse::<u64>().expect("an id cursor")));
    app.cleanup().await;
}

async fn get_catalog(
    app: &TestApp,
    path: &str,
    token: &str,
    if_none_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut req = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token);
    if let Some(tag) = if_none_match {
        req = req.insert_header(("If-None-Match", tag));
    }
    let mut res = req.send().await.expect("answer");
    let etag = res
        .headers()
        .get("ETag")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = res.body().await.expect("body");
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (res.status().as_u16(), etag, value)
}

#[actix_web::test]
async fn natural_keys_make_creates_safe_to_retry_and_a_conflict_stores_nothing() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 0).await;
    let path = format!("/v1/tenants/{}/products", t.id);
    let one = json!({"sku": "TEA", "name": "Tea"});
    let first = app
        .send_as("POST", &path, Some(&t.backoffice), Some(&one))
        .await;
    assert_eq!(first.status, 201);
    let again = app
        .send_as("POST", &path, Some(&t.backoffice), Some(&one))
        .await;
    assert_eq!(again.status, 200, "the same sku and name: the existing row");
    assert_eq!(again.body, first.body);

    // A new product beside a sku taken with another name: nothing is made.
    let mixed = json!([{"sku": "CAKE", "name": "Cake"}, {"sku": "TEA", "name": "Green tea"}]);
    let refused = app
        .send_as("POST", &path, Some(&t.backoffice), Some(&mixed))
        .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "conflict");
    assert!(
        refused.body["error"]["fields"]["[1].sku"].is_string(),
        "{:?}",
        refused.body
    );
    assert_eq!(app.db.count("products").await, 1, "all or nothing");

    let mixed_ok = json!([{"sku": "CAKE", "name": "Cake"}, {"sku": "TEA", "name": "Tea"}]);
    let made = app
        .send_as("POST", &path, Some(&t.backoffice), Some(&mixed_ok))
        .await;
    assert_eq!(made.status, 201, "one of them is new");
    assert_eq!(made.body["products"][1], first.body);

    let branches = format!("/v1/tenants/{}/branches", t.id);
    let b = json!({"code": "B0", "name": "Branch 0"});
    let found = app
        .send_as("POST", &branches, Some(&t.backoffice), Some(&b))
        .await;
    assert_eq!(found.status, 200, "the branch the test made has code B0");
    assert_eq!(id(&found.body), t.branches[0]);
    let taken = json!({"code": "B0", "name": "Elsewhere"});
    let conflict = app
        .send_as("POST", &branches, Some(&t.backoffice), Some(&taken))
        .await;
    assert_eq!(conflict.status, 409);
    assert!(conflict.body["error"]["fields"]["code"].is_string());

    // Bad bodies are refused field by field, and store nothing.
    for (body, field) in [
        (json!({"sku": "bad sku", "name": "x"}), "sku"),
        (json!({"sku": "OK", "name": ""}), "name"),
        (json!({"sku": "OK", "name": "a\u{0}b"}), "name"),
        (json!({"sku": "OK", "name": "x".repeat(201)}), "name"),
        (json!({"sku": "OK", "name": "x", "cost": 1}), "cost"),
        (json!({"sku": "OK", "name": "x", "price": "1.001"}), "price"),
        (
            json!([{"sku": "D", "name": "d"}, {"sku": "D", "name": "d"}]),
            "[1].sku",
        ),
    ] {
        let a = app
            .send_as("POST", &path, Some(&t.backoffice), Some(&body))
            .await;
        assert_eq!(a.status, 422, "{body}: {:?}", a.body);
        assert!(
            a.body["error"]["fields"][field].is_string(),
            "{body}: {:?}",
            a.body
        );
    }
    assert_eq!(app.db.count("products").await, 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn catalog_changes_are_live_on_the_next_sale_and_replays_still_answer() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 2).await;
    let (p, sales_path) = (t.products[0], t.sales_path(0));
    let keyed = json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00", "idempotencyKey": "till:1"});
    assert_eq!(app.post_json(&sales_path, &keyed).await.status, 201);
    let product_path = format!("/v1/tenants/{}/products/{p}", t.id);
    let catalog_path = format!("/v1/tenants/{}/catalog", t.id);
    let (_, before, _) = get_catalog(&app, &catalog_path, &t.till, None).await;

    let off = app
        .send_as(
            "PATCH",
            &product_path,
            Some(&t.backoffice),
            Some(&json!({"active": false})),
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    assert_eq!(off.body["active"], false);
    let refused = app.post_json(&sales_path, &sale(p, 1, "2.50")).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["fields"]["productID"], "is inactive");
    // A sale stored before the change is still answered as a replay.
    assert_eq!(app.post_json(&sales_path, &keyed).await.status, 200);
    let (status, after, body) = get_catalog(&app, &catalog_path, &t.till, before.as_deref()).await;
    assert_eq!(status, 200, "the catalog changed: a new body, a new tag");
    assert_ne!(after, before);
    assert_eq!(body["products"].as_array().map(Vec::len), Some(1));

    let on = app
        .send_as(
            "PATCH",
            &product_path,
            Some(&t.backoffice),
            Some(&json!({"active": true, "name": "Flat white"})),
        )
        .await;
    assert_eq!(on.status, 200);
    assert_eq!(
        app.post_json(&sales_path, &sale(p, 1, "2.50")).await.status,
        201
    );
    let sales = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(
        sales.body["sales_per_product"][0]["productName"],
        "Flat white"
    );
    let renamed = eventually(Duration::from_secs(5), || async {
        let top = app.get("/v1/top-selling").await;
        top.body["top_selling_products"][0]["productName"] == "Flat white"
    })
    .await;
    assert!(renamed, "the ranking shows the new name");

    let branch_path = format!("/v1/tenants/{}/branches/{}", t.id, t.branches[0]);
    let closed = app
        .send_as(
            "PATCH",
            &branch_path,
            Some(&t.backoffice),
            Some(&json!({"open": false})),
        )
        .await;
    assert_eq!(closed.body["open"], false);
    let refused = app.post_json(&sales_path, &sale(p, 1, "2.50")).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body["error"]["fields"]["branchID"].is_string());
    assert_eq!(
        app.post_json(&t.sales_path(1), &sale(p, 1, "2.50"))
            .await
            .status,
        201,
        "the other branch sells"
    );
    assert_eq!(app.db.count("sales_transactions").await, 3);

    // Unknown rows of the path: 404, for this tenant's rows only.
    let other = app.db.tenant(1, 1).await;
    let foreign = format!("/v1/tenants/{}/products/{}", t.id, other.products[0]);
    let a = app
        .send_as(
            "PATCH",
            &foreign,
            Some(&t.backoffice),
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT name FROM products WHERE id = {}",
                other.products[0]
            ))
            .await,
        "Product 0"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_suspended_tenants_tills_are_refused_and_its_reads_keep_working() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "2.50"))
            .await
            .status,
        201
    );
    let tenant_path = format!("/v1/tenants/{}", t.id);
    let op = app.db.operator.clone();
    let suspended = app
        .send_as(
            "PATCH",
            &tenant_path,
            Some(&op),
            Some(&json!({"suspended": true})),
        )
        .await;
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    assert_eq!(suspended.body["suspended"], true);
    let refused = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "2.50"))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"]["code"], "tenant_suspended");
    let (status, _, _) = get_catalog(&app, &format!("{tenant_path}/catalog"), &t.till, None).await;
    assert_eq!(status, 403);
    let sales = app.get(&format!("{tenant_path}/sales")).await;
    assert_eq!(sales.status, 200, "the back office still reads");
    let back = app
        .send_as(
            "PATCH",
            &tenant_path,
            Some(&op),
            Some(&json!({"suspended": false, "name": "Renamed"})),
        )
        .await;
    assert_eq!(back.body["name"], "Renamed");
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "2.50"))
            .await
            .status,
        201
    );
    assert_eq!(app.db.count("sales_transactions").await, 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn back_offices_make_list_and_revoke_their_till_keys_and_nothing_more() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let other = app.db.tenant(1, 1).await;
    let keys = format!("/v1/tenants/{}/keys", t.id);
    let made = app
        .send_as(
            "POST",
            &keys,
            Some(&t.backoffice),
            Some(&json!({"role": "till", "label": "front till"})),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let token = made.body["token"].as_str().expect("token").to_string();
    let key_id = made.body["id"].as_str().expect("id").to_string();
    assert!(token.starts_with(&format!("pos_{key_id}_")));
    assert_eq!(
        app.post_json_as(
            &t.sales_path(0),
            Some(&token),
            &sale(t.products[0], 1, "2.50")
        )
        .await
        .status,
        201
    );

    // A back office makes no back-office key and binds no till to another tenant's branch.
    let higher = app
        .send_as(
            "POST",
            &keys,
            Some(&t.backoffice),
            Some(&json!({"role": "backoffice", "label": "x"})),
        )
        .await;
    assert_eq!(higher.status, 403);
    let foreign_branch = json!({"role": "till", "branchID": other.branches[0], "label": "x"});
    let a = app
        .send_as("POST", &keys, Some(&t.backoffice), Some(&foreign_branch))
        .await;
    assert_eq!(a.status, 422, "{:?}", a.body);
    assert!(a.body["error"]["fields"]["branchID"].is_string());

    let listed = app.send_as("GET", &keys, Some(&t.backoffice), None).await;
    assert_eq!(listed.status, 200);
    let text = listed.body.to_string();
    assert!(
        !text.contains("token") && !text.contains(&token[token.len() - 20..]),
        "{text}"
    );
    assert!(listed.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .all(|k| k["tenantID"] == t.id));

    // Its own back-office key, and a key of another tenant, are not its to revoke.
    let own = app
        .db
        .key(Scope::Backoffice {
            tenant: tenant_id(t.id),
        })
        .await;
    let own_id = own.split('_').nth(1).expect("key id");
    let a = app
        .send_as(
            "DELETE",
            &format!("{keys}/{own_id}"),
            Some(&t.backoffice),
            None,
        )
        .await;
    assert_eq!(a.status, 403);
    let foreign_id = other.till.split('_').nth(1).expect("key id");
    let a = app
        .send_as(
            "DELETE",
            &format!("{keys}/{foreign_id}"),
            Some(&t.backoffice),
            None,
        )
        .await;
    assert_eq!(a.status, 404, "another tenant's key is unknown here");
    assert!(
        app.db
            .scalar(&format!(
                "SELECT revoked IS NULL FROM api_keys WHERE id = '{foreign_id}'"
            ))
            .await
            == "1"
    );

    let revoked = app
        .send_as(
            "DELETE",
            &format!("{keys}/{key_id}"),
            Some(&t.backoffice),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert!(revoked.body["revoked"].is_string());
    // Refused at once on the server that revoked it.
    let a = app
        .post_json_as(
            &t.sales_path(0),
            Some(&token),
            &sale(t.products[0], 1, "2.50"),
        )
        .await;
    assert_eq!(a.status, 401);
    let again = app
        .send_as(
            "DELETE",
            &format!("{keys}/{key_id}"),
            Some(&t.backoffice),
            None,
        )
        .await;
    assert_eq!(
        again.body["revoked"], revoked.body["revoked"],
        "the first revocation time stays"
    );
    app.cleanup().await;
}

/// The new routes in the role table: each refusal is decided from the key
/// and the path alone (no statement, no lookup), whether the tenant exists
/// or not.
#[actix_web::test]
async fn every_role_on_every_catalog_route_gets_what_the_spec_allows() {
    let app = spawn_app().await;
    let a = app.db.tenant(1, 1).await;
    let b = app.db.tenant(1, 1).await;
    let unknown = b.id + 1000;
    let product = |t: u64, p: u64| json!({"sku": format!("S{t}-{p}"), "name": "x"});
    // (method, path, body) per route, for tenant A, then B, then unknown.
    let routes = |t: u64, branch: u64, prod: u64| -> Vec<(&'static str, String, Option<Value>)> {
        vec![
            ("GET", format!("/v1/tenants/{t}/catalog"), None),
            (
                "POST",
                format!("/v1/tenants/{t}/products"),
                Some(product(t, 1)),
            ),
            (
                "PATCH",
                format!("/v1/tenants/{t}/products/{prod}"),
                Some(json!({"name": "y"})),
            ),
            (
                "POST",
                format!("/v1/tenants/{t}/branches"),
                Some(json!({"code": format!("C{t}"), "name": "c"})),
            ),
            (
                "PATCH",
                format!("/v1/tenants/{t}/branches/{branch}"),
                Some(json!({"name": "z"})),
            ),
            ("GET", format!("/v1/tenants/{t}/keys"), None),
            (
                "PATCH",
                format!("/v1/tenants/{t}"),
                Some(json!({"name": "n"})),
            ),
        ]
    };
    let calls: Vec<_> = routes(a.id, a.branches[0], a.products[0])
        .into_iter()
        .chain(routes(b.id, b.branches[0], b.products[0]))
        .chain(routes(unknown, 1, 1))
        .collect();
    // Per key: the expected status of each call, A's seven, B's, the unknown tenant's.
    let table: [(&str, &str, [u16; 21]); 4] = [
        (
            "till of A",
            &a.till,
            [
                200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403,
                403, 403, 403, 403, 403,
            ],
        ),
        (
            "backoffice of A",
            &a.backoffice,
            [
                200, 201, 200, 201, 200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403,
                403, 403, 403, 403, 403,
            ],
        ),
        (
            "operator",
            &app.db.operator,
            [
                200, 200, 200, 200, 200, 200, 200, 200, 201, 200, 201, 200, 200, 200, 404, 404,
                404, 404, 404, 404, 404,
            ],
        ),
        (
            "till of B",
            &b.till,
            [
                403, 403, 403, 403, 403, 403, 403, 200, 403, 403, 403, 403, 403, 403, 403, 403,
                403, 403, 403, 403, 403,
            ],
        ),
    ];
    for (who, token, expected) in table {
        for ((method, path, body), want) in calls.iter().zip(expected) {
            let (office, catalogs) = (app.metric(OFFICE_OK).await, app.metric(CATALOG_READS).await);
            let answer = app.send_as(method, path, Some(token), body.as_ref()).await;
            assert_eq!(
                answer.status, want,
                "{who} {method} {path}: {:?}",
                answer.body
            );
            if want == 403 {
                assert_eq!(
                    answer.body["error"]["code"], "forbidden",
                    "{who} {method} {path}"
                );
                assert_eq!(
                    app.metric(OFFICE_OK).await,
                    office,
                    "{who} {method} {path} ran a statement"
                );
                assert_eq!(
                    app.metric(CATALOG_READS).await,
                    catalogs,
                    "{who} {method} {path} looked up"
                );
            }
        }
    }
    app.cleanup().await;
}

const CATALOG_READS: &str = r#"pos_lookups_total{kind="catalog",result="ok"}"#;

/// A sale naming a product the tenant's actor does not know makes it read
/// its catalog again (the product may have been added through another
/// instance), but not for every such sale: at most once a second, so a
/// till that keeps naming a wrong product does not turn each of its sales
/// into a MySQL read.
#[actix_web::test]
async fn unknown_products_read_the_catalog_again_at_most_once_a_second() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let known = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(known.status, 201, "{:?}", known.body);
    let before = app.metric(CATALOG_READS).await;
    let tries = 20;
    for _ in 0..tries {
        let unknown = app
            .post_json(&t.sales_path(0), &sale(t.products[0] + 1000, 1, "1.00"))
            .await;
        assert_eq!(unknown.status, 422, "{:?}", unknown.body);
    }
    let reads = app.metric(CATALOG_READS).await - before;
    // Twenty refusals take far less than ten seconds.
    assert!(
        (1.0..f64::from(tries) / 2.0).contains(&reads),
        "{reads} catalog reads for {tries} sales of an unknown product"
    );
    app.cleanup().await;
}
