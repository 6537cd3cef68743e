//! The feed to RabbitMQ (SPEC §3): every event published to the topic
//! exchange, persistent, `message_id` = the event's id, routing key
//! `<tenantID>.<type>`, in `seq` order per tenant, at least once; a broker
//! away delays only the feed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::events::assert_events_number_the_history;
use crate::support::child::ChildServer;
use crate::support::ledger::{drive, Ledger};
use crate::support::peers::Prometheus;
use crate::support::proxy::Proxy;
use crate::support::rabbitmq_server::RabbitmqServer;
use crate::support::{
    amqp_url, eventually, sale, start_app, FeedConsumer, Options, Tenant, TestApp, TestDb,
};
use crate::webhooks::{hooks, Receiver};

const WAIT: Duration = Duration::from_secs(30);

/// An app publishing to `consumer`'s exchange through `amqp`, and
/// delivering webhooks to loopback.
async fn app_with_feed(db: TestDb, amqp: &str, consumer: &FeedConsumer) -> TestApp {
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let options = Options {
        extra: vec![
            ("POS_AMQP_URL".into(), amqp.into()),
            ("POS_AMQP_EXCHANGE".into(), consumer.exchange.clone()),
            ("POS_WEBHOOKS_ALLOW_PRIVATE".into(), "true".into()),
            ("POS_WEBHOOKS_ALLOW_HTTP".into(), "true".into()),
            // Loads and a test's own sales share the till's key: its rate
            // limit is not what these tests are about.
            ("POS_RATE_LIMIT_PER_KEY".into(), "100000".into()),
            ("POS_RATE_LIMIT_BURST".into(), "100000".into()),
        ],
        ..Options::default()
    };
    start_app(db, prefix, options).await
}

/// The seqs of `tenant`'s events `consumer` holds, in the order they came.
fn seqs(consumer: &FeedConsumer) -> Vec<u64> {
    consumer
        .events()
        .iter()
        .filter_map(|r| r.body["seq"].as_u64())
        .collect()
}

/// Every event committed for `t` (as MySQL numbers them) reached
/// `consumer`, each in `seq` order, and it equals the events API's.
pub(crate) async fn assert_feed_holds_the_history(
    consumer: &mut FeedConsumer,
    db: &TestDb,
    t: &Tenant,
) {
    let n = assert_events_number_the_history(db, t.id).await;
    let all = consumer.until(WAIT, |c| c.received.len() as u64 >= n).await;
    assert!(
        all,
        "the feed holds {} of {n} events",
        consumer.received.len()
    );
    assert_eq!(
        seqs(consumer),
        (1..=n).collect::<Vec<_>>(),
        "in seq order, each once"
    );
    let stored = db
        .scalar(&format!(
            "SELECT GROUP_CONCAT(id ORDER BY event_seq) FROM sales_transactions WHERE tenant_id = {}",
            t.id
        ))
        .await;
    let published: Vec<String> = consumer
        .events()
        .iter()
        .filter(|r| r.body["type"] == "sale.created")
        .map(|r| r.body["data"]["id"].to_string())
        .collect();
    assert_eq!(published.join(","), stored, "exactly the committed sales");
}

