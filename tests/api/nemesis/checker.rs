//! The checker: what clients were told against what the platform holds.
//! Each check returns what it found wrong (nothing: it holds).

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use rust_decimal::Decimal;
use serde_json::Value;

use super::platform::{Platform, Shop};
use super::probes::ProbeLog;
use crate::support::{eventually, redis_client, TestDb};

/// Per product: quantity sold, revenue, quantity refunded, refunds.
type Totals = BTreeMap<u64, (u64, Decimal, u64, Decimal)>;

/// How long the mirror, the feed and webhooks may take to catch up.
const CATCH_UP: Duration = Duration::from_secs(120);

/// A fresh connection: the pool's may predate a restart of the server.
async fn connect(db: &TestDb) -> mysql_async::Conn {
    mysql_async::Conn::from_url(db.url.as_str())
        .await
        .expect("the pod's database answers")
}

/// The probe's every confirmed sale is stored once, with its content, and
/// nothing else of the probe's is.
pub async fn probe_exactly_once(db: &TestDb, shop: &Shop, log: &ProbeLog) -> Vec<String> {
    let mut conn = connect(db).await;
    let rows = crate::support::ledger::stored_sales(&mut conn, shop.id).await;
    let _ = conn.disconnect().await;
    let mut wrong = Vec::new();
    if rows.len() != log.confirmed.len() {
        wrong.push(format!(
            "tenant {}: {} rows stored, {} sales confirmed",
            shop.id,
            rows.len(),
            log.confirmed.len()
        ));
    }
    for (key, product, quantity, price) in rows {
        match log.confirmed.get(&key) {
            None => wrong.push(format!("{key} is stored but was never confirmed")),
            Some(sold) if *sold != (product, quantity, price) => {
                wrong.push(format!("{key} is stored with other content"))
            }
            Some(_) => {}
        }
    }
    wrong
}

/// The summary table, and the same summed from the history (sales,
/// refunds), read in one snapshot.
async fn summary_and_history(db: &TestDb, tenant: u64) -> (Totals, Totals) {
    let mut conn = connect(db).await;
    read_summary_and_history(&mut conn, tenant)
        .await
        .expect("the summary and the history")
}

async fn read_summary_and_history(
    conn: &mut mysql_async::Conn,
    tenant: u64,
) -> Result<(Totals, Totals), mysql_async::Error> {
    let mut tx = conn
        .start_transaction(
            mysql_async::TxOpts::default()
                .with_consistent_snapshot(true)
                .clone(),
        )
        .await?;
    let summary: Vec<(u64, u64, Decimal, u64, Decimal)> = tx
        .exec(
            "SELECT product_id, quantity_sold, revenue, quantity_refunded, refunds \
             FROM product_sales_totals WHERE tenant_id = ?",
            (tenant,),
        )
        .await?;
    let history: Vec<(u64, u64, Decimal, u64, Decimal)> = tx
        .exec(
            "SELECT s.product_id, CAST(SUM(s.quantity_sold) AS UNSIGNED), \
               SUM(s.quantity_sold * s.price_per_unit), \
               CAST(COALESCE((SELECT SUM(r.quantity) FROM refunds r \
                 WHERE r.tenant_id = s.tenant_id AND r.product_id = s.product_id), 0) AS UNSIGNED), \
               COALESCE((SELECT SUM(r.amount) FROM refunds r \
                 WHERE r.tenant_id = s.tenant_id AND r.product_id = s.product_id), 0) \
             FROM sales_transactions s WHERE s.tenant_id = ? GROUP BY s.tenant_id, s.product_id",
            (tenant,),
        )
        .await?;
    tx.commit().await?;
    let by_product = |rows: Vec<(u64, u64, Decimal, u64, Decimal)>| -> Totals {
        rows.into_iter()
            .filter(|r| r.1 > 0)
            .map(|(p, q, r, qr, rf)| (p, (q, r.normalize(), qr, rf.normalize())))
            .collect()
    };
    Ok((by_product(summary), by_product(history)))
}

/// A checkpoint while the faults go on: each tenant's summary equals its
/// history in one snapshot of its pod (a pod that does not answer now is
/// skipped: the final check reads it).
pub async fn checkpoint(p: &Platform, shops: &[Shop]) -> Vec<String> {
    let mut wrong = Vec::new();
    for shop in shops {
        let url = p.pods[shop.shard()].url.as_str();
        let Ok(Ok(mut conn)) =
            tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::from_url(url)).await
        else {
            continue;
        };
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            read_summary_and_history(&mut conn, shop.id),
        )
        .await;
        if let Ok(Ok((summary, history))) = read {
            if summary != history {
                wrong.push(format!(
                    "checkpoint: tenant {}: the summary {summary:?} differs from the history {history:?}",
                    shop.id
                ));
            }
        }
        let _ = conn.disconnect().await;
    }
    wrong
}

