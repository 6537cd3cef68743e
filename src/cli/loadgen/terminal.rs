//! A simulated till: one actor that sells at its share of the total rate on
//! an open-loop schedule (a slow server does not slow the schedule down, so
//! latency under overload is measured honestly), with a cap on requests in
//! flight, and retries a 503 or 429 after its `Retry-After`, and a 500 (an
//! unknown outcome) after a second, with the same idempotency keys, so a
//! retried sale is never counted twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;

use super::mix::{price_of, quantity, Rng, Zipf};
use super::report::Stats;
use super::Shop;
use crate::domain::{BranchId, Money, ProductId};

/// A terminal looks ahead this far each tick (sends inside are timed to their
/// exact instants), a quarter of its gap between sends, within these bounds:
/// a slow till among thousands must not wake the load tool every 5 ms.
const MIN_TICK: Duration = Duration::from_millis(5);
const MAX_TICK: Duration = Duration::from_millis(250);
/// Attempts per request before its outcome is declared unknown.
const MAX_ATTEMPTS: u32 = 30;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one terminal does.
pub struct TerminalPlan {
    pub id: usize,
    /// The till key of the shop's tenant (`None`: no key is sent).
    pub token: Option<Arc<str>>,
    pub shop: Arc<Shop>,
    pub branch: BranchId,
    pub zipf: Arc<Zipf>,
    /// Requests per second.
    pub rate: f64,
    pub batch: usize,
    pub base_url: String,
    pub run_id: String,
    pub seed: u64,
    pub start: Instant,
    pub end: Instant,
    pub max_in_flight: usize,
    /// The share of confirmed requests whose first sale is then refunded
    /// one unit of (at this terminal's branch).
    pub refund_rate: f64,
    pub stats: Arc<Stats>,
    /// Decremented when the terminal stops.
    pub live: Arc<AtomicUsize>,
}

pub struct Terminal {
    plan: TerminalPlan,
    client: Option<awc::Client>,
    scheduled: u64,
    in_flight: usize,
    /// Sends timed for later in the current tick.
    timers: usize,
    rng: Rng,
    seq: u64,
}

impl Terminal {
    pub fn new(plan: TerminalPlan) -> Self {
        let rng = Rng::new(plan.seed ^ (plan.id as u64).wrapping_mul(0x1000_0000_01B3));
        Terminal {
            plan,
            client: None,
            scheduled: 0,
            in_flight: 0,
            timers: 0,
            rng,
            seq: 0,
        }
    }

    fn lookahead(&self) -> Duration {
        Duration::from_secs_f64(0.25 / self.plan.rate).clamp(MIN_TICK, MAX_TICK)
    }

    /// This terminal's schedule starts a fraction of its period after the
    /// others' (by its id, spread evenly), as real tills are not in step:
    /// thousands of slow terminals would otherwise all send at once.
    fn origin(&self) -> Instant {
        let fraction = (self.plan.id as f64 * 0.618_033_988_749_895).fract();
        self.plan.start + Duration::from_secs_f64(fraction / self.plan.rate)
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let origin = self.origin();
        // Everything due before the next tick is timed to its exact instant.
        let horizon = (now + self.lookahead()).min(self.plan.end);
        let due = (horizon.saturating_duration_since(origin).as_secs_f64() * self.plan.rate) as u64;
        while self.scheduled < due {
            self.scheduled += 1;
            let at = origin + Duration::from_secs_f64(self.scheduled as f64 / self.plan.rate);
            if at <= now {
                self.send_unless_capped(at, ctx);
            } else {
                self.timers += 1;
                ctx.run_later(at - now, move |act, ctx| {
                    act.timers -= 1;
                    act.send_unless_capped(at, ctx);
                });
            }
        }
        self.stop_when_done(ctx);
    }

