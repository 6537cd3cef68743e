//! Sales reports: sums equal to the history's, in a zone's calendar across
//! daylight-saving changes and midnight, paged, as JSON and CSV, for the
//! right keys only, reading only the tenant's own index range.

use std::collections::BTreeMap;

use chrono::{DateTime, Offset, Timelike, Utc};
use chrono_tz::Tz;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::{spawn_app, Tenant, TestApp};

/// A sale of the history the tests write (cents for exact sums).
#[derive(Debug, Clone)]
pub(crate) struct Sale {
    pub(crate) at: DateTime<Utc>,
    pub(crate) branch: u64,
    pub(crate) product: u64,
    pub(crate) quantity: u64,
    pub(crate) price_cents: i64,
}

/// A small deterministic generator: the same history and cases every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(crate) fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&Utc)
}

/// Sales around both of Europe's 2026 changes and a few midnights, written
/// straight into the history (what a report reads).
pub(crate) async fn write_history(app: &TestApp, t: &Tenant, rng: &mut Rng, n: usize) -> Vec<Sale> {
    let windows = [
        ("2026-03-27T00:00:00Z", 5),
        ("2026-10-23T00:00:00Z", 5),
        ("2026-12-31T20:00:00Z", 1),
    ];
    let mut sales = Vec::new();
    for i in 0..n {
        let (start, days) = windows[i % windows.len()];
        let at = utc(start) + chrono::Duration::seconds(rng.below(days * 86_400) as i64);
        sales.push(Sale {
            at,
            branch: t.branches[rng.below(t.branches.len() as u64) as usize],
            product: t.products[rng.below(t.products.len() as u64) as usize],
            quantity: 1 + rng.below(5),
            price_cents: 1 + rng.below(10_000) as i64,
        });
    }
    insert(app, t.id, &sales).await;
    sales
}

pub(crate) async fn insert(app: &TestApp, tenant: u64, sales: &[Sale]) {
    let mut conn = app.db.conn().await;
    for chunk in sales.chunks(200) {
        let values: Vec<String> = chunk
            .iter()
            .map(|s| {
                format!(
                    "({}, {}, {}, {}, {}.{:02}, '{}')",
                    tenant,
                    s.branch,
                    s.product,
                    s.quantity,
                    s.price_cents / 100,
                    s.price_cents % 100,
                    s.at.format("%Y-%m-%d %H:%M:%S%.6f")
                )
            })
            .collect();
        conn.query_drop(format!(
            "INSERT INTO sales_transactions \
             (tenant_id, branch_id, product_id, quantity_sold, price_per_unit, log_timestamp) \
             VALUES {}",
            values.join(", ")
        ))
        .await
        .expect("history written");
    }
}

/// (time label, branch, product) -> (quantity, cents, count), computed
/// from each sale's own local time: no stretches, no SQL.
pub(crate) type Expected = BTreeMap<(Option<String>, Option<u64>, Option<u64>), (u64, i64, u64)>;

pub(crate) fn expected(
    sales: &[Sale],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
    group: &[&str],
) -> Expected {
    let mut out = Expected::new();
    for s in sales.iter().filter(|s| s.at >= from && s.at < to) {
        let local = s.at.with_timezone(&tz);
        let time = if group.contains(&"day") {
            Some(local.format("%Y-%m-%d").to_string())
        } else if group.contains(&"hour") {
            let start = local
                .naive_local()
                .with_minute(0)
                .and_then(|t| t.with_second(0));
            let start = start.and_then(|t| t.with_nanosecond(0)).expect("an hour");
            let offset = local.offset().fix();
            Some(format!("{}{}", start.format("%Y-%m-%dT%H:%M:%S"), offset))
        } else {
            None
        };
        let key = (
            time,
            group.contains(&"branch").then_some(s.branch),
            group.contains(&"product").then_some(s.product),
        );
        let e = out.entry(key).or_default();
        e.0 += s.quantity;
        e.1 += s.quantity as i64 * s.price_cents;
        e.2 += 1;
    }
    out
}

