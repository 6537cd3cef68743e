//! A tenant's live per-product totals: written by the tenant's actor only
//! (after each commit), read by HTTP handlers directly, without a mailbox
//! round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use dashmap::DashMap;

use crate::clock::Ticks;
use crate::domain::{Money, NewRefund, NewSale, ProductId, ProductTotal, TenantId};

/// A tenant's live totals, shared with HTTP readers.
pub type Totals = Arc<LiveTotals>;

/// The renderings kept per tenant: one per encoding of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Gzip,
}

impl Encoding {
    const COUNT: usize = 2;

    fn slot(self) -> usize {
        match self {
            Encoding::Plain => 0,
            Encoding::Gzip => 1,
        }
    }
}

/// Per-product totals, plus a rendering of them kept until the next change
/// (a busy back office re-reading 1,000 products should not re-sort and
/// re-encode them each time).
pub struct LiveTotals {
    by_product: DashMap<ProductId, ProductTotal>,
    /// Bumped after every change is applied.
    version: AtomicU64,
    /// When the tenant was last asked for anything (reads included), as
    /// [`Ticks`]: its actor passivates after a while without.
    last_used_ms: AtomicU64,
    /// One cached rendering per encoding, tagged with the version it shows.
    rendered: Mutex<[Option<(u64, Bytes)>; Encoding::COUNT]>,
}

impl LiveTotals {
    pub fn new(totals: Vec<ProductTotal>) -> Self {
        LiveTotals {
            by_product: totals.into_iter().map(|t| (t.product_id, t)).collect(),
            version: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(Ticks::now().as_millis()),
            rendered: Mutex::new([None, None]),
        }
    }

    /// Notes that the tenant is in use now.
    pub fn touch(&self) {
        self.last_used_ms
            .store(Ticks::now().as_millis(), Ordering::Relaxed);
    }

    /// How long the tenant has not been used.
    pub fn idle_for(&self) -> Duration {
        Ticks::now().since(Ticks::from_millis(
            self.last_used_ms.load(Ordering::Relaxed),
        ))
    }

    /// A copy of every product's totals.
    pub fn snapshot(&self) -> Vec<ProductTotal> {
        // Copied out so no map guard outlives this call.
        self.by_product.iter().map(|e| e.value().clone()).collect()
    }

    /// `render(snapshot)` in `encoding`, reused while nothing changed. The
    /// version is read before the snapshot, so a rendering is never tagged
    /// newer than its data.
    pub fn rendered(
        &self,
        encoding: Encoding,
        render: impl FnOnce(Vec<ProductTotal>) -> Bytes,
    ) -> Bytes {
        let slot = encoding.slot();
        let version = self.version.load(Ordering::Acquire);
        if let Ok(cache) = self.rendered.lock() {
            if let Some((v, body)) = &cache[slot] {
                if *v == version {
                    return body.clone();
                }
            }
        }
        let body = render(self.snapshot());
        if let Ok(mut cache) = self.rendered.lock() {
            cache[slot] = Some((version, body.clone()));
        }
        body
    }

    /// A product's committed totals (zero if it never sold).
    pub fn get(&self, product: ProductId) -> (u64, Money) {
        self.by_product
            .get(&product)
            .map_or((0, Money::ZERO), |t| (t.quantity, t.revenue))
    }

    /// Adds one committed sale; returns the product's new totals. Only the
    /// tenant's actor calls this, and it made sure the sum fits (see
    /// `Reservations`).
    pub(super) fn add(
        &self,
        tenant_id: TenantId,
        name: impl FnOnce() -> Arc<str>,
        sale: &NewSale,
    ) -> ProductTotal {
        let mut entry = self
            .by_product
            .entry(sale.product_id)
            .or_insert_with(|| ProductTotal {
                tenant_id,
                product_id: sale.product_id,
                name: name(),
                quantity: 0,
                revenue: Money::ZERO,
                refunded: 0,
                refunds: Money::ZERO,
            });
        let quantity = entry.quantity.checked_add(u64::from(sale.quantity.get()));
        let revenue = entry.revenue.checked_total(sale.revenue());
        debug_assert!(
            quantity.is_some() && revenue.is_some(),
            "a reservation made sure product {}'s totals fit",
            sale.product_id
        );
        entry.quantity = quantity.unwrap_or(u64::MAX);
        entry.revenue = revenue.unwrap_or(entry.revenue);
        entry.clone()
    }