    /// Stops once the schedule is over and nothing is pending.
    fn stop_when_done(&self, ctx: &mut Context<Self>) {
        if Instant::now() >= self.plan.end && self.in_flight == 0 && self.timers == 0 {
            ctx.stop();
        }
    }

    fn send_unless_capped(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if self.in_flight >= self.plan.max_in_flight {
            self.plan.stats.skipped.fetch_add(1, Ordering::Relaxed);
        } else {
            self.send(at, ctx);
        }
    }

    fn next_sale(&mut self) -> Sale {
        self.seq += 1;
        let product = self.plan.shop.products[self.plan.zipf.sample(&mut self.rng)];
        Sale {
            product_id: product,
            quantity_sold: quantity(&mut self.rng),
            price_per_unit: price_of(product.get()),
            idempotency_key: format!("lg-{}-{}-{}", self.plan.run_id, self.plan.id, self.seq),
        }
    }

    fn send(&mut self, at: Instant, ctx: &mut Context<Self>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let sales: Vec<Sale> = (0..self.plan.batch).map(|_| self.next_sale()).collect();
        let body = if self.plan.batch == 1 {
            serde_json::to_vec(&sales[0])
        } else {
            serde_json::to_vec(&sales)
        };
        let Ok(body) = body else { return };
        let url = format!(
            "{}/v1/tenants/{}/branches/{}/sales-transactions",
            self.plan.base_url, self.plan.shop.tenant_id, self.plan.branch
        );
        let stats = self.plan.stats.clone();
        let tenant = self.plan.shop.tenant_id;
        let token = self.plan.token.clone();
        let refund = (self.rng.unit() < self.plan.refund_rate).then(|| Refund {
            url: format!(
                "{}/v1/tenants/{}/branches/{}/refunds",
                self.plan.base_url, tenant, self.plan.branch
            ),
            key: format!("lgr-{}-{}-{}", self.plan.run_id, self.plan.id, self.seq),
        });
        self.in_flight += 1;
        stats.sent.fetch_add(1, Ordering::Relaxed);
        stats.pending.fetch_add(1, Ordering::Relaxed);
        for s in &sales {
            let revenue = s.price_per_unit.times(s.quantity_sold);
            let (t, p, q) = (tenant.get(), s.product_id.get(), s.quantity_sold);
            stats.sales.sent(t, p, q, revenue);
        }
        ctx.spawn(
            async move {
                let token = token.as_deref();
                let to = (url.as_str(), Kind::Sales);
                let (outcome, answer) = deliver(&client, to, token, body, at, &stats).await;
                if outcome != Outcome::Unknown {
                    for s in &sales {
                        let revenue = s.price_per_unit.times(s.quantity_sold);
                        let (t, p, q) = (tenant.get(), s.product_id.get(), s.quantity_sold);
                        if outcome == Outcome::Confirmed {
                            stats.sales.confirm(t, p, q, revenue);
                        }
                        stats.sales.settled(t, p, q, revenue);
                    }
                }
                if let (Some(refund), Some(answer)) = (refund, answer) {
                    let first = &sales[0];
                    let units = (tenant.get(), first.product_id.get(), first.price_per_unit);
                    refund.send(&client, token, &answer, units, &stats).await;
                }
                // Settled (and counted) only now: a request the run's end
                // cuts off before this line is counted as unknown.
                stats.pending.fetch_sub(1, Ordering::Relaxed);
            }
            .into_actor(self)
            .map(|(), act, ctx| {
                act.in_flight -= 1;
                act.stop_when_done(ctx);
            }),
        );
    }
}

/// One unit of a confirmed sale to take back.
struct Refund {
    url: String,
    key: String,
}

