//! Two shards (`POS_SHARD=0/2`, `1/2`) as `pos serve` processes on one
//! MariaDB and one Redis, behind HAProxy with the project's own config, and
//! a real Prometheus scraping both.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::child::{pos_cli, ChildServer};
use crate::support::ledger::{assert_exactly_once, drive, load_under_way, Ledger};
use crate::support::peers::{Haproxy, Prometheus};
use crate::support::{
    eventually, listed, page_status, post_status, redis_client, redis_url, web_session, Tenant,
    TestDb,
};

struct Shards {
    db: TestDb,
    tenants: Vec<Tenant>,
    /// `shards[i]` owns the tenants with `id % 2 == i`.
    shards: [ChildServer; 2],
    haproxy: Haproxy,
    prefix: String,
    client: awc::Client,
}

async fn start_shards(tenants: usize) -> Shards {
    start_shards_with(tenants, &[]).await
}

/// The shards with `extra` settings on both.
async fn start_shards_with(tenants: usize, extra: &[(&str, &str)]) -> Shards {
    let db = TestDb::create().await;
    let mut made = Vec::new();
    for _ in 0..tenants {
        made.push(db.tenant(2, 5).await);
    }
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let redis = redis_url();
    let shard = |i: u32| {
        let (url, redis, prefix) = (db.url.clone(), redis.clone(), prefix.clone());
        async move {
            let shard = format!("{i}/2");
            let mut env = vec![
                ("POS_SHARD", shard.as_str()),
                ("POS_REDIS_URL", redis.as_str()),
                ("POS_REDIS_PREFIX", prefix.as_str()),
                ("POS_SESSION_SECRET", crate::leases::SESSION_SECRET),
            ];
            env.extend_from_slice(extra);
            ChildServer::start(&url, &env).await
        }
    };
    let shards = [shard(0).await, shard(1).await];
    let haproxy = Haproxy::start(&shards[0].addr(), &shards[1].addr()).await;
    Shards {
        db,
        tenants: made,
        shards,
        haproxy,
        prefix,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish(),
    }
}

impl Shards {
    async fn get(&self, base: &str, path: &str) -> (u16, Value) {
        let mut res = self
            .client
            .get(format!("{base}{path}"))
            .bearer_auth(&self.db.operator)
            .send()
            .await
            .expect("answer");
        let body = res.json().limit(1 << 22).await.unwrap_or(Value::Null);
        (res.status().as_u16(), body)
    }

    /// Every product with sales, as the tenants' own reads show them.
    async fn sold(&self) -> BTreeSet<(u64, u64, u64, String)> {
        let mut all = BTreeSet::new();
        for t in &self.tenants {
            let (status, body) = self
                .get(&self.haproxy.base, &format!("/v1/tenants/{}/sales", t.id))
                .await;
            assert_eq!(status, 200);
            for p in body["sales_per_product"].as_array().expect("list") {
                all.insert((
                    t.id,
                    p["productID"].as_u64().expect("id"),
                    p["quantitySold"].as_u64().expect("quantity"),
                    p["totalSales"].as_str().expect("money").to_string(),
                ));
            }
        }
        all
    }

    async fn cleanup(self) {
        let redis = redis_client(&redis_url()).await;
        for set in ["quantity", "revenue", "products"] {
            let _: Result<(), _> = fred::prelude::KeysInterface::del(
                &redis,
                format!("{}top_selling:{set}", self.prefix),
            )
            .await;
        }
        let _ = fred::prelude::ClientLike::quit(&redis).await;
        drop(self.haproxy);
        drop(self.shards);
        self.db.drop_database().await;
    }
}

/// A top-selling answer as (tenant, product, quantity, total), in answer order.
fn ranked(body: &Value) -> Vec<(u64, u64, u64, String)> {
    listed(&body["top_selling_products"])
}

