//! A running app of one test: started on its database with its own Redis
//! prefix and random ports, and the requests a test sends it.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::StatusCode;
use fred::prelude::*;
use pos::config::Config;
use pos::startup::RunningApp;
use serde_json::Value;

use super::{at_address, eventually, host_port, proxy, redis_url, sample_of, TestDb};

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        pos::telemetry::init("info,pos=debug", pos::config::LogFormat::Text);
    }
});

/// How a test app is set up.
#[derive(Clone)]
pub struct Options {
    /// `None`: the mirror is disabled.
    pub redis_url: Option<String>,
    /// Overrides the database URL the app uses (the test database is still
    /// created and migrated at the normal URL).
    pub app_database_url: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            redis_url: Some(redis_url()),
            app_database_url: None,
            extra: Vec::new(),
        }
    }
}

/// A running app with its database and Redis prefix.
pub struct TestApp {
    pub app: Option<RunningApp>,
    pub base: String,
    pub metrics_base: String,
    pub db: TestDb,
    pub prefix: String,
    pub options: Options,
    pub client: awc::Client,
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<String>,
    pub www_authenticate: Option<String>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let db = TestDb::create().await;
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    start_app(db, prefix, options).await
}

/// Starts an app on `db` whose MySQL connections go through a proxy the
/// test can cut; `extra` are more `POS_*` settings.
pub async fn start_app_behind_proxy(db: TestDb, extra: &[(&str, &str)]) -> (TestApp, proxy::Proxy) {
    let proxy = proxy::Proxy::start(host_port(&db.server)).await;
    // No prefer_socket in the URL: the service goes over TCP, through the
    // proxy (mysql_async's own default would switch to the local socket).
    let through = at_address(&db.server, &format!("127.0.0.1:{}", proxy.port));
    let url = format!("{through}/{}", db.name);
    let options = Options {
        app_database_url: Some(url),
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    };
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let app = start_app(db, prefix, options).await;
    app.wait_ready().await;
    (app, proxy)
}

/// Starts an app on an existing database (a restart).
pub async fn start_app(db: TestDb, prefix: String, options: Options) -> TestApp {
    LazyLock::force(&TRACING);
    let app_url = options
        .app_database_url
        .clone()
        .unwrap_or_else(|| db.url.clone());
    let sep = if app_url.contains('?') { '&' } else { '?' };
    let db_url = format!("{app_url}{sep}pool_min=0&pool_max=4");
    let mut pairs: Vec<(String, String)> = vec![
        ("POS_DATABASE_URL".into(), db_url),
        (
            "POS_REDIS_URL".into(),
            options.redis_url.clone().unwrap_or_default(),
        ),
        ("POS_REDIS_PREFIX".into(), prefix.clone()),
        ("POS_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("POS_METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("POS_HTTP_WORKERS".into(), "1".into()),
        ("POS_STORAGE_RETRY_MS".into(), "1000".into()),
    ];
    for (k, v) in &options.extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k.clone(), v.clone()));
    }
    let config = Config::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .expect("test config is valid");
    let app = pos::startup::start(config).expect("app starts");
    let base = format!("http://{}", app.api_addr);
    let metrics_base = format!("http://{}", app.metrics_addr);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let t = TestApp {
        app: Some(app),
        base,
        metrics_base,
        db,
        prefix,
        options,
        client,
    };
    if t.options.app_database_url.is_none() {
        t.wait_ready().await;
    }
    t
}

impl TestApp {
    pub async fn wait_ready(&self) {
        let booted = eventually(Duration::from_secs(20), || async {
            self.app
                .as_ref()
                .is_some_and(|a| a.is_booted() && a.is_ready())
        })
        .await;
        assert!(booted, "app did not boot");
    }

    /// GET with the key a path needs: a tenant's sales with its back-office
    /// key (the operator's for tenants made elsewhere), the rest with the
    /// operator key.
    pub async fn get(&self, path: &str) -> Answer {
        let token = self.token_for(path);
        self.get_as(path, token.as_deref()).await
    }

    /// GET with this token (`None`: no `Authorization` header).
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.client.get(format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut res = req.send().await.expect("GET answers");
        answer(&mut res).await
    }

    /// The token [`TestApp::get`] and [`TestApp::post_json`] send for `path`.
    pub fn token_for(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split(['/', '?']).collect();
        let tenant = match segments.as_slice() {
            ["", "v1", "tenants", t, ..] => t.parse::<u64>().ok(),
            ["", "v1", ..] => return Some(self.db.operator.clone()),
            _ => return None,
        };
        let known = tenant.and_then(|t| self.db.known_tenant(t));
        let sales = segments.last() == Some(&"sales-transactions");
        match (segments.get(4), known) {
            // A tenant itself is the operator's.
            (None, _) => Some(self.db.operator.clone()),
            (_, Some(t)) if sales => Some(t.till),
            _ if sales => None,
            (_, Some(t)) => Some(t.backoffice),
            (_, None) => Some(self.db.operator.clone()),
        }
    }

