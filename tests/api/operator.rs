//! `pos seed` and `pos loadgen`, run as the real binary.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, spawn_app, start_app_behind_proxy, TestDb};

fn pos() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pos"));
    cmd.env_remove("POS_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn run(args: &[&str]) -> (i32, String, String) {
    output(pos().args(args)).await
}

/// With `POS_DATABASE_URL` set: tools never take the URL (and its
/// password) on their command line, where `ps` shows it.
async fn run_on(url: &str, args: &[&str]) -> (i32, String, String) {
    output(pos().env("POS_DATABASE_URL", url).args(args)).await
}

async fn output(cmd: &mut tokio::process::Command) -> (i32, String, String) {
    let out = cmd.output().await.expect("pos runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn the_seed_keys_file_holds_a_till_and_a_backoffice_key_per_tenant_that_work() {
    let db = TestDb::create().await;
    let path = std::env::temp_dir().join(format!("{}-seeded.json", db.name));
    let file = path.to_str().expect("utf-8 path");
    let (code, _, err) = run_on(
        &db.url,
        &[
            "seed",
            "--tenants",
            "2",
            "--branches",
            "1",
            "--products",
            "1",
            "--keys-file",
            file,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let keys = pos::cli::keys_file::KeysFile::read(&path).expect("a keys file");
    let _ = std::fs::remove_file(&path);
    let tenants: Vec<u64> = keys.tills.keys().map(|t| t.get()).collect();
    assert_eq!(tenants, [1, 2]);
    assert_eq!(keys.backoffices.len(), 2);
    assert!(keys.operator.is_some());
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let app = crate::support::start_app(db, prefix, Default::default()).await;
    let office = |t: u64| keys.backoffices[&crate::support::tenant_id(t)].clone();
    let own = app.get_as("/v1/tenants/1/sales", Some(&office(1))).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    let other = app.get_as("/v1/tenants/2/sales", Some(&office(1))).await;
    assert_eq!(other.status, 403);
    app.cleanup().await;
}

#[actix_web::test]
async fn seed_creates_exactly_what_is_asked_and_adds_to_what_exists() {
    let db = TestDb::create().await;
    let (code, out, err) = run_on(
        &db.url,
        &[
            "seed",
            "--tenants",
            "3",
            "--branches",
            "2",
            "--products",
            "5",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tenants 1..=3"), "{out}");
    assert_eq!(
        (
            db.count("tenants").await,
            db.count("branches").await,
            db.count("products").await
        ),
        (3, 6, 15)
    );
    let (code, out, _) = run_on(
        &db.url,
        &[
            "seed",
            "--tenants",
            "2",
            "--branches",
            "1",
            "--products",
            "4",
            "--names",
            "plain",
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("tenants 4..=5"), "{out}");
    assert_eq!(
        (
            db.count("tenants").await,
            db.count("branches").await,
            db.count("products").await
        ),
        (5, 8, 23)
    );
    let (code, out, _) = run_on(
        &db.url,
        &[
            "seed",
            "--tenants",
            "9",
            "--branches",
            "1",
            "--products",
            "1",
            "--if-empty",
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("nothing seeded"), "{out}");
    assert_eq!(db.count("tenants").await, 5);
    // Every tenant has its own rows.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM products WHERE tenant_id = 5")
            .await,
        "4"
    );
    assert_eq!(
        db.scalar("SELECT name FROM products WHERE tenant_id = 5 ORDER BY id LIMIT 1")
            .await,
        "Product 1"
    );
    db.drop_database().await;
}

#[actix_web::test]
async fn seed_and_loadgen_refuse_bad_arguments_with_one_clear_line() {
    let unreachable = format!(
        "mysql://root:s3cret@127.0.0.1:{}/pos",
        crate::support::free_port()
    );
    let seed = |extra: &[&'static str]| {
        let mut args = vec!["seed", "--branches", "1", "--products", "1"];
        args.extend_from_slice(extra);
        args
    };
    let loadgen = |extra: &[&'static str]| {
        let mut args = vec!["loadgen", "--terminals", "1"];
        args.extend_from_slice(extra);
        args
    };
    // (arguments, what the one line must say)
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            seed(&["--tenants", "0"]),
            "invalid value '0' for '--tenants",
        ),
        (seed(&["--tenants", "-1"]), "unexpected argument '-1'"),
        (
            vec![
                "seed",
                "--tenants",
                "1",
                "--branches",
                "1",
                "--products",
                "5000000",
            ],
            "is very large; add --yes",
        ),
        (
            loadgen(&["--rate", "0", "--duration", "1s"]),
            "invalid value '0' for '--rate",
        ),
        (
            loadgen(&["--rate", "10", "--duration", "soon"]),
            "expected a duration like 30s or 5m",
        ),
    ];
    // The URL's old flag is gone: a password never shows in `ps`.
    let mut flagged_seed = seed(&["--tenants", "1", "--database-url"]);
    flagged_seed.push(&unreachable);
    cases.push((flagged_seed, "unexpected argument '--database-url'"));
    // Tills learn their catalog from the API: an API that is not there is one line.
    let unreachable_api = format!("http://127.0.0.1:{}", crate::support::free_port());
    let mut unreachable_loadgen = loadgen(&["--rate", "10", "--duration", "1s", "--url"]);
    unreachable_loadgen.push(&unreachable_api);
    cases.push((unreachable_loadgen, "loadgen: GET http://127.0.0.1:"));
    for (args, says) in cases {
        let (code, _, err) = run(&args).await;
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("s3cret"),
            "{args:?}: {err}"
        );
    }
    // The URL comes from the environment; its password is never printed.
    let (code, _, err) = run_on(&unreachable, &seed(&["--tenants", "1"])).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("seed: cannot prepare the database"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

async fn loadgen_json(app_url: &str, db: &TestDb, extra: &[&str]) -> (i32, Value, String) {
    let keys = db.keys_file();
    let keys = keys.to_str().expect("utf-8 path");
    let mut args = vec![
        "loadgen",
        "--url",
        app_url,
        "--keys-file",
        keys,
        "--verify",
        "--json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args).await;
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[actix_web::test]
async fn loadgen_reports_correct_counts_and_verify_passes() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.db.tenant(2, 20).await;
    }
    let (code, report, err) = loadgen_json(
        &app.base,
        &app.db,
        &[
            "--rate",
            "100",
            "--duration",
            "2s",
            "--terminals",
            "6",
            "--batch",
            "3",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("verify: ok"), "{err}");
    // Every request sent was answered, and answered 201: nothing else.
    let sent = report["requests_sent"].as_u64().unwrap_or(0);
    assert!(sent > 0, "{report}");
    assert_eq!(report["requests_answered"], sent, "{report}");
    assert_eq!(
        report["answers_by_status"],
        json!({"201": sent}),
        "{report}"
    );
    let created = sent;
    assert_eq!(app.db.count("sales_transactions").await, created * 3);
    app.cleanup().await;
}

#[actix_web::test]
async fn loadgen_retries_through_a_storage_outage_and_still_verifies() {
    let db = TestDb::create().await;
    for _ in 0..2 {
        db.tenant(1, 10).await;
    }
    let (app, proxy) = start_app_behind_proxy(db, &[]).await;
    let base = app.base.clone();
    let db = app.db.clone();
    let run = actix_web::rt::spawn(async move {
        loadgen_json(
            &base,
            &db,
            &["--rate", "40", "--duration", "6s", "--terminals", "4"],
        )
        .await
    });
    // MySQL goes away once sales flow, and comes back once the service
    // has answered some request 503 (it retried past POS_STORAGE_RETRY_MS).
    let flowing = eventually(Duration::from_secs(20), || async {
        app.metric("pos_transactions_committed_total").await > 0.0
    })
    .await;
    assert!(flowing, "no sale was committed");
    proxy.cut();
    let refused = eventually(Duration::from_secs(20), || async {
        app.metric(r#"pos_transactions_rejected_total{reason="unavailable"}"#)
            .await
            > 0.0
    })
    .await;
    assert!(refused, "no request was refused while MySQL was away");
    proxy.restore();
    let (code, report, err) = run.await.expect("loadgen task");
    assert_eq!(code, 0, "{err}\n{report}");
    assert!(err.contains("verify: ok"), "{err}");
    assert!(
        report["answers_by_status"]["503"].as_u64().unwrap_or(0) > 0,
        "no 503 seen: {report}"
    );
    assert!(report["retries"].as_u64().unwrap_or(0) > 0, "{report}");
    let confirmed = report["answers_by_status"]["201"].as_u64().unwrap_or(0)
        + report["answers_by_status"]["200"].as_u64().unwrap_or(0);
    assert_eq!(app.db.count("sales_transactions").await, confirmed);
    app.cleanup().await;
}

/// `pos loadgen --verify` while `pos serve` is SIGKILLed twice under load
/// and restarted at once, round after round: every round verifies (or
/// names its unknown outcomes), and MySQL's summary, its history and the
/// API agree after each.
#[actix_web::test]
async fn loadgen_verifies_through_two_sigkills_of_pos_serve_round_after_round() {
    use crate::support::child::ChildServer;
    const ROUNDS: usize = 2;
    let db = TestDb::create().await;
    let t = db.tenant(2, 10).await;
    let mut server = ChildServer::start(&db.url, &[]).await;
    for round in 0..ROUNDS {
        let before = db.count("sales_transactions").await;
        let (base, run_db) = (server.base.clone(), db.clone());
        let run = actix_web::rt::spawn(async move {
            loadgen_json(
                &base,
                &run_db,
                &[
                    "--rate",
                    "400",
                    "--duration",
                    "6s",
                    "--terminals",
                    "20",
                    "--refund-rate",
                    "0.2",
                ],
            )
            .await
        });
        for at in [150, 900] {
            let flowing = eventually(Duration::from_secs(30), || async {
                db.count("sales_transactions").await >= before + at
            })
            .await;
            assert!(flowing, "round {round}: the load did not reach {at} sales");
            server.kill().await;
            server.restart().await;
        }
        let (code, report, err) = run.await.expect("loadgen task");
        // Every confirmed sale is on the server, and of the requests whose
        // outcome stayed unknown, nothing more than they held.
        assert_eq!(code, 0, "round {round}: {err}\n{report}");
        assert!(err.contains("verify: ok"), "round {round}: {err}");
        let (summary, history) = db.summary_and_history(t.id).await;
        assert_eq!(summary, history, "round {round}");
        // Refunds too: the summary's, the sales' and the refunds' own rows agree.
        let tenant = t.id.to_string();
        let of_tenant = |sql: &str| sql.replace("{t}", &tenant);
        let in_summary = db
            .scalar(&of_tenant(
                "SELECT CONCAT(SUM(quantity_refunded), '/', SUM(refunds)) FROM product_sales_totals WHERE tenant_id = {t}",
            ))
            .await;
        let in_refunds = db
            .scalar(&of_tenant(
                "SELECT CONCAT(IFNULL(SUM(quantity), 0), '/', IFNULL(SUM(amount), 0.00)) FROM refunds WHERE tenant_id = {t}",
            ))
            .await;
        let on_sales = db
            .scalar(&of_tenant(
                "SELECT SUM(quantity_refunded) FROM sales_transactions WHERE tenant_id = {t}",
            ))
            .await;
        assert_eq!(in_summary, in_refunds, "round {round}");
        assert!(
            in_refunds.starts_with(&format!("{on_sales}/")),
            "round {round}"
        );
        assert!(
            db.count("refunds").await > 0,
            "round {round}: no refund was made"
        );
        let mut res = server
            .client
            .get(format!("{}/v1/tenants/{}/sales", server.base, t.id))
            .bearer_auth(&t.backoffice)
            .send()
            .await
            .expect("answer");
        let sales: Value = res.json().limit(1 << 20).await.expect("json");
        let api: std::collections::BTreeMap<u64, String> =
            crate::support::listed(&sales["sales_per_product"])
                .into_iter()
                .map(|(_, p, q, r)| (p, format!("{p}:{q}/{r}")))
                .collect();
        let api = api.into_values().collect::<Vec<_>>().join(",");
        assert_eq!(api, summary, "round {round}: the API differs from MySQL");
    }
    drop(server);
    db.drop_database().await;
}