#[actix_web::test]
async fn loadgen_verifies_through_haproxy_and_both_shards_show_the_merged_top_sellers() {
    // Both shards publish the feed: each its own tenants' events.
    let (amqp, exchange) = (
        crate::support::amqp_url(),
        format!("pos.test.{}", uuid::Uuid::new_v4().simple()),
    );
    let feed = [
        ("POS_AMQP_URL", amqp.as_str()),
        ("POS_AMQP_EXCHANGE", exchange.as_str()),
    ];
    let s = start_shards_with(4, &feed).await;
    let keys = s.db.keys_file();
    let (code, out, err) = pos_cli(
        &[],
        &[
            "loadgen",
            "--url",
            &s.haproxy.base,
            "--keys-file",
            keys.to_str().expect("path"),
            "--rate",
            "80",
            "--duration",
            "3s",
            "--terminals",
            "8",
            "--refund-rate",
            "0.1",
            "--verify",
            "--verify-feed",
            &amqp,
            "--feed-exchange",
            &exchange,
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("verify: ok"), "{err}");
    // Each event published once: by its tenant's shard, not by both.
    let events = s.db.count("sales_transactions").await + s.db.count("refunds").await;
    let published = eventually(Duration::from_secs(10), || async {
        let mut sum = 0.0;
        for shard in &s.shards {
            sum += metric_of(
                &shard.metrics().await,
                r#"pos_feed_delivered_total{sink="amqp"}"#,
            );
        }
        sum == events as f64
    })
    .await;
    assert!(
        published,
        "the shards together published each of {events} events once"
    );
    let report: Value = serde_json::from_str(&out).expect("report");
    let sent = report["requests_sent"].as_u64().unwrap_or(0);
    assert!(sent > 0);
    assert_eq!(
        report["answers_by_status"],
        json!({"201": sent}),
        "{report}"
    );
    let owners: BTreeSet<u64> = s.tenants.iter().map(|t| t.id % 2).collect();
    assert_eq!(owners.len(), 2, "the tenants span both shards");

    // Either shard answers the whole merged ranking, in order (of what is
    // sold and not refunded).
    let sold = s.sold().await;
    for shard in &s.shards {
        let same = eventually(Duration::from_secs(10), || async {
            let (status, body) = s.get(&shard.base, "/v1/top-selling?limit=100").await;
            let list = ranked(&body);
            let net: Vec<(u64, u64)> = body["top_selling_products"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let n = |f: &str| p[f].as_u64().unwrap_or(0);
                    (n("netQuantity"), n("productID"))
                })
                .collect();
            let mut ordered = net.clone();
            ordered.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            status == 200 && net == ordered && list.iter().cloned().collect::<BTreeSet<_>>() == sold
        })
        .await;
        assert!(same, "{} does not show the merged ranking", shard.base);
    }
    let (_, by_revenue) = s
        .get(&s.shards[1].base, "/v1/top-selling?by=revenue&limit=3")
        .await;
    assert_eq!(ranked(&by_revenue).len(), 3);

    // Sent straight to the wrong shard: 421, nothing stored.
    let t = &s.tenants[0];
    let wrong = &s.shards[((t.id + 1) % 2) as usize];
    let rows = s.db.count("sales_transactions").await;
    let url = format!("{}{}", wrong.base, t.sales_path(0));
    let sale = json!({"productID": t.products[0], "quantitySold": 1, "pricePerUnit": "1.00"});
    let mut res = s
        .client
        .post(&url)
        .bearer_auth(&t.till)
        .send_json(&sale)
        .await
        .expect("answer");
    assert_eq!(res.status(), 421);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "misdirected");
    let (status, _) = s
        .get(&wrong.base, &format!("/v1/tenants/{}/sales", t.id))
        .await;
    assert_eq!(status, 421);
    assert_eq!(s.db.count("sales_transactions").await, rows);
    let right = &s.shards[(t.id % 2) as usize];
    let url = format!("{}{}", right.base, t.sales_path(0));
    assert_eq!(post_status(&s.client, &url, &t.till, &sale).await, 201);
    s.cleanup().await;
}

