//! What a hostile client tries after the first two rounds (slow bodies on
//! the pages, connection floods, spreadsheet formulas, oversized catalogs,
//! odd names and numbers), and what holds.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{eventually, spawn_app_with, web_session, Options, TestApp};

fn options(extra: &[(&str, &str)]) -> Options {
    Options {
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    }
}

fn address(app: &TestApp) -> &str {
    app.base.trim_start_matches("http://")
}

/// A connection that sent `head` (and `body`), and will send no more.
async fn sent(app: &TestApp, head: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address(app)).await.expect("connects");
    stream.write_all(head.as_bytes()).await.expect("head sent");
    stream.write_all(body).await.expect("body sent");
    stream
}

/// Everything the server writes until it closes (at most 20 s).
async fn answer_then_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was never answered or closed");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A `POST` head of `path` announcing `length` bytes of `content_type`.
fn post_head(app: &TestApp, path: &str, content_type: &str, length: usize, cookie: &str) -> String {
    let host = address(app);
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {length}\r\nCookie: {cookie}\r\n\r\n"
    )
}

#[actix_web::test]
async fn sign_in_bodies_that_never_come_get_408_and_cannot_stop_the_api() {
    // The finding: 8 such sockets against 6 connections stopped /health.
    let app = spawn_app_with(options(&[
        ("POS_BODY_TIMEOUT_MS", "500"),
        ("POS_MAX_CONNECTIONS", "6"),
    ]))
    .await;
    let head = post_head(
        &app,
        "/app/session",
        "application/x-www-form-urlencoded",
        100,
        "",
    );
    let mut slow = Vec::new();
    for _ in 0..8 {
        slow.push(sent(&app, &head, b"").await);
    }
    assert_eq!(app.get("/health").await.status, 200);
    for stream in &mut slow {
        let text = answer_then_close(stream).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn every_body_a_page_reads_is_read_within_the_body_timeout() {
    let app = spawn_app_with(options(&[("POS_BODY_TIMEOUT_MS", "500")])).await;
    let tenant = app.db.tenant(1, 0).await;
    let cookie = web_session(&app.base, &tenant.backoffice).await;
    let t = tenant.id;
    let form = post_head(
        &app,
        &format!("/app/tenants/{t}/products"),
        "application/x-www-form-urlencoded",
        100,
        &cookie,
    );
    let import = post_head(
        &app,
        &format!("/app/tenants/{t}/products/import"),
        "multipart/form-data; boundary=XyZ",
        10_000,
        &cookie,
    );
    let part = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
                Content-Type: text/csv\r\n\r\nsku,name\r\nA-1,Latte\r\n";
    let mut streams = vec![
        sent(&app, &form, b"sku=A-1&name=La").await,
        sent(&app, &import, part.as_bytes()).await,
    ];
    for stream in &mut streams {
        let text = answer_then_close(stream).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            text.contains("text/html"),
            "a page's error is a page: {text}"
        );
    }
    assert_eq!(app.db.count("products").await, 0);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_chunked_body_a_route_never_reads_does_not_hold_its_connection() {
    let app = spawn_app_with(options(&[("POS_BODY_TIMEOUT_MS", "500")])).await;
    let host = address(&app);
    // Sign-out reads no body; the chunks go on for as long as the server
    // reads them (every 100 ms, so no idle timer of actix's ever fires).
    let head = format!(
        "POST /app/session/end HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let stream = sent(&app, &head, b"1\r\na\r\n").await;
    let (mut read, mut write) = stream.into_split();
    let trickle = async move {
        for _ in 0..300 {
            if write.write_all(b"1\r\na\r\n").await.is_err() {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let answer = async move {
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut answer)).await;
        (read.is_ok(), String::from_utf8_lossy(&answer).into_owned())
    };
    let ((closed, text), ()) = futures_util::join!(answer, trickle);
    assert!(closed, "the connection was held while the chunks came");
    assert!(text.starts_with("HTTP/1.1 303"), "{text}");
    app.cleanup().await;
}

/// A connection that the server at `address` shut as it accepted it
/// reads its end (or a reset) at once, without a byte of an answer.
async fn shut_at_once(address: &str) -> bool {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    matches!(read, Ok(Ok(0)) | Ok(Err(_)))
}

/// The status of `GET /health` sent on `stream`, if it is answered.
async fn health_on(app: &TestApp, stream: &mut TcpStream) -> Option<u16> {
    let health = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", address(app));
    stream.write_all(health.as_bytes()).await.ok()?;
    let mut status = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut status))
        .await
        .ok()?
        .ok()?;
    std::str::from_utf8(&status[9..]).ok()?.parse().ok()
}

#[actix_web::test]
async fn one_address_holds_at_most_its_connections_and_gets_a_place_back_when_one_ends() {
    let app = spawn_app_with(options(&[("POS_MAX_CONNECTIONS_PER_ADDRESS", "3")])).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(address(&app)).await.expect("connects"));
    }
    assert!(
        shut_at_once(address(&app)).await,
        "a fourth connection was kept"
    );
    assert_eq!(app.metric("pos_http_connections_refused_total").await, 1.0);
    drop(held.pop());
    let served = eventually(Duration::from_secs(5), || async {
        let mut stream = TcpStream::connect(address(&app)).await.expect("connects");
        health_on(&app, &mut stream).await == Some(200)
    })
    .await;
    assert!(
        served,
        "the place of a closed connection was not given back"
    );
    drop(held);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_trusted_proxy_is_not_bounded_by_the_connections_of_one_address() {
    let app = spawn_app_with(options(&[
        ("POS_MAX_CONNECTIONS_PER_ADDRESS", "2"),
        ("POS_TRUSTED_PROXIES", "127.0.0.1"),
    ]))
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(address(&app)).await.expect("connects"));
    }
    for stream in &mut held {
        assert_eq!(health_on(&app, stream).await, Some(200));
    }
    drop(held);
    app.cleanup().await;
}