/// `pos rollups verify` on each pod: the rollups reports read equal the
/// history.
pub async fn rollups_agree(p: &Platform) -> Vec<String> {
    let mut wrong = Vec::new();
    for pod in &p.pods {
        let (code, out, err) = crate::support::child::pos_cli(
            &[("POS_DATABASE_URL", &pod.url)],
            &["rollups", "verify"],
        )
        .await;
        if code != 0 {
            wrong.push(format!(
                "pos rollups verify on {}: exit {code}: {out} {err}",
                pod.name
            ));
        }
    }
    wrong
}

fn money(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse::<Decimal>().ok())
        .unwrap_or(Decimal::MIN)
        .normalize()
}

/// Summary = history; the live totals (`/sales`) and a report over the
/// run's days equal them.
pub async fn totals_agree(p: &Platform, shop: &Shop) -> Vec<String> {
    let t = shop.id;
    let (summary, history) = summary_and_history(&p.pods[shop.shard()], t).await;
    let mut wrong = Vec::new();
    if summary != history {
        wrong.push(format!(
            "tenant {t}: the summary {summary:?} differs from the history {history:?}"
        ));
    }
    let op = &p.control.operator;
    let live = p
        .send("GET", &format!("/v1/tenants/{t}/sales"), op, None)
        .await;
    let live: Totals = live.body["sales_per_product"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["productID"].as_u64().unwrap_or(0),
                        (
                            i["quantitySold"].as_u64().unwrap_or(0),
                            money(&i["totalSales"]),
                            i["quantityRefunded"].as_u64().unwrap_or(0),
                            money(&i["refunds"]),
                        ),
                    )
                })
                .filter(|(_, (q, ..))| *q > 0)
                .collect()
        })
        .unwrap_or_default();
    if live != history {
        wrong.push(format!(
            "tenant {t}: the live totals {live:?} differ from the history {history:?}"
        ));
    }
    let days = p
        .control
        .scalar(
            "SELECT CONCAT(DATE(UTC_TIMESTAMP() - INTERVAL 1 DAY), ' ', DATE(UTC_TIMESTAMP() + INTERVAL 1 DAY))",
        )
        .await;
    let (from, to) = days.split_once(' ').unwrap_or_default();
    let report = p
        .send(
            "GET",
            &format!("/v1/tenants/{t}/reports/sales?from={from}&to={to}&tz=UTC&groupBy=product"),
            op,
            None,
        )
        .await;
    let reported: BTreeMap<u64, (u64, Decimal)> = report.body["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["productID"].as_u64().unwrap_or(0),
                        (
                            r["quantitySold"].as_u64().unwrap_or(0),
                            money(&r["totalSales"]),
                        ),
                    )
                })
                .filter(|(_, (q, _))| *q > 0)
                .collect()
        })
        .unwrap_or_default();
    let sold: BTreeMap<u64, (u64, Decimal)> = history
        .iter()
        .map(|(p, (q, r, ..))| (*p, (*q, *r)))
        .collect();
    if reported != sold {
        wrong.push(format!(
            "tenant {t}: the report ({} {}) {reported:?} differs from the history {sold:?}",
            report.status, report.body
        ));
    }
    wrong
}

/// The Redis mirror's sets rank every product of `shops` by its net
/// quantity and net revenue, as the history has them (waiting for the
/// mirror to catch up, after a wipe say).
pub async fn mirror_agrees(p: &Platform, shops: &[Shop]) -> Vec<String> {
    let mut expected: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for shop in shops {
        let (_, history) = summary_and_history(&p.pods[shop.shard()], shop.id).await;
        for (product, (q, r, qr, rf)) in history {
            let net = (Decimal::from(q) - Decimal::from(qr), (r - rf).normalize());
            expected.insert(format!("{}:{product}", shop.id), net);
        }
    }
    let matched = eventually(CATCH_UP, || async { mirrored(p).await == expected }).await;
    match matched {
        true => Vec::new(),
        false => vec![format!(
            "the Redis mirror {:?} differs from the history {expected:?}",
            mirrored(p).await
        )],
    }
}

