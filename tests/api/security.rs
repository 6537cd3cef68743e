//! The holes a security review found, each closed: revocation that fails
//! closed, and the rest of the hardening (see README, Security).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::child::ChildServer;
use crate::support::mariadb_server::MariadbServer;
use crate::support::peers::Prometheus;
use crate::support::{eventually, start_app_behind_proxy, TestApp, TestDb};

/// Unknown key ids from many client addresses (behind a trusted proxy, so
/// each request counts as its own client), until `stop` is set: look-ups
/// that unauthenticated traffic causes.
fn flood_unknown_keys(app: &TestApp, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|worker| {
            let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
            actix_web::rt::spawn(async move {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let _ = client
                        .get(format!("{base}/v1/top-selling"))
                        .bearer_auth(format!("pos_flood{worker}x{n}_secret"))
                        .insert_header((
                            "X-Forwarded-For",
                            format!("10.{worker}.{}.{}", n / 250 % 250, n % 250),
                        ))
                        .send()
                        .await;
                }
            })
        })
        .collect()
}

async fn revoke(db: &TestDb, token: &str) {
    pos::store::revoke_key(&mut db.conn().await, &crate::support::key_id_of(token))
        .await
        .expect("revoked");
}

/// With MySQL unreachable (and unknown keys flooding the look-ups), a key
/// revoked meanwhile is refused within a few seconds: once the server has
/// gone 3 s without news of revocations, it refuses every keyed request
/// with 503 rather than trust its cache; the alert rule shipped for
/// Prometheus fires; once MySQL is back, the revocation itself is seen.
#[actix_web::test]
async fn a_key_revoked_while_mysql_is_cut_stops_working_and_the_alert_fires() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[("POS_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let prometheus = Prometheus::start_with(
        &[app.metrics_base.trim_start_matches("http://").to_string()],
        Some("docker/prometheus-alerts.yml"),
    )
    .await;
    let sales = format!("/v1/tenants/{}/sales", t.id);
    assert_eq!(
        app.get_as(&sales, Some(&t.backoffice)).await.status,
        200,
        "cached"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let flood = flood_unknown_keys(&app, stop.clone());
    proxy.cut();
    revoke(&app.db, &t.backoffice).await;
    let refused = eventually(Duration::from_secs(8), || async {
        app.get_as(&sales, Some(&t.backoffice)).await.status != 200
    })
    .await;
    assert!(refused, "a revoked key kept working while MySQL was cut");
    let a = app.get_as(&sales, Some(&t.backoffice)).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(a.retry_after.is_some());
    // Every key, not only the revoked one: none can be vouched for.
    assert_eq!(app.get_as(&sales, Some(&app.db.operator)).await.status, 503);
    assert!(app.metric("pos_revocation_poll_failures_total").await > 0.0);
    assert!(app.metric("pos_revocation_poll_age_seconds").await > 3.0);
    let alerted = eventually(Duration::from_secs(30), || async {
        prometheus
            .alert_state("PosRevocationPollFailing")
            .await
            .is_some_and(|s| s == "pending" || s == "firing")
    })
    .await;
    assert!(alerted, "the shipped alert rule did not fire");

    proxy.restore();
    let seen = eventually(Duration::from_secs(8), || async {
        app.get_as(&sales, Some(&t.backoffice)).await.status == 401
    })
    .await;
    assert!(seen, "the revocation was not seen once MySQL came back");
    assert_eq!(app.get_as(&sales, Some(&app.db.operator)).await.status, 200);
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = f.await;
    }
    drop(prometheus);
    app.cleanup().await;
}

