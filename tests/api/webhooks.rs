//! Webhooks (SPEC §3): a back office registers endpoints; each receives
//! the tenant's events of its types, signed, in `seq` order, at least
//! once, retried while it fails; targets are https and public unless the
//! deployment allows otherwise.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
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
    /// What the receiver answered.
    status: u16,
}

impl Got {
    fn seq(&self) -> u64 {
        serde_json::from_str::<Value>(&self.body).expect("json")["seq"]
            .as_u64()
            .expect("seq")
    }
}

/// A webhook receiver on loopback answering `status` (settable).
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Got>>>,
    pub(crate) status: Arc<AtomicU16>,
    /// How long it takes to answer (ms).
    delay: Arc<AtomicU16>,
    /// An event it answers 503 whatever `status` says (0: none).
    refused_seq: Arc<AtomicU64>,
    pub(crate) server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        Receiver::listen(0, Arc::default()).await
    }

    /// Listens on `port` (0: any), adding what it gets to `got`.
    async fn listen(port: u16, got: Arc<Mutex<Vec<Got>>>) -> Receiver {
        let status = Arc::new(AtomicU16::new(200));
        let delay = Arc::new(AtomicU16::new(0));
        let refused_seq = Arc::new(AtomicU64::new(0));
        let (g, s, d, r) = (
            got.clone(),
            status.clone(),
            delay.clone(),
            refused_seq.clone(),
        );
        let server = HttpServer::new(move || {
            let (g, s, d, r) = (g.clone(), s.clone(), d.clone(), r.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (g, s, d, r) = (g.clone(), s.clone(), d.clone(), r.clone());
                async move {
                    let wait = u64::from(d.load(Ordering::SeqCst));
                    actix_web::rt::time::sleep(Duration::from_millis(wait)).await;
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let mut got = Got {
                        event_id: header("Pos-Event-Id"),
                        signature: header("Pos-Signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                        status: 0,
                    };
                    let refused = got.seq() == r.load(Ordering::SeqCst);
                    let code = if refused {
                        503
                    } else {
                        s.load(Ordering::SeqCst)
                    };
                    got.status = code;
                    g.lock().expect("got").push(got);
                    let code = actix_web::http::StatusCode::from_u16(code).expect("a status");
                    HttpResponse::build(code).finish()
                }
            }))
        })
        .workers(2)
        .bind(("127.0.0.1", port))
        .expect("receiver binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/pos"),
            got,
            status,
            delay,
            refused_seq,
            server: handle,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("got").clone()
    }

    /// The seqs received, each once, in the order they first came.
    pub(crate) fn seqs(&self) -> Vec<u64> {
        self.seqs_of(self.got())
    }

    /// The seqs received and answered 2xx, each once, in the order they
    /// were first accepted.
    pub(crate) fn accepted_seqs(&self) -> Vec<u64> {
        let accepted = self
            .got()
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .collect();
        self.seqs_of(accepted)
    }

    fn seqs_of(&self, got: Vec<Got>) -> Vec<u64> {
        let mut seen = std::collections::HashSet::new();
        got.iter()
            .map(Got::seq)
            .filter(|seq| seen.insert(*seq))
            .collect()
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

pub(crate) fn hooks(tenant: u64) -> String {
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
    assert!(retried.body["id"].as_u64().unwrap_or(0) > failed["id"].as_u64().unwrap_or(0));
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

/// The README's Python receiver, run as it is (with its secret and a free
/// port filled in), accepts a real delivery and prints the event's id.
#[actix_web::test]
async fn the_readmes_python_receiver_accepts_a_real_signed_delivery() {
    use tokio::io::AsyncBufReadExt;

    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let start = readme
        .find("```python\nimport hashlib, hmac")
        .expect("the README shows a Python receiver");
    let code = &readme[start + "```python\n".len()..];
    let code = &code[..code.find("```").expect("the block ends")];
    let app = open_app().await;
    let t = app.db.tenant(1, 1).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let body = json!({"url": format!("http://127.0.0.1:{port}/"), "types": ["sale.created"]});
    let made = app.post_json(&hooks(t.id), &body).await;
    assert_eq!(made.status, 201);
    let secret = made.body["secret"].as_str().expect("secret");
    let code = code
        .replace("b\"whsec_...\"", &format!("b\"{secret}\""))
        .replace("(\"0.0.0.0\", 9000)", &format!("(\"127.0.0.1\", {port})"));
    let mut python = tokio::process::Command::new("python3")
        .args(["-u", "-c", &code])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = tokio::io::BufReader::new(python.stdout.take().expect("stdout")).lines();
    let up = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "the receiver never listened");
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(sold.status, 201);
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the receiver printed in time")
        .expect("reads")
        .expect("a line");
    assert_eq!(line, format!("evt_{}_1", t.id));
    let delivered = eventually(WAIT, || async {
        app.get(&hooks(t.id)).await.body["webhooks"][0]["deliveredSeq"] == 1
    })
    .await;
    assert!(delivered, "the receiver's 204 counts as delivered");
    let _ = python.kill().await;
    app.cleanup().await;
}

/// A page of the web back office as text (status, body).
async fn web_page(
    app: &TestApp,
    cookie: &str,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let client = crate::support::plain_client();
    let url = format!("{}{path}", app.base);
    let req = if method == "GET" {
        client.get(url)
    } else {
        client
            .post(url)
            .insert_header(("Origin", app.base.as_str()))
    }
    .insert_header(("Cookie", cookie));
    let mut res = if method == "GET" {
        req.send().await
    } else {
        req.send_form(&form).await
    }
    .expect("the page answers");
    let body = res.body().limit(1 << 20).await.expect("a body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn the_back_office_adds_a_webhook_sees_its_deliveries_and_sends_a_failed_one_again() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let t = app.db.tenant(1, 1).await;
    let cookie = crate::support::web_session(&app.base, &t.backoffice).await;
    let page = format!("/app/tenants/{}/webhooks", t.id);
    let (status, body) = web_page(&app, &cookie, "GET", &page, &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("No webhooks yet"), "{body}");
    let form = [
        ("url", receiver.url.as_str()),
        ("types", "sale.created"),
        ("types", "refund.created"),
    ];
    let (status, body) = web_page(&app, &cookie, "POST", &page, &form).await;
    assert_eq!(status, 200, "{body}");
    let start = body.find("whsec_").expect("the secret is shown once");
    let secret: String = body[start..].chars().take_while(|c| *c != '<').collect();
    let listed = app.get(&hooks(t.id)).await;
    assert_eq!(
        listed.body["webhooks"][0]["types"],
        json!(["sale.created", "refund.created"])
    );
    receiver.status.store(503, Ordering::SeqCst);
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(sold.status, 201);
    let failed = eventually(WAIT, || async {
        web_page(&app, &cookie, "GET", &page, &[])
            .await
            .1
            .contains("Send again")
    })
    .await;
    assert!(
        failed,
        "the failed delivery is shown with a way to send it again"
    );
    let (_, body) = web_page(&app, &cookie, "GET", &page, &[]).await;
    assert!(
        body.contains("Failing, retrying") && body.contains(&format!("evt_{}_1", t.id)),
        "{body}"
    );
    assert!(
        !body.contains(&secret),
        "the secret is shown only when made"
    );
    let at = body.find("/deliveries/").expect("a retry form");
    let action_start = body[..at].rfind("action=\"").expect("its action") + "action=\"".len();
    let action_end = action_start + body[action_start..].find('"').expect("action ends");
    let action = body[action_start..action_end].to_string();
    receiver.status.store(200, Ordering::SeqCst);
    let (status, _) = web_page(&app, &cookie, "POST", &action, &[]).await;
    assert_eq!(status, 303);
    let got = receiver.got();
    assert!(
        got.iter().any(|g| signed_by(&secret, g)),
        "signed with the secret the page showed"
    );
    let (_, body) = web_page(&app, &cookie, "GET", &format!("{page}?done=retried"), &[]).await;
    assert!(
        body.contains("Sent again, and delivered") && body.contains("Delivered"),
        "{body}"
    );
    let id = listed.body["webhooks"][0]["id"].clone();
    let (status, _) = web_page(&app, &cookie, "POST", &format!("{page}/{id}/delete"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(app.get(&hooks(t.id)).await.body["webhooks"], json!([]));
    receiver.server.stop(false).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn one_retry_of_an_endpoint_runs_at_a_time() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    receiver.status.store(503, Ordering::SeqCst);
    let t = app.db.tenant(1, 1).await;
    let body = json!({"url": receiver.url, "types": ["sale.created"]});
    let id = app.post_json(&hooks(t.id), &body).await.body["id"].clone();
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(sold.status, 201);
    let path = format!("{}/{id}/deliveries", hooks(t.id));
    let failed = eventually(WAIT, || async {
        app.get(&path).await.body["deliveries"][0]["id"].is_u64()
    })
    .await;
    assert!(failed);
    let delivery = app.get(&path).await.body["deliveries"][0]["id"].clone();
    receiver.delay.store(1500, Ordering::SeqCst);
    let retry = format!("{path}/{delivery}/retry");
    let empty = json!({});
    let (a, b) = futures_util::join!(app.post_json(&retry, &empty), app.post_json(&retry, &empty));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    receiver.server.stop(false).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_receiver_that_refuses_connections_gets_every_event_in_order_once_it_listens_again() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let t = app.db.tenant(1, 1).await;
    let body = json!({"url": receiver.url, "types": ["sale.created"]});
    assert_eq!(app.post_json(&hooks(t.id), &body).await.status, 201);
    let sell = |n: usize| {
        let (app, t) = (&app, &t);
        async move {
            for _ in 0..n {
                app.sell_one(t).await;
            }
        }
    };
    sell(2).await;
    assert!(eventually(WAIT, || async { receiver.seqs() == vec![1, 2] }).await);
    let port: u16 = receiver.url[17..]
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let got = receiver.got.clone();
    receiver.server.stop(true).await;
    // Down: nothing listens on its port (connections refused), while the
    // tenant goes on selling and its attempts fail.
    sell(3).await;
    let failing = eventually(WAIT, || async {
        app.get(&hooks(t.id)).await.body["webhooks"][0]["state"] == "failing"
    })
    .await;
    assert!(
        failing,
        "the endpoint is failing while its receiver is down"
    );
    let failures = eventually(WAIT, || async {
        app.metric(r#"pos_feed_delivery_failures_total{sink="webhooks"}"#)
            .await
            >= 3.0
    })
    .await;
    assert!(failures, "attempts go on while it is down");
    sell(2).await;
    let back = Receiver::listen(port, got).await;
    let all = eventually(Duration::from_secs(60), || async { back.seqs().len() == 7 }).await;
    assert!(all, "{:?}", back.seqs());
    assert_eq!(
        back.seqs(),
        (1..=7).collect::<Vec<u64>>(),
        "in seq order, none missing"
    );
    let active = eventually(WAIT, || async {
        let w = app.get(&hooks(t.id)).await.body["webhooks"][0].clone();
        w["state"] == "active" && w["deliveredSeq"] == 7
    })
    .await;
    assert!(active);
    back.server.stop(false).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn sending_again_an_event_already_delivered_leaves_a_failing_endpoint_failing() {
    let app = open_app().await;
    let receiver = Receiver::start().await;
    let t = app.db.tenant(1, 1).await;
    let body = json!({"url": receiver.url, "types": ["sale.created"]});
    let id = app.post_json(&hooks(t.id), &body).await.body["id"].clone();
    let path = format!("{}/{id}/deliveries", hooks(t.id));
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(sold.status, 201);
    assert!(eventually(WAIT, || async { receiver.seqs() == vec![1] }).await);
    let first = app.get(&path).await.body["deliveries"][0]["id"].clone();
    receiver.refused_seq.store(2, Ordering::SeqCst);
    let sold = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(sold.status, 201);
    let failing = eventually(WAIT, || async {
        app.get(&hooks(t.id)).await.body["webhooks"][0]["state"] == "failing"
    })
    .await;
    assert!(failing);
    let before = app.get(&hooks(t.id)).await.body["webhooks"][0].clone();
    let retried = app
        .post_json(&format!("{path}/{first}/retry"), &json!({}))
        .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.body["delivered"], true, "event 1 is accepted again");
    let after = app.get(&hooks(t.id)).await.body["webhooks"][0].clone();
    assert_eq!(
        (
            &after["state"],
            &after["failingSince"],
            &after["deliveredSeq"]
        ),
        (&before["state"], &before["failingSince"], &json!(1)),
        "still stuck on event 2, failing since it first failed"
    );
    receiver.refused_seq.store(0, Ordering::SeqCst);
    let delivered = eventually(Duration::from_secs(60), || async {
        app.get(&hooks(t.id)).await.body["webhooks"][0]["deliveredSeq"] == 2
    })
    .await;
    assert!(
        delivered,
        "its own retries deliver event 2 once the receiver takes it"
    );
    receiver.server.stop(false).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn an_endpoint_that_rested_gets_new_events_while_another_of_its_tenant_keeps_failing() {
    let app = open_app().await;
    let (healthy, failing) = (Receiver::start().await, Receiver::start().await);
    failing.status.store(503, Ordering::SeqCst);
    let t = app.db.tenant(1, 1).await;
    for receiver in [&healthy, &failing] {
        let body = json!({"url": receiver.url, "types": ["sale.created"]});
        assert_eq!(app.post_json(&hooks(t.id), &body).await.status, 201);
    }
    app.sell_one(&t).await;
    assert!(eventually(WAIT, || async { healthy.seqs() == vec![1] }).await);
    // The healthy endpoint has nothing more and rests; the failing one
    // goes on retrying, so its tenant's run goes on.
    let rested = eventually(Duration::from_secs(90), || async {
        app.metric("pos_feed_webhook_endpoints_running").await == 1.0
    })
    .await;
    assert!(rested, "{}", app.get_metrics().await);
    app.sell_one(&t).await;
    let told = eventually(WAIT, || async { healthy.seqs() == vec![1, 2] }).await;
    assert!(
        told,
        "the rested endpoint heard of the next sale: {:?}",
        healthy.seqs()
    );
    assert!(
        failing.seqs().iter().all(|s| *s == 1),
        "the failing one is still on 1"
    );
    healthy.server.stop(false).await;
    failing.server.stop(false).await;
    app.cleanup().await;
}
