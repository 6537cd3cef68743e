//! Webhooks (SPEC §3): a back office registers endpoints; each receives
//! the tenant's events of its types, signed, in `seq` order, at least
//! once, retried while it fails; targets are https and public unless the
//! deployment allows otherwise.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{eventually, sale, spawn_app_with, Options, TestApp};

const WAIT: Duration = Duration::from_secs(30);

/// One request a receiver got: its event id header, signature header and body.
#[derive(Clone, Debug)]
struct Got {
    event_id: String,
    signature: String,
    body: String,
}

/// A webhook receiver on loopback answering `status` (settable).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<AtomicU16>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let server = HttpServer::new(move || {
            let (g, s) = (g.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    g.lock().expect("got").push(Got {
                        event_id: header("Pos-Event-Id"),
                        signature: header("Pos-Signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let code = actix_web::http::StatusCode::from_u16(s.load(Ordering::SeqCst))
                        .expect("a status");
                    HttpResponse::build(code).finish()
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("receiver binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/pos"),
            got,
            status,
            server: handle,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("got").clone()
    }

    /// The seqs received, each once, in the order they first came.
    fn seqs(&self) -> Vec<u64> {
        let mut seen = Vec::new();
        for g in self.got() {
            let seq = serde_json::from_str::<Value>(&g.body).expect("json")["seq"]
                .as_u64()
                .expect("seq");
            if !seen.contains(&seq) {
                seen.push(seq);
            }
        }
        seen
    }
}

/// An app whose webhooks may reach loopback over http (the receivers).
async fn open_app() -> TestApp {
    spawn_app_with(Options {
        extra: vec![
            ("POS_WEBHOOKS_ALLOW_PRIVATE".into(), "true".into()),
            ("POS_WEBHOOKS_ALLOW_HTTP".into(), "true".into()),
        ],
        ..Options::default()
    })
    .await
}

fn hooks(tenant: u64) -> String {
    format!("/v1/tenants/{tenant}/webhooks")
}

/// Checks `Pos-Signature: t=<unix>,v1=<hex>` against `secret` the way the
/// README tells a receiver to.
fn signed_by(secret: &str, got: &Got) -> bool {
    let Some((t, v1)) = got
        .signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{}", got.body).as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex == v1
}

#[actix_web::test]
async fn an_endpoint_receives_each_event_of_its_types_signed_and_in_seq_order() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let t = app.db.tenant(1, 1).await;
    let first = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(first.status, 201, "before the webhook: not sent to it");
    let body = json!({"url": receiver.url, "types": ["sale.created", "refund.created"]});
    let made = app.post_json(&hooks(t.id), &body).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let secret = made.body["secret"].as_str().expect("a secret").to_string();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    assert_eq!(made.body["state"], "active");
    assert_eq!(made.body["deliveredSeq"], 1);
    let id = made.body["id"].as_u64().expect("an id");
    let product = app
        .post_json(
            &format!("/v1/tenants/{}/products", t.id),
            &json!({"sku": "X", "name": "Not of its types"}),
        )
        .await;
    assert_eq!(product.status, 201);
    let mut answered = Vec::new();
    for q in 1..=3 {
        let sold = app
            .post_json(&t.sales_path(0), &sale(t.products[0], q, "1.00"))
            .await;
        assert_eq!(sold.status, 201);
        answered.push(sold.body);
    }
    let refund = app
        .post_json_as(
            &format!("/v1/tenants/{}/branches/{}/refunds", t.id, t.branches[0]),
            Some(&t.till),
            &json!({"saleID": answered[0]["id"], "quantity": 1}),
        )
        .await;
    assert_eq!(refund.status, 201);
    let all = eventually(WAIT, || async { receiver.seqs().len() >= 4 }).await;
    assert!(all, "{:?}", receiver.got());
    assert_eq!(
        receiver.seqs(),
        vec![3, 4, 5, 6],
        "its types, in seq order, each once"
    );
    let got = receiver.got();
    for g in &got {
        let event: Value = serde_json::from_str(&g.body).expect("json");
        assert_eq!(g.event_id, event["id"].as_str().expect("id"));
        assert!(signed_by(&secret, g), "{g:?}");
        assert!(!signed_by("whsec_other", g));
    }
    let event: Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(
        event["data"], answered[0],
        "the sale as the API answered it"
    );
    let listed = app.get(&hooks(t.id)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["webhooks"][0]["id"], id);
    assert!(
        listed.body["webhooks"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    let caught_up = eventually(WAIT, || async {
        app.get(&hooks(t.id)).await.body["webhooks"][0]["deliveredSeq"] == 6
    })
    .await;
    assert!(caught_up);
    let deliveries = app.get(&format!("{}/{id}/deliveries", hooks(t.id))).await;
    let rows = deliveries.body["deliveries"]
        .as_array()
        .expect("deliveries");
    assert_eq!(rows.len(), 4, "{}", deliveries.body);
    assert!(rows
        .iter()
        .all(|d| d["delivered"] == true && d["status"] == 200));
    assert_eq!(rows[0]["eventSeq"], 6, "newest first");
    receiver.server.stop(false).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_failing_receiver_is_retried_in_order_and_ends_with_every_event() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    receiver.status.store(503, Ordering::SeqCst);
    let t = app.db.tenant(1, 1).await;
    let body = json!({"url": receiver.url, "types": ["sale.created"]});
    let made = app.post_json(&hooks(t.id), &body).await;
    assert_eq!(made.status, 201);
    let id = made.body["id"].as_u64().expect("an id");
    for _ in 0..5 {
        let sold = app
            .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await;
        assert_eq!(sold.status, 201, "sales go on while the receiver fails");
    }
    let failing = eventually(WAIT, || async {
        receiver.got().len() >= 2
            && app.get(&hooks(t.id)).await.body["webhooks"][0]["state"] == "failing"
    })
    .await;
    assert!(failing, "{:?}", receiver.got());
    assert_eq!(
        receiver.seqs(),
        vec![1],
        "never the next before the first is delivered"
    );
    let deliveries = app.get(&format!("{}/{id}/deliveries", hooks(t.id))).await;
    let failed = &deliveries.body["deliveries"][0];
    assert_eq!(
        (&failed["delivered"], &failed["status"]),
        (&json!(false), &json!(503))
    );
    receiver.status.store(200, Ordering::SeqCst);
    let retried = app
        .post_json(
            &format!("{}/{id}/deliveries/{}/retry", hooks(t.id), failed["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.body["delivered"], true);
    let all = eventually(WAIT, || async { receiver.seqs().len() == 5 }).await;
    assert!(all, "{:?}", receiver.seqs());
    assert_eq!(receiver.seqs(), vec![1, 2, 3, 4, 5]);
    let active = eventually(WAIT, || async {
        let w = app.get(&hooks(t.id)).await.body["webhooks"][0].clone();
        w["state"] == "active" && w["deliveredSeq"] == 5
    })
    .await;
    assert!(active);
    assert!(
        app.metric(r#"pos_feed_delivery_failures_total{sink="webhooks"}"#)
            .await
            > 0.0
    );
    receiver.server.stop(false).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn targets_are_https_and_public_unless_allowed_and_only_a_back_office_manages_them() {
    let app = spawn_app_with(Options::default()).await;
    let t = app.db.tenant(1, 1).await;
    let other = app.db.tenant(1, 1).await;
    let types = json!(["sale.created"]);
    for (url, why) in [
        ("http://example.com/hook", "https"),
        ("https://127.0.0.1/hook", "private"),
        ("https://localhost/hook", "private"),
        ("https://[::1]/hook", "private"),
        ("https://169.254.169.254/latest", "private"),
        ("not a url", "absolute"),
    ] {
        let refused = app
            .post_json(&hooks(t.id), &json!({"url": url, "types": types}))
            .await;
        assert_eq!(refused.status, 422, "{url}: {}", refused.body);
        let problem = refused.body["error"]["fields"]["url"]
            .as_str()
            .unwrap_or("");
        assert!(problem.contains(why), "{url}: {problem}");
    }
    let no_types = json!({"url": "https://example.com/h", "types": ["sale.deleted"]});
    let refused = app.post_json(&hooks(t.id), &no_types).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body["error"]["fields"]["types"].is_string());
    let till = app.get_as(&hooks(t.id), Some(&t.till)).await;
    assert_eq!(till.status, 403);
    let foreign = app.get_as(&hooks(t.id), Some(&other.backoffice)).await;
    assert_eq!(foreign.status, 403);
    let office = Some(t.backoffice.as_str());
    let gone = app
        .send_as("DELETE", &format!("{}/99", hooks(t.id)), office, None)
        .await;
    assert_eq!(gone.status, 404);
    app.cleanup().await;

    let app = open_app().await;
    let t = app.db.tenant(1, 1).await;
    let body = json!({"url": "http://127.0.0.1:9/h", "types": types});
    for _ in 0..10 {
        assert_eq!(app.post_json(&hooks(t.id), &body).await.status, 201);
    }
    let full = app.post_json(&hooks(t.id), &body).await;
    assert_eq!(full.status, 409, "{}", full.body);
    let first = app.get(&hooks(t.id)).await.body["webhooks"][0]["id"].clone();
    let office = Some(t.backoffice.as_str());
    let path = format!("{}/{first}", hooks(t.id));
    assert_eq!(app.send_as("DELETE", &path, office, None).await.status, 204);
    assert_eq!(app.send_as("DELETE", &path, office, None).await.status, 404);
    let listed = app.get(&hooks(t.id)).await;
    assert_eq!(listed.body["webhooks"].as_array().map(Vec::len), Some(9));
    app.cleanup().await;
}
