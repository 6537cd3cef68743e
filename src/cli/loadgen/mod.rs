//! `pos loadgen`: drives the real endpoint with simulated tills (one actor
//! each) spread over existing tenants and branches, prints a progress line
//! each second and a final report, and with `--verify` checks that the
//! server's totals grew by exactly what it confirmed.

mod feed;
pub mod mix;
mod report;
mod shops;
mod terminal;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;

use super::keys_file::{KeysFile, KeysFileError};
use crate::domain::{Money, TenantId};
use mix::Zipf;
use report::Stats;
use shops::{learn_shops, Shop};
use terminal::{Terminal, TerminalPlan};

/// Zipf exponent of product popularity.
const POPULARITY_SKEW: f64 = 1.1;
/// Longest wait for answers still in flight after the run.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a run could not start, or could not read the totals it checks.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error(transparent)]
    KeysFile(#[from] KeysFileError),
    #[error("--verify reads every tenant's totals: the keys file needs an operator key")]
    NoOperatorKey,
    #[error("--verify-feed: RabbitMQ: {0}")]
    Feed(String),
    #[error("the keys file has no till key for tenant {0}")]
    NoTillKey(TenantId),
    #[error("GET {url}: {source}")]
    Unanswered {
        url: String,
        source: awc::error::SendRequestError,
    },
    #[error("GET {url}: {status}")]
    Refused {
        url: String,
        status: awc::http::StatusCode,
    },
    #[error("GET {url}: {source}")]
    Unreadable {
        url: String,
        source: awc::error::JsonPayloadError,
    },
    #[error(
        "no tenants with open branches and active products; run `pos seed` or create some \
         through the API"
    )]
    NoShops,
}

/// A `--duration` that is none.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("expected a duration like 30s or 5m, got {0:?}")]
    NotADuration(String),
    #[error("the duration must be more than 0")]
    Zero,
}

#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Total requests per second over all terminals.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: u64,
    /// How long to send: 30s, 5m, 1h.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    /// Simulated tills (one actor each).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub terminals: u64,
    /// Transactions per request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
    /// Tenant ids to use, comma-separated (default: the first tenants by id).
    #[arg(long, value_delimiter = ',')]
    pub tenants: Vec<TenantId>,
    /// Check that the server's totals grew by exactly what was confirmed.
    #[arg(long)]
    pub verify: bool,
    /// Seed of the random choices (default: time-based).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Requests in flight per terminal before sends are skipped.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_in_flight: u64,
    /// Print the final report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The share of confirmed requests followed by a refund of one unit of
    /// their first sale (0 to 1; `--verify` checks the refunded totals too).
    #[arg(long, default_value_t = 0.01, value_parser = refund_rate)]
    pub refund_rate: f64,
    /// API keys (as `pos seed --keys-file` writes them): tills post with
    /// their tenant's key, `--verify` reads with the operator key. Without
    /// it requests carry no key (a server with POS_AUTH=disabled).
    #[arg(long)]
    pub keys_file: Option<std::path::PathBuf>,
    /// Also check the feed: a queue of its own on this RabbitMQ (amqp://…),
    /// bound to the feed's exchange before the run, must end holding
    /// exactly the run's confirmed sales and refunds, in seq order per tenant.
    #[arg(long, value_name = "AMQP_URL")]
    pub verify_feed: Option<String>,
    /// The feed's exchange (the server's POS_AMQP_EXCHANGE).
    #[arg(long, default_value = "pos.events")]
    pub feed_exchange: String,
}

fn refund_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("expected a share from 0 to 1, got {text:?}")),
    }
}

/// Parses `30s`, `5m`, `1h`, `500ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "s"), |i| t.split_at(i));
    let not_one = || DurationError::NotADuration(text.to_string());
    let n: u64 = number.parse().map_err(|_| not_one())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(not_one()),
    };
    if d.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(d)
}

/// Runs the load; returns the process exit code.
pub async fn run(args: LoadgenArgs) -> i32 {
    match run_inner(&args).await {
        Ok(ok) => i32::from(!ok),
        Err(e) => {
            eprintln!("loadgen: {e}");
            1
        }
    }
}