impl Refund {
    /// Refunds one unit of the first sale of `answer` (a sale, or
    /// `{"transactions": [...]}`), of `(tenant, product, price)`.
    async fn send(
        self,
        client: &awc::Client,
        token: Option<&str>,
        answer: &serde_json::Value,
        (tenant, product, price): (u64, u64, Money),
        stats: &Stats,
    ) {
        let sale = answer.get("transactions").map_or(answer, |t| &t[0]);
        let Some(sale_id) = sale["id"].as_u64() else {
            return;
        };
        let body =
            serde_json::json!({"saleID": sale_id, "quantity": 1, "idempotencyKey": self.key});
        let Ok(body) = serde_json::to_vec(&body) else {
            return;
        };
        stats.refunds.sent(tenant, product, 1, price);
        let at = Instant::now();
        let to = (self.url.as_str(), Kind::Refunds);
        let (outcome, _) = deliver(client, to, token, body, at, stats).await;
        if outcome != Outcome::Unknown {
            if outcome == Outcome::Confirmed {
                stats.refunds.confirm(tenant, product, 1, price);
            }
            stats.refunds.settled(tenant, product, 1, price);
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 201 or 200: stored.
    Confirmed,
    /// A final refusal: nothing stored.
    Refused,
    /// Given up after every retry: stored or not.
    Unknown,
}

/// What a request is: the sales' figures count sales requests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sales,
    Refunds,
}

/// Sends until the server gives a final answer; a confirmation's body.
async fn deliver(
    client: &awc::Client,
    (url, kind): (&str, Kind),
    token: Option<&str>,
    body: Vec<u8>,
    at: Instant,
    stats: &Stats,
) -> (Outcome, Option<serde_json::Value>) {
    let sales = kind == Kind::Sales;
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 && sales {
            stats.retries.fetch_add(1, Ordering::Relaxed);
        }
        let mut req = client
            .post(url)
            .insert_header(("Content-Type", "application/json"))
            .timeout(REQUEST_TIMEOUT);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send_body(body.clone()).await;
        let wait = match res {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let answer = r.body().await;
                if sales {
                    stats.answered(status, at.elapsed());
                } else {
                    stats.refund_answered(status);
                }
                match status {
                    200 | 201 => {
                        let answer = answer.ok().and_then(|b| serde_json::from_slice(&b).ok());
                        return (Outcome::Confirmed, answer);
                    }
                    // Nothing of the request was stored: send it again later.
                    503 | 429 => retry_after(&r),
                    // The outcome is unknown (a 500 from the server, a 502
                    // or 504 from a proxy in front of it): the same keys tell
                    // (a replay answers 200 with the stored sales, or they
                    // are stored now).
                    500 | 502 | 504 => Duration::from_secs(1),
                    _ => return (Outcome::Refused, None),
                }
            }
            Err(e) => {
                if sales {
                    stats.error(error_kind(&e));
                }
                Duration::from_secs(1)
            }
        };
        actix_web::rt::time::sleep(wait).await;
    }
    if sales {
        stats.unknown.fetch_add(1, Ordering::Relaxed);
    }
    (Outcome::Unknown, None)
}

fn retry_after<S>(r: &awc::ClientResponse<S>) -> Duration {
    let secs = r
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs.clamp(1, 60))
}

fn error_kind(e: &awc::error::SendRequestError) -> &'static str {
    use awc::error::SendRequestError as E;
    match e {
        E::Connect(_) => "connect",
        E::Timeout => "timeout",
        E::Send(_) | E::Response(_) => "io",
        _ => "other",
    }
}

#[derive(Serialize)]
struct Sale {
    #[serde(rename = "productID")]
    product_id: ProductId,
    #[serde(rename = "quantitySold")]
    quantity_sold: u32,
    #[serde(rename = "pricePerUnit")]
    price_per_unit: Money,
    #[serde(rename = "idempotencyKey")]
    idempotency_key: String,
}

impl Actor for Terminal {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // awc's client is single-threaded: one per terminal, made on its thread.
        self.client = Some(awc::Client::builder().timeout(REQUEST_TIMEOUT).finish());
        ctx.run_interval(self.lookahead(), |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.plan.live.fetch_sub(1, Ordering::SeqCst);
    }
}
