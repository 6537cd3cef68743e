//! Test harness: every test gets its own database (random name, migrated by
//! the service's own code), its own Redis key prefix and its own app on
//! random ports, so tests run in parallel against the real MariaDB and Redis.

#![allow(dead_code)]

pub mod browser;
pub mod child;
pub mod galera;
pub mod ledger;
pub mod mariadb_server;
pub mod peers;
pub mod proxy;
pub mod redis_server;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use fred::prelude::*;
use mysql_async::prelude::*;
use pos::auth::NewKey;
use pos::config::Config;
use pos::domain::{BranchId, Scope, TenantId};
use pos::startup::RunningApp;
use pos::store::KeyInsert;
use serde_json::Value;

/// The MariaDB the tests use, as a URL without a database: from
/// `POS_TEST_MYSQL_URL` (`scripts/test` passes its own admin's), else root
/// on 127.0.0.1 without a password.
pub fn mysql_server_url() -> String {
    std::env::var("POS_TEST_MYSQL_URL")
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// `host:port` of a `mysql://user:password@host:port` URL.
pub fn host_port(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("a MySQL URL");
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    format!("{host}:{}", parsed.port().unwrap_or(3306))
}

/// `server` (a URL without a database) with another address.
pub fn at_address(server: &str, address: &str) -> String {
    let mut parsed = url::Url::parse(server).expect("a MySQL URL");
    let (host, port) = address.rsplit_once(':').expect("host:port");
    parsed.set_host(Some(host)).expect("a host");
    parsed.set_port(port.parse().ok()).expect("a port");
    parsed.to_string().trim_end_matches('/').to_string()
}

pub fn redis_url() -> String {
    std::env::var("POS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

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

/// A database of one test; dropped by [`TestDb::drop_database`].
#[derive(Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The server, without a database (`mysql://user@host:port`).
    pub server: String,
    pub pool: mysql_async::Pool,
    /// Token of an operator key made with the database.
    pub operator: String,
    /// Till and back-office tokens of each tenant made by [`TestDb::tenant`].
    keys: Arc<Mutex<HashMap<u64, Tenant>>>,
}

impl TestDb {
    pub async fn create() -> TestDb {
        TestDb::create_on(&mysql_server_url()).await
    }

    /// A fresh database on `server` (`mysql://user@host:port`).
    pub async fn create_on(server: &str) -> TestDb {
        let name = format!("pos_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{server}/{name}");
        pos::store::migrate(&url)
            .await
            .expect("test database migrates");
        let pool = mysql_async::Pool::new(format!("{url}?pool_min=0&pool_max=3").as_str());
        let mut db = TestDb {
            name,
            url,
            server: server.to_string(),
            pool,
            operator: String::new(),
            keys: Arc::default(),
        };
        db.operator = db.key(Scope::Operator).await;
        db
    }

    /// A database made elsewhere (no keys are made).
    pub fn attach(name: &str) -> TestDb {
        let url = format!("{}/{}", mysql_server_url(), name);
        TestDb {
            name: name.to_string(),
            pool: mysql_async::Pool::new(format!("{url}?pool_min=0&pool_max=3").as_str()),
            url,
            server: mysql_server_url(),
            operator: String::new(),
            keys: Arc::default(),
        }
    }

    /// Makes a key with the service's own code; returns its token.
    pub async fn key(&self, scope: Scope) -> String {
        let key = NewKey::generate().expect("random bytes");
        let insert = KeyInsert {
            id: &key.id,
            hash: key.hash,
            scope,
            label: "test",
        };
        pos::store::insert_key(&mut self.conn().await, &insert)
            .await
            .expect("key stored");
        key.token
    }

    /// A keys file (as `pos seed --keys-file` writes it) with the till keys
    /// of every tenant made so far and the operator key.
    pub fn keys_file(&self) -> std::path::PathBuf {
        let mut file = pos::cli::keys_file::KeysFile {
            operator: Some(self.operator.clone()),
            ..Default::default()
        };
        if let Ok(keys) = self.keys.lock() {
            for (id, t) in keys.iter() {
                file.tills.insert(tenant_id(*id), t.till.clone());
            }
        }
        let path = std::env::temp_dir().join(format!("{}-keys.json", self.name));
        file.write(&path).expect("keys file written");
        path
    }

    /// The tenant (with its keys) that [`TestDb::tenant`] made, if any.
    pub fn known_tenant(&self, id: u64) -> Option<Tenant> {
        self.keys.lock().ok()?.get(&id).cloned()
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        self.pool.get_conn().await.expect("test connection")
    }

    pub async fn exec(&self, sql: &str) {
        self.conn()
            .await
            .query_drop(sql)
            .await
            .expect("test SQL runs");
    }

    pub async fn scalar(&self, sql: &str) -> String {
        let v: Option<String> = self
            .conn()
            .await
            .query_first(sql)
            .await
            .expect("test SQL runs");
        v.unwrap_or_default()
    }

    pub async fn count(&self, table: &str) -> u64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .parse()
            .expect("a count")
    }

    /// Transactions of this database's connections waiting for a row lock.
    pub async fn lock_waits(&self) -> u64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t \
             JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
             WHERE t.trx_state = 'LOCK WAIT' AND p.DB = '{}'",
            self.name
        ))
        .await
        .parse()
        .expect("a count")
    }

    /// Starts a transaction on its own connection that locks the summary
    /// rows of `tenant` until the returned connection rolls back (or drops).
    pub async fn lock_totals(&self, tenant: u64) -> mysql_async::Conn {
        let mut conn = self.conn().await;
        conn.query_drop("START TRANSACTION").await.expect("begin");
        conn.query_drop(format!(
            "SELECT * FROM product_sales_totals WHERE tenant_id = {tenant} FOR UPDATE"
        ))
        .await
        .expect("lock");
        conn
    }

    /// `quantity revenue` of every product of `tenant` in the summary, and
    /// the same summed from the history, by product.
    pub async fn summary_and_history(&self, tenant: u64) -> (String, String) {
        let summary = self
            .scalar(&format!(
                "SELECT GROUP_CONCAT(CONCAT(product_id, ':', quantity_sold, '/', revenue) ORDER BY product_id) \
                 FROM product_sales_totals WHERE tenant_id = {tenant}"
            ))
            .await;
        let history = self
            .scalar(&format!(
                "SELECT GROUP_CONCAT(s ORDER BY p) FROM (SELECT product_id p, \
                 CONCAT(product_id, ':', SUM(quantity_sold), '/', SUM(quantity_sold * price_per_unit)) s \
                 FROM sales_transactions WHERE tenant_id = {tenant} GROUP BY product_id) h"
            ))
            .await;
        (summary, history)
    }

    /// A tenant with `branches` branches and `products` products (prices are the client's).
    pub async fn tenant(&self, branches: usize, products: usize) -> Tenant {
        let mut conn = self.conn().await;
        conn.query_drop("INSERT INTO tenants (name) VALUES ('Test tenant')")
            .await
            .expect("insert tenant");
        let id = conn.last_insert_id().expect("tenant id");
        let mut t = Tenant {
            id,
            branches: Vec::new(),
            products: Vec::new(),
            till: String::new(),
            backoffice: String::new(),
        };
        for b in 0..branches {
            conn.exec_drop(
                "INSERT INTO branches (tenant_id, code, name) VALUES (?, ?, ?)",
                (id, format!("B{b}"), format!("Branch {b}")),
            )
            .await
            .expect("insert branch");
            t.branches.push(conn.last_insert_id().expect("branch id"));
        }
        for p in 0..products {
            conn.exec_drop(
                "INSERT INTO products (tenant_id, sku, name) VALUES (?, ?, ?)",
                (id, format!("P{p}"), format!("Product {p}")),
            )
            .await
            .expect("insert product");
            t.products.push(conn.last_insert_id().expect("product id"));
        }
        drop(conn);
        t.till = self
            .key(Scope::Till {
                tenant: tenant_id(id),
                branch: None,
            })
            .await;
        t.backoffice = self
            .key(Scope::Backoffice {
                tenant: tenant_id(id),
            })
            .await;
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(id, t.clone());
        }
        t
    }

    pub async fn drop_database(self) {
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{}-keys.json", self.name)));
        let _ = self.pool.disconnect().await;
        let Ok(mut conn) = mysql_async::Conn::from_url(self.server.clone()).await else {
            return; // a private server that is gone takes its databases along
        };
        let _ = conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .await;
        let _ = conn.disconnect().await;
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: u64,
    pub branches: Vec<u64>,
    pub products: Vec<u64>,
    /// Token of a till key of this tenant (any branch).
    pub till: String,
    /// Token of a back-office key of this tenant.
    pub backoffice: String,
}