async fn run_inner(args: &LoadgenArgs) -> Result<bool, LoadgenError> {
    let base_url = args.url.trim_end_matches('/').to_string();
    let keys = match &args.keys_file {
        Some(path) => Some(KeysFile::read(path)?),
        None => None,
    };
    let operator = match (&keys, args.verify) {
        (Some(k), true) => Some(k.operator.clone().ok_or(LoadgenError::NoOperatorKey)?),
        _ => None,
    };
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let shops: Vec<Arc<Shop>> = learn_shops(&client, &base_url, args, keys.as_ref())
        .await?
        .into_iter()
        .map(Arc::new)
        .collect();
    let reader = Reader {
        client: &client,
        base: &base_url,
        token: operator.as_deref(),
    };
    let before = if args.verify {
        Some(reader.totals(&shops).await?)
    } else {
        None
    };

    let stats = Arc::new(Stats::new());
    let live = Arc::new(AtomicUsize::new(args.terminals as usize));
    let start = Instant::now();
    let end = start + args.duration;
    let arbiters: Vec<Arbiter> = (0..2).map(|_| Arbiter::new()).collect();
    let seed = args
        .seed
        .unwrap_or_else(|| start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()));
    let run_id = format!("{:x}", seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24);
    let feed = match &args.verify_feed {
        Some(url) => Some(feed::FeedWatch::start(url, &args.feed_exchange, &run_id).await?),
        None => None,
    };
    let zipfs: HashMap<usize, Arc<Zipf>> = shops
        .iter()
        .map(|s| s.products.len())
        .map(|n| (n, Arc::new(Zipf::new(n, POPULARITY_SKEW))))
        .collect();
    for i in 0..args.terminals as usize {
        let shop = shops[i % shops.len()].clone();
        let token = match &keys {
            Some(k) => Some(
                k.tills
                    .get(&shop.tenant_id)
                    .cloned()
                    .ok_or(LoadgenError::NoTillKey(shop.tenant_id))?,
            ),
            None => None,
        };
        let plan = TerminalPlan {
            id: i,
            token: token.map(Arc::from),
            branch: shop.branches[(i / shops.len()) % shop.branches.len()],
            zipf: zipfs[&shop.products.len()].clone(),
            shop,
            rate: args.rate as f64 / args.terminals as f64,
            batch: args.batch as usize,
            base_url: base_url.clone(),
            run_id: run_id.clone(),
            seed,
            start,
            end,
            max_in_flight: args.max_in_flight as usize,
            refund_rate: args.refund_rate,
            stats: stats.clone(),
            live: live.clone(),
        };
        Terminal::start_in_arbiter(&arbiters[i % arbiters.len()].handle(), move |_| {
            Terminal::new(plan)
        });
    }
    eprintln!(
        "loadgen: {} terminals over {} tenants, {} req/s x {} transactions for {:?} (run {run_id})",
        args.terminals,
        shops.len(),
        args.rate,
        args.batch,
        args.duration
    );
    watch_progress(&stats, &live, end).await;
    for a in arbiters {
        a.stop();
    }
    let elapsed = start
        .elapsed()
        .min(args.duration.max(Duration::from_millis(1)) + DRAIN_TIMEOUT);
    let report = stats.report(elapsed.max(args.duration), args.batch as usize);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!("{report}");
    }
    if before.is_none() && feed.is_none() {
        return Ok(true);
    }
    let (confirmed, uncertain) = stats.sales.copy();
    let sold = Sent {
        confirmed,
        uncertain,
    };
    let (confirmed, uncertain) = stats.refunds.copy();
    let refunded = Sent {
        confirmed,
        uncertain,
    };
    let mut problems = Vec::new();
    if let Some(before) = before {
        // The ranking includes every sale answered at least 100 ms ago.
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let after = reader.totals(&shops).await?;
        problems = compare(&before.sold, &after.sold, &sold);
        for p in compare(&before.refunded, &after.refunded, &refunded) {
            problems.push(format!("refunded: {p}"));
        }
    }
    if let Some(feed) = &feed {
        problems.extend(feed.verify(&sold, &refunded).await);
    }
    let unknown = stats.unknown_outcomes();
    if problems.is_empty() {
        if unknown > 0 {
            eprintln!(
                "verify: {unknown} requests have an unknown outcome (given up, or unanswered when the run ended); the server holds each of them whole or not at all, and nothing else"
            );
        }
        eprintln!("verify: ok");
        Ok(true)
    } else {
        for p in &problems {
            eprintln!("verify: {p}");
        }
        Ok(false)
    }
}

