//! A sale as the service handles it: the parsed values of one request item
//! ([`SaleItem`]), a sale placed in its tenant and branch ([`NewSale`]), and
//! a committed one ([`StoredSale`]).

use std::fmt;

use arrayvec::ArrayString;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use serde::{Serialize, Serializer};

use super::{BranchId, Money, ProductId, TenantId};

const MAX_QUANTITY: i64 = 1_000_000;
const MAX_KEY_LEN: usize = 64;

/// Units sold in one transaction, 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(n: i64) -> Option<Quantity> {
        (1..=MAX_QUANTITY)
            .contains(&n)
            .then_some(Quantity(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A client's key for safe retries: 1 to 64 of `A-Z a-z 0-9 . _ : -`, so it
/// can also be written into SQL text without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=MAX_KEY_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| IdempotencyKey(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A point in time in UTC with microsecond precision (what MySQL keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(NaiveDateTime);

impl Timestamp {
    /// Truncates (never rounds) to whole microseconds.
    pub fn from_utc(t: DateTime<Utc>) -> Self {
        let nanos = t.nanosecond().min(999_999_999);
        let naive = t.naive_utc();
        Timestamp(naive.with_nanosecond(nanos / 1000 * 1000).unwrap_or(naive))
    }

    pub fn from_naive_utc(t: NaiveDateTime) -> Self {
        Timestamp(t)
    }

    pub fn naive_utc(self) -> NaiveDateTime {
        self.0
    }
}

impl Timestamp {
    /// Writes `2026-01-31<sep>12:00:00.123456`, digit by digit: this runs
    /// per stored row and per answered sale, and `write!` with padded
    /// fields cost about 2,000 instructions a call.
    pub fn write_to(self, out: &mut impl fmt::Write, sep: u8) -> fmt::Result {
        let t = self.0;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999);
        let Some(year) = year.filter(|_| t.nanosecond() < 1_000_000_000) else {
            // Outside what a DATETIME holds, or a leap second: exact all the same.
            let (date, time) = (t.format("%Y-%m-%d"), t.format("%H:%M:%S%.6f"));
            return write!(out, "{date}{}{time}", char::from(sep));
        };
        let mut buf = *b"0000-00-00 00:00:00.000000";
        put_digits(&mut buf[0..4], year);
        put_digits(&mut buf[5..7], t.month());
        put_digits(&mut buf[8..10], t.day());
        buf[10] = sep;
        put_digits(&mut buf[11..13], t.hour());
        put_digits(&mut buf[14..16], t.minute());
        put_digits(&mut buf[17..19], t.second());
        put_digits(&mut buf[20..26], t.nanosecond() / 1000);
        out.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// `n` as decimal digits filling `out`, zero-padded (higher digits that do
/// not fit are dropped: callers pass fields that fit).
fn put_digits(out: &mut [u8], mut n: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f, b'T')?;
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    /// Through a stack buffer: `collect_str` goes through `fmt::write`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = ArrayString::<48>::new();
        if self.write_to(&mut text, b'T').is_ok() && text.try_push('Z').is_ok() {
            s.serialize_str(&text)
        } else {
            s.collect_str(self)
        }
    }
}

/// One valid transaction of a request. The branch and tenant come from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub price: Money,
    pub timestamp: Timestamp,
    /// False when the timestamp is the receive time; a retry of such an item
    /// then matches its original whatever the time.
    pub timestamp_given: bool,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A transaction ready to be stored: a [`SaleItem`] placed in its tenant and branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSale {
    #[serde(rename = "tenantID")]
    pub tenant_id: TenantId,
    #[serde(rename = "branchID")]
    pub branch_id: BranchId,
    #[serde(rename = "productID")]
    pub product_id: ProductId,
    #[serde(rename = "quantitySold")]
    pub quantity: u32,
    #[serde(rename = "pricePerUnit")]
    pub price: Money,
    pub timestamp: Timestamp,
    #[serde(rename = "idempotencyKey", skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl NewSale {
    pub fn new(tenant_id: TenantId, branch_id: BranchId, item: &SaleItem) -> Self {
        NewSale {
            tenant_id,
            branch_id,
            product_id: item.product_id,
            quantity: item.quantity.get(),
            price: item.price,
            timestamp: item.timestamp,
            idempotency_key: item.idempotency_key.clone(),
        }
    }

    /// Quantity × price, exact.
    pub fn revenue(&self) -> Money {
        self.price.times(self.quantity)
    }
}

/// A committed transaction, as answered to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredSale {
    pub id: u64,
    #[serde(flatten)]
    pub sale: NewSale,
}

impl StoredSale {
    /// Whether `item`, sent again with the same key, is the same sale. A
    /// timestamp the client left out (receive time) is not compared.
    pub fn same_content(&self, branch_id: BranchId, item: &SaleItem) -> bool {
        let s = &self.sale;
        s.branch_id == branch_id
            && s.product_id == item.product_id
            && s.quantity == item.quantity.get()
            && s.price == item.price
            && (!item.timestamp_given || s.timestamp == item.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn timestamps_are_written_as_chrono_writes_them(
            secs in -70_000_000_000i64..260_000_000_000,
            micros in 0u32..1_000_000,
        ) {
            let t = DateTime::from_timestamp(secs, micros * 1000).expect("in range").naive_utc();
            let mut sql = String::new();
            Timestamp(t).write_to(&mut sql, b' ').expect("writes");
            prop_assert_eq!(sql, t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
            prop_assert_eq!(
                Timestamp(t).to_string(),
                t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
            );
        }
    }
}
