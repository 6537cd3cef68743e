use std::process::Command;

use mysql_async::prelude::Queryable;

use serde_json::json;

use crate::support::{free_port, spawn_app, spawn_app_with, Options};

#[actix_web::test]
async fn health_answers_ok_with_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/health").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({"status": "ok"}));
    let res = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .expect("answer");
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(id.len(), 36, "request id {id:?}");
    app.cleanup().await;
}

#[actix_web::test]
async fn ready_names_mysql_and_redis_when_both_are_up() {
    let app = spawn_app().await;
    let a = app.get("/ready").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        a.body,
        json!({"status": "ready", "auth": "enabled"}),
        "ready or not, no details"
    );
    assert_eq!(app.ready_details().await["mysql"], "up");
    let redis_up = crate::support::eventually(std::time::Duration::from_secs(5), || async {
        app.ready_details().await["redis"] == "up"
    })
    .await;
    assert!(redis_up);
    app.cleanup().await;
}

#[actix_web::test]
async fn ready_says_redis_disabled_without_a_redis_url() {
    let app = spawn_app_with(Options {
        redis_url: None,
        ..Options::default()
    })
    .await;
    assert_eq!(app.get("/ready").await.status, 200);
    assert_eq!(app.ready_details().await["redis"], "disabled");
    app.cleanup().await;
}

#[actix_web::test]
async fn unreachable_mysql_keeps_health_up_and_answers_503_naming_mysql() {
    let dead = format!("mysql://root@127.0.0.1:{}/pos", free_port());
    let app = spawn_app_with(Options {
        app_database_url: Some(dead),
        ..Options::default()
    })
    .await;
    assert_eq!(app.get("/health").await.status, 200);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(app.ready_details().await["mysql"], "down");
    // A key that cannot be checked is not a bad key: 503, not 401.
    let t = app.db.tenant(1, 1).await;
    let post = app
        .post_json(
            &t.sales_path(0),
            &json!({"productID": 1, "quantitySold": 1, "pricePerUnit": "1.00"}),
        )
        .await;
    assert_eq!(post.status, 503, "{:?}", post.body);
    assert_eq!(post.body["error"]["code"], "unavailable");
    assert!(post.retry_after.is_some());
    assert_eq!(app.get("/v1/top-selling").await.status, 503);
    app.cleanup().await;
}

#[actix_web::test]
async fn metrics_are_on_their_own_port_and_not_on_the_api_port() {
    let app = spawn_app().await;
    app.get("/health").await;
    let text = app.get_metrics().await;
    assert!(
        text.contains("pos_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"),
        "{text}"
    );
    for name in [
        "pos_transactions_committed_total 0",
        "pos_transactions_rejected_total{reason=\"validation_failed\"} 0",
        "pos_rows_waiting 0",
        "pos_batch_commit_duration_seconds_count 0",
        "pos_redis_mirror_errors_total 0",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    let api = app.get("/metrics").await;
    assert_eq!(api.status, 404);
    assert_eq!(api.body["error"]["code"], "not_found");
    app.cleanup().await;
}

/// How many migrations the repository holds (each is recorded once).
fn migration_files() -> u64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    std::fs::read_dir(dir)
        .expect("migrations directory")
        .count() as u64
}