async fn watch_progress(stats: &Stats, live: &AtomicUsize, end: Instant) {
    let mut last = (Instant::now(), 0u64);
    let deadline = end + DRAIN_TIMEOUT;
    while live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        if last.0.elapsed() >= Duration::from_secs(1) {
            let answered = stats.answered_total();
            let rate = (answered - last.1) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), answered);
            eprintln!("{}", stats.progress_line(rate));
        }
    }
}

/// Quantity and revenue of a product, as the API answers them.
type Totals = HashMap<u64, (u64, Money)>;

/// Per tenant, and the top-selling list (by quantity) by tenant and
/// product (product ids repeat across pods).
#[derive(Default)]
struct Snapshot {
    tenants: HashMap<u64, Totals>,
    top: HashMap<(u64, u64), (u64, Money)>,
}

/// What the server holds sold (gross) and refunded.
struct Held {
    sold: Snapshot,
    refunded: Snapshot,
}

/// Reads the server's totals for `--verify`, with the operator key if any.
struct Reader<'a> {
    client: &'a awc::Client,
    base: &'a str,
    token: Option<&'a str>,
}

impl Reader<'_> {
    async fn totals(&self, shops: &[Arc<Shop>]) -> Result<Held, LoadgenError> {
        let base = self.base;
        let (mut sold, mut refunded) = (Snapshot::default(), Snapshot::default());
        let units = |p: &Value, quantity: &str, amount: &str| {
            (p[quantity].as_u64().unwrap_or(0), money(&p[amount]))
        };
        for shop in shops {
            let v = self
                .get_json(&format!("{base}/v1/tenants/{}/sales", shop.tenant_id))
                .await?;
            let (mut gross, mut back) = (Totals::new(), Totals::new());
            for p in v["sales_per_product"].as_array().into_iter().flatten() {
                let id = p["productID"].as_u64().unwrap_or(0);
                gross.insert(id, units(p, "quantitySold", "totalSales"));
                back.insert(id, units(p, "quantityRefunded", "refunds"));
            }
            sold.tenants.insert(shop.tenant_id.get(), gross);
            refunded.tenants.insert(shop.tenant_id.get(), back);
        }
        let v = self
            .get_json(&format!("{base}/v1/top-selling?limit=100&by=quantity"))
            .await?;
        for p in v["top_selling_products"].as_array().into_iter().flatten() {
            let (id, tenant) = (
                p["productID"].as_u64().unwrap_or(0),
                p["tenantID"].as_u64().unwrap_or(0),
            );
            sold.top
                .insert((tenant, id), units(p, "quantitySold", "totalSales"));
            refunded
                .top
                .insert((tenant, id), units(p, "quantityRefunded", "refunds"));
        }
        Ok(Held { sold, refunded })
    }

    async fn get_json(&self, url: &str) -> Result<Value, LoadgenError> {
        shops::get_json(self.client, url, self.token).await
    }
}

fn money(v: &Value) -> Money {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// Every difference between `after` and `before` + what was confirmed.
/// What the run sent, per (tenant, product): confirmed by the server, and
/// of unknown outcome.
struct Sent {
    confirmed: HashMap<(u64, u64), (u64, Money)>,
    uncertain: HashMap<(u64, u64), (u64, Money)>,
}

impl Sent {
    /// `None` when `got` is what a product holding `base` before the run
    /// may hold now: `base` plus every confirmed sale, plus any part of the
    /// sales of unknown outcome. Else what was expected, for the message.
    fn mismatch(
        &self,
        tenant: u64,
        product: u64,
        base: (u64, Money),
        got: (u64, Money),
    ) -> Option<String> {
        let zero = (0, Money::ZERO);
        let c = self
            .confirmed
            .get(&(tenant, product))
            .copied()
            .unwrap_or(zero);
        let u = self
            .uncertain
            .get(&(tenant, product))
            .copied()
            .unwrap_or(zero);
        let low = (base.0 + c.0, base.1 + c.1);
        let high = (low.0 + u.0, low.1 + u.1);
        if (low.0..=high.0).contains(&got.0) && (low.1..=high.1).contains(&got.1) {
            return None;
        }
        if u == zero {
            return Some(format!("{} units / {}", low.0, low.1));
        }
        Some(format!(
            "{} to {} units / {} to {} (sales of unknown outcome)",
            low.0, high.0, low.1, high.1
        ))
    }

    fn products_of(&self, tenant: u64) -> impl Iterator<Item = u64> + '_ {
        self.confirmed
            .keys()
            .chain(self.uncertain.keys())
            .filter(move |(t, _)| *t == tenant)
            .map(|(_, p)| *p)
    }
}

