use std::time::Duration;

use serde_json::{json, Value};

use crate::support::redis_server::RedisServer;
use crate::support::{eventually, sale, spawn_app, spawn_app_with, Options, TestApp};

/// The API's ranking as the mirror should hold it: (product id, score).
async fn api_scores(app: &TestApp, by: &str) -> Vec<(String, f64)> {
    let a = app.get(&format!("/v1/top-selling?by={by}&limit=100")).await;
    let mut v: Vec<(String, f64)> = a.body["top_selling_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let score = if by == "quantity" {
                p["quantitySold"].as_f64().unwrap()
            } else {
                p["totalSales"].as_str().unwrap().parse().unwrap()
            };
            (p["productID"].as_u64().unwrap().to_string(), score)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Whether both sets equal the API's ranking; every test that asks has
/// sold something, so an empty ranking never counts as a match.
async fn mirror_matches_api(app: &TestApp) -> bool {
    for by in ["quantity", "revenue"] {
        let mut redis = app.redis_set(by).await;
        redis.sort_by(|a, b| a.0.cmp(&b.0));
        let api = api_scores(app, by).await;
        if api.is_empty() || redis != api {
            return false;
        }
    }
    true
}

/// POSTs sales that must be stored.
async fn sell(app: &TestApp, path: &str, body: Value) {
    let a = app.post_json(path, &body).await;
    assert_eq!(a.status, 201, "{path}: {:?}", a.body);
}

#[actix_web::test]
async fn redis_sorted_sets_hold_the_same_numbers_as_the_api() {
    let app = spawn_app().await;
    let a = app.db.tenant(1, 3).await;
    let b = app.db.tenant(1, 2).await;
    sell(
        &app,
        &a.sales_path(0),
        json!([
            sale(a.products[0], 3, "1.10"),
            sale(a.products[2], 1, "9.99")
        ]),
    )
    .await;
    sell(
        &app,
        &b.sales_path(0),
        json!([sale(b.products[1], 7, "0.25")]),
    )
    .await;
    sell(&app, &a.sales_path(0), sale(a.products[0], 2, "1.10")).await;
    assert!(
        eventually(Duration::from_secs(3), || mirror_matches_api(&app)).await,
        "mirror differs from the API"
    );
    let quantity = app.redis_set("quantity").await;
    assert!(
        quantity.contains(&(a.products[0].to_string(), 5.0)),
        "{quantity:?}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn ingest_and_reads_survive_redis_going_away_and_the_mirror_is_refilled() {
    let mut redis = RedisServer::start().await;
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 2).await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 2, "1.00"))
            .await
            .status,
        201
    );
    assert!(eventually(Duration::from_secs(5), || mirror_matches_api(&app)).await);

    redis.stop();
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.ready_details().await["redis"] == "down"
        })
        .await
    );
    for _ in 0..5 {
        assert_eq!(
            app.post_json(&t.sales_path(0), &sale(t.products[1], 1, "3.00"))
                .await
                .status,
            201
        );
    }
    assert_eq!(
        app.get(&format!("/v1/tenants/{}/sales", t.id)).await.status,
        200
    );
    assert_eq!(app.get("/v1/top-selling").await.status, 200);
    assert_eq!(app.get("/ready").await.status, 200);

    redis.restart().await; // empty: nothing was persisted
    assert!(
        eventually(Duration::from_secs(15), || mirror_matches_api(&app)).await,
        "mirror was not refilled"
    );
    assert_eq!(app.redis_set("quantity").await.len(), 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_flushed_redis_is_refilled() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    sell(&app, &t.sales_path(0), sale(t.products[0], 4, "2.50")).await;
    assert!(eventually(Duration::from_secs(3), || mirror_matches_api(&app)).await);
    let client = crate::support::redis_client(&crate::support::redis_url()).await;
    let _: () =
        fred::prelude::KeysInterface::del(&client, format!("{}top_selling:quantity", app.prefix))
            .await
            .unwrap();
    let _: () =
        fred::prelude::KeysInterface::del(&client, format!("{}top_selling:revenue", app.prefix))
            .await
            .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || mirror_matches_api(&app)).await,
        "mirror was not refilled"
    );
    app.cleanup().await;
}