/// A `POST` of `form` (urlencoded) to a page, from the page's own origin.
async fn post_form(app: &TestApp, path: &str, cookie: &str, form: &str) -> (u16, String) {
    let mut res = crate::support::plain_client()
        .post(format!("{}{path}", app.base))
        .insert_header(("Origin", app.base.as_str()))
        .insert_header(("Cookie", cookie))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body(form.to_string())
        .await
        .expect("the page answers");
    let body = res.body().await.expect("a page");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// A CSV file of products uploaded to the import page.
async fn import(app: &TestApp, tenant: u64, cookie: &str, csv: &str) -> (u16, String) {
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--XyZ--\r\n"
    );
    let mut res = crate::support::plain_client()
        .post(format!("{}/app/tenants/{tenant}/products/import", app.base))
        .insert_header(("Origin", app.base.as_str()))
        .insert_header(("Cookie", cookie))
        .insert_header(("Content-Type", "multipart/form-data; boundary=XyZ"))
        .send_body(body)
        .await
        .expect("the import answers");
    let page = res.body().await.expect("a page");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&page).into_owned(),
    )
}

#[actix_web::test]
async fn a_name_made_to_split_a_spreadsheet_row_stays_one_quoted_cell_in_every_csv() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 0).await;
    let evil = "Latte;=cmd|' /C calc'!A0";
    let made = app
        .post_json_as(
            &format!("/v1/tenants/{}/products", t.id),
            Some(&t.backoffice),
            &serde_json::json!({"sku": "EVIL-1", "name": evil}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let product = made.body["id"].as_u64().expect("an id");
    let sale = serde_json::json!({"productID": product, "quantitySold": 1, "pricePerUnit": "2.00"});
    assert_eq!(app.post_json(&t.sales_path(0), &sale).await.status, 201);
    let now = chrono::Utc::now();
    let range = format!(
        "from={}&to={}",
        (now - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut res = app
        .client
        .get(format!(
            "{}/v1/tenants/{}/reports/sales?{range}&groupBy=product",
            app.base, t.id
        ))
        .bearer_auth(&t.backoffice)
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .expect("answers");
    let api = String::from_utf8_lossy(&res.body().await.expect("csv")).into_owned();
    let cookie = web_session(&app.base, &t.backoffice).await;
    let day = |d: chrono::DateTime<chrono::Utc>| d.format("%Y-%m-%d").to_string();
    let mut res = crate::support::plain_client()
        .get(format!(
            "{}/app/tenants/{}/sales.csv?from={}&to={}&group=product",
            app.base,
            t.id,
            day(now - chrono::Duration::days(1)),
            day(now + chrono::Duration::days(1))
        ))
        .insert_header(("Cookie", cookie.as_str()))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    let page = String::from_utf8_lossy(&res.body().await.expect("csv")).into_owned();
    for csv in [api, page] {
        let row = csv.lines().nth(1).unwrap_or_default().to_string();
        assert_eq!(
            row,
            format!("{product},\"{evil}\",1,2.00,1,0,0.00,0,2.00"),
            "{csv}"
        );
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn a_tenants_products_branches_and_keys_are_bounded_even_by_concurrent_creates() {
    let app = spawn_app_with(options(&[
        ("POS_MAX_PRODUCTS_PER_TENANT", "5"),
        ("POS_MAX_BRANCHES_PER_TENANT", "2"),
        ("POS_MAX_KEYS_PER_TENANT", "3"),
    ]))
    .await;
    let t = app.db.tenant(1, 0).await;
    let products = format!("/v1/tenants/{}/products", t.id);
    let make = |skus: Vec<String>| {
        let body: Vec<_> = skus
            .iter()
            .map(|s| serde_json::json!({"sku": s, "name": s}))
            .collect();
        serde_json::Value::Array(body)
    };
    // Ten concurrent creates of one product each: five are made, no more.
    let creates = (0..10).map(|i| {
        let body = make(vec![format!("P{i}")]);
        let (app, token, path) = (&app, t.backoffice.clone(), products.clone());
        async move { app.post_json_as(&path, Some(&token), &body).await }
    });
    let answers = futures_util::future::join_all(creates).await;
    let made = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 409).collect();
    assert_eq!((made, refused.len()), (5, 5));
    let message = refused[0].body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("POS_MAX_PRODUCTS_PER_TENANT"), "{message}");
    assert_eq!(refused[0].body["error"]["code"], "conflict");
    assert_eq!(app.db.count("products").await, 5);
    // An existing sku is found, not made: still answered at the bound.
    let kept = answers
        .iter()
        .find(|a| a.status == 201)
        .expect("one was made");
    let sku = kept.body["products"][0]["sku"].as_str().unwrap_or_default();
    let again = app
        .post_json_as(&products, Some(&t.backoffice), &make(vec![sku.into()]))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);

    let branches = format!("/v1/tenants/{}/branches", t.id);
    let branch = |code: &str| serde_json::json!({"code": code, "name": code});
    let second = app
        .post_json_as(&branches, Some(&t.backoffice), &branch("B-2"))
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    let third = app
        .post_json_as(&branches, Some(&t.backoffice), &branch("B-3"))
        .await;
    assert_eq!(third.status, 409, "{}", third.body);
    assert_eq!(app.db.count("branches").await, 2);

    // The tenant has a till and a back-office key: one more is the third.
    let keys = format!("/v1/tenants/{}/keys", t.id);
    let till = serde_json::json!({"role": "till", "label": "till"});
    let made = app.post_json_as(&keys, Some(&t.backoffice), &till).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let over = app.post_json_as(&keys, Some(&t.backoffice), &till).await;
    assert_eq!(over.status, 409, "{}", over.body);
    let revoked = app
        .send_as(
            "DELETE",
            &format!("{keys}/{}", made.body["id"].as_str().unwrap_or_default()),
            Some(&t.backoffice),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200);
    let after = app.post_json_as(&keys, Some(&t.backoffice), &till).await;
    assert_eq!(
        after.status, 201,
        "a revoked key frees its place: {}",
        after.body
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn an_import_that_repeats_a_sku_names_both_lines_and_makes_nothing() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 0).await;
    let cookie = web_session(&app.base, &t.backoffice).await;
    let (status, page) = import(
        &app,
        t.id,
        &cookie,
        "sku,name\nA-1,Latte\nB-2,Tea\nA-1,Mocha",
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("line 4") && page.contains("line 2"), "{page}");
    assert_eq!(app.db.count("products").await, 0);
    app.cleanup().await;
}

#[actix_web::test]
async fn names_that_hide_or_reverse_text_are_refused_and_names_are_stored_composed() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 0).await;
    let products = format!("/v1/tenants/{}/products", t.id);
    for (i, bad) in [
        "\u{202E}ettaL",
        "\u{200B}",
        "\u{FEFF}Latte",
        "Latte\u{FFFF}",
        &format!("x{}", "\u{0316}".repeat(199)),
    ]
    .iter()
    .enumerate()
    {
        let body = serde_json::json!({"sku": format!("S{i}"), "name": bad});
        let a = app
            .post_json_as(&products, Some(&t.backoffice), &body)
            .await;
        assert_eq!(a.status, 422, "{bad:?}: {}", a.body);
        assert!(a.body["error"]["fields"]["name"].is_string(), "{}", a.body);
    }
    let body = serde_json::json!({"sku": "CAFE", "name": "Cafe\u{301}"});
    let a = app
        .post_json_as(&products, Some(&t.backoffice), &body)
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["name"], "Caf\u{e9}");
    assert_eq!(
        app.db
            .scalar("SELECT HEX(name) FROM products WHERE sku = 'CAFE'")
            .await,
        "436166C3A9"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn prices_other_than_digits_with_an_optional_fraction_are_refused() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    for price in ["+1.00", "1.", ".5", " 1.00 ", "1e2"] {
        let sale = serde_json::json!({"productID": t.products[0], "quantitySold": 1, "pricePerUnit": price});
        let a = app.post_json(&t.sales_path(0), &sale).await;
        assert_eq!(a.status, 422, "{price:?}: {}", a.body);
        assert!(a.body["error"]["fields"]["pricePerUnit"].is_string());
    }
    assert_eq!(app.db.count("sales_transactions").await, 0);
    app.cleanup().await;
}

