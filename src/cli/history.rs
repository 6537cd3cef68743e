//! `pos history`: gives tenants a past, through the API like their tills
//! (batches with past timestamps), so a demo's charts and reports have
//! days to show. Each sale's idempotency key names its day, branch and
//! place in the day: a second run is answered as replays and adds nothing.

use std::time::Duration;

use chrono::{Days, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use super::keys_file::{KeysFile, KeysFileError};
use super::loadgen::mix::{price_of, quantity, Rng, Zipf};
use crate::domain::{time_zone, TenantId};

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API keys, as `pos seed --keys-file` writes them: each tenant's till
    /// key posts, its back-office key reads its zone.
    #[arg(long)]
    pub keys_file: std::path::PathBuf,
    /// Tenant ids, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub tenants: Vec<TenantId>,
    /// Days before today to fill (today is left to live sales).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=400))]
    pub days: u64,
    /// Sales per branch on an ordinary weekday (weekends sell more).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub sales_per_day: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    KeysFile(#[from] KeysFileError),
    #[error("the keys file has no {0} key for tenant {1}")]
    NoKey(&'static str, TenantId),
    #[error("{0}: {1}")]
    Request(String, String),
}

/// What a tenant sells, as its catalog and tenant answers say.
struct Shop {
    tenant: TenantId,
    zone: chrono_tz::Tz,
    branches: Vec<u64>,
    /// Product ids with their list price (if any).
    products: Vec<(u64, Option<String>)>,
}

pub async fn run(args: HistoryArgs) -> i32 {
    match fill(&args).await {
        Ok((sent, new)) => {
            println!(
                "history: {sent} sales over {} days, {new} of them new",
                args.days
            );
            0
        }
        Err(e) => {
            eprintln!("history: {e}");
            1
        }
    }
}

async fn fill(args: &HistoryArgs) -> Result<(u64, u64), HistoryError> {
    let keys = KeysFile::read(&args.keys_file)?;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let base = args.url.trim_end_matches('/');
    let (mut sent, mut new) = (0, 0);
    for &tenant in &args.tenants {
        let till = keys
            .tills
            .get(&tenant)
            .ok_or(HistoryError::NoKey("till", tenant))?;
        let office = keys
            .backoffices
            .get(&tenant)
            .ok_or(HistoryError::NoKey("back-office", tenant))?;
        let shop = learn(&client, base, tenant, till, office).await?;
        // Today is the shop's: west of UTC, its yesterday may be UTC's today.
        let today = Utc::now().with_timezone(&shop.zone).date_naive();
        let mut rng = Rng::new(tenant.get());
        let popularity = Zipf::new(shop.products.len(), 1.1);
        for back in (1..=args.days).rev() {
            let Some(day) = today.checked_sub_days(Days::new(back)) else {
                continue;
            };
            for &branch in &shop.branches {
                let batch = day_of_sales(
                    &shop,
                    branch,
                    day,
                    args.sales_per_day,
                    &mut rng,
                    &popularity,
                );
                let url =
                    format!("{base}/v1/tenants/{tenant}/branches/{branch}/sales-transactions");
                let (count, created) = post(&client, &url, till, &batch).await?;
                sent += count;
                new += created;
            }
        }
    }
    Ok((sent, new))
}

async fn learn(
    client: &awc::Client,
    base: &str,
    tenant: TenantId,
    till: &str,
    office: &str,
) -> Result<Shop, HistoryError> {
    let catalog = get(client, &format!("{base}/v1/tenants/{tenant}/catalog"), till).await?;
    let about = get(client, &format!("{base}/v1/tenants/{tenant}"), office).await?;
    let ids = |list: &str| -> Vec<&Value> {
        catalog[list]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    Ok(Shop {
        tenant,
        zone: about["timeZone"]
            .as_str()
            .and_then(time_zone)
            .unwrap_or(chrono_tz::UTC),
        branches: ids("branches")
            .iter()
            .filter_map(|b| b["id"].as_u64())
            .collect(),
        products: ids("products")
            .iter()
            .filter_map(|p| Some((p["id"].as_u64()?, p["price"].as_str().map(String::from))))
            .collect(),
    })
}

/// One branch's sales of one local day, between 08:00 and 20:00 there.
fn day_of_sales(
    shop: &Shop,
    branch: u64,
    day: NaiveDate,
    per_day: u64,
    rng: &mut Rng,
    popularity: &Zipf,
) -> Vec<Value> {
    use chrono::Datelike;
    let weekend = day.weekday().number_from_monday() >= 6;
    let base = if weekend { per_day * 3 / 2 } else { per_day };
    let count = (base / 2 + rng.below(base as usize + 1) as u64).clamp(1, 1000);
    let opening = day.and_hms_opt(8, 0, 0).unwrap_or_default();
    (0..count)
        .filter_map(|i| {
            let (product, list_price) = shop.products.get(popularity.sample(rng))?;
            let local = opening + chrono::Duration::seconds(rng.below(12 * 3600) as i64);
            let at = shop.zone.from_local_datetime(&local).earliest()?;
            let price = list_price
                .clone()
                .unwrap_or_else(|| price_of(*product).to_string());
            Some(json!({
                "productID": product,
                "quantitySold": quantity(rng),
                "pricePerUnit": price,
                "timestamp": at.with_timezone(&Utc).to_rfc3339(),
                "idempotencyKey": format!("history:{}:{branch}:{day}:{i}", shop.tenant),
            }))
        })
        .collect()
}

/// Posts a batch; how many it held, and how many were new (not replays).
async fn post(
    client: &awc::Client,
    url: &str,
    token: &str,
    batch: &[Value],
) -> Result<(u64, u64), HistoryError> {
    if batch.is_empty() {
        return Ok((0, 0));
    }
    let failed = |e: String| HistoryError::Request(format!("POST {url}"), e);
    let mut res = client
        .post(url)
        .bearer_auth(token)
        .send_json(&batch)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = res.status();
    if !status.is_success() {
        let body = res.body().await.unwrap_or_default();
        return Err(failed(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let new = if status.as_u16() == 201 {
        batch.len() as u64
    } else {
        0
    };
    Ok((batch.len() as u64, new))
}

async fn get(client: &awc::Client, url: &str, token: &str) -> Result<Value, HistoryError> {
    let failed = |e: String| HistoryError::Request(format!("GET {url}"), e);
    let mut res = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !res.status().is_success() {
        return Err(failed(res.status().to_string()));
    }
    res.json::<Value>()
        .limit(64 << 20)
        .await
        .map_err(|e| failed(e.to_string()))
}