    /// Adds one committed refund to its product's refunded figures;
    /// returns the product's new totals (`None` if it has none: a refund
    /// is of a counted sale, so never in a consistent state). Refunds
    /// never pass what was sold, so they fit wherever the sales fit.
    pub(super) fn refund(&self, refund: &NewRefund) -> Option<ProductTotal> {
        let mut entry = self.by_product.get_mut(&refund.product_id)?;
        entry.refunded += u64::from(refund.quantity.get());
        entry.refunds = Money::new(entry.refunds.amount() + refund.amount.amount());
        debug_assert!(
            entry.refunded <= entry.quantity && entry.refunds <= entry.revenue,
            "product {} refunds no more than it sold",
            refund.product_id
        );
        Some(entry.clone())
    }

    /// Gives a product its new name; its totals if it has any.
    pub(super) fn rename(&self, product: ProductId, name: Arc<str>) -> Option<ProductTotal> {
        let renamed = self.by_product.get_mut(&product).map(|mut t| {
            t.name = name;
            t.clone()
        });
        if renamed.is_some() {
            self.changed();
        }
        renamed
    }

    /// Puts `totals` in place of every product's totals (a reload from
    /// MySQL), then publishes them.
    pub(super) fn replace(&self, totals: &[ProductTotal]) {
        for t in totals {
            self.by_product.insert(t.product_id, t.clone());
        }
        // (Reloads are rare: no shortcut for when nothing is dropped.)
        let kept: std::collections::HashSet<ProductId> =
            totals.iter().map(|t| t.product_id).collect();
        self.by_product.retain(|p, _| kept.contains(p));
        self.changed();
    }

    /// Publishes the changes applied since the last call to readers.
    pub(super) fn changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_marks_the_tenant_used_now() {
        let totals = LiveTotals::new(Vec::new());
        totals.last_used_ms.store(0, Ordering::Relaxed);
        // The clock counts from the process's first reading: wait for its first tick.
        while Ticks::now().as_millis() == 0 {
            std::thread::yield_now();
        }
        totals.touch();
        assert!(totals.last_used_ms.load(Ordering::Relaxed) > 0);
    }

    fn product(id: u64) -> ProductId {
        ProductId::new(id).expect("positive")
    }

    fn total(id: u64, quantity: u64, name: &str) -> ProductTotal {
        ProductTotal {
            tenant_id: TenantId::new(1).expect("positive"),
            product_id: product(id),
            name: Arc::from(name),
            quantity,
            revenue: Money::ZERO,
            refunded: 0,
            refunds: Money::ZERO,
        }
    }

    /// What a reader is served: `id name quantity`, by product.
    fn served(totals: &LiveTotals) -> String {
        let body = totals.rendered(Encoding::Plain, |mut rows| {
            rows.sort_by_key(|t| t.product_id);
            let text: Vec<String> = rows
                .iter()
                .map(|t| format!("{} {} {}", t.product_id, t.name, t.quantity))
                .collect();
            Bytes::from(text.join(", "))
        });
        String::from_utf8_lossy(&body).into_owned()
    }

    #[test]
    fn each_encoding_keeps_its_own_rendering() {
        let totals = LiveTotals::new(vec![total(1, 2, "Latte")]);
        let plain = totals.rendered(Encoding::Plain, |_| Bytes::from("plain"));
        let gzip = totals.rendered(Encoding::Gzip, |_| Bytes::from("gzip"));
        assert_eq!(
            (plain.as_ref(), gzip.as_ref()),
            (&b"plain"[..], &b"gzip"[..])
        );
        let again = totals.rendered(Encoding::Plain, |_| Bytes::from("rendered again"));
        assert_eq!(again.as_ref(), b"plain", "kept while nothing changed");
    }

    #[test]
    fn a_rename_is_what_readers_see_next() {
        let totals = LiveTotals::new(vec![total(1, 2, "Latte")]);
        assert_eq!(served(&totals), "1 Latte 2");
        let renamed = totals.rename(product(1), Arc::from("Flat white"));
        assert_eq!(renamed.map(|t| t.name), Some(Arc::from("Flat white")));
        assert_eq!(served(&totals), "1 Flat white 2");
        assert!(
            totals.rename(product(2), Arc::from("Tea")).is_none(),
            "a product that never sold has no totals"
        );
    }

    #[test]
    fn a_reload_replaces_every_total_and_is_served_at_once() {
        let totals = LiveTotals::new(vec![total(1, 2, "Latte"), total(2, 5, "Tea")]);
        assert_eq!(served(&totals), "1 Latte 2, 2 Tea 5");
        totals.replace(&[total(1, 7, "Latte")]);
        assert_eq!(totals.get(product(1)).0, 7);
        assert_eq!(totals.get(product(2)).0, 0, "not in MySQL, not here");
        assert_eq!(served(&totals), "1 Latte 7");
    }
}
