//! [`EventHeads`]: the last event number each tenant of a persistence actor
//! has stored, so its batches number their rows' events with no read. One
//! flush runs at a time and every event of a tenant is numbered by its
//! persistence actor (sales and refunds in their batch, catalog changes
//! just after their commit), so numbers follow commit order with no gap.
//! A head is learnt from MySQL the first time a tenant is seen, and again
//! after any attempt that did not plainly commit: numbers are never given
//! from a head that may be stale (the unique keys would refuse them).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::actors::feed::UNKNOWN_HEAD;
use crate::domain::TenantId;

#[derive(Clone, Default)]
pub(super) struct EventHeads(Rc<RefCell<HashMap<TenantId, u64>>>, Owed);

/// Tenants whose catalog events a numbering failed to number: numbered at
/// the next flush.
#[derive(Clone, Default)]
struct Owed(Rc<RefCell<std::collections::HashSet<TenantId>>>);

impl EventHeads {
    /// Those of `tenants` whose head is not known (each once).
    pub(super) fn unknown(&self, tenants: impl IntoIterator<Item = TenantId>) -> Vec<TenantId> {
        let known = self.0.borrow();
        let mut unknown: Vec<TenantId> = tenants
            .into_iter()
            .filter(|t| !known.contains_key(t))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        unknown
    }

    pub(super) fn learn(&self, heads: HashMap<TenantId, u64>) {
        self.0.borrow_mut().extend(heads);
    }

    /// The event numbers of rows of `tenants` (one per row, in order), if
    /// every head is known. Nothing moves until [`EventHeads::committed`].
    pub(super) fn number(&self, tenants: impl IntoIterator<Item = TenantId>) -> Option<Vec<u64>> {
        let known = self.0.borrow();
        let mut next: HashMap<TenantId, u64> = HashMap::new();
        tenants
            .into_iter()
            .map(|t| {
                let n = next.entry(t).or_insert(*known.get(&t)?);
                *n += 1;
                Some(*n)
            })
            .collect()
    }

    /// Rows of `tenants` (one per row) committed with the numbers
    /// [`EventHeads::number`] gave them.
    pub(super) fn committed(&self, tenants: impl IntoIterator<Item = TenantId>) {
        let mut known = self.0.borrow_mut();
        for t in tenants {
            if let Some(head) = known.get_mut(&t) {
                *head += 1;
            }
        }
    }

    /// `tenant`'s head, or [`UNKNOWN_HEAD`] (for the feed).
    pub(super) fn head_or_unknown(&self, tenant: TenantId) -> u64 {
        self.0
            .borrow()
            .get(&tenant)
            .copied()
            .unwrap_or(UNKNOWN_HEAD)
    }

    /// Forget every head (the writer's mark moved in a way not seen here).
    pub(super) fn forget_all(&self) {
        self.0.borrow_mut().clear();
    }

    /// `tenant` has catalog events to number again.
    pub(super) fn owe(&self, tenant: TenantId) {
        self.1 .0.borrow_mut().insert(tenant);
    }

    pub(super) fn owes(&self) -> bool {
        !self.1 .0.borrow().is_empty()
    }

    pub(super) fn take_owed(&self) -> Vec<TenantId> {
        self.1 .0.borrow_mut().drain().collect()
    }

    /// Forget the heads of `tenants`: what MySQL holds is not known here.
    pub(super) fn forget(&self, tenants: impl IntoIterator<Item = TenantId>) {
        let mut known = self.0.borrow_mut();
        for t in tenants {
            known.remove(&t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> TenantId {
        TenantId::new(n).unwrap()
    }

    #[test]
    fn rows_are_numbered_per_tenant_from_its_head_and_the_head_moves_only_on_commit() {
        let heads = EventHeads::default();
        assert_eq!(heads.unknown([t(1), t(2), t(1)]), vec![t(1), t(2)]);
        assert_eq!(heads.number([t(1)]), None, "no number from an unknown head");
        heads.learn(HashMap::from([(t(1), 7), (t(2), 0)]));
        let rows = [t(1), t(2), t(1), t(1)];
        assert_eq!(heads.number(rows), Some(vec![8, 1, 9, 10]));
        assert_eq!(
            heads.number(rows),
            Some(vec![8, 1, 9, 10]),
            "a failed attempt numbers the same again"
        );
        heads.committed(rows);
        assert_eq!(heads.number([t(2), t(1)]), Some(vec![2, 11]));
        heads.learn(HashMap::from([(t(2), 4)]));
        assert_eq!(heads.number([t(2)]), Some(vec![5]));
        heads.forget([t(1)]);
        assert_eq!(heads.unknown([t(1), t(2)]), vec![t(1)]);
    }
}