pub(crate) fn cents(text: &str) -> i64 {
    let (units, fraction) = text.split_once('.').expect("two decimals");
    units.parse::<i64>().expect("units") * 100 + fraction.parse::<i64>().expect("cents")
}

/// Every page of a report, followed by its cursors.
pub(crate) async fn all_rows(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    // The report route takes no `tenant` parameter (422): it goes in the path.
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("tenant="))
        .collect();
    let base = format!(
        "/v1/tenants/{}/reports/sales?{}",
        query_tenant(query),
        rest.join("&")
    );
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.clone(),
        };
        let a = app.get_as(&path, Some(token)).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        rows.extend(a.body["rows"].as_array().expect("rows").iter().cloned());
        match a.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return rows,
        }
    }
    panic!("the pages never ended");
}

/// The tests put `tenant=N` first in their query strings (`all_rows` moves it to the path).
fn query_tenant(query: &str) -> &str {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("tenant="))
        .expect("tenant=")
}

pub(crate) fn as_expected(rows: &[Value]) -> Expected {
    rows.iter()
        .map(|r| {
            let time = r["day"].as_str().or(r["hour"].as_str()).map(str::to_string);
            let key = (time, r["branchID"].as_u64(), r["productID"].as_u64());
            let sums = (
                r["quantitySold"].as_u64().expect("quantity"),
                cents(r["totalSales"].as_str().expect("total")),
                r["salesCount"].as_u64().expect("count"),
            );
            (key, sums)
        })
        .collect()
}

/// The rows come in the order of their keys: time (as an instant), then
/// branch, then product.
fn in_key_order(rows: &[Value]) -> bool {
    let key = |r: &Value| {
        let time = r["day"]
            .as_str()
            .map(|d| format!("{d}T00:00:00Z"))
            .or(r["hour"].as_str().map(str::to_string))
            .map(|t| utc(&t));
        (time, r["branchID"].as_u64(), r["productID"].as_u64())
    };
    rows.windows(2).all(|w| key(&w[0]) < key(&w[1]))
}

#[actix_web::test]
async fn reports_equal_the_history_for_random_ranges_zones_and_groupings_across_dst_and_midnight() {
    let app = spawn_app().await;
    let t = app.db.tenant(3, 4).await;
    let other = app.db.tenant(1, 1).await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let sales = write_history(&app, &t, &mut rng, 900).await;
    // Another tenant's sales at the same instants are never counted.
    write_history(&app, &other, &mut Rng(7), 100).await;
    let zones = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
    ];
    let groupings: [&[&str]; 8] = [
        &[],
        &["day"],
        &["hour"],
        &["branch"],
        &["product"],
        &["day", "branch"],
        &["hour", "product"],
        &["day", "branch", "product"],
    ];
    let first = utc("2026-03-26T00:00:00Z").timestamp();
    let span = utc("2027-01-02T00:00:00Z").timestamp() - first;
    for case in 0..40 {
        let a = first + rng.below(span as u64) as i64;
        let b = a + 1 + rng.below(15 * 86_400) as i64;
        let (from, to) = (
            DateTime::from_timestamp(a, 0).expect("from"),
            DateTime::from_timestamp(b, 0).expect("to"),
        );
        // Some cases start at a window's start: they always hold sales.
        let from = if case % 3 == 0 {
            utc("2026-10-23T00:00:00Z")
        } else {
            from
        };
        let to = to.max(from + chrono::Duration::days(5));
        let zone = zones[case % zones.len()];
        let group = groupings[(case / 2) % groupings.len()];
        let limit = [10_000, 7, 50][case % 3];
        let query = format!(
            "tenant={}&from={}&to={}&tz={zone}&groupBy={}&limit={limit}",
            t.id,
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ"),
            group.join(",")
        );
        let rows = all_rows(&app, &t.backoffice, &query).await;
        let tz: Tz = zone.parse().expect("zone");
        assert_eq!(
            as_expected(&rows),
            expected(&sales, from, to, tz, group),
            "case {case}: {query}"
        );
        assert_eq!(as_expected(&rows).len(), rows.len(), "{query}: a key twice");
        assert!(in_key_order(&rows), "{query}: out of order");
        for r in &rows {
            if r["branchID"].is_u64() {
                assert!(r["branchName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Branch ")));
            }
            if r["productID"].is_u64() {
                assert!(r["productName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Product ")));
            }
        }
    }
    // Berlin's autumn change: local 02:00 happens twice, two rows.
    let twice: Vec<Sale> = ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"]
        .iter()
        .map(|at| Sale {
            at: utc(at),
            branch: t.branches[0],
            product: t.products[0],
            quantity: 1,
            price_cents: 100,
        })
        .collect();
    insert(&app, t.id, &twice).await;
    let query = format!(
        "tenant={}&from=2026-10-25T00:00:00Z&to=2026-10-25T02:00:00Z&tz=Europe/Berlin&groupBy=hour",
        t.id
    );
    let rows = all_rows(&app, &t.backoffice, &query).await;
    let hours: Vec<&str> = rows.iter().filter_map(|r| r["hour"].as_str()).collect();
    assert!(hours.contains(&"2026-10-25T02:00:00+02:00"), "{hours:?}");
    assert!(hours.contains(&"2026-10-25T02:00:00+01:00"), "{hours:?}");
    app.cleanup().await;
}

