//! The leaders of one order: the best products, as many as the longest
//! list a reader may ask for, kept in an ordered set.

use std::collections::BTreeSet;

use crate::domain::{ProductId, ProductTotal};

/// The best `capacity` products by one order (`key` ascending, then
/// product id). Exact as long as a product's key only improves; a member
/// whose key got worse may now rank below a product that is not kept, so the
/// caller rebuilds from all totals then (never while totals only grow).
pub(super) struct Leaders<K> {
    capacity: usize,
    key: fn(&ProductTotal) -> K,
    set: BTreeSet<(K, ProductId)>,
}

impl<K: Ord> Leaders<K> {
    pub(super) fn new(capacity: usize, key: fn(&ProductTotal) -> K) -> Self {
        Leaders {
            capacity,
            key,
            set: BTreeSet::new(),
        }
    }

    /// Records a product's new totals; false if the set must be rebuilt.
    pub(super) fn update(&mut self, old: Option<&ProductTotal>, new: &ProductTotal) -> bool {
        let entry = ((self.key)(new), new.product_id);
        if let Some(old) = old {
            let old_entry = ((self.key)(old), old.product_id);
            if self.set.remove(&old_entry) {
                let worse = entry > old_entry;
                self.set.insert(entry);
                return !worse;
            }
        }
        self.offer(entry);
        true
    }

    /// Keeps `entry` if it ranks among the best `capacity`.
    fn offer(&mut self, entry: (K, ProductId)) {
        if self.set.len() < self.capacity {
            self.set.insert(entry);
        } else if self.set.last().is_some_and(|last| entry < *last) {
            self.set.insert(entry);
            self.set.pop_last();
        }
    }

    pub(super) fn rebuild<'a>(&mut self, all: impl Iterator<Item = &'a ProductTotal>) {
        self.set.clear();
        for t in all {
            self.offer(((self.key)(t), t.product_id));
        }
    }

    pub(super) fn products(&self) -> impl Iterator<Item = ProductId> + '_ {
        self.set.iter().map(|(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::domain::{Money, TenantId};

    fn total(product: ProductId, quantity: u64) -> ProductTotal {
        ProductTotal {
            tenant_id: TenantId::new(1).expect("positive"),
            product_id: product,
            name: Arc::from("p"),
            quantity,
            revenue: Money::ZERO,
            refunded: 0,
            refunds: Money::ZERO,
        }
    }

    /// The best `n` products by quantity, by brute force.
    fn best(totals: &HashMap<ProductId, ProductTotal>, n: usize) -> Vec<ProductId> {
        let mut all: Vec<_> = totals
            .values()
            .map(|t| (Reverse(t.quantity), t.product_id))
            .collect();
        all.sort();
        all.into_iter().take(n).map(|(_, p)| p).collect()
    }

    #[test]
    fn leaders_stay_exact_under_growing_and_shrinking_totals() {
        let mut leaders = Leaders::new(5, |t| Reverse(t.quantity));
        let mut totals: HashMap<ProductId, ProductTotal> = HashMap::new();
        let mut seed: u64 = 7;
        for step in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let product = ProductId::new((seed >> 33) % 40 + 1).expect("positive");
            let change = (seed >> 40) % 1000;
            // Mostly a growing total, as sales make it; now and then a smaller one.
            let quantity = match totals.get(&product) {
                Some(t) if step % 50 == 0 => t.quantity.saturating_sub(change),
                Some(t) => t.quantity + change,
                None => change,
            };
            let new = total(product, quantity);
            let kept = leaders.update(totals.get(&product), &new);
            totals.insert(product, new);
            if !kept {
                leaders.rebuild(totals.values());
            }
            assert_eq!(
                leaders.products().collect::<Vec<_>>(),
                best(&totals, 5),
                "step {step}"
            );
        }
    }
}
