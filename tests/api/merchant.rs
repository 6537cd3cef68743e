//! What a back office needs from the API: reports in its own zone and
//! days, reads of its tenant and whole catalog, misspelt parameters
//! refused, and refusals that say why.

use serde_json::json;

use crate::support::{sale, spawn_app};

#[actix_web::test]
async fn an_unknown_query_parameter_is_422_naming_it_on_every_kind_of_route() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let report = format!("/v1/tenants/{}/reports/sales", t.id);
    let cases = [
        (
            format!("{report}?from=2026-12-01&to=2026-12-02&group_by=day"),
            "group_by",
        ),
        (
            format!("{report}?from=2026-12-01&to=2026-12-02&timeZone=Asia/Tokyo"),
            "timeZone",
        ),
        (format!("/v1/tenants/{}/sales?limit=5", t.id), "limit"),
        (format!("/v1/tenants/{}/products?activ=true", t.id), "activ"),
        ("/v1/top-selling?limit=3&order=desc".to_string(), "order"),
        ("/health?verbose=1".to_string(), "verbose"),
    ];
    for (path, name) in &cases {
        let token = app.token_for(path);
        let a = app.get_as(path, token.as_deref()).await;
        assert_eq!(a.status, 422, "{path}: {}", a.body);
        assert!(
            a.body["error"]["fields"].get(name).is_some(),
            "{path}: {}",
            a.body
        );
    }
    // A POST with a stray parameter stores nothing.
    let posted = app
        .post_json_as(
            &format!("{}?dryRun=true", t.sales_path(0)),
            Some(&t.till),
            &sale(t.products[0], 1, "1.00"),
        )
        .await;
    assert_eq!(posted.status, 422, "{}", posted.body);
    assert!(posted.body["error"]["fields"].get("dryRun").is_some());
    assert_eq!(app.db.count("sales_transactions").await, 0);
    // The parameters a route takes still pass, spelt any way a URL may.
    let ok = app
        .get_as(
            &format!("{report}?from=2026-12-01&to=2026-12-02&group%42y=day"),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_report_counts_days_in_the_tenants_zone_and_takes_plain_dates() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    // Kathmandu is UTC+5:45: 20:00 UTC on the 4th is already the 5th there.
    let zoned = app
        .send_as(
            "PATCH",
            &format!("/v1/tenants/{}", t.id),
            Some(&t.backoffice),
            Some(&json!({"timeZone": "Asia/Kathmandu"})),
        )
        .await;
    assert_eq!(zoned.status, 200, "{}", zoned.body);
    let now = chrono::Utc::now();
    let at = |days: i64, hour: u32| {
        let day = (now - chrono::Duration::days(days)).date_naive();
        day.and_hms_opt(hour, 0, 0).expect("a time").and_utc()
    };
    // Two days ago at 20:00 UTC (yesterday in Kathmandu) and at 10:00 UTC.
    let (late, early) = (at(2, 20), at(2, 10));
    for (when, quantity) in [(late, 3), (early, 1)] {
        let mut body = sale(t.products[0], quantity, "2.00");
        body["timestamp"] = json!(when.to_rfc3339());
        let a = app.post_json(&t.sales_path(0), &body).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let kathmandu_day = late
        .with_timezone(&chrono_tz::Asia::Kathmandu)
        .date_naive()
        .to_string();
    let path = format!(
        "/v1/tenants/{}/reports/sales?from={kathmandu_day}&to={kathmandu_day}&groupBy=day",
        t.id
    );
    let report = app.get_as(&path, Some(&t.backoffice)).await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["tz"], "Asia/Kathmandu");
    let rows = report.body["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{}", report.body);
    assert_eq!(rows[0]["day"], kathmandu_day.as_str());
    assert_eq!(rows[0]["quantitySold"], 3, "only the late sale is that day");
    // The range is that whole local day: it starts at 18:15 UTC the day before.
    assert!(
        report.body["from"]
            .as_str()
            .is_some_and(|f| f.ends_with("T18:15:00Z")),
        "{}",
        report.body
    );
    // `tz` still wins when given.
    let utc = app
        .get_as(&format!("{path}&tz=UTC"), Some(&t.backoffice))
        .await;
    assert_eq!(utc.body["tz"], "UTC");
    // A bad date names its parameter.
    let bad = app
        .get_as(
            &format!(
                "/v1/tenants/{}/reports/sales?from=2026-02-30&to=2026-03-01",
                t.id
            ),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body["error"]["fields"].get("from").is_some(),
        "{}",
        bad.body
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_refusal_says_why_in_the_callers_terms_and_nothing_of_other_tenants() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 1).await;
    let other = app.db.tenant(1, 1).await;
    let bound = app
        .post_json_as(
            &format!("/v1/tenants/{}/keys", t.id),
            Some(&t.backoffice),
            &json!({"role": "till", "branchID": t.branches[0], "label": "till 1"}),
        )
        .await;
    assert_eq!(bound.status, 201, "{}", bound.body);
    let bound = bound.body["token"].as_str().expect("a token").to_string();
    let sales = format!("/v1/tenants/{}/sales", t.id);
    let cases = [
        (
            "GET",
            sales.clone(),
            t.till.clone(),
            "till keys may post sales",
        ),
        (
            "POST",
            t.sales_path(1),
            bound,
            &*format!("bound to branch {}", t.branches[0]),
        ),
        (
            "POST",
            t.sales_path(0),
            t.backoffice.clone(),
            "sales come from till keys",
        ),
        (
            "GET",
            "/v1/top-selling".into(),
            t.backoffice.clone(),
            "only the operator may",
        ),
        (
            "GET",
            format!("/v1/tenants/{}/sales", other.id),
            t.backoffice.clone(),
            &*format!("belongs to tenant {}", t.id),
        ),
        (
            "GET",
            format!("/v1/tenants/{}", t.id),
            t.till.clone(),
            "till keys may",
        ),
    ];
    for (method, path, token, says) in cases {
        let body = sale(t.products[0], 1, "1.00");
        let a = app
            .send_as(
                method,
                &path,
                Some(&token),
                (method == "POST").then_some(&body),
            )
            .await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "forbidden");
        let message = a.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{method} {path}: {message}");
        assert!(
            !message.contains(&format!("tenant {}", other.id)),
            "{method} {path} names another tenant: {message}"
        );
    }
    // A tenant that does not exist is refused in the same words.
    let none = app
        .get_as("/v1/tenants/999999/sales", Some(&t.backoffice))
        .await;
    let some = app
        .get_as(
            &format!("/v1/tenants/{}/sales", other.id),
            Some(&t.backoffice),
        )
        .await;
    assert_eq!((none.status, &none.body), (some.status, &some.body));
    assert_eq!(app.db.count("sales_transactions").await, 0);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_back_office_reads_its_tenant_and_whole_catalog_and_sets_its_own_zone() {
    let app = spawn_app().await;
    let t = app.db.tenant(3, 3).await;
    let other = app.db.tenant(1, 1).await;
    let office = Some(t.backoffice.as_str());
    let tenant = app.get_as(&format!("/v1/tenants/{}", t.id), office).await;
    assert_eq!(tenant.status, 200, "{}", tenant.body);
    assert_eq!(tenant.body["id"], t.id);
    assert_eq!(tenant.body["currency"], "EUR");
    assert!(tenant.body["name"].is_string());
    // An inactive product and a closed branch are listed, and filtered.
    let products = format!("/v1/tenants/{}/products", t.id);
    let off = app
        .send_as(
            "PATCH",
            &format!("{products}/{}", t.products[1]),
            office,
            Some(&json!({"active": false})),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let closed = app
        .send_as(
            "PATCH",
            &format!("/v1/tenants/{}/branches/{}", t.id, t.branches[2]),
            office,
            Some(&json!({"open": false})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    let ids = |body: &serde_json::Value, list: &str| -> Vec<u64> {
        body[list]
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r["id"].as_u64()).collect())
            .unwrap_or_default()
    };
    let all = app.get_as(&products, office).await;
    assert_eq!(ids(&all.body, "products"), t.products, "{}", all.body);
    let inactive = app
        .get_as(&format!("{products}?active=false"), office)
        .await;
    assert_eq!(ids(&inactive.body, "products"), [t.products[1]]);
    let first = app.get_as(&format!("{products}?limit=2"), office).await;
    assert_eq!(ids(&first.body, "products"), t.products[..2]);
    let cursor = first.body["nextCursor"].as_str().expect("a next page");
    let second = app
        .get_as(&format!("{products}?limit=2&cursor={cursor}"), office)
        .await;
    assert_eq!(ids(&second.body, "products"), t.products[2..]);
    let open = app
        .get_as(&format!("/v1/tenants/{}/branches?open=true", t.id), office)
        .await;
    assert_eq!(
        ids(&open.body, "branches"),
        t.branches[..2],
        "{}",
        open.body
    );
    let one = app
        .get_as(&format!("{products}/{}", t.products[1]), office)
        .await;
    assert_eq!(
        (one.status.as_u16(), &one.body["active"]),
        (200, &json!(false))
    );
    // Another tenant's product is no product of this one.
    let foreign = app
        .get_as(&format!("{products}/{}", other.products[0]), office)
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    // A till reads the catalog, not these lists.
    let till = app.get_as(&products, Some(&t.till)).await;
    assert_eq!(till.status, 403);
    // The back office sets its zone, and nothing else of its tenant.
    let tenant_path = format!("/v1/tenants/{}", t.id);
    let zone = app
        .send_as(
            "PATCH",
            &tenant_path,
            office,
            Some(&json!({"timeZone": "Europe/Vienna"})),
        )
        .await;
    assert_eq!(
        (zone.status.as_u16(), &zone.body["timeZone"]),
        (200, &json!("Europe/Vienna"))
    );
    let rename = app
        .send_as(
            "PATCH",
            &tenant_path,
            office,
            Some(&json!({"name": "Mine now"})),
        )
        .await;
    assert_eq!(rename.status, 403, "{}", rename.body);
    assert!(rename.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("only the operator")));
    let after = app.get_as(&tenant_path, office).await;
    assert_eq!(after.body["name"], tenant.body["name"]);
    app.cleanup().await;
}