/// Both sets, by member: (score in the quantity set, in the revenue set).
async fn mirrored(p: &Platform) -> BTreeMap<String, (Decimal, Decimal)> {
    let client = redis_client(&p.redis_url).await;
    let mut sets = Vec::new();
    for by in ["quantity", "revenue"] {
        use fred::interfaces::SortedSetsInterface;
        let key = format!("{}top_selling:{by}", p.prefix);
        let set: Vec<(String, f64)> = client
            .zrange(key, 0, -1, None, false, None, true)
            .await
            .unwrap_or_default();
        sets.push(set);
    }
    let _ = fred::interfaces::ClientLike::quit(&client).await;
    let revenue: BTreeMap<String, f64> = sets.pop().unwrap_or_default().into_iter().collect();
    sets.pop()
        .unwrap_or_default()
        .into_iter()
        .map(|(member, q)| {
            let r = revenue.get(&member).copied().unwrap_or(f64::NAN);
            let exact = |x: f64| {
                Decimal::try_from(x)
                    .map(|d| d.round_dp(2).normalize())
                    .unwrap_or(Decimal::MIN)
            };
            (member, (exact(q), exact(r)))
        })
        .collect()
}

/// The number of `tenant`'s events, if they are 1..=n each once (as the
/// events API and the feed number them).
pub async fn events_of(db: &TestDb, tenant: u64) -> Result<u64, String> {
    let mut conn = connect(db).await;
    let row: Option<(u64, u64, u64, u64)> = conn
        .exec_first(
            "SELECT COUNT(*), COUNT(DISTINCT s), COALESCE(MAX(s), 0), CAST(SUM(s IS NULL) AS UNSIGNED) FROM (\
               SELECT event_seq s FROM sales_transactions WHERE tenant_id = ? \
               UNION ALL SELECT event_seq FROM refunds WHERE tenant_id = ? \
               UNION ALL SELECT seq FROM catalog_events WHERE tenant_id = ?) e",
            (tenant, tenant, tenant),
        )
        .await
        .expect("the events");
    let _ = conn.disconnect().await;
    match row {
        Some((n, distinct, max, 0)) if n == distinct && n == max => Ok(n),
        other => Err(format!(
            "tenant {tenant}'s events (count, distinct, last, unnumbered) {other:?} are not 1..=n"
        )),
    }
}

/// The feed's queue holds every tenant's events, each once, first come
/// in `seq` order.
pub async fn feed_agrees(p: &Platform, shops: &[Shop]) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut expected = BTreeMap::new();
    for shop in shops {
        match events_of(&p.pods[shop.shard()], shop.id).await {
            Ok(n) => {
                expected.insert(shop.id, n);
            }
            Err(e) => wrong.push(e),
        }
    }
    let total: u64 = expected.values().sum();
    let mut feed = p.feed.lock().await;
    let all = feed
        .until(CATCH_UP, |c| c.received.len() as u64 >= total)
        .await;
    if !all {
        wrong.push(format!(
            "the feed holds {} of {total} events",
            feed.received.len()
        ));
    }
    let mut seqs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for event in feed.events() {
        let id = event.body["id"].as_str().unwrap_or("");
        let tenant = id
            .split('_')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        seqs.entry(tenant)
            .or_default()
            .push(event.body["seq"].as_u64().unwrap_or(0));
    }
    for (tenant, n) in expected {
        let got = seqs.remove(&tenant).unwrap_or_default();
        if got != (1..=n).collect::<Vec<_>>() {
            wrong.push(format!(
                "tenant {tenant}: the feed holds {} events, not 1..={n} in order (first {:?})",
                got.len(),
                got.iter().take(20).collect::<Vec<_>>()
            ));
        }
    }
    if !seqs.is_empty() {
        wrong.push(format!(
            "the feed holds events of unknown tenants {:?}",
            seqs.keys()
        ));
    }
    wrong
}

/// Each probe tenant's receiver accepted (answered 2xx) every one of its
/// events after `hooked` (the seq its webhook was made at), first
/// accepted in `seq` order.
pub async fn webhooks_agree(p: &Platform, probes: &[Shop], hooked: &[u64]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (shop, hooked) in probes.iter().zip(hooked) {
        let n = match events_of(&p.pods[shop.shard()], shop.id).await {
            Ok(n) => n,
            Err(e) => {
                wrong.push(e);
                continue;
            }
        };
        let receiver = &p.receivers[shop.shard()];
        let expected: Vec<u64> = (hooked + 1..=n).collect();
        let all = eventually(CATCH_UP, || async { receiver.accepted_seqs() == expected }).await;
        if !all {
            let got = receiver.accepted_seqs();
            let hooks = p
                .send(
                    "GET",
                    &crate::webhooks::hooks(shop.id),
                    &p.control.operator,
                    None,
                )
                .await;
            wrong.push(format!(
                "tenant {}: the webhook receiver holds {} events, not {}..={n} in order (last {:?}); the API says {}",
                shop.id,
                got.len(),
                hooked + 1,
                got.last(),
                hooks.body
            ));
        }
    }
    wrong
}