#[actix_web::test]
async fn a_shard_killed_under_load_stops_only_its_own_tenants_and_loses_nothing() {
    let mut s = start_shards(2).await;
    let (a, b) = (s.tenants[0].clone(), s.tenants[1].clone());
    let killed = (b.id % 2) as usize;
    assert_ne!(a.id % 2, b.id % 2);
    let (ledger_a, ledger_b) = (Arc::new(Ledger::default()), Arc::new(Ledger::default()));
    let deadline = Duration::from_secs(180);
    let load_a = actix_web::rt::spawn(drive(
        s.haproxy.base.clone(),
        a.clone(),
        4,
        60,
        deadline,
        ledger_a.clone(),
    ));
    let load_b = actix_web::rt::spawn(drive(
        s.haproxy.base.clone(),
        b.clone(),
        4,
        60,
        deadline,
        ledger_b.clone(),
    ));
    let going = eventually(Duration::from_secs(60), || async {
        ledger_a.confirmed_count() >= 20 && ledger_b.confirmed_count() >= 20
    })
    .await;
    assert!(going, "the load did not get going");

    s.shards[killed].kill().await;
    // Its tenants get HAProxy's 503 in the API's format; nothing is stored.
    let probe = json!({"productID": b.products[0], "quantitySold": 1, "pricePerUnit": "1.00"});
    let refused = eventually(Duration::from_secs(20), || async {
        let res = s
            .client
            .post(format!("{}{}", s.haproxy.base, b.sales_path(0)))
            .bearer_auth(&b.till)
            .send_json(&probe)
            .await;
        match res {
            Ok(mut r) if r.status() == 503 => {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                body["error"]["code"] == "unavailable"
            }
            _ => false,
        }
    })
    .await;
    assert!(refused, "the dead shard's tenant was not answered 503");
    // The other shard's tenant keeps being served meanwhile.
    let before = ledger_a.confirmed_count();
    let served = eventually(Duration::from_secs(30), || async {
        ledger_a.confirmed_count() >= (before + 20).min(4 * 60)
    })
    .await;
    assert!(served, "the live shard stopped serving");

    s.shards[killed].restart().await;
    load_a.await.expect("load a");
    load_b.await.expect("load b");
    for (t, ledger) in [(&a, &ledger_a), (&b, &ledger_b)] {
        assert_eq!(ledger.confirmed_count(), 4 * 60);
        let (status, sales) = s
            .get(&s.haproxy.base, &format!("/v1/tenants/{}/sales", t.id))
            .await;
        assert_eq!(status, 200);
        assert_exactly_once(&s.db, t, ledger, &sales).await;
    }
    s.cleanup().await;
}

/// The dashboard's expressions, for all instances.
fn dashboard_expressions() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grafana/dashboards/pos-overview.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").replace("$instance", ".*"))
        .collect()
}

#[actix_web::test]
async fn prometheus_scrapes_both_shards_and_every_dashboard_panel_shows_data() {
    let s = start_shards(2).await;
    let targets: Vec<String> = s.shards.iter().map(|c| c.metrics_addr()).collect();
    let prometheus = Prometheus::start(&targets).await;
    // Some of everything the panels show: sales, a refusal, reads.
    for t in &s.tenants {
        let url = format!("{}{}", s.haproxy.base, t.sales_path(0));
        for q in 1..=3 {
            let sale =
                json!({"productID": t.products[0], "quantitySold": q, "pricePerUnit": "2.00"});
            assert_eq!(post_status(&s.client, &url, &t.till, &sale).await, 201);
        }
        let bad = json!({"productID": t.products[0], "quantitySold": 0, "pricePerUnit": "2.00"});
        assert_eq!(post_status(&s.client, &url, &t.till, &bad).await, 422);
        s.get(&s.haproxy.base, &format!("/v1/tenants/{}/sales", t.id))
            .await;
    }
    s.get(&s.haproxy.base, "/v1/top-selling").await;

    let both = eventually(Duration::from_secs(30), || async {
        prometheus
            .query("sum(up{job=\"pos\"})")
            .await
            .and_then(|r| r.first()?["value"][1].as_str().map(|v| v == "2"))
            .unwrap_or(false)
    })
    .await;
    assert!(both, "Prometheus does not see both shards up");
    let instances = prometheus
        .query("count by (instance) (pos_http_requests_total)")
        .await
        .unwrap_or_default();
    assert_eq!(instances.len(), 2, "{instances:?}");
    for expr in dashboard_expressions() {
        // rate() needs two scrapes of a counter: wait for the condition.
        let shows = eventually(Duration::from_secs(30), || async {
            prometheus.query(&expr).await.is_some_and(|r| !r.is_empty())
        })
        .await;
        assert!(shows, "this panel shows nothing: {expr}");
    }
    drop(prometheus);
    s.cleanup().await;
}