#[actix_web::test]
async fn every_gzip_member_is_read_and_bytes_after_them_are_refused() {
    use std::io::Write;
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).expect("in memory");
        e.finish().expect("in memory")
    };
    let sale = |key: &str| {
        format!(
            r#"{{"productID":{},"quantitySold":1,"pricePerUnit":"1.00","idempotencyKey":"{key}"}}"#,
            t.products[0]
        )
    };
    let send = |body: Vec<u8>| {
        let (app, path, token) = (&app, t.sales_path(0), t.till.clone());
        async move {
            let res = app
                .client
                .post(format!("{}{path}", app.base))
                .bearer_auth(token)
                .insert_header(("Content-Type", "application/json"))
                .insert_header(("Content-Encoding", "gzip"))
                .send_body(body)
                .await
                .expect("answers");
            res.status().as_u16()
        }
    };
    // Two members: one array in two halves.
    let mut two = gz(&format!("[{},", sale("a")));
    two.extend(gz(&format!("{}]", sale("b"))));
    assert_eq!(send(two).await, 201);
    let mut trailing = gz(&format!("[{}]", sale("c")));
    trailing.extend_from_slice(b"[not gzip]");
    assert_eq!(send(trailing).await, 400);
    assert_eq!(app.db.count("sales_transactions").await, 2);
    app.cleanup().await;
}

