//! Rollups: reports read them where they answer and stay equal to the
//! history (refunds too), in the tenant's zone and in others, after its
//! zone changes, across a roll that fails half way, and a wrong row is
//! found by `pos rollups verify` and mended by `pos rollups rebuild`. The
//! fault tests' kills end with [`assert_rollups_hold_the_history`].

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::reports::{
    all_rows, as_expected, cents, expected, insert, utc, write_history, Rng, Sale,
};
use crate::support::child::pos_cli;
use crate::support::{Tenant, TestApp, TestDb};

const GROUPINGS: [&[&str]; 8] = [
    &[],
    &["day"],
    &["hour"],
    &["branch"],
    &["product"],
    &["day", "branch"],
    &["day", "product"],
    &["branch", "product"],
];

/// A refund of one unit of each of the tenant's first `n` sales, an hour
/// after it, written straight into the history.
async fn write_refunds(db: &TestDb, tenant: u64, n: usize) {
    db.exec(&format!(
        "INSERT INTO refunds (tenant_id, branch_id, sale_id, product_id, quantity, amount, kind, created_at) \
         SELECT tenant_id, branch_id, id, product_id, 1, price_per_unit, 'refund', log_timestamp + INTERVAL 1 HOUR \
         FROM sales_transactions WHERE tenant_id = {tenant} ORDER BY id LIMIT {n}"
    ))
    .await;
}

/// Cents refunded in `[from, to)`, from the history.
async fn refunded_cents(db: &TestDb, tenant: u64, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let sum = db
        .scalar(&format!(
            "SELECT COALESCE(SUM(amount), 0.00) FROM refunds WHERE tenant_id = {tenant} \
             AND created_at >= '{}' AND created_at < '{}'",
            from.format("%Y-%m-%d %H:%M:%S"),
            to.format("%Y-%m-%d %H:%M:%S")
        ))
        .await;
    cents(&sum)
}

fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Every grouping of `[from, to)` in `zone` equals the history: the sales
/// by the report's own oracle, the refunds in total.
async fn assert_reports_equal_the_history(
    app: &TestApp,
    t: &Tenant,
    sales: &[Sale],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    zone: &str,
) {
    let tz: Tz = zone.parse().expect("zone");
    let refunds = refunded_cents(&app.db, t.id, from, to).await;
    for group in GROUPINGS {
        let query = format!(
            "tenant={}&from={}&to={}&tz={zone}&groupBy={}&limit=500",
            t.id,
            instant(from),
            instant(to),
            group.join(",")
        );
        let rows = all_rows(app, &t.backoffice, &query).await;
        // Rows of refunds alone are checked with the refunds, below.
        let mut sold = as_expected(&rows);
        sold.retain(|_, (_, _, count)| *count > 0);
        assert_eq!(sold, expected(sales, from, to, tz, group), "{query}");
        let got: i64 = rows
            .iter()
            .map(|r| cents(r["refunds"].as_str().expect("refunds")))
            .sum();
        assert_eq!(got, refunds, "refunds of {query}");
    }
}