#[actix_web::test]
async fn a_sale_answered_201_is_in_the_report_at_once_and_csv_gives_the_same_rows() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 2).await;
    app.db
        .exec(&format!(
            "UPDATE products SET name = 'Tea, \"green\"' WHERE id = {}",
            t.products[0]
        ))
        .await;
    let now = Utc::now();
    let from = (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let to = (now + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let path = format!(
        "/v1/tenants/{}/reports/sales?from={from}&to={to}&groupBy=day,product",
        t.id
    );
    let empty = app.get_as(&path, Some(&t.backoffice)).await;
    assert_eq!(
        (empty.status.as_u16(), empty.body["rows"].clone()),
        (200, json!([]))
    );
    for (posted, (product, quantity, price)) in [(0, 2, "2.50"), (1, 1, "0.10"), (0, 1, "2.50")]
        .into_iter()
        .enumerate()
    {
        let sale = json!({"productID": t.products[product], "quantitySold": quantity, "pricePerUnit": price});
        let a = app.post_json(&t.sales_path(0), &sale).await;
        assert_eq!(a.status, 201, "{}", a.body);
        // Read-your-writes: the next request sees it.
        let report = app.get_as(&path, Some(&t.backoffice)).await;
        let total: u64 = report.body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["salesCount"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(total, posted as u64 + 1, "{}", report.body);
    }
    let report = app.get_as(&path, Some(&t.backoffice)).await;
    let rows = report.body["rows"].as_array().expect("rows").clone();
    let counts: Vec<(u64, &str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["quantitySold"].as_u64().unwrap_or(0),
                r["totalSales"].as_str().unwrap_or(""),
                r["salesCount"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(counts, [(3, "7.50", 2), (1, "0.10", 1)], "{}", report.body);
    assert_eq!(report.body["groupBy"], json!(["day", "product"]));
    assert_eq!(report.body["tz"], "UTC");
    // The same rows as CSV.
    let mut res = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&t.backoffice)
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv")));
    let body = String::from_utf8(res.body().await.expect("body").to_vec()).expect("utf-8");
    let day = now.format("%Y-%m-%d");
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        lines,
        [
            "day,productID,productName,quantitySold,totalSales,salesCount,quantityRefunded,refunds,refundCount,netSales".to_string(),
            format!(
                "\"{day}\",{},\"Tea, \"\"green\"\"\",3,7.50,2,0,0.00,0,7.50",
                t.products[0]
            ),
            format!("\"{day}\",{},\"Product 1\",1,0.10,1,0,0.00,0,0.10", t.products[1]),
            String::new(),
        ]
    );
    // A CSV page points at the next one.
    let mut res = app
        .client
        .get(format!("{}{path}&limit=1", app.base))
        .bearer_auth(&t.backoffice)
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .expect("answers");
    let link = res
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a Link to the next page")
        .to_string();
    assert!(
        link.ends_with("rel=\"next\"") && link.contains("cursor="),
        "{link}"
    );
    let first = res.body().await.expect("body");
    let next = link.trim_start_matches('<').split('>').next().expect("url");
    let mut res = app
        .client
        .get(format!("{}{next}", app.base))
        .bearer_auth(&t.backoffice)
        .insert_header(("Accept", "text/csv"))
        .send()
        .await
        .expect("answers");
    assert!(res.headers().get("link").is_none());
    let second = String::from_utf8(res.body().await.expect("body").to_vec()).expect("utf-8");
    assert_ne!(&first[..], second.as_bytes());
    assert!(second.contains("Product 1"), "{second}");
    app.cleanup().await;
}

#[actix_web::test]
async fn reports_are_for_the_tenants_back_office_and_the_operator_and_bad_parameters_are_named() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let other = app.db.tenant(1, 1).await;
    let range = "from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z";
    let path = format!("/v1/tenants/{}/reports/sales?{range}", t.id);
    let operator = app.db.operator.clone();
    for (token, status) in [
        (Some(t.backoffice.as_str()), 200),
        (Some(operator.as_str()), 200),
        (Some(t.till.as_str()), 403),
        (Some(other.backoffice.as_str()), 403),
        (None, 401),
    ] {
        let a = app.get_as(&path, token).await;
        assert_eq!(a.status, status, "{token:?}: {}", a.body);
    }
    // An unknown tenant is the operator's 404; to anyone else, a 403 that
    // says nothing about whether it exists.
    let unknown = format!("/v1/tenants/999999/reports/sales?{range}");
    assert_eq!(app.get_as(&unknown, Some(&operator)).await.status, 404);
    assert_eq!(app.get_as(&unknown, Some(&t.backoffice)).await.status, 403);
    for (query, parameter) in [
        ("to=2026-02-01T00:00:00Z", "from"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("from=2025-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "to"),
        (&format!("{range}&tz=Not/AZone") as &str, "tz"),
        (&format!("{range}&groupBy=week"), "groupBy"),
        (&format!("{range}&branchID=x"), "branchID"),
        (&format!("{range}&groupBy=day&cursor=nonsense"), "cursor"),
        (&format!("{range}&limit=10001"), "limit"),
    ] {
        let a = app
            .get_as(
                &format!("/v1/tenants/{}/reports/sales?{query}", t.id),
                Some(&t.backoffice),
            )
            .await;
        assert_eq!(a.status, 422, "{query}: {}", a.body);
        assert!(
            a.body["error"]["fields"][parameter].is_string(),
            "{query}: {}",
            a.body
        );
    }
    app.cleanup().await;
}

/// A report reads its tenant's range of the covering index and nothing
/// else: MariaDB's own count of the rows it read equals that tenant's
/// rows in the range, whatever the other tenants hold.
#[actix_web::test]
async fn a_report_reads_only_its_tenants_index_range() {
    let app = spawn_app().await;
    let t = app.db.tenant(2, 2).await;
    let other = app.db.tenant(1, 1).await;
    write_history(&app, &t, &mut Rng(11), 300).await;
    write_history(&app, &other, &mut Rng(13), 3000).await;
    let (from, to) = ("2026-10-23 00:00:00", "2026-10-28 00:00:00");
    let theirs: u64 = app
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM sales_transactions WHERE tenant_id = {} \
             AND log_timestamp >= '{from}' AND log_timestamp < '{to}'",
            t.id
        ))
        .await
        .parse()
        .expect("a count");
    assert!(theirs > 0);
    let group = pos::domain::GroupBy {
        time: Some(pos::domain::TimeBucket::Day),
        branch: true,
        product: false,
    };
    let sql = pos::store::report_sql(group, 0, 0, false).replacen('?', "3600", 1);
    let sql = sql
        .replacen('?', &t.id.to_string(), 1)
        .replacen('?', &format!("'{from}'"), 1)
        .replacen('?', &format!("'{to}'"), 1);
    let mut conn = app.db.conn().await;
    let plan: Option<String> = conn
        .query_first(format!("ANALYZE FORMAT=JSON {sql}"))
        .await
        .expect("ANALYZE");
    drop(conn);
    let plan: Value = serde_json::from_str(&plan.expect("a plan")).expect("JSON");
    let table = find_table(&plan).expect("the plan's table");
    assert_eq!(table["key"], "ix_sales_report", "{plan}");
    assert_eq!(table["access_type"], "range", "{plan}");
    assert_eq!(table["using_index"], true, "covering: {plan}");
    assert_eq!(table["r_rows"].as_f64(), Some(theirs as f64), "{plan}");
    app.cleanup().await;
}

/// The `table` object of a MariaDB JSON plan, wherever it is nested.
fn find_table(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(m) => m.get("table").or_else(|| m.values().find_map(find_table)),
        Value::Array(a) => a.iter().find_map(find_table),
        _ => None,
    }
}