#[actix_web::test]
async fn with_several_shards_top_selling_comes_from_redis_and_is_503_without_it() {
    let mut redis = crate::support::redis_server::RedisServer::start().await;
    let app = crate::support::spawn_app_with(crate::support::Options {
        redis_url: Some(redis.url()),
        extra: vec![
            ("POS_SHARD".into(), "0/2".into()),
            (
                "POS_SESSION_SECRET".into(),
                crate::leases::SESSION_SECRET.into(),
            ),
        ],
        ..Default::default()
    })
    .await;
    // Tenant ids start at 1 in a fresh database: the second one is shard 0's.
    let _other = app.db.tenant(1, 1).await;
    let t = app.db.tenant(1, 1).await;
    assert_eq!(t.id % 2, 0);
    let sale = json!({"productID": t.products[0], "quantitySold": 4, "pricePerUnit": "1.25"});
    assert_eq!(app.post_json(&t.sales_path(0), &sale).await.status, 201);
    let listed = eventually(Duration::from_secs(10), || async {
        let top = app.get("/v1/top-selling").await;
        top.status == 200 && top.body["top_selling_products"][0]["quantitySold"] == 4
    })
    .await;
    assert!(listed, "the merged ranking never showed the sale");
    redis.stop();
    let refused = eventually(Duration::from_secs(10), || async {
        let top = app.get("/v1/top-selling").await;
        top.status == 503 && top.body["error"]["code"] == "unavailable" && top.retry_after.is_some()
    })
    .await;
    assert!(refused, "top-selling answered without Redis");
    // Sales and the tenant's own reads do not need Redis.
    assert_eq!(app.post_json(&t.sales_path(0), &sale).await.status, 201);
    let own = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(own.body["sales_per_product"][0]["quantitySold"], 8);
    redis.restart().await;
    app.cleanup().await;
}

/// A client connecting from `source` (any 127.x.y.z is this machine).
fn client_from(source: &str) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().local_address(source.parse().expect("an address")))
        .timeout(Duration::from_secs(10))
        .finish()
}

