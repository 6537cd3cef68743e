//! Money: an exact decimal with at most two fractional digits, always written
//! back with exactly two.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use arrayvec::ArrayString;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// A price or a total. Written as `"12.30"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Largest unit price accepted: what fits `DECIMAL(10,2)`.
    pub fn max_unit_price() -> Decimal {
        Decimal::new(9_999_999_999, 2)
    }

    /// Parses a price as sent by a client (the JSON text of a string or a
    /// number), exactly: no float on the way, nothing rounded. The text is
    /// `digits[.digits]` and nothing else: no sign, no spaces, no `1.` or
    /// `.5`, no exponent (a till that sends one has a bug worth seeing).
    pub fn parse_price(json_text: &str) -> Result<Money, &'static str> {
        let text = json_text.trim();
        let text = if let Some(inner) = text.strip_prefix('"') {
            inner
                .strip_suffix('"')
                .ok_or("must be a decimal string or number")?
        } else {
            text
        };
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        if !is_plain_decimal(unsigned) {
            return Err(
                "must be a decimal number like \"12.34\" (digits, optionally . and digits)",
            );
        }
        if unsigned.len() != text.len() {
            return Err("must be greater than 0");
        }
        let value =
            Decimal::from_str_exact(text).map_err(|_| "must be a decimal number like \"12.34\"")?;
        if value.normalize().scale() > 2 {
            return Err("must have at most 2 fractional digits");
        }
        if value <= Decimal::ZERO {
            return Err("must be greater than 0");
        }
        if value > Self::max_unit_price() {
            return Err("must be at most 99999999.99");
        }
        Ok(Money::new(value))
    }

    /// Largest product total: what fits the summary's `DECIMAL(28,2)`.
    pub fn max_total() -> Decimal {
        Decimal::from_i128_with_scale(9_999_999_999_999_999_999_999_999_999, 2)
    }

    /// `self + other` if it still fits a product total ([`Money::max_total`]).
    pub fn checked_total(self, other: Money) -> Option<Money> {
        let sum = self.0.checked_add(other.0)?;
        (sum <= Self::max_total()).then(|| Money::new(sum))
    }

    /// Wraps an amount that is already exact to the cent (from MySQL DECIMAL
    /// columns or from sums of such amounts). Only trailing zeros go, so no
    /// `normalize` first (it cost about 650 instructions a call).
    pub fn new(value: Decimal) -> Money {
        let mut v = value;
        if v.scale() != 2 {
            v.rescale(2);
        }
        debug_assert_eq!(v, value, "{value} is exact to the cent");
        Money(v)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    /// Fractional digits the amount needs (`12.30`: 1, `12.00`: 0).
    pub fn fraction_digits(self) -> u32 {
        if self.0.scale() != 2 {
            return self.0.normalize().scale();
        }
        match self.0.mantissa() % 100 {
            0 => 0,
            c if c % 10 == 0 => 1,
            _ => 2,
        }
    }

    /// `self × quantity`, exact.
    pub fn times(self, quantity: u32) -> Money {
        Money::new(self.0 * Decimal::from(quantity))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money::new(self.0 + rhs.0)
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

/// `digits` or `digits.digits`, ASCII only.
fn is_plain_decimal(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(text),
    }
}

/// Room for any `Decimal` with two fractional digits: a sign, 29 digits
/// (a 96-bit mantissa), the point and two cents, with some to spare.
const MONEY_TEXT_MAX: usize = 40;

impl Money {
    /// `12.30`: from the mantissa, with integer formatting only. This runs
    /// for every stored row and every total answered (a `GET` of a tenant's
    /// sales writes one per product); `Decimal`'s `{:.2}` through
    /// `fmt::write` cost about 800 instructions a call.
    pub fn text(self) -> ArrayString<MONEY_TEXT_MAX> {
        let mut cents = self.0;
        cents.rescale(2);
        let mut out = ArrayString::new();
        if cents.scale() != 2 {
            // Too large for two fractional digits: never a Money in range
            // (they stop at 28 digits), so the slow path is fine.
            let _ = write!(out, "{:.2}", self.0);
            return out;
        }
        let m = cents.mantissa();
        let abs = m.unsigned_abs();
        if m < 0 {
            out.push('-');
        }
        out.push_str(itoa::Buffer::new().format(abs / 100));
        let c = (abs % 100) as u8;
        out.push('.');
        out.push(char::from(b'0' + c / 10));
        out.push(char::from(b'0' + c % 10));
        out
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl FromStr for Money {
    type Err = &'static str;
    /// An amount exact to the cent (`12.3`, `12.30`); anything finer is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = Decimal::from_str_exact(s).map_err(|_| "not a decimal")?;
        if value.normalize().scale() > 2 {
            return Err("more than two fractional digits");
        }
        Ok(Money::new(value))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_from_strings_and_numbers() {
        assert_eq!(
            Money::parse_price("\"12.3\"")
                .expect("valid test input")
                .to_string(),
            "12.30"
        );
        assert_eq!(
            Money::parse_price("12.34")
                .expect("valid test input")
                .to_string(),
            "12.34"
        );
        assert_eq!(
            Money::parse_price("7")
                .expect("valid test input")
                .to_string(),
            "7.00"
        );
        assert_eq!(
            Money::parse_price("\"99999999.99\"")
                .expect("valid test input")
                .to_string(),
            "99999999.99"
        );
    }

    #[test]
    fn prices_that_would_be_rounded_are_rejected() {
        assert!(Money::parse_price("12.345").is_err());
        assert!(Money::parse_price("12.340000000000000001").is_err());
        assert!(Money::parse_price("\"1.001\"").is_err());
    }

    #[test]
    fn only_digits_with_an_optional_fraction_are_prices() {
        for bad in [
            "\"+1.00\"",
            "\"1.\"",
            "\".5\"",
            "\" 1.00 \"",
            "\"1.00 \"",
            "\"1,00\"",
            "\"1e2\"",
            "\"١.٠٠\"",
            "\"1..0\"",
            "\"0x10\"",
        ] {
            assert!(Money::parse_price(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Money::parse_price("\"-1.00\""),
            Err("must be greater than 0")
        );
        // Around a JSON number there may be JSON's own whitespace.
        assert!(Money::parse_price(" 1.00 ").is_ok());
    }

    #[test]
    fn trailing_zeros_are_not_extra_precision() {
        assert_eq!(
            Money::parse_price("\"1.500\"")
                .expect("valid test input")
                .to_string(),
            "1.50"
        );
        // Two significant fractional digits after the zeros go: still a price.
        assert_eq!(
            Money::parse_price("1.230")
                .expect("valid test input")
                .to_string(),
            "1.23"
        );
    }

    #[test]
    fn out_of_range_and_non_numbers_are_rejected() {
        for bad in [
            "0",
            "-1",
            "\"100000000.00\"",
            "\"abc\"",
            "true",
            "null",
            "1e2",
            "\"\"",
        ] {
            assert!(Money::parse_price(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// The digit-by-digit text is `Decimal`'s own `{:.2}`, sign and
        /// 28-digit totals included.
        #[test]
        fn text_is_decimals_two_digit_format(m in proptest::num::i128::ANY, scale in 0u32..=2) {
            let m = m % 10_000_000_000_000_000_000_000_000_000; // 28 digits
            let value = Decimal::from_i128_with_scale(m, scale);
            let text = Money::new(value).text();
            proptest::prop_assert_eq!(text.as_str(), format!("{value:.2}"));
        }
    }

    #[test]
    fn totals_add_up_to_the_largest_a_summary_column_holds() {
        let price = |text| Money::parse_price(text).expect("valid test input");
        let sum = price("1.25").checked_total(price("2.50"));
        assert_eq!(sum.map(|m| m.to_string()).as_deref(), Some("3.75"));
        let largest = Money::new(Money::max_total());
        assert_eq!(largest.checked_total(Money::ZERO), Some(largest));
        assert_eq!(largest.checked_total(price("0.01")), None);
    }

    #[test]
    fn amounts_read_back_exact_to_the_cent_and_no_finer() {
        let read = |text: &str| text.parse::<Money>().map(|m| m.to_string());
        assert_eq!(read("12"), Ok("12.00".into()));
        assert_eq!(read("12.3"), Ok("12.30".into()));
        assert_eq!(read("1.23"), Ok("1.23".into()));
        assert_eq!(read("1.230"), Ok("1.23".into()));
        assert!(read("12.345").is_err());
        assert!(read("twelve").is_err());
    }

    #[test]
    fn text_of_zero_and_of_the_largest_total() {
        assert_eq!(Money::ZERO.text().as_str(), "0.00");
        assert_eq!(Money::default().to_string(), "0.00");
        assert_eq!(
            Money::new(Money::max_total()).text().as_str(),
            "99999999999999999999999999.99"
        );
        // Past what two fractional digits can hold: still written, never a panic.
        assert_eq!(
            Money(Decimal::MAX).text().as_str(),
            format!("{:.2}", Decimal::MAX)
        );
    }
}