/// Index entries and rows this connection's statements read so far
/// (MariaDB's handler counters).
async fn rows_read(conn: &mut mysql_async::Conn) -> u64 {
    let counters: Vec<(String, String)> = conn
        .query("SHOW SESSION STATUS LIKE 'Handler_read%'")
        .await
        .expect("status");
    counters
        .iter()
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// A report's outcome on `conn`, and the entries it read.
async fn read_report(
    conn: &mut mysql_async::Conn,
    query: &pos::domain::ReportQuery,
) -> (pos::store::ReportOutcome, u64) {
    let before = rows_read(conn).await;
    let limit = std::time::Duration::from_secs(30);
    let outcome = pos::store::sales_report(conn, query, limit)
        .await
        .expect("a report");
    (outcome, rows_read(conn).await - before)
}

/// Page 2 of a report reads from its cursor on: a last page of one day
/// of ten reads a fraction of what the first page read, not the whole
/// range again.
#[actix_web::test]
async fn a_page_after_a_cursor_reads_only_from_the_cursor_on() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let sales: Vec<Sale> = (0..1000)
        .map(|i| Sale {
            at: utc("2026-05-01T00:00:00Z") + chrono::Duration::minutes(i * 14),
            branch: t.branches[0],
            product: t.products[0],
            quantity: 1,
            price_cents: 100,
        })
        .collect();
    insert(&app, t.id, &sales).await;
    let tenant = pos::domain::TenantId::new(t.id).expect("an id");
    let pairs = |cursor: Option<&str>| {
        let mut p = vec![
            ("from".to_string(), "2026-05-01T00:00:00Z".to_string()),
            ("to".to_string(), "2026-05-11T00:00:00Z".to_string()),
            ("groupBy".to_string(), "day".to_string()),
            ("limit".to_string(), "9".to_string()),
        ];
        p.extend(cursor.map(|c| ("cursor".to_string(), c.to_string())));
        p
    };
    let mut conn = app.db.conn().await;
    let first =
        pos::http::parse::report_query(tenant, chrono_tz::Tz::UTC, &pairs(None)).expect("a query");
    let (outcome, first_read) = read_report(&mut conn, &first).await;
    let pos::store::ReportOutcome::Page(page) = outcome else {
        panic!("a page: {outcome:?}");
    };
    assert_eq!(page.rows.len(), 9);
    let cursor = page.next.expect("a next page").cursor();
    let second = pos::http::parse::report_query(tenant, chrono_tz::Tz::UTC, &pairs(Some(&cursor)))
        .expect("a query");
    let (outcome, second_read) = read_report(&mut conn, &second).await;
    let pos::store::ReportOutcome::Page(page) = outcome else {
        panic!("a page: {outcome:?}");
    };
    assert_eq!(page.rows.len(), 1);
    assert!(page.next.is_none());
    assert_eq!(
        page.rows[0].key.day(page_group()).as_deref(),
        Some("2026-05-10")
    );
    assert!(
        second_read * 4 < first_read,
        "page 2 read {second_read} entries, page 1 {first_read}"
    );
    drop(conn);
    app.cleanup().await;
}