#[actix_web::test]
async fn behind_haproxy_a_key_guesser_is_limited_by_its_own_address_not_the_proxys() {
    // HAProxy connects to the shards from 127.0.0.1 and says who its client
    // was (option forwardfor); the shards believe that from 127.0.0.1 only.
    let s = start_shards_with(
        1,
        &[
            ("POS_TRUSTED_PROXIES", "127.0.0.1"),
            ("POS_AUTH_FAILURES_PER_ADDRESS", "1"),
        ],
    )
    .await;
    let t = &s.tenants[0];
    let url = format!("{}{}", s.haproxy.base, t.sales_path(0));
    let sale = json!({"productID": t.products[0], "quantitySold": 1, "pricePerUnit": "1.00"});
    let (guesser, till) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    let mut statuses = Vec::new();
    for i in 0..20 {
        let guess = format!("pos_guess{i}_{}", "A".repeat(43));
        // What the guesser writes in the header itself proves nothing.
        let res = guesser
            .post(&url)
            .bearer_auth(&guess)
            .insert_header(("X-Forwarded-For", format!("198.51.100.{i}")))
            .send_json(&sale)
            .await
            .expect("answer");
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // The guesser's own address is turned away even with a valid key (asked
    // first: its block lasts about a second)...
    let fresh = || {
        s.db.key(pos::domain::Scope::Till {
            tenant: crate::support::tenant_id(t.id),
            branch: None,
        })
    };
    let key = fresh().await;
    assert_eq!(post_status(&guesser, &url, &key, &sale).await, 429);
    // ...while a till behind the same proxy, on its first request with a
    // key no shard has cached yet, is not.
    let key = fresh().await;
    assert_eq!(post_status(&till, &url, &key, &sale).await, 201);
    assert_eq!(s.db.count("sales_transactions").await, 1);
    s.cleanup().await;
}

impl Shards {
    /// POSTs one sale through HAProxy with the tenant's till key.
    async fn sell(&self, t: &Tenant, product: u64, quantity: u64) -> u16 {
        let url = format!("{}{}", self.haproxy.base, t.sales_path(0));
        let sale = json!({"productID": product, "quantitySold": quantity, "pricePerUnit": "1.00"});
        post_status(&self.client, &url, &t.till, &sale).await
    }

    /// Whether the merged top sellers (through HAProxy) hold exactly what
    /// the tenants sold.
    async fn merged_equals_sold(&self) -> bool {
        let sold = self.sold().await;
        let (status, body) = self
            .get(&self.haproxy.base, "/v1/top-selling?limit=100")
            .await;
        status == 200 && ranked(&body).into_iter().collect::<BTreeSet<_>>() == sold
    }
}

/// Redis loses part of the merged view while both shards stay connected
/// and sales go on: members of each shard's products, hash entries, then
/// whole keys. The shards differ in size (one has five times the other's
/// products), so counting members cannot tell; each shard audits its own
/// products and writes again what is missing.
#[actix_web::test]
async fn each_shard_repairs_what_redis_lost_of_its_own_products_under_load() {
    let s = start_shards(4).await;
    let (big, small): (Vec<&Tenant>, Vec<&Tenant>) = s.tenants.iter().partition(|t| t.id % 2 == 0);
    for t in &big {
        for p in &t.products {
            assert_eq!(s.sell(t, *p, 2).await, 201);
        }
    }
    for t in &small {
        assert_eq!(s.sell(t, t.products[0], 3).await, 201);
    }
    assert!(
        eventually(Duration::from_secs(10), || s.merged_equals_sold()).await,
        "the merged view never matched"
    );
    // Load on one product of each shard keeps both mirrors busy throughout.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, base, stop) = (s.client.clone(), s.haproxy.base.clone(), stop.clone());
        let hot: Vec<(String, String, u64)> = [big[0], small[0]]
            .iter()
            .map(|t| {
                (
                    format!("{base}{}", t.sales_path(0)),
                    t.till.clone(),
                    t.products[0],
                )
            })
            .collect();
        actix_web::rt::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (url, till, p) in &hot {
                    let sale = json!({"productID": p, "quantitySold": 1, "pricePerUnit": "1.00"});
                    post_status(&client, url, till, &sale).await;
                }
            }
        })
    };
    let redis = redis_client(&redis_url()).await;
    let key = |set: &str| format!("{}top_selling:{set}", s.prefix);
    // Members of products that do not sell any more, of both shards.
    let quiet: Vec<String> = [big[1].products[3], big[0].products[4], small[1].products[0]]
        .iter()
        .map(u64::to_string)
        .collect();
    for set in ["quantity", "revenue"] {
        let _: u64 = fred::prelude::SortedSetsInterface::zrem(&redis, key(set), quiet.clone())
            .await
            .expect("zrem");
    }
    let gone = vec![
        big[1].products[1].to_string(),
        small[1].products[0].to_string(),
    ];
    let _: u64 = fred::prelude::HashesInterface::hdel(&redis, key("products"), gone)
        .await
        .expect("hdel");
    assert!(
        eventually(Duration::from_secs(15), || s.merged_equals_sold()).await,
        "lost members and hash entries were not written again"
    );
    // Whole keys, as a flush or an eviction drops them.
    for set in ["quantity", "revenue", "products"] {
        let _: u64 = fred::prelude::KeysInterface::del(&redis, key(set))
            .await
            .expect("del");
    }
    assert!(
        eventually(Duration::from_secs(15), || s.merged_equals_sold()).await,
        "lost keys were not written again"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.expect("load ends");
    assert!(
        eventually(Duration::from_secs(10), || s.merged_equals_sold()).await,
        "the merged view does not match after the load"
    );
    let _ = fred::prelude::ClientLike::quit(&redis).await;
    s.cleanup().await;
}

