//! Idempotency keys inside a tenant's actor: the keys committed lately (so
//! most replays need no read), and the keys of requests in flight (a second
//! request with one of them waits for the first's outcome).

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use super::TenantError;
use crate::domain::{BranchId, IdempotencyKey, SaleItem, StoredSale};

/// Committed keys remembered per tenant, so most replays need no lookup.
const RECENT_KEYS: usize = 4096;

/// A bounded memory of committed keys, oldest forgotten first.
#[derive(Default)]
pub(super) struct RecentKeys {
    by_key: HashMap<IdempotencyKey, StoredSale>,
    order: VecDeque<IdempotencyKey>,
}

impl RecentKeys {
    pub(super) fn insert(&mut self, sale: StoredSale) {
        let Some(key) = sale.sale.idempotency_key.clone() else {
            return;
        };
        if self.by_key.insert(key.clone(), sale).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > RECENT_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
        debug_assert_eq!(
            self.by_key.len(),
            self.order.len(),
            "each key once in order"
        );
    }

    pub(super) fn extend(&mut self, sales: Vec<StoredSale>) {
        for s in sales {
            self.insert(s);
        }
    }

    /// Fills `outcome` for items whose key is already committed; a key
    /// committed with other content is a conflict (nothing is stored).
    pub(super) fn settle(
        &self,
        branch_id: BranchId,
        items: &[SaleItem],
        outcome: &mut [Option<StoredSale>],
    ) -> Result<(), TenantError> {
        for (item, slot) in items.iter().zip(outcome) {
            let Some(key) = &item.idempotency_key else {
                continue;
            };
            let Some(stored) = self.by_key.get(key) else {
                continue;
            };
            if !stored.same_content(branch_id, item) {
                return Err(TenantError::IdempotencyConflict(key.clone()));
            }
            *slot = Some(stored.clone());
        }
        Ok(())
    }
}

/// Keys of the requests in flight, each with the requests waiting for it.
#[derive(Default)]
pub(super) struct KeyClaims {
    held: HashMap<IdempotencyKey, Vec<oneshot::Sender<()>>>,
}

impl KeyClaims {
    /// Claims every key of `items`, or, when one is claimed already,
    /// claims none and returns a signal that fires once that one is
    /// released (try again then).
    pub(super) fn claim(&mut self, items: &[SaleItem]) -> Result<(), oneshot::Receiver<()>> {
        self.claim_keys(|| items.iter().filter_map(|i| i.idempotency_key.as_ref()))
    }

    /// Claims every key `keys()` gives, or none (as [`Self::claim`]).
    pub(super) fn claim_keys<'k, I: Iterator<Item = &'k IdempotencyKey>>(
        &mut self,
        keys: impl Fn() -> I,
    ) -> Result<(), oneshot::Receiver<()>> {
        if let Some(busy) = keys().find(|k| self.held.contains_key(*k)) {
            let (wake, woken) = oneshot::channel();
            self.held.entry(busy.clone()).or_default().push(wake);
            return Err(woken);
        }
        for key in keys() {
            self.held.insert(key.clone(), Vec::new());
        }
        Ok(())
    }

    /// Releases the keys of `items` (claimed before) and wakes their waiters.
    pub(super) fn release(&mut self, items: &[SaleItem]) {
        self.release_keys(items.iter().filter_map(|i| i.idempotency_key.as_ref()));
    }

    /// Releases `keys` (claimed before) and wakes their waiters.
    pub(super) fn release_keys<'k>(&mut self, keys: impl Iterator<Item = &'k IdempotencyKey>) {
        for key in keys {
            let waiters = self.held.remove(key);
            debug_assert!(waiters.is_some(), "key {} was claimed", key.as_str());
            for wake in waiters.into_iter().flatten() {
                let _ = wake.send(());
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Requests waiting for a key (a test's view).
    #[cfg(feature = "testing")]
    pub(super) fn waiting(&self) -> usize {
        self.held.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Money, NewSale, ProductId, Quantity, TenantId, Timestamp};

    fn stored(id: u64) -> StoredSale {
        let one = |n| TenantId::new(n).expect("positive");
        let sale = NewSale {
            tenant_id: one(1),
            branch_id: BranchId::new(1).expect("positive"),
            product_id: ProductId::new(1).expect("positive"),
            quantity: Quantity::new(1).expect("in range"),
            price: Money::parse_price("1.00").expect("a price"),
            timestamp: Timestamp::from_utc(chrono::DateTime::UNIX_EPOCH),
            idempotency_key: IdempotencyKey::parse(&format!("k-{id}")),
        };
        StoredSale {
            id: crate::domain::SaleId::new(id + 1).expect("positive"),
            sale,
        }
    }

    #[test]
    fn the_last_recent_keys_are_remembered_and_the_oldest_forgotten_first() {
        let mut recent = RecentKeys::default();
        for id in 0..=RECENT_KEYS as u64 {
            recent.insert(stored(id));
        }
        assert_eq!(recent.by_key.len(), RECENT_KEYS);
        let key = |id| IdempotencyKey::parse(&format!("k-{id}")).expect("a key");
        assert!(
            !recent.by_key.contains_key(&key(0)),
            "the oldest is forgotten"
        );
        assert!(recent.by_key.contains_key(&key(1)), "the next oldest stays");
        // The same key again is one entry, not a second place in line.
        recent.insert(stored(RECENT_KEYS as u64));
        assert_eq!(recent.order.len(), RECENT_KEYS);
    }

    #[test]
    fn a_claimed_key_is_held_with_its_waiters_until_released() {
        let sale = stored(1).sale;
        let item = SaleItem {
            product_id: sale.product_id,
            quantity: sale.quantity,
            price: Some(sale.price),
            timestamp: sale.timestamp,
            timestamp_given: true,
            timestamp_ahead: false,
            idempotency_key: sale.idempotency_key,
        };
        let items = [item];
        let mut claims = KeyClaims::default();
        assert!(claims.is_empty());
        assert!(claims.claim(&items).is_ok());
        assert!(!claims.is_empty(), "the key is held");
        #[cfg(feature = "testing")]
        assert_eq!(claims.waiting(), 0);
        let mut woken = claims.claim(&items).expect_err("the key is taken");
        #[cfg(feature = "testing")]
        assert_eq!(claims.waiting(), 1);
        assert!(woken.try_recv().is_err(), "not before the release");
        claims.release(&items);
        assert!(claims.is_empty());
        assert!(woken.try_recv().is_ok(), "the waiter is woken");
    }
}