/// The mirror writes each product's total, never an increment: a score
/// someone changed in Redis is overwritten by the next sale of the product
/// (an increment would add to it, and a refill after a flush cannot tell
/// the two apart).
#[actix_web::test]
async fn a_wrong_score_in_redis_is_overwritten_by_the_next_total_not_added_to() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    sell(&app, &t.sales_path(0), sale(p, 4, "2.50")).await;
    assert!(eventually(Duration::from_secs(3), || mirror_matches_api(&app)).await);
    let client = crate::support::redis_client(&crate::support::redis_url()).await;
    for (set, wrong) in [("quantity", 1000.0), ("revenue", 5000.0)] {
        let _: i64 = fred::prelude::SortedSetsInterface::zadd(
            &client,
            format!("{}top_selling:{set}", app.prefix),
            None,
            None,
            false,
            false,
            (wrong, p.to_string()),
        )
        .await
        .expect("ZADD");
    }
    let _ = fred::prelude::ClientLike::quit(&client).await;
    sell(&app, &t.sales_path(0), sale(p, 1, "2.50")).await;
    let mirrored = eventually(Duration::from_secs(5), || async {
        app.redis_set("quantity").await == vec![(p.to_string(), 5.0)]
            && app.redis_set("revenue").await == vec![(p.to_string(), 12.5)]
    })
    .await;
    assert!(
        mirrored,
        "the mirror added to a wrong score: {:?} {:?}",
        app.redis_set("quantity").await,
        app.redis_set("revenue").await
    );
    assert!(mirror_matches_api(&app).await);
    app.cleanup().await;
}

/// Runs against the 3-master cluster `scripts/test` starts (it sets
/// POS_TEST_REDIS_CLUSTER_URL); without it the test fails rather than
/// passing silently, unless `POS_TEST_SKIP_CLUSTER=1`.
#[actix_web::test]
async fn the_mirror_works_on_redis_cluster() {
    let Ok(url) = std::env::var("POS_TEST_REDIS_CLUSTER_URL") else {
        assert!(
            crate::support::skipped_on_purpose("POS_TEST_SKIP_CLUSTER"),
            "POS_TEST_REDIS_CLUSTER_URL is not set (scripts/test sets it)"
        );
        return;
    };
    let app = spawn_app_with(Options {
        redis_url: Some(url),
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 3).await;
    sell(
        &app,
        &t.sales_path(0),
        json!([
            sale(t.products[0], 3, "1.00"),
            sale(t.products[1], 1, "7.00"),
            sale(t.products[2], 2, "0.50")
        ]),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || mirror_matches_api(&app)).await,
        "cluster mirror differs"
    );
    app.cleanup().await;
}

/// A Redis with `requirepass` (as compose runs it): `pos` uses the password
/// in `POS_REDIS_URL`, and never shows it.
#[actix_web::test]
async fn the_mirror_works_on_a_redis_with_a_password_that_is_never_shown() {
    let password = format!("pw{}", uuid::Uuid::new_v4().simple());
    let redis = RedisServer::start_with_password(&password).await;
    let app = spawn_app_with(Options {
        redis_url: Some(redis.url()),
        ..Default::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    sell(&app, &t.sales_path(0), sale(t.products[0], 3, "1.50")).await;
    assert!(eventually(Duration::from_secs(5), || mirror_matches_api(&app)).await);
    // Readiness is checked in the background once a second.
    let up = eventually(Duration::from_secs(5), || async {
        app.ready_details().await["redis"] == "up"
    })
    .await;
    assert!(up, "readiness never saw Redis up");
    let details = app.ready_details().await;
    let metrics = app.get_metrics().await;
    assert!(!details.to_string().contains(&password) && !metrics.contains(&password));
    // Without the password Redis refuses: the server really has one.
    let anonymous = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "DBSIZE"])
        .output()
        .expect("redis-cli runs");
    assert!(String::from_utf8_lossy(&anonymous.stdout).contains("NOAUTH"));
    app.cleanup().await;
}