#[actix_web::test]
async fn every_event_is_published_persistent_with_its_id_and_routing_key_in_seq_order() {
    let db = TestDb::create().await;
    let t = db.tenant(2, 1).await;
    let mut consumer = FeedConsumer::bind(&format!("{}.#", t.id)).await;
    let app = app_with_feed(db, &amqp_url(), &consumer).await;
    let made = app
        .post_json(
            &format!("/v1/tenants/{}/products", t.id),
            &json!({"sku": "TEA", "name": "Tea"}),
        )
        .await;
    assert_eq!(made.status, 201);
    let one = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 2, "1.50"))
        .await;
    assert_eq!(one.status, 201);
    let batch = json!([
        sale(t.products[0], 1, "1.50"),
        sale(t.products[0], 3, "1.50")
    ]);
    assert_eq!(app.post_json(&t.sales_path(1), &batch).await.status, 201);
    let refund = app
        .post_json_as(
            &format!("/v1/tenants/{}/branches/{}/refunds", t.id, t.branches[0]),
            Some(&t.till),
            &json!({"saleID": one.body["id"], "quantity": 1}),
        )
        .await;
    assert_eq!(refund.status, 201);
    assert!(consumer.until(WAIT, |c| c.received.len() >= 5).await);
    let events = consumer.events();
    let keys: Vec<(&str, &str)> = events
        .iter()
        .map(|r| (r.message_id.as_str(), r.routing_key.as_str()))
        .collect();
    let t1 = t.id;
    let expected: Vec<(String, String)> = [
        "product.created",
        "sale.created",
        "sale.created",
        "sale.created",
        "refund.created",
    ]
    .iter()
    .enumerate()
    .map(|(i, kind)| (format!("evt_{t1}_{}", i + 1), format!("{t1}.{kind}")))
    .collect();
    let expected: Vec<(&str, &str)> = expected
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(keys, expected);
    assert!(events.iter().all(|r| r.persistent), "persistent messages");
    let pulled = app.get(&format!("/v1/tenants/{}/events", t.id)).await;
    let bodies: Vec<Value> = events.iter().map(|r| r.body.clone()).collect();
    assert_eq!(
        json!(bodies),
        pulled.body["events"],
        "the API's events, as pulled"
    );
    let delivered = eventually(WAIT, || async {
        app.metric(r#"pos_feed_delivered_total{sink="amqp"}"#).await == 5.0
            && app.metric(r#"pos_feed_lag_events{sink="amqp"}"#).await == 0.0
    })
    .await;
    assert!(delivered, "{}", app.get_metrics().await);
    consumer.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_broker_away_delays_only_the_feed_which_catches_up_when_it_returns() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 2).await;
    let mut consumer = FeedConsumer::bind(&format!("{}.#", t.id)).await;
    let broker = Proxy::start("127.0.0.1:5672".into()).await;
    let through = amqp_url().replace("127.0.0.1:5672", &format!("127.0.0.1:{}", broker.port));
    let app = app_with_feed(db, &through, &consumer).await;
    let prometheus = Prometheus::start_with(
        &[app.metrics_base.trim_start_matches("http://").to_string()],
        Some("docker/prometheus-alerts.yml"),
    )
    .await;
    assert_eq!(
        app.post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await
            .status,
        201
    );
    assert!(consumer.until(WAIT, |c| c.received.len() == 1).await);
    broker.cut();
    for i in 0..30 {
        let sold = app
            .post_json(&t.sales_path(0), &sale(t.products[i % 2], 1, "1.00"))
            .await;
        assert_eq!(sold.status, 201, "sales go on without the broker");
    }
    let behind = eventually(WAIT, || async {
        app.metric(r#"pos_feed_lag_events{sink="amqp"}"#).await == 30.0
            && app
                .metric(r#"pos_feed_delivery_failures_total{sink="amqp"}"#)
                .await
                > 0.0
    })
    .await;
    assert!(behind, "{}", app.get_metrics().await);
    let alerted = eventually(WAIT, || async {
        prometheus
            .alert_state("PosFeedStalled")
            .await
            .is_some_and(|s| s == "pending" || s == "firing")
    })
    .await;
    assert!(alerted, "the shipped alert rule did not fire");
    broker.restore();
    assert_feed_holds_the_history(&mut consumer, &app.db, &t).await;
    consumer.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn pos_killed_under_load_ends_with_a_feed_of_exactly_the_committed_sales_in_order() {
    let db = TestDb::create().await;
    let t = db.tenant(2, 4).await;
    let mut consumer = FeedConsumer::bind(&format!("{}.#", t.id)).await;
    let url = amqp_url();
    let exchange = consumer.exchange.clone();
    let settings = [
        ("POS_AMQP_URL", url.as_str()),
        ("POS_AMQP_EXCHANGE", exchange.as_str()),
    ];
    let mut server = ChildServer::start(&db.url, &settings).await;
    let ledger = Arc::new(Ledger::default());
    let load = actix_web::rt::spawn(drive(
        server.base.clone(),
        t.clone(),
        6,
        30,
        Duration::from_secs(180),
        ledger.clone(),
    ));
    let some = eventually(WAIT, || async { ledger.confirmed_count() >= 30 }).await;
    assert!(some);
    server.kill().await;
    server.restart().await;
    load.await.expect("load finished");
    assert_eq!(ledger.confirmed_count(), 180);
    assert_feed_holds_the_history(&mut consumer, &db, &t).await;
    consumer.close().await;
    server.kill().await;
    db.drop_database().await;
}

#[actix_web::test]
async fn a_broker_killed_and_restarted_under_load_ends_with_a_feed_of_exactly_the_committed_sales()
{
    let mut broker = RabbitmqServer::start().await;
    let db = TestDb::create().await;
    let t = db.tenant(2, 4).await;
    // A durable queue: it and the persistent messages in it outlive the
    // broker's SIGKILL (what the broker confirmed, it had written).
    let mut consumer = FeedConsumer::bind_durable(&broker.url(), &format!("{}.#", t.id)).await;
    let app = app_with_feed(db, &broker.url(), &consumer).await;
    let ledger = Arc::new(Ledger::default());
    let load = actix_web::rt::spawn(drive(
        app.base.clone(),
        t.clone(),
        4,
        60,
        Duration::from_secs(180),
        ledger.clone(),
    ));
    assert!(consumer.until(WAIT, |c| c.received.len() >= 20).await);
    broker.kill();
    for i in 0..20 {
        let sold = app
            .post_json(&t.sales_path(0), &sale(t.products[i % 4], 1, "1.00"))
            .await;
        assert_eq!(sold.status, 201, "sales go on while the broker is down");
    }
    broker.restart().await;
    consumer.reconnect().await;
    load.await.expect("load finished");
    assert_eq!(ledger.confirmed_count(), 240);
    assert!(
        app.metric(r#"pos_feed_delivery_failures_total{sink="amqp"}"#)
            .await
            > 0.0,
        "the feed noticed the broker was gone"
    );
    assert_feed_holds_the_history(&mut consumer, &app.db, &t).await;
    consumer.close().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn loadgen_verifies_the_feed_holds_exactly_its_confirmed_sales_and_refunds() {
    let db = TestDb::create().await;
    for _ in 0..2 {
        db.tenant(2, 3).await;
    }
    let exchange = format!("pos.test.{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let options = Options {
        extra: vec![
            ("POS_AMQP_URL".into(), amqp_url()),
            ("POS_AMQP_EXCHANGE".into(), exchange.clone()),
        ],
        ..Options::default()
    };
    let app = start_app(db, prefix, options).await;
    let keys = app.db.keys_file();
    let url = amqp_url();
    let run = |feed_exchange: String| {
        let (base, keys, url) = (app.base.clone(), keys.clone(), url.clone());
        async move {
            crate::support::child::pos_cli(
                &[],
                &[
                    "loadgen",
                    "--url",
                    &base,
                    "--keys-file",
                    keys.to_str().expect("path"),
                    "--rate",
                    "100",
                    "--duration",
                    "3s",
                    "--terminals",
                    "6",
                    "--refund-rate",
                    "0.2",
                    "--verify",
                    "--verify-feed",
                    &url,
                    "--feed-exchange",
                    &feed_exchange,
                ],
            )
            .await
        }
    };
    let (code, _, err) = run(exchange.clone()).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("verify: ok"), "{err}");
    // Bound to an exchange no sale goes to, the check finds the feed empty.
    let (code, _, err) = run(format!("{exchange}.elsewhere")).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("verify: feed: tenant"), "{err}");
    app.cleanup().await;
}

#[actix_web::test]
async fn an_event_that_cannot_be_read_stops_its_tenants_feed_loudly_until_it_is_fixed() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let mut consumer = FeedConsumer::bind(&format!("{}.#", t.id)).await;
    let broker = Proxy::start("127.0.0.1:5672".into()).await;
    let through = amqp_url().replace("127.0.0.1:5672", &format!("127.0.0.1:{}", broker.port));
    let app = app_with_feed(db, &through, &consumer).await;
    let receiver = Receiver::start().await;
    let hook = json!({"url": receiver.url, "types": ["sale.created"]});
    assert_eq!(app.post_json(&hooks(t.id), &hook).await.status, 201);
    // Both sinks hold back (broker cut, receiver failing) while event 2's
    // row is broken by hand.
    broker.cut();
    receiver.status.store(503, Ordering::SeqCst);
    for _ in 0..3 {
        let sold = app
            .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await;
        assert_eq!(sold.status, 201);
    }
    let broken = format!(
        "UPDATE sales_transactions SET quantity_sold = 0 WHERE tenant_id = {} AND event_seq = 2",
        t.id
    );
    app.db.exec(&broken).await;
    let events = format!("/v1/tenants/{}/events", t.id);
    let pulled = app.get(&events).await;
    assert_eq!(pulled.status, 500, "not a page with a gap: {}", pulled.body);
    assert!(pulled.body["error"].is_object(), "{}", pulled.body);
    let after = app.get(&format!("{events}?after=2")).await;
    assert_eq!(after.body["events"][0]["seq"], 3, "{}", after.body);
    let before = app.get(&format!("{events}?limit=1")).await;
    assert_eq!(
        before.status, 200,
        "a page that stops before it is whole: {}",
        before.body
    );
    assert_eq!(before.body["events"][0]["seq"], 1);
    let failures = |sink: &'static str| {
        let app = &app;
        async move {
            app.metric(&format!(
                r#"pos_feed_delivery_failures_total{{sink="{sink}"}}"#
            ))
            .await
        }
    };
    let delivered_seq =
        || async { app.get(&hooks(t.id)).await.body["webhooks"][0]["deliveredSeq"].clone() };
    broker.restore();
    receiver.status.store(200, Ordering::SeqCst);
    let first = eventually(WAIT, || async {
        delivered_seq().await == 1
            && app.metric(r#"pos_feed_delivered_total{sink="amqp"}"#).await == 1.0
    })
    .await;
    assert!(
        first,
        "each sink delivers event 1: {}",
        app.get_metrics().await
    );
    // From here nothing fails but the broken row: each sink keeps finding
    // it, counting a failure each time, and delivers nothing past it.
    let (amqp_before, hooks_before) = (failures("amqp").await, failures("webhooks").await);
    let stopped = eventually(WAIT, || async {
        failures("amqp").await > amqp_before && failures("webhooks").await > hooks_before
    })
    .await;
    assert!(stopped, "{}", app.get_metrics().await);
    assert_eq!(
        delivered_seq().await,
        1,
        "the webhook is still before event 2"
    );
    assert_eq!(
        app.metric(r#"pos_feed_delivered_total{sink="amqp"}"#).await,
        1.0,
        "RabbitMQ got nothing past event 1"
    );
    assert!(
        app.metric(r#"pos_feed_lag_events{sink="amqp"}"#).await >= 2.0,
        "the lag shows what waits"
    );
    assert!(consumer.until(WAIT, |c| !c.received.is_empty()).await);
    assert_eq!(seqs(&consumer), vec![1]);
    app.db
        .exec(&broken.replace("quantity_sold = 0", "quantity_sold = 1"))
        .await;
    let resumed = eventually(Duration::from_secs(60), || async {
        receiver.seqs() == vec![1, 2, 3]
    })
    .await;
    assert!(resumed, "{:?}", receiver.seqs());
    assert_feed_holds_the_history(&mut consumer, &app.db, &t).await;
    receiver.server.stop(false).await;
    consumer.close().await;
    app.cleanup().await;
}