/// A flood of unknown key ids fills the look-ups; the revocation poll has
/// its own connection and keeps its pace: the revoked key is refused with
/// 401 (the revocation was seen, not a 503 for want of news).
#[actix_web::test]
async fn a_flood_of_unknown_keys_does_not_delay_a_revocation() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, _proxy) = start_app_behind_proxy(db, &[("POS_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let sales = format!("/v1/tenants/{}/sales", t.id);
    assert_eq!(app.get_as(&sales, Some(&t.backoffice)).await.status, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = flood_unknown_keys(&app, stop.clone());
    let flooding = eventually(Duration::from_secs(10), || async {
        app.metric(r#"pos_lookups_total{kind="key",result="ok"}"#)
            .await
            > 500.0
    })
    .await;
    assert!(flooding, "the flood did not reach the look-ups");
    revoke(&app.db, &t.backoffice).await;
    let refused = eventually(Duration::from_secs(3), || async {
        app.get_as(&sales, Some(&t.backoffice)).await.status == 401
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = f.await;
    }
    assert!(
        refused,
        "the revocation was not seen within the promise during the flood"
    );
    assert!(app.metric("pos_revocation_poll_age_seconds").await < 3.0);
    app.cleanup().await;
}

/// Statements the server has been sent since it started (every client's).
async fn questions(server_url: &str) -> u64 {
    let mut conn = mysql_async::Conn::from_url(server_url.to_string())
        .await
        .expect("private server");
    let row: Option<(String, u64)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Questions'")
        .await
        .expect("status");
    let _ = conn.disconnect().await;
    row.map_or(0, |(_, n)| n)
}

/// `/ready` answers from a check made in the background once a second: a
/// flood of it costs MySQL no statement per request (only the few that the
/// background checks and polls send meanwhile), and its body says ready or
/// not, nothing about what runs behind it.
#[actix_web::test]
async fn a_ready_flood_sends_mysql_nothing_and_says_only_ready_or_not() {
    let mariadb = MariadbServer::start().await;
    let db = TestDb::create_on(&mariadb.url()).await;
    let server = ChildServer::start(&db.url, &[]).await;
    let before = questions(&mariadb.url()).await;
    let mut answered = 0u64;
    for _ in 0..40 {
        let batch = (0..50).map(|_| server.status("/ready", None));
        answered += futures_util::future::join_all(batch)
            .await
            .into_iter()
            .filter(|s| *s == Some(200))
            .count() as u64;
    }
    let flooded = questions(&mariadb.url()).await - before;
    assert_eq!(answered, 2000, "every /ready answered 200");
    // A check per request would send at least one statement each.
    assert!(
        flooded * 10 < answered,
        "{answered} /ready sent {flooded} statements to MySQL"
    );
    let mut res = server
        .client
        .get(format!("{}/ready", server.base))
        .send()
        .await
        .expect("answer");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "auth": "enabled"})
    );
    drop(server);
    db.drop_database().await;
}

/// GET `path` as the client `from` (our trusted proxy's `X-Forwarded-For`).
async fn get_from(app: &TestApp, path: &str, token: &str, from: &str) -> u16 {
    app.client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .insert_header(("X-Forwarded-For", from))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

fn guess(n: usize) -> String {
    format!("pos_guess{n}_{}", "A".repeat(43))
}

/// One IPv6 host holds a whole /64: rotating through it buys no more
/// guesses than one address has.
#[actix_web::test]
async fn an_ipv6_guesser_rotating_through_its_64_shares_one_budget() {
    let app = crate::support::spawn_app_with(crate::support::Options {
        extra: vec![
            ("POS_AUTH_FAILURES_PER_ADDRESS".into(), "1".into()),
            ("POS_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
        ],
        ..Default::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    let sales = format!("/v1/tenants/{}/sales", t.id);
    let mut statuses = Vec::new();
    for n in 0..20 {
        let from = format!("2001:db8:7:7::{:x}", n + 1);
        statuses.push(get_from(&app, &sales, &guess(n), &from).await);
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Another /64 has its own budget.
    assert_eq!(
        get_from(&app, &sales, &guess(99), "2001:db8:7:8::1").await,
        401
    );
    app.cleanup().await;
}

/// Tills behind one NAT share its address: a guesser among them puts it
/// over budget, but a key this server has proven keeps working from there,
/// also after its cache entry expired (it is read again, not refused).
#[actix_web::test]
async fn a_proven_key_keeps_working_from_an_address_over_its_budget() {
    let app = crate::support::spawn_app_with(crate::support::Options {
        extra: vec![
            ("POS_AUTH_FAILURES_PER_ADDRESS".into(), "1".into()),
            ("POS_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
            ("POS_KEY_CACHE_SECS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    let sales = format!("/v1/tenants/{}/sales", t.id);
    let nat = "198.51.100.20";
    assert_eq!(
        get_from(&app, &sales, &t.backoffice, nat).await,
        200,
        "proven"
    );
    let mut n = 0;
    while get_from(&app, &sales, &guess(n), nat).await != 429 {
        n += 1;
        assert!(n < 100, "the guesser was never limited");
    }
    let reads = r#"pos_lookups_total{kind="key",result="ok"}"#;
    let before = app.metric(reads).await;
    // Until the key's entry expired and it was read again: the guesser
    // keeps the address over its budget, the proven key keeps working.
    let guesses = std::sync::atomic::AtomicUsize::new(n);
    // Counted only when the guess just before was turned away: the key
    // was then read again from an address over its budget.
    let reads_seen = std::sync::Mutex::new(before);
    let reread = eventually(Duration::from_secs(10), || async {
        let n = guesses.fetch_add(1, Ordering::Relaxed) + 1;
        let blocked = get_from(&app, &sales, &guess(n), nat).await == 429;
        let status = get_from(&app, &sales, &t.backoffice, nat).await;
        assert_eq!(status, 200, "the proven key was refused from its address");
        let now = app.metric(reads).await;
        let mut seen = reads_seen.lock().expect("not poisoned");
        let read_again = now > *seen;
        *seen = now;
        blocked && read_again
    })
    .await;
    assert!(
        reread,
        "the key was never read again while its address was over budget"
    );
    // A key never proven here is still not looked up from that address
    // while it is over its budget. A block lasts about a second and may end
    // between two requests on a loaded machine; a key let in then counts as
    // proven, so each attempt brings a new one.
    let refused = eventually(Duration::from_secs(10), || async {
        let n = guesses.fetch_add(1, Ordering::Relaxed) + 1;
        let fresh = app
            .db
            .key(pos::domain::Scope::Backoffice {
                tenant: crate::support::tenant_id(t.id),
            })
            .await;
        get_from(&app, &sales, &guess(n), nat).await == 429
            && get_from(&app, &sales, &fresh, nat).await == 429
    })
    .await;
    assert!(
        refused,
        "a key never proven here was looked up from a blocked address"
    );
    app.cleanup().await;
}

/// HEAD on a GET route answers like GET without a body (it was 405), under
/// the same key rules; answers that carry tenant data are never stored by
/// a cache nor sniffed by a browser (the catalog asks for revalidation
/// instead, for its ETag).
#[actix_web::test]
async fn head_answers_like_get_and_tenant_data_is_kept_by_no_cache() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    let url = |path: &str| format!("{}{path}", app.base);
    let sales = format!("/v1/tenants/{}/sales", t.id);
    let mut get = app
        .client
        .get(url(&sales))
        .bearer_auth(&t.backoffice)
        .send()
        .await
        .expect("GET answers");
    let body = get.body().await.expect("body");
    let mut head = app
        .client
        .head(url(&sales))
        .bearer_auth(&t.backoffice)
        .send()
        .await
        .expect("HEAD answers");
    assert_eq!(head.status(), 200);
    let length = head.headers().get("content-length").cloned();
    assert_eq!(
        length.and_then(|v| v.to_str().ok().map(str::to_string)),
        Some(body.len().to_string())
    );
    assert!(head.body().await.expect("no body").is_empty());
    for res in [get.headers(), head.headers()] {
        assert_eq!(
            res.get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
        assert_eq!(
            res.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
    }
    // The same rules: no key, or a till of another tenant's path, is refused.
    let anonymous = app.client.head(url(&sales)).send().await.expect("answers");
    assert_eq!(anonymous.status(), 401);
    let catalog = app
        .client
        .head(url(&format!("/v1/tenants/{}/catalog", t.id)))
        .bearer_auth(&t.till)
        .send()
        .await
        .expect("answers");
    assert_eq!(catalog.status(), 200);
    assert!(catalog.headers().contains_key("etag"));
    assert_eq!(
        catalog.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"private, no-cache"[..])
    );
    assert_eq!(
        catalog
            .headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
    app.cleanup().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// An offline till's batch sent with `Content-Encoding: gzip` is decoded
/// (it was refused as "not UTF-8"); what it decodes to has the plain body's
/// 1 MiB bound (a small bomb is refused, nothing stored), and other codings
/// get 415.
#[actix_web::test]
async fn a_gzip_batch_is_stored_and_a_gzip_bomb_or_another_coding_is_refused() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let path = t.sales_path(0);
    let batch: Vec<_> = (0..1000)
        .map(|i| {
            serde_json::json!({"productID": t.products[0], "quantitySold": 1,
                "pricePerUnit": "1.25", "idempotencyKey": format!("gz-{i}")})
        })
        .collect();
    let send = |coding: &'static str, body: Vec<u8>| {
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&t.till)
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Content-Encoding", coding))
            .send_body(body)
    };
    let plain = serde_json::to_vec(&batch).expect("json");
    let res = send("gzip", gzip(&plain)).await.expect("answers");
    assert_eq!(res.status(), 201);
    assert_eq!(app.db.count("sales_transactions").await, 1000);
    // 2 MiB of spaces around one sale: about 2 KiB compressed.
    let mut bomb = vec![b' '; 2 << 20];
    bomb.extend_from_slice(&plain[..plain.len().min(200)]);
    let res = send("gzip", gzip(&bomb)).await.expect("answers");
    assert_eq!(res.status(), 413);
    let res = send("gzip", b"not gzip at all".to_vec())
        .await
        .expect("answers");
    assert_eq!(res.status(), 400);
    let res = send("br", plain.clone()).await.expect("answers");
    assert_eq!(res.status(), 415);
    assert_eq!(app.db.count("sales_transactions").await, 1000);
    app.cleanup().await;
}

/// `.env` is read from the working directory only, never from a parent
/// (another project's, or a shared /tmp).
#[test]
fn only_the_working_directorys_env_file_is_read() {
    let parent = std::env::temp_dir().join(format!("pos-dotenv-{}", std::process::id()));
    let child = parent.join("child");
    std::fs::create_dir_all(&child).expect("dirs");
    std::fs::write(parent.join(".env"), "POS_SHARD=from-the-parent\n").expect(".env");
    let migrate = |dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pos"))
            .arg("migrate")
            .current_dir(dir)
            .env_remove("POS_SHARD")
            .env("POS_DATABASE_URL", "mysql://nobody@127.0.0.1:1/none")
            .env_remove("POS_MIGRATE_DATABASE_URL")
            .output()
            .expect("pos runs")
    };
    let out = migrate(&child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("from-the-parent"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The working directory's own .env is read.
    std::fs::write(child.join(".env"), "POS_SHARD=from-here\n").expect(".env");
    let out = migrate(&child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("POS_SHARD") && stderr.contains("from-here"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(parent);
}

/// The shipped HAProxy config terminates TLS with the certificate named in
/// the environment: a client that checks the certificate reaches the API,
/// with its key, over HTTPS; one that does not trust it gets nothing.
#[actix_web::test]
async fn haproxy_serves_the_api_over_tls_to_a_client_that_checks_the_certificate() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let dir = std::env::temp_dir().join(format!("pos-tls-{}", uuid::Uuid::new_v4().simple()));
    let (cert, pem) = crate::support::peers::self_signed_certificate(&dir);
    let (stranger, _) = crate::support::peers::self_signed_certificate(&dir.join("other"));
    let shard = app.base.trim_start_matches("http://").to_string();
    let port = crate::support::free_port();
    let _haproxy = crate::support::peers::Haproxy::start_tls(&shard, &shard, port, &pem).await;
    // The key reaches curl through a file, never its command line.
    let headers = dir.join("headers");
    std::fs::write(
        &headers,
        format!("Authorization: Bearer {}\n", t.backoffice),
    )
    .expect("headers");
    let curl = |ca: Option<&std::path::Path>| {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["--silent", "--max-time", "10", "--output", "/dev/null"])
            .args(["--write-out", "%{http_code}", "--header"])
            .arg(format!("@{}", headers.display()))
            .arg(format!(
                "https://127.0.0.1:{port}/v1/tenants/{}/sales",
                t.id
            ));
        if let Some(ca) = ca {
            cmd.arg("--cacert").arg(ca);
        }
        cmd.output()
    };
    let answered = eventually(Duration::from_secs(10), || async {
        curl(Some(&cert))
            .await
            .is_ok_and(|o| o.status.success() && o.stdout == b"200")
    })
    .await;
    assert!(answered, "no 200 over TLS with the certificate trusted");
    for ca in [None, Some(stranger.as_path())] {
        let out = curl(ca).await.expect("curl runs");
        // 60: the peer's certificate could not be verified.
        assert_eq!(out.status.code(), Some(60), "trusted without {ca:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
    app.cleanup().await;
}

/// Runs `script` after sourcing scripts/services.sh: its standard output.
async fn with_services(script: &str) -> String {
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(". scripts/services.sh; {script}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[actix_web::test]
async fn the_scripts_reach_mariadb_as_their_own_admin_with_a_password_kept_in_0600_files() {
    let files = with_services(
        "ensure_mariadb >/dev/null; stat -c '%a' \"$POS_MYSQL_ADMIN_CNF\" \"$POS_MYSQL_ADMIN_URL_FILE\"; \
         echo \"$POS_MYSQL_ADMIN_URL\"",
    )
    .await;
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(&lines[..2], ["600", "600"], "{files}");
    let url = lines[2];
    let parsed = url::Url::parse(url).expect("an admin URL");
    assert_eq!(parsed.username(), "pos_admin");
    let password = parsed.password().unwrap_or_default();
    assert!(password.len() >= 32, "a random password");
    // It works with its password, and not without it.
    let mut conn = mysql_async::Conn::from_url(url)
        .await
        .expect("the admin gets in");
    let me: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .expect("a user");
    assert!(me.is_some_and(|u| u.starts_with("pos_admin@")));
    let without = url.replace(&format!(":{password}@"), "@");
    assert!(mysql_async::Conn::from_url(without).await.is_err());
    // The scripts make no account without a password.
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services.sh"))
            .expect("services.sh");
    assert!(
        !script.contains("IDENTIFIED BY ''"),
        "an account without a password"
    );
    let _ = conn.disconnect().await;
}
