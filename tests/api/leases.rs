//! One owner per shard: a second instance for a held shard does not serve,
//! one with another shard count does not start, the count changes only
//! while no instance runs, and an instance whose lease was taken writes
//! nothing more.

use std::time::Duration;

use serde_json::Value;

use crate::support::child::{pos_cli, ChildServer};
use crate::support::{
    eventually, post_status, redis_url, sale, start_app, start_app_behind_proxy, Options, TestDb,
};

/// Any secret will do, if every shard has the same.
pub const SESSION_SECRET: &str = "the shards' shared session secret, 32+";

/// Shard `i/n` settings (a shard count above 1 needs Redis for the merged ranking).
fn shard(spec: &str, prefix: &str) -> Vec<(String, String)> {
    vec![
        ("POS_SHARD".into(), spec.into()),
        ("POS_REDIS_URL".into(), redis_url()),
        ("POS_REDIS_PREFIX".into(), prefix.into()),
        ("POS_SHARD_LEASE_SECS".into(), "2".into()),
        ("POS_SESSION_SECRET".into(), SESSION_SECRET.into()),
    ]
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[actix_web::test]
async fn a_second_instance_for_a_held_shard_waits_unready_until_the_first_stops() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let lease = [("POS_SHARD_LEASE_SECS", "2")];
    let first = ChildServer::start(&db.url, &lease).await;
    let second = ChildServer::spawn(&db.url, &lease);
    let waiting = second.until_waiting_for_lease().await;
    assert!(waiting, "{}", second.log_text());
    assert_eq!(second.status("/ready", None).await, Some(503));
    let url = |s: &ChildServer| format!("{}{}", s.base, t.sales_path(0));
    let mut refused = second
        .client
        .post(url(&second))
        .bearer_auth(&t.till)
        .send_json(&sale(t.products[0], 1, "1.00"))
        .await
        .expect("the standby answers");
    assert_eq!(refused.status().as_u16(), 503);
    // Starting, and nothing more on the API port: not "MySQL is not
    // reachable" (it is; the standby waits for the lease, which its log
    // and the metrics port's /ready say).
    let body: Value = refused.json().await.expect("an error body");
    assert_eq!(
        body["error"]["message"], "the service is starting",
        "{body}"
    );
    assert_eq!(
        post_status(
            &first.client,
            &url(&first),
            &t.till,
            &sale(t.products[0], 1, "1.00")
        )
        .await,
        201
    );

    first.terminate();
    let took_over = eventually(Duration::from_secs(20), || async {
        second.status("/ready", None).await == Some(200)
    })
    .await;
    assert!(took_over, "{}", second.log_text());
    assert_eq!(
        post_status(
            &second.client,
            &url(&second),
            &t.till,
            &sale(t.products[0], 1, "1.00")
        )
        .await,
        201
    );
    assert_eq!(db.count("sales_transactions").await, 2);
    drop((first, second));
    db.drop_database().await;
}