impl Tenant {
    pub fn sales_path(&self, branch: usize) -> String {
        format!(
            "/v1/tenants/{}/branches/{}/sales-transactions",
            self.id, self.branches[branch]
        )
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

/// Whether `var` is `1`: a test that needs what this machine lacks leaves
/// itself out, and says so (any other value, `0` too, runs it). scripts/test
/// clears these, so CI never skips.
pub fn skipped_on_purpose(var: &str) -> bool {
    let skip = std::env::var(var).is_ok_and(|v| v.trim() == "1");
    if skip {
        eprintln!(
            "SKIPPED on purpose ({var}=1): {}",
            std::thread::current().name().unwrap_or("a test")
        );
    }
    skip
}

/// The value of the sample `sample` (`name{labels}` exactly as exported)
/// in Prometheus text `text`: the whole name, never a prefix of another.
pub fn sample_of(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_every(Duration::from_millis(25), timeout, check).await
}

/// Polls `check` every `period` until it holds or `timeout` passes.
pub async fn eventually_every<F, Fut>(period: Duration, timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        actix_web::rt::time::sleep(period).await;
    }
}

/// Waits until `n` transactions of `db` wait for a row lock. InnoDB
/// refreshes what `INNODB_TRX` shows only when nobody read it for 0.1 s,
/// so this polls less often than that.
pub async fn until_lock_waits(db: &TestDb, n: u64) -> bool {
    eventually_every(
        Duration::from_millis(250),
        Duration::from_secs(30),
        || async { db.lock_waits().await == n },
    )
    .await
}

/// Tenant `n` as the service's type.
pub fn tenant_id(n: u64) -> TenantId {
    TenantId::new(n).expect("tenant ids are positive")
}

/// Branch `n` as the service's type.
pub fn branch_id(n: u64) -> BranchId {
    BranchId::new(n).expect("branch ids are positive")
}

/// A free local TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A client that shows redirects instead of following them.
pub fn plain_client() -> awc::Client {
    awc::Client::builder().disable_redirects().finish()
}

/// Signs in to the web back office at `base` with `key`: the session
/// cookie it sets, as `name=value`.
pub async fn web_session(base: &str, key: &str) -> String {
    let res = plain_client()
        .post(format!("{base}/app/session"))
        .insert_header(("Origin", base))
        .send_form(&[("key", key)])
        .await
        .expect("the sign-in answers");
    assert_eq!(res.status().as_u16(), 303, "{base}");
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/app"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // The secret is all after `pos_<id>_` (base64url: it may hold `_`).
    let secret = key.splitn(3, '_').nth(2).unwrap_or(key);
    assert!(!cookie.contains(secret), "the key is not in the cookie");
    cookie.split(';').next().unwrap_or_default().to_string()
}

/// Signs out of the web back office at `base` with a session `cookie`: the
/// answer's status.
pub async fn web_sign_out(base: &str, cookie: &str) -> u16 {
    plain_client()
        .post(format!("{base}/app/session/end"))
        .insert_header(("Origin", base))
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .expect("the sign-out answers")
        .status()
        .as_u16()
}

/// The status of a web page at `url` with a session `cookie`.
pub async fn page_status(url: &str, cookie: &str) -> u16 {
    plain_client()
        .get(url)
        .insert_header(("Cookie", cookie))
        .send()
        .await
        .expect("the page answers")
        .status()
        .as_u16()
}