#[actix_web::test]
async fn report_bounds_finer_than_a_microsecond_are_refused() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let a = app
        .get_as(
            &format!(
                "/v1/tenants/{}/reports/sales?from=2026-01-01T00:00:00.0000001Z&to=2026-01-02T00:00:00Z",
                t.id
            ),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body["error"]["fields"]["from"].is_string(), "{}", a.body);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_suspended_tenants_back_office_reads_but_changes_nothing_and_the_operator_still_may() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let suspend = app
        .send_as(
            "PATCH",
            &format!("/v1/tenants/{}", t.id),
            Some(&app.db.operator),
            Some(&serde_json::json!({"suspended": true})),
        )
        .await;
    assert_eq!(suspend.status, 200, "{}", suspend.body);
    let writes = [
        (
            "POST",
            format!("/v1/tenants/{}/products", t.id),
            serde_json::json!({"sku": "N", "name": "New"}),
        ),
        (
            "PATCH",
            format!("/v1/tenants/{}/products/{}", t.id, t.products[0]),
            serde_json::json!({"name": "Renamed"}),
        ),
        (
            "POST",
            format!("/v1/tenants/{}/branches", t.id),
            serde_json::json!({"code": "N", "name": "New"}),
        ),
        (
            "PATCH",
            format!("/v1/tenants/{}/branches/{}", t.id, t.branches[0]),
            serde_json::json!({"open": false}),
        ),
        (
            "POST",
            format!("/v1/tenants/{}/keys", t.id),
            serde_json::json!({"role": "till", "label": "t"}),
        ),
    ];
    for (method, path, body) in &writes {
        let a = app
            .send_as(method, path, Some(&t.backoffice), Some(body))
            .await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "tenant_suspended");
    }
    let cookie = web_session(&app.base, &t.backoffice).await;
    let (status, page) = post_form(
        &app,
        &format!("/app/tenants/{}/products", t.id),
        &cookie,
        "sku=P2&name=Page",
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(app.db.count("products").await, 1);
    assert_eq!(app.db.count("branches").await, 1);
    // Reads stay, reports too.
    let catalog = app
        .get_as(
            &format!("/v1/tenants/{}/catalog", t.id),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!(catalog.status, 200);
    let report = app
        .get_as(
            &format!(
                "/v1/tenants/{}/reports/sales?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
                t.id
            ),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    // The operator may still change it.
    let (method, path, body) = &writes[0];
    let a = app
        .send_as(method, path, Some(&app.db.operator), Some(body))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    app.cleanup().await;
}

/// The status of a product form posted through `base` from another site
/// (`scheme://evil.example`) that claims, in every forwarding header, to
/// be the host it was sent to.
async fn forged_product_form(base: &str, tenant: u64, cookie: &str, scheme: &str) -> u16 {
    let mut res = crate::support::plain_client()
        .post(format!("{base}/app/tenants/{tenant}/products"))
        .insert_header(("Origin", format!("{scheme}://evil.example")))
        .insert_header(("X-Forwarded-Host", "evil.example"))
        .insert_header(("X-Forwarded-Proto", scheme))
        .insert_header(("Forwarded", format!("host=evil.example;proto={scheme}")))
        .insert_header(("Cookie", cookie))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body("sku=EVIL&name=Evil")
        .await
        .expect("answers");
    let _ = res.body().await;
    res.status().as_u16()
}

/// A sign-in from `origin` that says it came over TLS: its status and the
/// cookie it sets.
async fn sign_in_over_tls(app: &TestApp, origin: &str, key: &str) -> (u16, String) {
    let res = crate::support::plain_client()
        .post(format!("{}/app/session", app.base))
        .insert_header(("Origin", origin))
        .insert_header(("X-Forwarded-Proto", "https"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body(format!("key={key}"))
        .await
        .expect("answers");
    let set = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (res.status().as_u16(), set)
}

#[actix_web::test]
async fn forwarded_headers_count_only_from_a_trusted_proxy() {
    // Directly connected, a client's X-Forwarded-Host and -Proto are its own say-so.
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(1, 0).await;
    let cookie = web_session(&app.base, &t.backoffice).await;
    assert_eq!(
        forged_product_form(&app.base, t.id, &cookie, "https").await,
        403
    );
    assert_eq!(
        forged_product_form(&app.base, t.id, &cookie, "http").await,
        403
    );
    assert_eq!(app.db.count("products").await, 0);
    // Nor does it make the sign-in's cookie a TLS one.
    let (_, set) = sign_in_over_tls(&app, &app.base, &t.backoffice).await;
    assert!(
        set.starts_with("pos_session=") && !set.contains("Secure"),
        "{set}"
    );
    app.cleanup().await;

    // Behind a trusted proxy that says TLS: a secure `__Host-` cookie.
    let app = spawn_app_with(options(&[("POS_TRUSTED_PROXIES", "127.0.0.1")])).await;
    let t = app.db.tenant(1, 0).await;
    let origin = format!("https://{}", address(&app));
    let (status, set) = sign_in_over_tls(&app, &origin, &t.backoffice).await;
    assert_eq!(status, 303);
    assert!(
        set.starts_with("__Host-pos_session=")
            && set.contains("; Path=/;")
            && set.contains("Secure"),
        "{set}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn the_shipped_haproxy_times_out_slow_bodies_itself_and_strips_forwarded_headers() {
    // Whatever reaches pos would wait a minute for its body: a 408 in time
    // can only be HAProxy's own.
    let app = spawn_app_with(options(&[
        ("POS_TRUSTED_PROXIES", "127.0.0.1"),
        ("POS_BODY_TIMEOUT_MS", "60000"),
    ]))
    .await;
    let haproxy = crate::support::peers::Haproxy::start(address(&app), address(&app)).await;
    let proxy = haproxy.base.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /app/session HTTP/1.1\r\nHost: {proxy}\r\nOrigin: http://{proxy}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
    );
    let mut stream = TcpStream::connect(&proxy).await.expect("connects");
    stream.write_all(head.as_bytes()).await.expect("head sent");
    let text = answer_then_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // A forged host behind the proxy: pos believes the proxy, which
    // passes on no X-Forwarded-Host of a client's.
    let t = app.db.tenant(1, 0).await;
    let cookie = web_session(&haproxy.base, &t.backoffice).await;
    // (Plain HTTP, as HAProxy's own X-Forwarded-Proto says: only the
    // forged host could make the origin match.)
    assert_eq!(
        forged_product_form(&haproxy.base, t.id, &cookie, "http").await,
        403
    );
    assert_eq!(app.db.count("products").await, 0);
    // One address holds at most 256 connections through the proxy too:
    // of 257 (accepted in whatever order HAProxy's threads take them),
    // exactly one is shut.
    let mut held = Vec::new();
    for _ in 0..257 {
        held.push(TcpStream::connect(&proxy).await.expect("connects"));
    }
    let mut shut = vec![false; held.len()];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !shut.contains(&true) && std::time::Instant::now() < deadline {
        for (stream, shut) in held.iter_mut().zip(shut.iter_mut()) {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await;
            *shut |= matches!(read, Ok(Ok(0)) | Ok(Err(_)));
        }
    }
    assert_eq!(
        shut.iter().filter(|s| **s).count(),
        1,
        "HAProxy kept {} of 257",
        shut.iter().filter(|s| !**s).count()
    );
    drop(held);
    drop(haproxy);
    app.cleanup().await;
}