#[actix_web::test]
async fn the_shard_count_changes_only_by_resize_while_no_instance_runs() {
    let db = TestDb::create().await;
    db.tenant(1, 1).await;
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let two = shard("0/2", &prefix);
    let mut running = ChildServer::start(&db.url, &pairs(&two)).await;

    let three = shard("0/3", &prefix);
    let mut wrong = ChildServer::spawn(&db.url, &pairs(&three));
    let status = wrong.wait(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(2), "{}", wrong.log_text());
    let last = wrong.log_text().lines().last().unwrap_or("").to_string();
    assert!(
        last.starts_with("POS_SHARD:") && last.contains("pos shards resize 3"),
        "{last}"
    );

    let env = [("POS_DATABASE_URL", db.url.as_str())];
    let (code, _, err) = pos_cli(&env, &["shards", "resize", "3"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("stop every instance first"), "{err}");
    let (_, status, _) = pos_cli(&env, &["shards", "status"]).await;
    assert!(status.starts_with("2 shards"), "{status}");

    running.terminate();
    running.wait(Duration::from_secs(20)).await;
    let (code, out, err) = pos_cli(&env, &["shards", "resize", "3"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("now has 3 shards (it had 2)"), "{out}");
    let resized = ChildServer::start(&db.url, &pairs(&three)).await;
    drop(resized);
    db.drop_database().await;
}

/// A renewal sent on a connection that then loses every byte waits for an
/// answer that never comes: it is given up after a third of the lease's
/// life, and the next one, once the network is back, keeps the lease.
#[actix_web::test]
async fn a_renewal_lost_on_a_silent_connection_gives_way_to_the_next_and_the_lease_is_kept() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (app, proxy) = start_app_behind_proxy(db, &[("POS_SHARD_LEASE_SECS", "3")]).await;
    let (path, body) = (t.sales_path(0), sale(t.products[0], 1, "1.00"));
    let sell = || app.post_json(&path, &body);
    assert_eq!(sell().await.status, 201);
    let lease_is = |state: &'static str| {
        let db = app.db.clone();
        async move {
            let sql =
                format!("SELECT CAST(expires {state} UTC_TIMESTAMP(6) AS CHAR) FROM shard_leases");
            db.scalar(&sql).await == "1"
        }
    };
    // What is sent now never arrives: a renewal under way waits for an
    // answer that never comes, on a connection that stays open.
    proxy.lose_everything();
    let lapsed = eventually(Duration::from_secs(20), || lease_is("<")).await;
    assert!(lapsed, "the lease ran out while nothing arrived");
    // An attempt unanswered for a third of the lease's life is given up.
    let given_up = eventually(Duration::from_secs(20), || async {
        app.metric(r#"pos_shard_lease_renewals_total{outcome="unanswered"}"#)
            .await
            >= 1.0
    })
    .await;
    assert!(given_up, "a renewal waits for an answer that never comes");
    proxy.heal();
    // The next, on a new connection, renews.
    let renewed = eventually(Duration::from_secs(20), || lease_is(">")).await;
    assert!(
        renewed,
        "the lease was never renewed again: a renewal waits forever"
    );
    let back = eventually(Duration::from_secs(20), || async {
        sell().await.status == 201
    })
    .await;
    assert!(back, "writes resume");
    app.cleanup().await;
}

/// The instance's connection to MySQL goes away; after its lease expires
/// another instance takes the shard. When the first can reach MySQL again
/// it writes nothing (its batches carry a fencing number that is no longer
/// the lease's), and it stops.
#[actix_web::test]
async fn an_instance_whose_lease_was_taken_writes_nothing_more_and_stops() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let (mut first, proxy) = start_app_behind_proxy(db, &[("POS_SHARD_LEASE_SECS", "2")]).await;
    assert_eq!(
        first
            .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
            .await
            .status,
        201
    );

    proxy.cut();
    // Unrenewed for two thirds of its life, the lease stops this
    // instance's writes before another instance may take it.
    let paused = eventually(Duration::from_secs(10), || async {
        first.metric("pos_shard_lease_held").await == 0.0
    })
    .await;
    assert!(
        paused,
        "writes did not pause while the lease went unrenewed"
    );
    let second = ChildServer::start(&first.db.url, &[("POS_SHARD_LEASE_SECS", "2")]).await;
    let url = format!("{}{}", second.base, t.sales_path(0));
    assert_eq!(
        post_status(
            &second.client,
            &url,
            &t.till,
            &sale(t.products[0], 1, "1.00")
        )
        .await,
        201
    );
    proxy.restore();

    let refused = first
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    let mut fatal = None;
    eventually(Duration::from_secs(20), || {
        fatal = fatal
            .take()
            .or_else(|| first.app.as_mut().and_then(|a| a.fatal()));
        std::future::ready(fatal.is_some())
    })
    .await;
    let fatal = fatal.expect("the first instance did not notice it lost its shard");
    assert!(fatal.message.contains("took shard"), "{}", fatal.message);
    assert_eq!(fatal.code, 1);
    assert_eq!(
        first.db.count("sales_transactions").await,
        2,
        "only the holders' sales"
    );
    drop(second);
    first.cleanup().await;
}

/// The fencing check in the batch's own transaction: MySQL's lease moved
/// to another instance while this one still believes it holds it (its next
/// renewal is minutes away), so its next batch must not commit.
#[actix_web::test]
async fn a_batch_whose_fence_the_lease_no_longer_has_stores_nothing() {
    let db = TestDb::create().await;
    let t = db.tenant(1, 1).await;
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let options = Options {
        extra: vec![("POS_SHARD_LEASE_SECS".into(), "600".into())],
        ..Options::default()
    };
    let app = start_app(db, prefix, options).await;
    let first = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    // Another instance took the shard, as MySQL records it.
    app.db
        .exec("UPDATE shard_leases SET fence = fence + 1, instance = instance + 1")
        .await;
    let refused = app
        .post_json(&t.sales_path(0), &sale(t.products[0], 1, "1.00"))
        .await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(
        app.db.count("sales_transactions").await,
        1,
        "nothing stored under a lost lease"
    );
    app.cleanup().await;
}