/// The tenant's whole history in one row.
async fn total(app: &TestApp, t: &Tenant) -> Value {
    let path = format!(
        "/v1/tenants/{}/reports/sales?from=2026-01-01T00:00:00Z&to=2027-01-31T00:00:00Z",
        t.id
    );
    let a = app.get_as(&path, Some(&t.backoffice)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["rows"][0].clone()
}

async fn history_quantity(db: &TestDb, tenant: u64) -> u64 {
    let q = db
        .scalar(&format!(
            "SELECT COALESCE(SUM(quantity_sold), 0) FROM sales_transactions WHERE tenant_id = {tenant}"
        ))
        .await;
    q.parse().expect("a number")
}

async fn cli(db: &TestDb, command: &str) -> (i32, String) {
    let (code, out, err) = pos_cli(&[("POS_DATABASE_URL", &db.url)], &["rollups", command]).await;
    (code, format!("{out}{err}"))
}

async fn set_zone(app: &TestApp, t: &Tenant, zone: &str) {
    let a = app
        .send_as(
            "PATCH",
            &format!("/v1/tenants/{}", t.id),
            Some(&t.backoffice),
            Some(&json!({ "timeZone": zone })),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[actix_web::test]
async fn reports_read_the_rollups_and_a_wrong_row_is_found_by_verify_and_mended_by_rebuild() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(2, 3).await;
    set_zone(&app, &t, "Asia/Kathmandu").await;
    let mut sales = write_history(&app, &t, &mut Rng(11), 600).await;
    // Sales on both sides of the edges of the range cut inside quarter
    // hours (below): each edge's quarter hour is read from the history.
    let edges: Vec<Sale> = [
        "2026-03-27T05:00:10Z",
        "2026-03-27T05:07:30Z",
        "2026-03-27T05:07:31Z",
        "2026-03-27T05:14:59Z",
        "2026-10-27T18:45:00Z",
        "2026-10-27T18:49:59Z",
        "2026-10-27T18:50:00Z",
        "2026-10-27T18:59:59Z",
    ]
    .iter()
    .enumerate()
    .map(|(i, at)| Sale {
        at: utc(at),
        branch: t.branches[i % 2],
        product: t.products[i % 3],
        quantity: 1 + i as u64,
        price_cents: 100 + i as i64,
    })
    .collect();
    insert(&app, t.id, &edges).await;
    sales.extend(edges);
    write_refunds(&app.db, t.id, 60).await;
    // Kathmandu's days (UTC+5:45) from 1 March to 31 December, a stretch
    // starting and ending inside quarter hours, and Berlin's days.
    let ranges = [
        (
            utc("2026-02-28T18:15:00Z"),
            utc("2026-12-31T18:15:00Z"),
            "Asia/Kathmandu",
        ),
        (
            utc("2026-03-27T05:07:31Z"),
            utc("2026-10-27T18:50:00Z"),
            "Asia/Kathmandu",
        ),
        (
            utc("2026-02-28T23:00:00Z"),
            utc("2026-12-31T23:00:00Z"),
            "Europe/Berlin",
        ),
    ];
    for (from, to, zone) in ranges {
        assert_reports_equal_the_history(&app, &t, &sales, (from, to), zone).await;
    }
    for level in 1..=4 {
        let rows = app
            .db
            .scalar(&format!(
                "SELECT COUNT(*) FROM sales_rollups WHERE tenant_id = {} AND level = {level}",
                t.id
            ))
            .await;
        assert_ne!(rows, "0", "no rollups at level {level}");
    }
    let (code, out) = cli(&app.db, "verify").await;
    assert_eq!(code, 0, "{out}");

    // A wrong rollup row shows in the report (it is what reports read)…
    let sold = history_quantity(&app.db, t.id).await;
    assert_eq!(total(&app, &t).await["quantitySold"], json!(sold));
    app.db
        .exec(&format!(
            "UPDATE sales_rollups SET quantity = quantity + 1000 WHERE tenant_id = {} AND level = 1 \
             ORDER BY start LIMIT 1",
            t.id
        ))
        .await;
    assert_eq!(total(&app, &t).await["quantitySold"], json!(sold + 1000));
    // …verify names it, rebuild mends it.
    let (code, out) = cli(&app.db, "verify").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("tenant {} Quarter", t.id)), "{out}");
    let (code, out) = cli(&app.db, "rebuild").await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&app.db, "verify").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(total(&app, &t).await["quantitySold"], json!(sold));
    app.cleanup().await;
}

