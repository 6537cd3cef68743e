//! API keys, roles, rate limits and hostile clients, against the real server.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::child::{pos_cli, ChildServer};
use crate::support::{
    branch_id, eventually, mysql_server_url, post_status, sale, spawn_app, spawn_app_with,
    tenant_id, Options, TestApp,
};
use pos::domain::Scope;

const CATALOG_READS: &str = r#"pos_lookups_total{kind="catalog",result="ok"}"#;

#[derive(Debug, Clone, Copy)]
enum Call {
    Post { tenant: u64, branch: u64 },
    Read { tenant: u64 },
    Top,
}

#[actix_web::test]
async fn every_role_on_every_endpoint_gets_what_the_spec_allows_and_learns_nothing_else() {
    let app = spawn_app().await;
    let a = app.db.tenant(2, 1).await;
    let b = app.db.tenant(1, 1).await;
    let branch_till = app
        .db
        .key(Scope::Till {
            tenant: tenant_id(a.id),
            branch: Some(branch_id(a.branches[0])),
        })
        .await;
    let unknown = b.id + 1000;
    let calls = [
        Call::Post {
            tenant: a.id,
            branch: a.branches[0],
        },
        Call::Post {
            tenant: a.id,
            branch: a.branches[1],
        },
        Call::Post {
            tenant: b.id,
            branch: b.branches[0],
        },
        Call::Post {
            tenant: unknown,
            branch: a.branches[0],
        },
        Call::Read { tenant: a.id },
        Call::Read { tenant: b.id },
        Call::Read { tenant: unknown },
        Call::Top,
    ];
    // One row per key, one column per call above.
    let table: [(&str, &str, [u16; 8]); 5] = [
        (
            "till of A",
            &a.till,
            [201, 201, 403, 403, 403, 403, 403, 403],
        ),
        (
            "till of A's branch 0",
            &branch_till,
            [201, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "backoffice of A",
            &a.backoffice,
            [403, 403, 403, 403, 200, 403, 403, 403],
        ),
        (
            "operator",
            &app.db.operator,
            [403, 403, 403, 403, 200, 200, 404, 200],
        ),
        (
            "till of B",
            &b.till,
            [403, 403, 201, 403, 403, 403, 403, 403],
        ),
    ];
    let mut stored = 0;
    let mut forbidden_bodies: Vec<Value> = Vec::new();
    for (who, token, expected) in table {
        let mut refusals = std::collections::HashMap::new();
        for (i, (call, want)) in calls.iter().zip(expected).enumerate() {
            let lookups_before = app.metric(CATALOG_READS).await;
            let answer = match *call {
                Call::Post { tenant, branch } => {
                    let path = format!("/v1/tenants/{tenant}/branches/{branch}/sales-transactions");
                    let product = if tenant == b.id {
                        b.products[0]
                    } else {
                        a.products[0]
                    };
                    app.post_json_as(&path, Some(token), &sale(product, 1, "1.00"))
                        .await
                }
                Call::Read { tenant } => {
                    app.get_as(&format!("/v1/tenants/{tenant}/sales"), Some(token))
                        .await
                }
                Call::Top => app.get_as("/v1/top-selling", Some(token)).await,
            };
            assert_eq!(answer.status, want, "{who} {call:?}: {:?}", answer.body);
            if want == 201 {
                stored += 1;
            }
            assert_eq!(
                app.db.count("sales_transactions").await,
                stored,
                "{who} {call:?} stored a row"
            );
            if want == 403 {
                assert_eq!(answer.body["error"]["code"], "forbidden", "{who} {call:?}");
                // Decided from the key and the path alone: nothing was looked up.
                assert_eq!(
                    app.metric(CATALOG_READS).await,
                    lookups_before,
                    "{who} {call:?} looked the tenant up"
                );
                // It says why in the key's own terms, never naming another tenant.
                let message = answer.body["error"]["message"].as_str().unwrap_or("");
                let own = if token == b.till { b.id } else { a.id };
                for other in [a.id, b.id, unknown].into_iter().filter(|t| *t != own) {
                    assert!(
                        !message.contains(&format!("tenant {other}")),
                        "{who} {call:?}: {message}"
                    );
                }
                refusals.insert(i, answer.body.clone());
                forbidden_bodies.push(answer.body);
            }
        }
        // Another tenant and one that does not exist are refused alike
        // (calls 2 and 3 post there, 5 and 6 read there).
        for (there, nowhere) in [(2, 3), (5, 6)] {
            if let (Some(x), Some(y)) = (refusals.get(&there), refusals.get(&nowhere)) {
                assert_eq!(
                    x, y,
                    "{who}: an existing tenant reads apart from a missing one"
                );
            }
        }
    }
    assert_eq!(
        app.metric(r#"pos_auth_refusals_total{reason="forbidden"}"#)
            .await,
        forbidden_bodies.len() as f64
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn missing_malformed_unknown_wrong_and_revoked_keys_get_401_with_www_authenticate() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let path = t.sales_path(0);
    let real_id = t.till.split('_').nth(1).expect("key id").to_string();
    let wrong_secret = format!("pos_{real_id}_{}", "A".repeat(43));
    let unknown_id = format!("pos_zzzzzzzzzzzzzzzz_{}", "A".repeat(43));
    let headers: Vec<Option<String>> = vec![
        None,
        Some("Basic dXNlcjpwYXNz".into()),
        Some("Bearer".into()),
        Some("Bearer not-a-token".into()),
        Some(format!("Bearer {}", t.till.to_uppercase())),
        Some(format!("Bearer {unknown_id}")),
        Some(format!("Bearer {wrong_secret}")),
        Some(format!("Token {}", t.till)),
    ];
    for header in &headers {
        let mut req = app
            .client
            .post(format!("{}{path}", app.base))
            .insert_header(("Content-Type", "application/json"));
        if let Some(h) = header {
            req = req.insert_header(("Authorization", h.as_str()));
        }
        let mut res = req
            .send_json(&sale(t.products[0], 1, "1.00"))
            .await
            .expect("answer");
        assert_eq!(res.status(), 401, "{header:?}");
        assert_eq!(
            res.headers()
                .get("WWW-Authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{header:?}"
        );
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized", "{header:?}");
    }
    assert_eq!(app.db.count("sales_transactions").await, 0);

    // A key in use, then revoked: refused once the server has seen the revocation.
    let ok = app.post_json(&path, &sale(t.products[0], 1, "1.00")).await;
    assert_eq!(ok.status, 201);
    pos::store::revoke_key(
        &mut app.db.conn().await,
        &crate::support::key_id_of(&t.till),
    )
    .await
    .expect("revoked");
    // Retries of one sale (one key): stored once, then replayed, until refused.
    let mut retry = sale(t.products[0], 1, "1.00");
    retry["idempotencyKey"] = json!("till-1:after-revoke");
    // The promise: refused within 2 s (the poll runs four times a second).
    let refused = eventually(Duration::from_secs(2), || async {
        app.post_json(&path, &retry).await.status == 401
    })
    .await;
    assert!(refused, "a revoked key kept working for 2 s");
    assert!(app.db.count("sales_transactions").await <= 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn keys_made_by_the_cli_work_list_without_secrets_and_revocation_reaches_another_server() {
    let mut app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let url = app.db.url.clone();
    let env = [("POS_DATABASE_URL", url.as_str())];
    let (code, out, err) = pos_cli(
        &env,
        &[
            "keys",
            "create",
            "--role",
            "till",
            "--tenant",
            &t.id.to_string(),
            "--branch",
            &t.branches[1].to_string(),
            "--label",
            "Station Road till 2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let token = out.lines().last().expect("token line").to_string();
    let key_id = token.split('_').nth(1).expect("key id").to_string();
    // The secret is base64url, so it may hold `_` itself.
    let secret = token.splitn(3, '_').nth(2).expect("secret").to_string();
    assert!(token.starts_with("pos_") && secret.len() >= 43, "{out}");
    assert_eq!(
        out.matches(&secret).count(),
        1,
        "the secret is shown once: {out}"
    );

    // The stored row and the listing never hold the secret.
    let row = app
        .db
        .scalar(&format!(
            "SELECT CONCAT_WS('|', id, HEX(secret_hash), role, tenant_id, branch_id, label) \
             FROM api_keys WHERE id = '{key_id}'"
        ))
        .await;
    assert!(row.contains("Station Road till 2"), "{row}");
    assert!(!row.contains(&secret) && !row.contains(&token), "{row}");
    let (code, list, _) = pos_cli(&env, &["keys", "list", "--tenant", &t.id.to_string()]).await;
    assert_eq!(code, 0);
    assert!(
        list.contains(&key_id) && list.contains("Station Road till 2"),
        "{list}"
    );
    assert!(!list.contains(&secret), "{list}");
    assert_eq!(
        list.lines().count(),
        4,
        "header, the CLI's key and the harness's two: {list}"
    );

    // Bad requests are refused with one line and store nothing.
    for args in [
        vec!["keys", "create", "--role", "operator", "--tenant", "1"],
        vec!["keys", "create", "--role", "backoffice"],
        vec!["keys", "create", "--role", "till", "--tenant", "999999"],
        vec![
            "keys",
            "create",
            "--role",
            "till",
            "--tenant",
            &t.id.to_string(),
            "--branch",
            "999999",
        ],
        vec!["keys", "create", "--role", "cashier", "--tenant", "1"],
        vec!["keys", "revoke", "nosuchkey"],
    ] {
        let (code, _, err) = pos_cli(&env, &args).await;
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(app.db.count("api_keys").await, 4);

    // The CLI's key works on a server process of its own sharing the
    // database (the in-process one stops first: one owner per shard), only
    // on its branch, until it is revoked.
    app.stop().await;
    let other = ChildServer::start(&url, &[]).await;
    // One sale, retried with its key: stored once whatever the number of tries.
    let mut one_sale = sale(t.products[0], 1, "1.00");
    one_sale["idempotencyKey"] = json!("station-road-2:1");
    let post = |branch: u64| {
        let (client, url, token) = (
            other.client.clone(),
            format!(
                "{}/v1/tenants/{}/branches/{branch}/sales-transactions",
                other.base, t.id
            ),
            token.clone(),
        );
        let body = one_sale.clone();
        async move { post_status(&client, &url, &token, &body).await }
    };
    assert_eq!(post(t.branches[1]).await, 201);
    assert_eq!(post(t.branches[0]).await, 403);
    let (code, out, err) = pos_cli(&env, &["keys", "revoke", &key_id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    // The promise: refused within 2 s on every server sharing the database.
    let refused = eventually(Duration::from_secs(2), || async {
        post(t.branches[1]).await == 401
    })
    .await;
    assert!(
        refused,
        "the other server still took a revoked key after 2 s"
    );
    let (_, list, _) = pos_cli(&env, &["keys", "list"]).await;
    let line = list
        .lines()
        .find(|l| l.starts_with(&key_id))
        .expect("listed");
    assert_eq!(
        line.matches(":").count(),
        4,
        "created and revoked times: {line}"
    );
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn over_its_rate_a_key_gets_429_with_retry_after_stores_nothing_and_recovers() {
    let app = spawn_app_with(Options {
        extra: vec![
            ("POS_RATE_LIMIT_PER_KEY".into(), "1".into()),
            ("POS_RATE_LIMIT_BURST".into(), "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    let path = t.sales_path(0);
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let a = app.post_json(&path, &sale(t.products[0], 1, "1.00")).await;
        statuses.push(a.status.as_u16());
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let wait: u64 = limited
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let created = statuses.iter().filter(|s| **s == 201).count() as u64;
    assert_eq!(app.db.count("sales_transactions").await, created);
    // Other keys have their own bucket.
    assert_eq!(app.get("/v1/top-selling").await.status, 200);
    // Not a wait for a condition: what is tested is that the advertised
    // Retry-After is enough.
    actix_web::rt::time::sleep(Duration::from_secs(wait)).await;
    let again = app.post_json(&path, &sale(t.products[0], 1, "1.00")).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(app.db.count("sales_transactions").await, created + 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn failed_authentications_are_limited_per_address_but_known_keys_keep_working() {
    let app = spawn_app_with(Options {
        extra: vec![("POS_AUTH_FAILURES_PER_ADDRESS".into(), "1".into())],
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    let sales = format!("/v1/tenants/{}/sales", t.id);
    // The back office's key is in the cache before the attack.
    assert_eq!(app.get(&sales).await.status, 200);
    let mut statuses = Vec::new();
    for i in 0..20 {
        let guess = format!("pos_guess{i}_{}", "A".repeat(43));
        statuses.push(app.get_as(&sales, Some(&guess)).await.status.as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let misses = app
        .metric(r#"pos_lookups_total{kind="key",result="ok"}"#)
        .await;
    assert!(misses < 20.0, "every guess was looked up: {misses}");
    // A known key is not slowed down by guesses from the same address...
    assert_eq!(app.get(&sales).await.status, 200);
    // ...but a key this server has not seen yet costs a lookup and waits.
    let fresh = app
        .db
        .key(Scope::Backoffice {
            tenant: tenant_id(t.id),
        })
        .await;
    assert_eq!(app.get_as(&sales, Some(&fresh)).await.status, 429);
    app.cleanup().await;
}

#[actix_web::test]
async fn many_tills_behind_one_address_all_get_in_on_their_first_request() {
    // Default limits: 10 failures a second per address, burst 50. Valid
    // keys seen for the first time must not count against that budget (a
    // shop's NAT, or a proxy in front of the service).
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let mut tokens = Vec::new();
    for _ in 0..80 {
        tokens.push(
            app.db
                .key(Scope::Till {
                    tenant: tenant_id(t.id),
                    branch: None,
                })
                .await,
        );
    }
    let posts = tokens.iter().map(|token| {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}{}", app.base, t.sales_path(0)),
            token.clone(),
        );
        let body = sale(t.products[0], 1, "1.00");
        async move { post_status(&client, &url, &token, &body).await }
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(app.db.count("sales_transactions").await, 80);
    app.cleanup().await;
}

/// Sends `head` and `body` on a raw connection, then waits for the answer or the close.
async fn raw_exchange(app: &TestApp, head: &str, body: &[u8]) -> tokio::net::TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream.write_all(head.as_bytes()).await.expect("head sent");
    stream.write_all(body).await.expect("body sent");
    stream
}

#[actix_web::test]
async fn a_body_that_trickles_gets_408_or_a_close_and_holds_no_worker() {
    let app = spawn_app_with(Options {
        extra: vec![("POS_BODY_TIMEOUT_MS".into(), "500".into())],
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n\r\n",
        t.sales_path(0),
        t.till
    );
    let mut slow = raw_exchange(&app, &head, br#"[{"productID":"#).await;
    // The only worker keeps answering others meanwhile.
    assert_eq!(app.get("/health").await.status, 200);
    let other = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(other.status, 201);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the slow connection was never answered or closed"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    if !text.is_empty() {
        assert!(text.contains("request_timeout"), "{text}");
    }
    assert_eq!(app.db.count("sales_transactions").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn oversized_or_repeating_bodies_get_small_answers_and_store_nothing() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let path = t.sales_path(0);
    let repeated = format!(
        r#"{{"productID":{p},"quantitySold":1,"quantitySold":1000,"pricePerUnit":"1.00"}}"#,
        p = t.products[0]
    );
    let a = app
        .post_raw(&path, Some("application/json"), repeated.into_bytes())
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(
        a.body["error"]["fields"]["quantitySold"],
        "appears more than once"
    );
    // ~1 MiB of made-up member names: the answer stays small.
    let mut body = format!(
        r#"{{"productID":{},"quantitySold":1,"pricePerUnit":"1.00""#,
        t.products[0]
    );
    let mut i = 0;
    while body.len() < (1 << 20) - 200 {
        body.push_str(&format!(r#","{i}{}":1"#, "n".repeat(100)));
        i += 1;
    }
    body.push('}');
    let a = app
        .post_raw(&path, Some("application/json"), body.into_bytes())
        .await;
    assert_eq!(a.status, 422);
    let fields = a.body["error"]["fields"].as_object().expect("fields");
    assert_eq!(fields.len(), 20);
    assert!(
        a.body.to_string().len() < 4096,
        "{} bytes",
        a.body.to_string().len()
    );
    assert_eq!(app.db.count("sales_transactions").await, 0);
    app.cleanup().await;
}

#[actix_web::test]
async fn unknown_tenant_ids_are_remembered_and_looked_up_off_the_write_queue() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let before = app.metric(CATALOG_READS).await;
    for _ in 0..5 {
        let a = app.get(&format!("/v1/tenants/{}/sales", t.id + 500)).await;
        assert_eq!(a.status, 404);
    }
    assert_eq!(
        app.metric(CATALOG_READS).await,
        before + 1.0,
        "not remembered"
    );
    // The read went through the lookup actor, not a persistence queue.
    let persistence_reads = app.get_metrics().await;
    assert!(
        persistence_reads.contains(CATALOG_READS),
        "{persistence_reads}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn auth_disabled_lets_every_request_in_and_ready_says_so() {
    let enabled = spawn_app().await;
    assert_eq!(enabled.get("/ready").await.body["auth"], "enabled");
    enabled.cleanup().await;
    let app = spawn_app_with(Options {
        extra: vec![("POS_AUTH".into(), "disabled".into())],
        ..Options::default()
    })
    .await;
    let t = app.db.tenant(1, 1).await;
    let a = app
        .post_json_as(&t.sales_path(0), None, &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(app.get_as("/v1/top-selling", None).await.status, 200);
    assert_eq!(app.get("/ready").await.body["auth"], "disabled");
    app.cleanup().await;
}

/// When key `id` was revoked, as the connection's user reads it (`None`:
/// no such key; `Some(None)`: not revoked).
async fn revoked_at(conn: &mut mysql_async::Conn, id: &str) -> Option<Option<String>> {
    conn.exec_first(
        "SELECT CAST(revoked AS CHAR) FROM api_keys WHERE id = ?",
        (id,),
    )
    .await
    .expect("the service reads keys")
}

#[actix_web::test]
async fn the_service_runs_as_a_user_that_may_only_read_and_write_its_tables() {
    let db = crate::support::TestDb::create().await;
    let t = db.tenant(1, 2).await;
    let user = format!("pos_u{}", &db.name[9..25]);
    let password = "Pw-test-only-1";
    let mut root = mysql_async::Conn::from_url(mysql_server_url())
        .await
        .expect("root connection");
    // Two accounts, as scripts/demo makes them: the socket matches the
    // one, TCP from 127.0.0.1 the other; the service's (TCP) gets the rights.
    for host in ["127.0.0.1", "localhost"] {
        root.query_drop(format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"
        ))
        .await
        .expect("user created");
        root.query_drop(format!(
            "GRANT SELECT, INSERT, UPDATE ON `{}`.* TO '{user}'@'{host}'",
            db.name
        ))
        .await
        .expect("granted");
    }
    let host = crate::support::host_port(&mysql_server_url());
    let user_url = format!("mysql://{user}:{password}@{host}/{}", db.name);
    let root_url = db.url.clone();
    let app = crate::support::start_app(
        db,
        format!("{{t{}}}:", uuid::Uuid::new_v4().simple()),
        Options {
            app_database_url: Some(user_url.clone()),
            extra: vec![("POS_MIGRATE_DATABASE_URL".into(), root_url)],
            ..Options::default()
        },
    )
    .await;
    app.wait_ready().await;
    let a = app
        .post_json(&t.sales_path(0), &sale(t.products[1], 1, "1.00"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let read = app.get(&format!("/v1/tenants/{}/sales", t.id)).await;
    assert_eq!(read.body["sales_per_product"][0]["quantitySold"], 1);
    assert_eq!(app.get("/v1/top-selling").await.status, 200);
    let tcp_url = format!("{user_url}?prefer_socket=false");
    let mut conn = mysql_async::Conn::from_url(tcp_url.as_str())
        .await
        .expect("user connects");
    for ddl in [
        "DROP TABLE sales_transactions",
        "ALTER TABLE sales_transactions ADD COLUMN x INT",
        "CREATE TABLE x (id INT)",
        "DELETE FROM sales_transactions",
        "GRANT SELECT ON *.* TO CURRENT_USER",
    ] {
        assert!(conn.query_drop(ddl).await.is_err(), "{ddl} was allowed");
    }
    assert_eq!(app.db.count("sales_transactions").await, 1);

    // Keys through the API still work (the two procedures)...
    let keys = format!("/v1/tenants/{}/keys", t.id);
    let made = app
        .post_json_as(
            &keys,
            Some(&t.backoffice),
            &json!({"role": "till", "label": "till 9"}),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let token = made.body["token"].as_str().expect("a token").to_string();
    let sold = app
        .post_json_as(
            &t.sales_path(0),
            Some(&token),
            &sale(t.products[0], 1, "1.00"),
        )
        .await;
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    let id = made.body["id"].as_str().expect("an id").to_string();
    let gone = app
        .send_as("DELETE", &format!("{keys}/{id}"), Some(&t.backoffice), None)
        .await;
    assert_eq!(gone.status, 200, "{:?}", gone.body);
    // ...but the service's user can neither mint an operator key nor take a
    // revocation back, whatever SQL it sends.
    let hash = "0x".to_string() + &"00".repeat(32);
    for forbidden in [
        format!(
            "INSERT INTO api_keys (id, secret_hash, role, label, created) \
             VALUES ('evil', {hash}, 'operator', '', NOW())"
        ),
        format!("UPDATE api_keys SET revoked = NULL WHERE id = '{id}'"),
        "DELETE FROM api_keys".to_string(),
        format!("CALL pos_make_tenant_key('evil', {hash}, 'operator', NULL, NULL, '')"),
    ] {
        assert!(
            conn.query_drop(&forbidden).await.is_err(),
            "{forbidden} was allowed"
        );
    }
    assert!(
        revoked_at(&mut conn, &id).await.flatten().is_some(),
        "the revocation stands"
    );
    let operators: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM api_keys WHERE id = 'evil'")
        .await
        .expect("a count");
    assert_eq!(operators, Some(0));
    // Nor revoke the operator's key through the procedure.
    let operator_id = app
        .db
        .operator
        .split('_')
        .nth(1)
        .expect("a key id")
        .to_string();
    conn.exec_drop("CALL pos_revoke_key(?, ?)", (operator_id.as_str(), t.id))
        .await
        .expect("the call runs");
    assert_eq!(
        revoked_at(&mut conn, &operator_id).await,
        Some(None),
        "the operator's key was revoked"
    );
    let _ = conn.disconnect().await;
    for host in ["127.0.0.1", "localhost"] {
        let _ = root
            .query_drop(format!("DROP USER '{user}'@'{host}'"))
            .await;
    }
    let _ = root.disconnect().await;
    app.cleanup().await;
}

#[actix_web::test]
async fn pos_migrate_grants_the_service_user_its_tables_and_only_select_on_keys() {
    let server = mysql_server_url();
    let name = format!("pos_test_{}", uuid::Uuid::new_v4().simple());
    let user = format!("pos_m{}", &name[9..25]);
    let mut root = mysql_async::Conn::from_url(server.as_str())
        .await
        .expect("root connection");
    root.query_drop(format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'Pw-test-only-2'"
    ))
    .await
    .expect("user created");
    let host = crate::support::host_port(&server);
    let service_url = format!("mysql://{user}:Pw-test-only-2@{host}/{name}");
    let admin_url = format!("{server}/{name}");
    let (code, out, err) = crate::support::child::pos_cli(
        &[
            ("POS_DATABASE_URL", &service_url),
            ("POS_MIGRATE_DATABASE_URL", &admin_url),
        ],
        &["migrate"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let grants: Vec<String> = root
        .query(format!("SHOW GRANTS FOR '{user}'@'127.0.0.1'"))
        .await
        .expect("grants");
    let on = |table: &str| {
        grants
            .iter()
            .find(|g| g.contains(&format!("`{name}`.`{table}`")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(on("api_keys").starts_with("GRANT SELECT ON"), "{grants:?}");
    assert!(
        on("sales_transactions").starts_with("GRANT SELECT, INSERT, UPDATE ON"),
        "{grants:?}"
    );
    assert!(!on("pos_make_tenant_key").is_empty(), "{grants:?}");
    assert!(
        !grants.iter().any(|g| g.contains(&format!("`{name}`.*"))),
        "{grants:?}"
    );
    let _ = root
        .query_drop(format!("DROP USER '{user}'@'127.0.0.1'"))
        .await;
    let _ = root.query_drop(format!("DROP DATABASE `{name}`")).await;
    let _ = root.disconnect().await;
}
