//! Overflow reservations: what requests handed to persistence and not yet
//! settled add to each product, counted with the committed totals, so that
//! no two requests in flight together push a total past its column (the
//! summary's `BIGINT UNSIGNED` quantity and `DECIMAL(28,2)` revenue).

use crate::domain::{Field, ItemProblem, Money, NewSale, ProductMap};

use super::live_totals::LiveTotals;

/// Quantity and revenue per product.
type Amounts = ProductMap<(u64, Money)>;

/// Every reservation of one tenant's requests in flight.
#[derive(Default)]
pub(super) struct Reservations {
    held: Amounts,
}

/// What one request reserved; give it back with [`Reservations::release`]
/// once its outcome is known (and, on success, applied to the totals).
#[must_use = "a reservation is held until it is released"]
pub(super) struct Reservation {
    added: Amounts,
}

impl Reservations {
    /// Reserves what `sales` add (each at its request position in
    /// `positions`), or names every sale that would not fit.
    pub(super) fn take(
        &mut self,
        totals: &LiveTotals,
        sales: &[NewSale],
        positions: &[usize],
    ) -> Result<Reservation, Vec<ItemProblem>> {
        debug_assert_eq!(sales.len(), positions.len(), "one position per sale");
        let mut added = Amounts::default();
        let mut full = Vec::new();
        for (sale, &i) in sales.iter().zip(positions) {
            let (committed_q, committed_r) = totals.get(sale.product_id);
            let (held_q, held_r) = self.held.get(&sale.product_id).copied().unwrap_or_default();
            let mine = added.entry(sale.product_id).or_default();
            let quantity = [committed_q, held_q, mine.0, u64::from(sale.quantity.get())]
                .into_iter()
                .try_fold(0u64, u64::checked_add);
            let revenue = [committed_r, held_r, mine.1, sale.revenue()]
                .into_iter()
                .try_fold(Money::ZERO, Money::checked_total);
            match (quantity, revenue) {
                (None, _) => full.push(ItemProblem::new(
                    i,
                    Field::Quantity,
                    format!(
                        "would take product {}'s total quantity past {}",
                        sale.product_id,
                        u64::MAX
                    ),
                )),
                (_, None) => full.push(ItemProblem::new(
                    i,
                    Field::UnitPrice,
                    format!(
                        "would take product {}'s total sales past {}",
                        sale.product_id,
                        Money::new(Money::max_total())
                    ),
                )),
                (Some(_), Some(_)) => {
                    mine.0 += u64::from(sale.quantity.get());
                    mine.1 += sale.revenue();
                }
            }
        }
        if !full.is_empty() {
            return Err(full);
        }
        for (product, (q, r)) in &added {
            let held = self.held.entry(*product).or_default();
            held.0 += q;
            held.1 += *r;
        }
        Ok(Reservation { added })
    }

    /// Gives a reservation back.
    pub(super) fn release(&mut self, reservation: Reservation) {
        for (product, (q, r)) in reservation.added {
            let Some(held) = self.held.get_mut(&product) else {
                debug_assert!(false, "product {product} was reserved");
                continue;
            };
            debug_assert!(
                held.0 >= q && held.1 >= r,
                "a release never exceeds what is held"
            );
            held.0 = held.0.saturating_sub(q);
            held.1 = Money::new(held.1.amount() - r.amount());
            if held.0 == 0 {
                self.held.remove(&product);
            }
        }
    }

    /// Nothing is reserved (no request is between hand-over and outcome).
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal::Decimal;

    use super::*;
    use crate::domain::{BranchId, ProductId, ProductTotal, Quantity, TenantId, Timestamp};

    fn sale(price: &str) -> NewSale {
        NewSale {
            tenant_id: TenantId::new(1).expect("positive"),
            branch_id: BranchId::new(1).expect("positive"),
            product_id: ProductId::new(1).expect("positive"),
            quantity: Quantity::new(1).expect("in range"),
            price: Money::parse_price(price).expect("a price"),
            timestamp: Timestamp::from_utc(chrono::DateTime::UNIX_EPOCH),
            idempotency_key: None,
        }
    }

    /// The product's committed revenue leaves `room` below its column's most.
    fn totals_with_room(room: &str) -> LiveTotals {
        let room: Decimal = room.parse().expect("a decimal");
        LiveTotals::new(vec![ProductTotal {
            tenant_id: TenantId::new(1).expect("positive"),
            product_id: ProductId::new(1).expect("positive"),
            name: Arc::from("Latte"),
            quantity: 0,
            revenue: Money::new(Money::max_total() - room),
            refunded: 0,
            refunds: Money::ZERO,
        }])
    }

    #[test]
    fn a_release_gives_back_exactly_what_its_request_held() {
        let totals = totals_with_room("10.00");
        let mut held = Reservations::default();
        assert!(held.is_empty());
        let a = held.take(&totals, &[sale("4.00")], &[0]).expect("fits");
        let b = held.take(&totals, &[sale("3.00")], &[0]).expect("fits");
        assert!(!held.is_empty());
        assert!(
            held.take(&totals, &[sale("3.01")], &[0]).is_err(),
            "7 of 10 held"
        );
        held.release(a);
        assert!(
            held.take(&totals, &[sale("7.01")], &[0]).is_err(),
            "b's 3 is still held"
        );
        let c = held
            .take(&totals, &[sale("7.00")], &[0])
            .expect("a's 4 is free again");
        held.release(b);
        held.release(c);
        assert!(held.is_empty(), "nothing is held once all are released");
    }
}