fn compare(before: &Snapshot, after: &Snapshot, sent: &Sent) -> Vec<String> {
    let mut problems = Vec::new();
    for (tenant, after_totals) in &after.tenants {
        let empty = Totals::new();
        let before_totals = before.tenants.get(tenant).unwrap_or(&empty);
        let mut products: Vec<u64> = after_totals
            .keys()
            .chain(before_totals.keys())
            .copied()
            .chain(sent.products_of(*tenant))
            .collect();
        products.sort_unstable();
        products.dedup();
        for p in products {
            let base = before_totals.get(&p).copied().unwrap_or((0, Money::ZERO));
            let got = after_totals.get(&p).copied().unwrap_or((0, Money::ZERO));
            if let Some(want) = sent.mismatch(*tenant, p, base, got) {
                problems.push(format!(
                    "tenant {tenant} product {p}: expected {want}, server has {} / {}",
                    got.0, got.1
                ));
            }
        }
    }
    for ((tenant, product), (quantity, revenue)) in &after.top {
        // Another tenant's product sells as others please: not ours to check.
        let Some(own) = before.tenants.get(tenant) else {
            continue;
        };
        let base = own.get(product).copied().unwrap_or((0, Money::ZERO));
        if let Some(want) = sent.mismatch(*tenant, *product, base, (*quantity, *revenue)) {
            problems.push(format!(
                "top-selling product {product}: expected {want}, server has {quantity} / {revenue}"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        Money::parse_price(text).expect("a price")
    }

    #[test]
    fn a_server_holds_every_confirmed_sale_and_at_most_the_unknown_ones() {
        let sent = Sent {
            confirmed: [((1, 7), (10, money("25.00")))].into(),
            uncertain: [((1, 7), (3, money("7.50")))].into(),
        };
        let base = (100, money("250.00"));
        // Exactly the confirmed ones, or some of the unknown ones too.
        assert!(sent.mismatch(1, 7, base, (110, money("275.00"))).is_none());
        assert!(sent.mismatch(1, 7, base, (113, money("282.50"))).is_none());
        // A confirmed sale missing, or more than was ever sent.
        assert!(sent.mismatch(1, 7, base, (109, money("272.50"))).is_some());
        assert!(sent.mismatch(1, 7, base, (114, money("285.00"))).is_some());
        // Without unknown outcomes, exactly.
        let exact = Sent {
            uncertain: HashMap::new(),
            ..sent
        };
        assert!(exact.mismatch(1, 7, base, (110, money("275.00"))).is_none());
        assert!(exact.mismatch(1, 7, base, (111, money("277.50"))).is_some());
    }

    #[test]
    fn the_top_sellers_check_leaves_other_tenants_alone_even_with_the_same_product_ids() {
        let sent = Sent {
            confirmed: [((1, 2), (2, money("3.00")))].into(),
            uncertain: HashMap::new(),
        };
        let before = Snapshot {
            tenants: [(1, Totals::new())].into(),
            top: HashMap::new(),
        };
        // Tenant 9 (not in the run, on another pod) sold its own product 2.
        let after = Snapshot {
            tenants: [(1, [(2, (2, money("3.00")))].into())].into(),
            top: [
                ((1, 2), (2, money("3.00"))),
                ((9, 2), (746, money("1133.89"))),
            ]
            .into(),
        };
        assert_eq!(compare(&before, &after, &sent), Vec::<String>::new());
        // The run's own product in the list is still checked.
        let wrong = Snapshot {
            top: [((1, 2), (3, money("4.50")))].into(),
            ..after
        };
        assert_eq!(compare(&before, &wrong, &sent).len(), 1);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