fn page_group() -> pos::domain::GroupBy {
    pos::domain::GroupBy {
        time: Some(pos::domain::TimeBucket::Day),
        branch: false,
        product: false,
    }
}

/// Statements of this test's database that are report queries (they carry
/// the reports' time limit), running or waiting for a lock.
async fn report_statements(app: &TestApp) -> u64 {
    app.db
        .scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE DB = '{}' AND ID <> CONNECTION_ID() \
             AND INFO LIKE '%max_statement_time=% FOR%'",
            app.db.name
        ))
        .await
        .parse()
        .expect("a count")
}

/// One tenant's burst of heavy reports gets its bound and 429 past it;
/// another tenant's report waits its turn and is answered, and its
/// overview has a connection of its own. Reports are held in MariaDB by a
/// table lock so that none ends before the test says.
#[actix_web::test]
async fn one_tenants_burst_of_reports_never_keeps_another_tenants_report_or_overview_away() {
    let app = spawn_app().await;
    let busy = app.db.tenant(1, 1).await;
    let light = app.db.tenant(1, 1).await;
    let mut lock = app.db.conn().await;
    lock.query_drop("LOCK TABLES sales_transactions WRITE")
        .await
        .expect("lock");
    let range = "from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z&groupBy=hour,branch,product";
    let report = |t: &Tenant| {
        let (app, path, token) = (
            &app,
            format!("/v1/tenants/{}/reports/sales?{range}", t.id),
            t.backoffice.clone(),
        );
        async move { app.get_as(&path, Some(&token)).await }
    };
    let answered = std::cell::Cell::new(0);
    let burst = futures_util::future::join_all((0..5).map(|_| {
        let (answered, asked) = (&answered, report(&busy));
        async move {
            let a = asked.await;
            answered.set(answered.get() + 1);
            a
        }
    }));
    let cookie = crate::support::web_session(&app.base, &light.backoffice).await;
    let overview = format!("{}/app/tenants/{}/", app.base, light.id);
    let rest = async {
        let refused = crate::support::eventually(std::time::Duration::from_secs(10), || async {
            answered.get() == 3
        })
        .await;
        assert!(refused, "three of the five were not refused at once");
        // Both report connections are the busy tenant's now.
        let control = async {
            // Two reports and the overview's first statement are in
            // MariaDB, each with the reports' time limit; the light
            // tenant's report waits.
            let held = crate::support::eventually(std::time::Duration::from_secs(10), || async {
                report_statements(&app).await == 3
            })
            .await;
            let waiting =
                crate::support::eventually(std::time::Duration::from_secs(10), || async {
                    app.metric("pos_reports_waiting").await == 1.0
                })
                .await;
            let running = report_statements(&app).await;
            lock.query_drop("UNLOCK TABLES").await.expect("unlock");
            assert!(held, "the overview does not have a connection of its own");
            assert!(waiting, "the light tenant's report does not wait its turn");
            assert_eq!(
                running, 3,
                "a third report ran on the reports' two connections"
            );
        };
        futures_util::join!(
            report(&light),
            crate::support::page_status(&overview, &cookie),
            control
        )
    };
    let (burst, (waiting, page, ())) = futures_util::join!(burst, rest);
    let statuses: Vec<u16> = burst.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    let too_many: Vec<_> = burst.iter().filter(|a| a.status == 429).collect();
    assert_eq!(too_many.len(), 3, "{statuses:?}");
    assert_eq!(too_many[0].body["error"]["code"], "rate_limited");
    assert!(too_many[0].retry_after.is_some());
    assert_eq!(waiting.status, 200, "{}", waiting.body);
    assert_eq!(page, 200);
    drop(lock);
    app.cleanup().await;
}
