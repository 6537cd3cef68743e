//! A tenant's currency: an ISO 4217 code and how many fractional digits
//! its amounts may have. Amounts stay `Money` (two fractional digits in
//! answers); a currency with fewer (JPY: none) refuses finer amounts,
//! never rounding them.

use std::fmt;

use serde::{Serialize, Serializer};

use super::Money;

/// A currency prices and totals of a tenant are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

/// Why a code is not a currency a tenant may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("must be an ISO 4217 currency code like \"EUR\"")]
    Unknown,
    /// Three fractional digits (BHD, KWD, …) do not fit two-digit money.
    #[error("currencies with three fractional digits are not supported yet")]
    ThreeDigits,
}

impl Currency {
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);

    /// `code` as a tenant's currency: a known ISO 4217 code, upper case,
    /// of a currency with 0 to 2 fractional digits (funds and metals,
    /// which have none defined, are not currencies a till takes).
    pub fn parse(code: &str) -> Result<Currency, CurrencyError> {
        let known = code
            .bytes()
            .all(|b| b.is_ascii_uppercase())
            .then(|| iso_currency::Currency::from_code(code))
            .flatten()
            .ok_or(CurrencyError::Unknown)?;
        match known.exponent() {
            Some(0..=2) => Ok(Currency(known)),
            Some(_) => Err(CurrencyError::ThreeDigits),
            None => Err(CurrencyError::Unknown),
        }
    }

    /// A code as MySQL holds it (checked when it was stored); `None` for
    /// one this build does not know.
    pub fn stored(code: &str) -> Option<Currency> {
        Currency::parse(code).ok()
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Fractional digits an amount may have.
    pub fn digits(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }

    /// Whether `amount` has no more fractional digits than this currency
    /// (`120.00` is a yen amount, `120.50` is not).
    pub fn holds(self, amount: Money) -> bool {
        let digits = self.digits();
        digits >= 2 || amount.fraction_digits() <= digits
    }

    /// The problem of an amount too fine for this currency.
    pub fn too_fine(self) -> &'static str {
        match self.digits() {
            0 => "must be a whole amount in this tenant's currency",
            1 => "must have at most 1 fractional digit in this tenant's currency",
            _ => "must have at most 2 fractional digits",
        }
    }
}

impl Currency {
    /// `amount` as a person reads it in this currency: its symbol, digits
    /// grouped by thousands, its own fractional digits (`€1,234.50`,
    /// `¥1,235`, `1,234.50 CHF`).
    pub fn format(self, amount: Money) -> String {
        let digits = self.digits();
        let value = amount
            .amount()
            .round_dp_with_strategy(digits, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        let text = format!("{:.*}", digits as usize, value.abs());
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let mut grouped = String::with_capacity(text.len() + whole.len() / 3);
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if !fraction.is_empty() {
            grouped.push('.');
            grouped.push_str(fraction);
        }
        let sign = if value.is_sign_negative() && !value.is_zero() {
            "-"
        } else {
            ""
        };
        match SIGNS.iter().find(|(code, _)| *code == self.code()) {
            Some((_, sign_of_currency)) => format!("{sign}{sign_of_currency}{grouped}"),
            None => format!("{sign}{grouped} {}", self.code()),
        }
    }
}

/// Currencies written with a sign no other currency uses; any other shows
/// its code (`$` would not tell a US dollar from a Canadian one on the
/// operator's table of all tenants, and `₣` would puzzle a Swiss shop
/// owner where `CHF` does not).
const SIGNS: [(&str, &str); 10] = [
    ("EUR", "€"),
    ("USD", "$"),
    ("GBP", "£"),
    ("JPY", "¥"),
    ("INR", "₹"),
    ("KRW", "₩"),
    ("ILS", "₪"),
    ("NGN", "₦"),
    ("UAH", "₴"),
    ("TRY", "₺"),
];

impl Default for Currency {
    fn default() -> Self {
        Currency::EUR
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        text.parse().expect("an amount")
    }

    #[test]
    fn amounts_read_as_people_write_them_in_each_currency() {
        let c = |code| Currency::parse(code).expect("a currency");
        assert_eq!(c("EUR").format(money("1234.5")), "€1,234.50");
        assert_eq!(c("EUR").format(money("0")), "€0.00");
        assert_eq!(c("EUR").format(money("-3.2")), "-€3.20");
        assert_eq!(c("USD").format(money("1000000")), "$1,000,000.00");
        assert_eq!(c("JPY").format(money("1234.50")), "¥1,235");
        assert_eq!(c("CHF").format(money("999.99")), "999.99 CHF");
        assert_eq!(c("GBP").format(money("12")), "£12.00");
        assert_eq!(c("CAD").format(money("12")), "12.00 CAD");
        assert_eq!(c("CNY").format(money("12")), "12.00 CNY");
    }

    #[test]
    fn codes_are_iso_4217_upper_case_with_at_most_two_digits() {
        assert_eq!(Currency::parse("EUR").map(Currency::code), Ok("EUR"));
        assert_eq!(Currency::parse("JPY").map(Currency::digits), Ok(0));
        assert_eq!(Currency::parse("USD").map(Currency::digits), Ok(2));
        assert_eq!(Currency::parse("KWD"), Err(CurrencyError::ThreeDigits));
        assert_eq!(Currency::parse("BHD"), Err(CurrencyError::ThreeDigits));
        for bad in ["", "eur", "EURO", "XYZ", "E", "XAU"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError::Unknown), "{bad:?}");
        }
    }

    #[test]
    fn an_amount_finer_than_its_currency_is_refused_not_rounded() {
        let yen = Currency::parse("JPY").expect("a currency");
        assert!(yen.holds(money("120")));
        assert!(yen.holds(money("120.00")), "trailing zeros are no finer");
        assert!(!yen.holds(money("120.50")));
        assert!(Currency::EUR.holds(money("120.55")));
    }
}