/// With shards, the merged top sellers come from Redis, written by each
/// shard every 25 ms: a sale answered 250 ms before (the bound the README
/// states for shards) is in them. The test waits that long on purpose:
/// the bound is what it tests.
#[actix_web::test]
async fn the_merged_top_sellers_hold_every_sale_answered_250_ms_before() {
    let s = start_shards(2).await;
    for round in 1..=5u64 {
        for t in &s.tenants {
            assert_eq!(s.sell(t, t.products[0], round).await, 201);
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        let sold = s.sold().await;
        let (status, body) = s.get(&s.haproxy.base, "/v1/top-selling?limit=100").await;
        assert_eq!(status, 200);
        assert_eq!(
            ranked(&body).into_iter().collect::<BTreeSet<_>>(),
            sold,
            "round {round}"
        );
    }
    s.cleanup().await;
}

impl Shards {
    /// Any method through `base` with the operator's key (or `token`).
    async fn send(
        &self,
        method: &str,
        url: String,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let req = self
            .client
            .request(method.parse().expect("a method"), url)
            .bearer_auth(token.unwrap_or(&self.db.operator));
        let mut res = req.send_json(&body).await.expect("answer");
        let body = res.json().limit(1 << 22).await.unwrap_or(Value::Null);
        (res.status().as_u16(), body)
    }
}

/// A tenant made through one shard is served by the other, its owner, once
/// that owner's memory of the id as unknown has expired (at most 1 s), and
/// its catalog changes go to the owner through HAProxy's tenant rule, the
/// `PATCH /v1/tenants/{t}` path included.
#[actix_web::test]
async fn a_tenant_created_through_one_shard_sells_on_its_owner_through_haproxy() {
    let s = start_shards(0).await;
    let next: u64 =
        s.db.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM tenants")
            .await
            .parse()
            .expect("an id");
    let (owner, other) = ((next % 2) as usize, ((next + 1) % 2) as usize);
    let h = &s.haproxy.base;
    // The owner is asked first, and remembers the id as unknown.
    let (status, _) = s.get(h, &format!("/v1/tenants/{next}/catalog")).await;
    assert_eq!(status, 404);
    let (status, made) = s
        .send(
            "POST",
            format!("{}/v1/tenants", s.shards[other].base),
            None,
            json!({"name": "Nord"}),
        )
        .await;
    assert_eq!((status, made["id"].as_u64()), (201, Some(next)), "{made:?}");
    let branch = json!({"code": "MAIN", "name": "Main"});
    let url = format!("{h}/v1/tenants/{next}/branches");
    let served = eventually(Duration::from_secs(5), || async {
        s.send("POST", url.clone(), None, branch.clone()).await.0 == 201
    })
    .await;
    assert!(served, "the owner never found the new tenant");
    let (_, b) = s.send("POST", url.clone(), None, branch).await;
    let (status, p) = s
        .send(
            "POST",
            format!("{h}/v1/tenants/{next}/products"),
            None,
            json!({"sku": "TEA", "name": "Tea"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, key) = s
        .send(
            "POST",
            format!("{h}/v1/tenants/{next}/keys"),
            None,
            json!({"role": "till", "label": "till"}),
        )
        .await;
    assert_eq!(status, 201);
    let till = key["token"].as_str().expect("token").to_string();
    let sale = json!({"productID": p["id"], "quantitySold": 2, "pricePerUnit": "3.00"});
    let sales = format!(
        "{h}/v1/tenants/{next}/branches/{}/sales-transactions",
        b["id"]
    );
    let (status, _) = s
        .send("POST", sales.clone(), Some(&till), sale.clone())
        .await;
    assert_eq!(status, 201);
    // A rename through HAProxy reaches the owner (not a 421 from the other shard).
    let (status, renamed) = s
        .send(
            "PATCH",
            format!("{h}/v1/tenants/{next}"),
            None,
            json!({"suspended": true}),
        )
        .await;
    assert_eq!(
        (status, renamed["suspended"].as_bool()),
        (200, Some(true)),
        "{renamed:?}"
    );
    let (status, refused) = s.send("POST", sales, Some(&till), sale).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("tenant_suspended"))
    );
    assert_eq!(s.db.count("sales_transactions").await, 1);
    let direct = s.shards[other]
        .status(&format!("/v1/tenants/{next}/catalog"), Some(&s.db.operator))
        .await;
    assert_eq!(
        direct,
        Some(421),
        "the other shard refuses the tenant's routes"
    );
    let owned = s.shards[owner]
        .status(&format!("/v1/tenants/{next}/catalog"), Some(&s.db.operator))
        .await;
    assert_eq!(owned, Some(200));
    // Readiness is the proxy's and the orchestrator's, not the clients'.
    let (status, body) = s.get(h, "/ready").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    s.cleanup().await;
}

#[actix_web::test]
async fn web_pages_reach_their_tenants_owner_through_haproxy_and_a_session_is_valid_on_every_shard()
{
    let s = start_shards(2).await;
    let h = &s.haproxy.base;
    for t in &s.tenants {
        let (owner, other) = ((t.id % 2) as usize, ((t.id + 1) % 2) as usize);
        // Signed in on the shard that does not own the tenant...
        let cookie = web_session(&s.shards[other].base, &t.backoffice).await;
        let overview = format!("/app/tenants/{}/", t.id);
        // ...the session opens the tenant's pages on its owner, and
        // through HAProxy, which routes them there.
        assert_eq!(
            page_status(&format!("{}{overview}", s.shards[owner].base), &cookie).await,
            200
        );
        assert_eq!(page_status(&format!("{h}{overview}"), &cookie).await, 200);
        assert_eq!(
            page_status(&format!("{h}/app/tenants/{}/products", t.id), &cookie).await,
            200
        );
        // The other shard does not serve them: 421, as the API.
        assert_eq!(
            page_status(&format!("{}{overview}", s.shards[other].base), &cookie).await,
            421
        );
    }
    // Sign-in and the operator's pages work through any shard.
    let operator = web_session(h, &s.db.operator).await;
    for shard in &s.shards {
        assert_eq!(
            page_status(&format!("{}/app/operator", shard.base), &operator).await,
            200
        );
    }
    assert_eq!(
        page_status(&format!("{h}/app/operator"), &operator).await,
        200
    );
    s.cleanup().await;
}

#[actix_web::test]
async fn pos_serve_refuses_several_shards_without_a_session_secret() {
    let (code, _, err) = pos_cli(
        &[
            ("POS_SHARD", "1/2"),
            ("POS_DATABASE_URL", "mysql://root@127.0.0.1:1/none"),
        ],
        &["serve"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("POS_SESSION_SECRET"), "{err}");
}

/// The value of one sample (`name{labels}` exactly as exposed) in a
/// metrics text; 0 when absent.
fn metric_of(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn a_hot_standby_takes_over_a_killed_shard_and_no_acknowledged_sale_is_lost_or_doubled() {
    let db = TestDb::create().await;
    let made = [db.tenant(2, 5).await, db.tenant(2, 5).await];
    let tenant = made
        .iter()
        .find(|t| t.id % 2 == 0)
        .cloned()
        .expect("a tenant of shard 0");
    let (prefix, redis) = (
        format!("{{t{}}}:", uuid::Uuid::new_v4().simple()),
        redis_url(),
    );
    let env = |shard: &'static str| {
        vec![
            ("POS_SHARD", shard),
            ("POS_REDIS_URL", redis.as_str()),
            ("POS_REDIS_PREFIX", prefix.as_str()),
            ("POS_SESSION_SECRET", crate::leases::SESSION_SECRET),
            ("POS_SHARD_LEASE_SECS", "3"),
        ]
    };
    let mut active = ChildServer::start(&db.url, &env("0/2")).await;
    let other = ChildServer::start(&db.url, &env("1/2")).await;
    let standby = ChildServer::spawn(&db.url, &env("0/2"));
    let waiting = standby.until_waiting_for_lease().await;
    assert!(
        waiting,
        "the standby waits on the lease: {}",
        standby.log_text()
    );
    let haproxy = Haproxy::start_with_standby(&active.addr(), &standby.addr(), &other.addr()).await;
    let (load, ledger) = load_under_way(&haproxy.base, &tenant).await;
    assert_eq!(standby.status("/ready", None).await, Some(503));

    active.kill().await;
    let took_over = eventually(Duration::from_secs(30), || async {
        standby.status("/ready", None).await == Some(200)
    })
    .await;
    assert!(
        took_over,
        "the standby did not take over: {}",
        standby.log_text()
    );
    load.await.expect("the load");
    assert_eq!(ledger.confirmed_count(), 4 * 60);
    let mut read = awc::Client::default()
        .get(format!("{}/v1/tenants/{}/sales", haproxy.base, tenant.id))
        .bearer_auth(&db.operator)
        .send()
        .await
        .expect("an answer");
    assert_eq!(read.status(), 200);
    let sales: Value = read.json().limit(1 << 22).await.expect("json");
    assert_exactly_once(&db, &tenant, &ledger, &sales).await;
    drop((haproxy, standby, other));
    db.drop_database().await;
}