#[actix_web::test]
async fn a_roll_that_fails_half_way_stores_nothing_and_the_next_counts_every_row_once() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(2, 3).await;
    let mut rng = Rng(23);
    let mut sales = write_history(&app, &t, &mut rng, 300).await;
    let whole = (utc("2026-03-01T00:00:00Z"), utc("2027-01-02T00:00:00Z"));
    assert_reports_equal_the_history(&app, &t, &sales, whole, "UTC").await;
    // The next roll's upserts are refused after the first row is in.
    app.db
        .exec("CREATE TABLE refuse_rollups (after_rows INT)")
        .await;
    app.db.exec("INSERT INTO refuse_rollups VALUES (1)").await;
    app.db
        .exec(
            "CREATE TRIGGER refuse_rollups BEFORE INSERT ON sales_rollups FOR EACH ROW BEGIN \
             IF (SELECT after_rows FROM refuse_rollups) = 0 THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rollups refused by the test'; END IF; \
             UPDATE refuse_rollups SET after_rows = GREATEST(after_rows - 1, 0); END",
        )
        .await;
    let rolled_before = app
        .db
        .scalar("SELECT sales_through FROM rollup_marks")
        .await;
    sales.extend(write_history(&app, &t, &mut rng, 300).await);
    write_refunds(&app.db, t.id, 30).await;
    // Reports read the history meanwhile, and are still exact.
    assert_reports_equal_the_history(&app, &t, &sales, whole, "Europe/Berlin").await;
    assert!(app.metric("pos_rollup_failures_total").await > 0.0);
    assert_eq!(
        app.db
            .scalar("SELECT sales_through FROM rollup_marks")
            .await,
        rolled_before,
        "a refused roll moved the marks"
    );
    app.db.exec("DROP TRIGGER refuse_rollups").await;
    assert_reports_equal_the_history(&app, &t, &sales, whole, "Europe/Berlin").await;
    assert_eq!(
        app.db
            .scalar("SELECT sales_through FROM rollup_marks")
            .await,
        app.db
            .scalar("SELECT MAX(id) FROM sales_transactions")
            .await,
    );
    let (code, out) = cli(&app.db, "verify").await;
    assert_eq!(code, 0, "{out}");
    app.cleanup().await;
}

#[actix_web::test]
async fn a_tenant_whose_zone_changes_has_its_days_rolled_up_again_in_the_new_zone() {
    let app = crate::support::spawn_app().await;
    let t = app.db.tenant(2, 3).await;
    let mut rng = Rng(31);
    let mut sales = write_history(&app, &t, &mut rng, 400).await;
    let kathmandu = (utc("2026-02-28T18:15:00Z"), utc("2026-12-31T18:15:00Z"));
    assert_reports_equal_the_history(&app, &t, &sales, kathmandu, "UTC").await;
    set_zone(&app, &t, "Asia/Kathmandu").await;
    // Its days are still UTC's until its next rows are rolled: reports by
    // day and product in Kathmandu read the history meanwhile.
    assert_reports_equal_the_history(&app, &t, &sales, kathmandu, "Asia/Kathmandu").await;
    sales.extend(write_history(&app, &t, &mut rng, 10).await);
    assert_reports_equal_the_history(&app, &t, &sales, kathmandu, "Asia/Kathmandu").await;
    let zone = app
        .db
        .scalar(&format!(
            "SELECT zone FROM rollup_zones WHERE tenant_id = {}",
            t.id
        ))
        .await;
    assert_eq!(zone, "Asia/Kathmandu");
    let (code, out) = cli(&app.db, "verify").await;
    assert_eq!(code, 0, "{out}");
    app.cleanup().await;
}

/// After a fault test's load: a report (which rolls up first) counts
/// every sold unit of the tenant, the rollups hold the whole history, and
/// `pos rollups verify` finds them equal to it.
pub(crate) async fn assert_rollups_hold_the_history(base: &str, db: &TestDb, t: &Tenant) {
    let now = Utc::now();
    let url = format!(
        "{base}/v1/tenants/{}/reports/sales?from={}&to={}",
        t.id,
        instant(now - chrono::Duration::days(3)),
        instant(now + chrono::Duration::days(1))
    );
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let mut res = client
        .get(url)
        .bearer_auth(&t.backoffice)
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.expect("json");
    let sold = history_quantity(db, t.id).await;
    assert_eq!(report["rows"][0]["quantitySold"], json!(sold), "{report}");
    let rolled = db
        .scalar(&format!(
            "SELECT COALESCE(SUM(quantity), 0) FROM sales_rollups WHERE tenant_id = {} AND level = 1",
            t.id
        ))
        .await;
    assert_eq!(
        rolled,
        sold.to_string(),
        "the rollups do not hold the whole history"
    );
    let (code, out) = cli(db, "verify").await;
    assert_eq!(code, 0, "{out}");
}