/// The onboarding that docs/api.md shows is a script, run here as a reader
/// would run it: it cannot drift from what the API answers.
#[actix_web::test]
async fn the_documented_onboarding_runs_literally_against_a_fresh_server() {
    let app = spawn_app().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/onboarding.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .env("OPERATOR", &app.db.operator)
        .env("API", &app.base)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its last line names what it made; the sale is stored at the list price.
    let last = stdout.lines().last().unwrap_or("");
    let value = |name: &str| {
        last.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or("")
            .to_string()
    };
    let tenant = value("T");
    assert!(tenant.parse::<u64>().is_ok(), "{stdout}");
    let sold = app
        .db
        .scalar(&format!(
            "SELECT GROUP_CONCAT(quantity_sold, '@', price_per_unit) FROM sales_transactions WHERE tenant_id = {tenant}"
        ))
        .await;
    assert_eq!(sold, "2@3.20");
    assert!(
        stdout.contains("\"quantitySold\":2"),
        "the report shows it: {stdout}"
    );
    // The keys it printed work for their roles.
    let till = value("TILL");
    let catalog = app
        .get_as(&format!("/v1/tenants/{tenant}/catalog"), Some(&till))
        .await;
    assert_eq!(catalog.status, 200);
    // docs/api.md shows this very file.
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let body = std::fs::read_to_string(script).expect("the script");
    let shown: String = body
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        guide.contains(&shown),
        "docs/api.md shows docs/onboarding.sh as it is"
    );
    app.cleanup().await;
}

