//! Counters shared by the terminals, the live progress line and the final report.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::domain::Money;

/// Everything the terminals record.
pub struct Stats {
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    /// Sends skipped because a terminal had too many requests in flight.
    pub skipped: AtomicU64,
    /// Requests whose outcome stayed unknown after every retry.
    pub unknown: AtomicU64,
    /// Requests sent and not settled yet (confirmed, refused or given up).
    /// Those left when the run ends are given up too: their outcome is
    /// unknown (the server may have stored them).
    pub pending: AtomicU64,
    pub by_status: Mutex<BTreeMap<u16, u64>>,
    /// Answers to refund requests (kept apart: the sales' figures above
    /// stay what the sales did).
    pub refunds_by_status: Mutex<BTreeMap<u16, u64>>,
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Microseconds from the scheduled send to the answer.
    pub latency: Mutex<Histogram<u64>>,
    /// Units and amounts sold, and refunded, by what the server answered.
    pub sales: Ledger,
    pub refunds: Ledger,
}

/// Units and amounts per (tenant, product), by what the server answered.
#[derive(Default)]
pub struct Ledger {
    /// What the server confirmed (201/200).
    pub confirmed: Mutex<HashMap<(u64, u64), (u64, Money)>>,
    /// What was sent and has no final answer (yet, or ever: given up, or
    /// cut off by the run's end): the server may hold any of it, each
    /// request whole or not at all.
    pub uncertain: Mutex<HashMap<(u64, u64), (u64, Money)>>,
}

impl Ledger {
    pub fn confirm(&self, tenant: u64, product: u64, quantity: u32, revenue: Money) {
        if let Ok(mut m) = self.confirmed.lock() {
            let e = m.entry((tenant, product)).or_insert((0, Money::ZERO));
            e.0 += u64::from(quantity);
            e.1 += revenue;
        }
    }

    /// Units sent: uncertain until [`Ledger::settled`].
    pub fn sent(&self, tenant: u64, product: u64, quantity: u32, revenue: Money) {
        if let Ok(mut m) = self.uncertain.lock() {
            let e = m.entry((tenant, product)).or_insert((0, Money::ZERO));
            e.0 += u64::from(quantity);
            e.1 += revenue;
        }
    }

    /// Units with a final answer (confirmed or refused): certain now.
    pub fn settled(&self, tenant: u64, product: u64, quantity: u32, revenue: Money) {
        if let Ok(mut m) = self.uncertain.lock() {
            if let Some(e) = m.get_mut(&(tenant, product)) {
                e.0 = e.0.saturating_sub(u64::from(quantity));
                e.1 = Money::new(e.1.amount() - revenue.amount());
                if e.0 == 0 {
                    m.remove(&(tenant, product));
                }
            }
        }
    }

    /// A copy of what was confirmed and of what is uncertain.
    pub fn copy(&self) -> (Units, Units) {
        let copy = |m: &Mutex<Units>| m.lock().map(|m| m.clone()).unwrap_or_default();
        (copy(&self.confirmed), copy(&self.uncertain))
    }
}

/// Units and amount per (tenant, product).
pub type Units = HashMap<(u64, u64), (u64, Money)>;

impl Stats {
    pub fn new() -> Self {
        Stats {
            sent: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            by_status: Mutex::default(),
            refunds_by_status: Mutex::default(),
            errors: Mutex::default(),
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            ),
            sales: Ledger::default(),
            refunds: Ledger::default(),
        }
    }

    pub fn answered(&self, status: u16, latency: Duration) {
        if let Ok(mut m) = self.by_status.lock() {
            *m.entry(status).or_default() += 1;
        }
        if let Ok(mut h) = self.latency.lock() {
            h.saturating_record(latency.as_micros().max(1) as u64);
        }
    }

    pub fn refund_answered(&self, status: u16) {
        if let Ok(mut m) = self.refunds_by_status.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    pub fn error(&self, kind: &str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// Requests given up after every retry, and those still unsettled.
    pub fn unknown_outcomes(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed) + self.pending.load(Ordering::Relaxed)
    }

    pub fn answered_total(&self) -> u64 {
        self.by_status.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    pub fn p99_ms(&self) -> f64 {
        self.latency
            .lock()
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
            .unwrap_or(0.0)
    }

    /// `sent 1200 · 201: 1190 503: 10 · 400/s · p99 12.3 ms`
    pub fn progress_line(&self, rate: f64) -> String {
        let statuses = self
            .by_status
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(s, n)| format!("{s}: {n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        format!(
            "sent {} · {} · {:.0}/s · p99 {:.1} ms",
            self.sent.load(Ordering::Relaxed),
            if statuses.is_empty() {
                "no answers yet".into()
            } else {
                statuses
            },
            rate,
            self.p99_ms()
        )
    }

    pub fn report(&self, elapsed: Duration, batch: usize) -> Report {
        let h = self.latency.lock().map(|h| h.clone()).ok();
        let q = |p: f64| {
            h.as_ref()
                .map_or(0.0, |h| h.value_at_quantile(p) as f64 / 1000.0)
        };
        let answered = self.answered_total();
        Report {
            elapsed_seconds: elapsed.as_secs_f64(),
            requests_sent: self.sent.load(Ordering::Relaxed),
            requests_answered: answered,
            transactions_per_request: batch,
            throughput_requests_per_second: answered as f64 / elapsed.as_secs_f64().max(1e-9),
            latency_ms: Latency {
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                max: h.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0),
            },
            answers_by_status: by_status(&self.by_status),
            refunds_by_status: by_status(&self.refunds_by_status),
            errors_by_kind: self.errors.lock().map(|m| m.clone()).unwrap_or_default(),
            retries: self.retries.load(Ordering::Relaxed),
            skipped_in_flight_cap: self.skipped.load(Ordering::Relaxed),
            unknown_outcomes: self.unknown_outcomes(),
        }
    }
}

fn by_status(m: &Mutex<BTreeMap<u16, u64>>) -> BTreeMap<String, u64> {
    m.lock()
        .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect())
        .unwrap_or_default()
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The final report (`--json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Report {
    pub elapsed_seconds: f64,
    pub requests_sent: u64,
    pub requests_answered: u64,
    pub transactions_per_request: usize,
    pub throughput_requests_per_second: f64,
    pub latency_ms: Latency,
    pub answers_by_status: BTreeMap<String, u64>,
    /// Answers to the refunds sent (`--refund-rate`).
    pub refunds_by_status: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub retries: u64,
    pub skipped_in_flight_cap: u64,
    pub unknown_outcomes: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "duration      {:.1} s", self.elapsed_seconds)?;
        writeln!(
            f,
            "requests      {} sent, {} answered ({} transactions each), {:.1} req/s",
            self.requests_sent,
            self.requests_answered,
            self.transactions_per_request,
            self.throughput_requests_per_second
        )?;
        let l = &self.latency_ms;
        writeln!(
            f,
            "latency       p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        )?;
        writeln!(f, "answers       {}", counts(&self.answers_by_status))?;
        if !self.refunds_by_status.is_empty() {
            writeln!(f, "refunds       {}", counts(&self.refunds_by_status))?;
        }
        writeln!(f, "errors        {}", counts(&self.errors_by_kind))?;
        write!(
            f,
            "retries       {} · skipped (in-flight cap) {} · unknown outcomes {}",
            self.retries, self.skipped_in_flight_cap, self.unknown_outcomes
        )
    }
}

/// `201: 1190 · 503: 10`, or `none`.
fn counts<K: std::fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}