    /// `/ready` of the metrics port: readiness with what was found.
    pub async fn ready_details(&self) -> Value {
        let mut res = self
            .client
            .get(format!("{}/ready", self.metrics_base))
            .send()
            .await
            .expect("metrics port answers");
        res.json().await.unwrap_or(Value::Null)
    }

    /// The value of one metric sample (`name{labels}` exactly as
    /// exported). Every metric is registered at start, so an absent one is
    /// a wrong name: it fails the test rather than read as 0.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.get_metrics().await;
        sample_of(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in /metrics"))
    }

    pub async fn get_metrics(&self) -> String {
        let mut res = self
            .client
            .get(format!("{}/metrics", self.metrics_base))
            .send()
            .await
            .expect("metrics answer");
        let body = res.body().await.expect("metrics body");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Sells one of `t`'s first product at its first branch: answered 201.
    pub async fn sell_one(&self, t: &super::Tenant) {
        let sold = self
            .post_json(&t.sales_path(0), &super::sale(t.products[0], 1, "1.00"))
            .await;
        assert_eq!(sold.status, 201, "{}", sold.body);
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(
            path,
            Some("application/json"),
            serde_json::to_vec(body).expect("json"),
        )
        .await
    }

    /// POSTs with the till key of the path's tenant (see [`TestApp::token_for`]).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
        let token = self.token_for(path);
        self.post_raw_as(path, token.as_deref(), content_type, body)
            .await
    }

    pub async fn post_json_as(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let body = serde_json::to_vec(body).expect("json");
        self.post_raw_as(path, token, Some("application/json"), body)
            .await
    }

    pub async fn post_raw_as(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self.client.post(format!("{}{}", self.base, path));
        if let Some(ct) = content_type {
            req = req.insert_header(("Content-Type", ct));
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut res = req.send_body(body).await.expect("POST answers");
        answer(&mut res).await
    }

    /// Any method, with this token and an optional JSON body.
    pub async fn send_as(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.client.request(
            method.parse().expect("a method"),
            format!("{}{}", self.base, path),
        );
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut res = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        }
        .expect("answers");
        answer(&mut res).await
    }

    /// The Redis sorted set `name` under this test's prefix, as (member, score).
    pub async fn redis_set(&self, name: &str) -> Vec<(String, f64)> {
        let client = redis_client(self.options.redis_url.as_deref().unwrap_or(&redis_url())).await;
        let key = format!("{}top_selling:{name}", self.prefix);
        let v: Vec<(String, f64)> = client
            .zrange(key, 0, -1, None, false, None, true)
            .await
            .expect("zrange");
        let _ = client.quit().await;
        v
    }

    /// Stops the app, keeping the database (for restarts).
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    pub async fn cleanup(mut self) {
        self.stop().await;
        if let Some(url) = self.options.redis_url.clone() {
            let client = redis_client(&url).await;
            for name in ["quantity", "revenue"] {
                let _: Result<(), _> = client
                    .del(format!("{}top_selling:{name}", self.prefix))
                    .await;
            }
            let _ = client.quit().await;
        }
        self.db.drop_database().await;
    }
}

pub async fn redis_client(url: &str) -> Client {
    let client = Builder::from_config(fred::prelude::Config::from_url(url).expect("redis url"))
        .build()
        .expect("redis client");
    client.init().await.expect("redis connects");
    client
}

async fn answer<S>(res: &mut awc::ClientResponse<S>) -> Answer
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status();
    let retry_after = res
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let www_authenticate = res
        .headers()
        .get("WWW-Authenticate")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let bytes = res.body().limit(8 << 20).await.expect("body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        body,
        retry_after,
        www_authenticate,
    }
}

/// `(tenantID, productID, quantitySold, totalSales)` of each product of a
/// list as the API answers it (`top_selling_products`, or a tenant's
/// `sales_per_product`, where the tenant reads 0), in answer order.
pub fn listed(list: &Value) -> Vec<(u64, u64, u64, String)> {
    list.as_array()
        .expect("a list of products")
        .iter()
        .map(|p| {
            (
                p["tenantID"].as_u64().unwrap_or(0),
                p["productID"].as_u64().unwrap_or(0),
                p["quantitySold"].as_u64().unwrap_or(0),
                p["totalSales"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// POSTs `body` as JSON to `url` with `token`; the status, or 0 without an answer.
pub async fn post_status(client: &awc::Client, url: &str, token: &str, body: &Value) -> u16 {
    client
        .post(url)
        .bearer_auth(token)
        .send_json(body)
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