#[actix_web::test]
async fn migrations_run_once_and_are_recorded() {
    let app = spawn_app().await;
    assert_eq!(
        app.db.count("refinery_schema_history").await,
        migration_files()
    );
    let again = pos::store::migrate(&app.db.url)
        .await
        .expect("migrates again");
    assert!(again.is_empty(), "second run applied {again:?}");
    assert_eq!(
        app.db.count("refinery_schema_history").await,
        migration_files()
    );
    for table in [
        "tenants",
        "branches",
        "products",
        "sales_transactions",
        "product_sales_totals",
    ] {
        assert_eq!(app.db.count(table).await, 0);
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn the_schema_refuses_rows_that_mix_tenants() {
    let app = spawn_app().await;
    let (a, b) = (app.db.tenant(1, 1).await, app.db.tenant(1, 1).await);
    let mut conn = app.db.conn().await;
    let sale = "INSERT INTO sales_transactions \
        (tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp) \
        VALUES (?, ?, ?, 1, 1.00, NOW(6))";
    let totals =
        "INSERT INTO product_sales_totals (tenant_id, product_id, quantity_sold, revenue) \
                  VALUES (?, ?, 1, 1.00)";
    let (ta, ba, pa, pb) = (a.id, a.branches[0], a.products[0], b.products[0]);
    let other_branch = conn.exec_drop(sale, (ta, b.branches[0], pa)).await;
    assert!(
        other_branch.is_err(),
        "a sale at another tenant's branch was stored"
    );
    let other_product = conn.exec_drop(totals, (ta, pb)).await;
    assert!(
        other_product.is_err(),
        "totals of another tenant's product were stored"
    );
    conn.exec_drop(sale, (ta, ba, pa))
        .await
        .expect("a sale of the tenant's own branch");
    conn.exec_drop(totals, (ta, pa))
        .await
        .expect("totals of the tenant's own product");
    drop(conn);
    assert_eq!(app.db.count("sales_transactions").await, 1);
    assert_eq!(app.db.count("product_sales_totals").await, 1);
    app.cleanup().await;
}

fn pos_binary(vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pos"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("pos runs")
}

#[test]
fn a_bad_setting_exits_2_naming_the_variable() {
    let out = pos_binary(&[("POS_HTTP_ADDR", "nonsense")], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("POS_HTTP_ADDR:"), "{err}");
    let out = pos_binary(&[("POS_BATCH_LINGER_MS", "fast")], &["migrate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"POS_BATCH_LINGER_MS: expected an integer, got "fast""#
    );
}

#[test]
fn help_lists_every_subcommand() {
    let out = pos_binary(&[], &["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate", "seed", "loadgen"] {
        assert!(text.contains(cmd), "{text}");
    }
    let out = pos_binary(&[], &["loadgen", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--url",
        "--rate",
        "--duration",
        "--terminals",
        "--batch",
        "--tenants",
        "--verify",
        "--seed",
        "--json",
    ] {
        assert!(text.contains(flag), "{flag} missing in {text}");
    }
}

#[test]
fn serve_help_names_every_setting_and_the_version_is_the_api_documents() {
    let out = pos_binary(&[], &["serve", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for var in pos::config::variables() {
        assert!(text.contains(var), "{var} missing in {text}");
    }
    let out = pos_binary(&[], &["--version"]);
    let version = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(pos::http::OPENAPI).expect("json");
    let documented = doc["info"]["version"].as_str().expect("a version");
    assert_eq!(version.trim(), format!("pos {documented}"));
}

/// Logs that go to a file or a pipe are plain text: no terminal colour codes.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pos"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Nothing listens on port 1: the server logs its retries.
        .env("POS_DATABASE_URL", "mysql://root@127.0.0.1:1/pos")
        .env("POS_HTTP_ADDR", "127.0.0.1:0")
        .env("POS_METRICS_ADDR", "127.0.0.1:0")
        .env("POS_REDIS_URL", "")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pos serve starts");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(20)) {
        let retrying = line.contains("MySQL not ready");
        lines.push(line);
        if retrying {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("MySQL not ready")),
        "{lines:?}"
    );
    assert!(!lines.concat().contains('\u{1b}'), "{lines:?}");
}

#[actix_web::test]
async fn migrate_command_creates_the_database_and_a_second_run_applies_nothing() {
    let name = format!("pos_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{}", crate::support::mysql_server_url(), name);
    let first = pos_binary(&[("POS_DATABASE_URL", &url)], &["migrate"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied V7__api_keys"));
    let second = pos_binary(&[("POS_DATABASE_URL", &url)], &["migrate"]);
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "no pending migrations"
    );
    let db = crate::support::TestDb::attach(&name);
    assert_eq!(db.count("refinery_schema_history").await, migration_files());
    db.drop_database().await;
}

#[actix_web::test]
async fn the_openapi_document_is_open_and_lists_exactly_the_served_routes() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let doc = app.get_as("/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.0.3");
    let mut documented = Vec::new();
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            documented.push((method.to_uppercase(), path.clone()));
            // The query parameters documented are exactly those the route
            // takes (any other is 422).
            let mut params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "query")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            params.sort();
            let route = pos::http::ROUTES
                .iter()
                .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && p == path);
            let mut taken = route.map(|r| r.2.to_vec()).unwrap_or_default();
            taken.sort();
            assert_eq!(params, taken, "{method} {path}: query parameters");
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = pos::http::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes, "openapi.json and the routes differ");
    // Each is served (never the catch-all "no such route"), and a method a
    // route does not have gets 405 with Allow.
    for (method, path) in &routes {
        let path = path
            .replace("{tenantID}", &t.id.to_string())
            .replace("{branchID}", &t.branches[0].to_string())
            .replace("{productID}", &t.products[0].to_string())
            .replace("{keyID}", "nosuchkey");
        let token = app.token_for(&path);
        let mut req = app.client.request(
            method.parse().expect("method"),
            format!("{}{path}", app.base),
        );
        if let Some(token) = &token {
            req = req.bearer_auth(token);
        }
        let mut res = req
            .insert_header(("Content-Type", "application/json"))
            .send_body(r#"{"productID":1}"#)
            .await
            .expect("answer");
        let body = res.body().await.expect("body");
        assert!(
            !String::from_utf8_lossy(&body).contains("no such route"),
            "{method} {path} is not served"
        );
        let mut wrong = app.client.put(format!("{}{path}", app.base));
        if let Some(token) = &token {
            wrong = wrong.bearer_auth(token);
        }
        let wrong = wrong.send().await.expect("answer");
        assert_eq!(wrong.status(), 405, "PUT {path}");
        let allow = wrong.headers().get("Allow").and_then(|v| v.to_str().ok());
        assert!(
            allow.is_some_and(|a| a.split(", ").any(|m| m == method)),
            "{method} {path}: Allow {allow:?}"
        );
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    assert!(
        readme.contains("/openapi.json"),
        "the README links the API description"
    );
    app.cleanup().await;
}

/// A server that may lose acknowledged commits on a crash is named in a
/// warning at start (and pos still serves: the operator decides).
#[actix_web::test]
async fn a_database_that_does_not_keep_commits_durable_is_named_in_a_warning_at_start() {
    let mariadb = crate::support::mariadb_server::MariadbServer::start_with(&[
        "--innodb-flush-log-at-trx-commit=2",
    ])
    .await;
    let db = crate::support::TestDb::create_on(&mariadb.url()).await;
    let server = crate::support::child::ChildServer::start(&db.url, &[]).await;
    let log = server.log_text();
    assert!(
        log.contains("innodb_flush_log_at_trx_commit is not 1"),
        "{log}"
    );
    drop(server);
    db.drop_database().await;
}
