//! pos on a 3-node MariaDB Galera cluster through HAProxy (TCP, one node
//! taking the writes): the node taking the writes is SIGKILLed under load,
//! HAProxy moves to the next, and every sale answered 201/200 is stored
//! exactly once, with API = summary = history and the ranking matching;
//! then the killed node rejoins (IST) and the next writer is killed.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;

use crate::events::assert_events_number_the_history;
use crate::support::child::pos_cli;
use crate::support::galera::Galera;
use crate::support::{amqp_url, eventually, listed, start_app, Options, TestApp, TestDb};

/// One value from a fresh connection to `url` (the node behind it may have
/// just died: a pooled connection could be one to it).
async fn scalar(url: &str, sql: &str) -> Option<String> {
    let mut conn = mysql_async::Conn::from_url(url.to_string()).await.ok()?;
    let v: Option<String> = conn.query_first(sql).await.ok()?;
    let _ = conn.disconnect().await;
    v
}

/// The history's rows; `None` when no node answered (never read as 0:
/// a count compared against must be a real one).
async fn rows(url: &str) -> Option<u64> {
    scalar(url, "SELECT COUNT(*) FROM sales_transactions")
        .await
        .and_then(|n| n.parse().ok())
}

async fn loadgen(app: &TestApp, exchange: &str) -> (i32, Value, String) {
    let keys = app.db.keys_file();
    let amqp = amqp_url();
    let (code, out, err) = pos_cli(
        &[],
        &[
            "loadgen",
            "--url",
            &app.base,
            "--keys-file",
            keys.to_str().expect("path"),
            "--rate",
            "200",
            "--duration",
            "8s",
            "--terminals",
            "10",
            // A tenth of the sales are refunded by their answered ids: a
            // refund stored against another product's sale would show an
            // answered id that named another row across the writer's kill
            // (Galera changes a session's auto-increment step with the
            // cluster's size; `store::sales::STEP_BEFORE`).
            "--refund-rate",
            "0.1",
            "--verify",
            // And nothing changes for the feed's consumers: each answered
            // sale and refund is published, once each, in seq order.
            "--verify-feed",
            &amqp,
            "--feed-exchange",
            exchange,
            "--json",
        ],
    )
    .await;
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

/// Every tenant's summary equals its history, the API equals both, every
/// idempotency key is stored once, and the ranking holds the same totals.
async fn assert_exactly_once(app: &TestApp, tenants: &[u64]) {
    let url = &app.db.url;
    // (Nothing stored twice: loadgen's --verify, asserted by the caller,
    // bounds every product's total by what was confirmed plus what had an
    // unknown outcome; a per-key count could not fail while the unique
    // index on (tenant, key) exists.)
    let mut ranked_expected = BTreeMap::new();
    for &t in tenants {
        let summary = scalar(
            url,
            &format!(
                "SELECT GROUP_CONCAT(CONCAT(product_id, ':', quantity_sold, '/', revenue) ORDER BY product_id) \
                 FROM product_sales_totals WHERE tenant_id = {t}"
            ),
        )
        .await
        .unwrap_or_default();
        let history = scalar(
            url,
            &format!(
                "SELECT GROUP_CONCAT(s ORDER BY p) FROM (SELECT product_id p, \
                 CONCAT(product_id, ':', SUM(quantity_sold), '/', SUM(quantity_sold * price_per_unit)) s \
                 FROM sales_transactions WHERE tenant_id = {t} GROUP BY product_id) h"
            ),
        )
        .await
        .unwrap_or_default();
        assert_eq!(summary, history, "tenant {t}: summary and history differ");
        let sales = app.get(&format!("/v1/tenants/{t}/sales")).await;
        let api: BTreeMap<u64, String> = listed(&sales.body["sales_per_product"])
            .into_iter()
            .map(|(_, p, q, r)| {
                ranked_expected.insert(p, (t, q, r.clone()));
                (p, format!("{p}:{q}/{r}"))
            })
            .collect();
        let api = api.into_values().collect::<Vec<_>>().join(",");
        assert_eq!(api, summary, "tenant {t}: the API differs from MySQL");
    }
    let ranked = eventually(Duration::from_secs(10), || async {
        let top = app.get("/v1/top-selling?limit=100").await;
        let got: BTreeMap<u64, (u64, u64, String)> = listed(&top.body["top_selling_products"])
            .into_iter()
            .map(|(t, p, q, r)| (p, (t, q, r)))
            .collect();
        got == ranked_expected
    })
    .await;
    assert!(ranked, "the ranking differs from the tenants' totals");
}

/// Load, and the writer node killed under it: returns the killed node.
async fn round(
    app: &TestApp,
    galera: &Galera,
    tenants: &[u64],
    name: &str,
    exchange: &str,
) -> usize {
    let url = app.db.url.clone();
    let before = rows(&url)
        .await
        .expect("the cluster answers before the round");
    let load = loadgen(app, exchange);
    let watch = async {
        let flowing = eventually(Duration::from_secs(30), || async {
            rows(&url).await.is_some_and(|n| n >= before + 200)
        })
        .await;
        assert!(flowing, "{name}: no sales before the kill");
        let writer = galera.writer().await.expect("a writer");
        galera.kill(writer).await;
        let resumed = eventually(Duration::from_secs(60), || async {
            rows(&url).await.is_some_and(|n| n >= before + 600)
        })
        .await;
        assert!(resumed, "{name}: sales did not resume on another node");
        writer
    };
    let ((code, report, err), killed) = tokio::join!(load, watch);
    assert_eq!(code, 0, "{name}: {err}\n{report}");
    assert!(err.contains("verify: ok"), "{name}: {err}");
    let now = galera.writer().await.expect("a writer after the kill");
    assert_ne!(
        now, killed,
        "{name}: HAProxy still sends to the killed node"
    );
    assert_exactly_once(app, tenants).await;
    for &t in tenants {
        assert_events_number_the_history(&app.db, t).await;
    }
    killed
}

/// A batch's answered ids name its stored rows, also once the cluster's
/// auto-increment step changed (3 nodes, then 2).
async fn assert_answered_ids_are_the_stored_rows(app: &TestApp, tenant: u64, when: &str) {
    let t = app.db.known_tenant(tenant).expect("made by the test");
    let batch: Value = (0..3)
        .map(|i| {
            serde_json::json!({"productID": t.products[i], "quantitySold": 1, "pricePerUnit": "1.00",
                "idempotencyKey": format!("ids-{when}-{i}").replace(' ', "-")})
        })
        .collect();
    let answer = app.post_json(&t.sales_path(0), &batch).await;
    assert_eq!(answer.status, 201, "{when}: {:?}", answer.body);
    for sale in answer.body["transactions"]
        .as_array()
        .expect("transactions")
    {
        let stored = scalar(
            &app.db.url,
            &format!(
                "SELECT idempotency_key FROM sales_transactions WHERE id = {}",
                sale["id"]
            ),
        )
        .await;
        assert_eq!(
            stored.as_deref(),
            sale["idempotencyKey"].as_str(),
            "{when}: answered id {} is not that sale's row",
            sale["id"]
        );
    }
}

#[actix_web::test]
async fn galera_nodes_killed_under_load_lose_and_double_no_answered_sale() {
    let galera = Galera::start().await;
    let db = TestDb::create_on(&galera.url()).await;
    // pos seed works with the cluster's auto-increment step (3).
    let (code, out, err) = pos_cli(
        &[("POS_DATABASE_URL", db.url.as_str())],
        &[
            "seed",
            "--tenants",
            "3",
            "--branches",
            "1",
            "--products",
            "2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(3 tenants"), "{out}");
    let mut tenants = Vec::new();
    for _ in 0..2 {
        tenants.push(db.tenant(2, 6).await.id);
    }
    // Writes stall while the cluster declares a dead node gone: the retry
    // window covers it. No prefer_socket in the URL: through HAProxy.
    let exchange = format!("pos.test.{}", uuid::Uuid::new_v4().simple());
    let options = Options {
        app_database_url: Some(format!("{}/{}", galera.url(), db.name)),
        extra: vec![
            ("POS_STORAGE_RETRY_MS".into(), "60000".into()),
            ("POS_AMQP_URL".into(), amqp_url()),
            ("POS_AMQP_EXCHANGE".into(), exchange.clone()),
        ],
        ..Options::default()
    };
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let app = start_app(db, prefix, options).await;
    app.wait_ready().await;

    let first = round(&app, &galera, &tenants, "first kill", &exchange).await;
    assert_answered_ids_are_the_stored_rows(&app, tenants[0], "after the first kill").await;
    galera.restart(first).await;
    let second = round(&app, &galera, &tenants, "second kill", &exchange).await;
    assert_ne!(first, second);
    let text = app.get_metrics().await;
    assert_eq!(
        crate::support::sample_of(&text, "pos_shard_lease_held"),
        Some(1.0),
        "{text}"
    );
    app.cleanup().await;
}