/// `pos history` gives a tenant past days through the API; a second run
/// is answered as replays and adds nothing.
#[actix_web::test]
async fn history_fills_past_days_once_through_the_api() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 5).await;
    let keys = std::env::temp_dir().join(format!("pos-history-{}.json", uuid::Uuid::new_v4()));
    let file = json!({
        "operator": app.db.operator,
        "tills": {t.id.to_string(): t.till},
        "backoffices": {t.id.to_string(): t.backoffice},
    });
    std::fs::write(&keys, file.to_string()).expect("keys file");
    let run = || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pos"))
            .args([
                "history",
                "--url",
                &app.base,
                "--tenants",
                &t.id.to_string(),
            ])
            .args(["--days", "7", "--sales-per-day", "5", "--keys-file"])
            .arg(&keys)
            .output()
            .await
            .expect("pos runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        app.db.count("sales_transactions").await
    };
    let first = run().await;
    assert!(first > 0);
    assert_eq!(run().await, first, "a second run adds nothing");
    let days = app
        .db
        .scalar("SELECT COUNT(DISTINCT DATE(log_timestamp)) FROM sales_transactions")
        .await;
    let _ = std::fs::remove_file(&keys);
    // 08:00 to 20:00 in the tenant's zone (UTC here): one date per past day.
    assert_eq!(days, "7", "every past day has sales");
    app.cleanup().await;
}
