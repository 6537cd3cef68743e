//! The sales-transaction request body: one object or an array of them, parsed
//! field by field so every problem is reported under its own name
//! (`[3].quantitySold`), and so prices never pass through a float.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{BranchId, Money, ProductId, TenantId};

/// Most transactions one request may carry.
pub const MAX_ITEMS: usize = 1000;
const MAX_QUANTITY: i64 = 1_000_000;
const MAX_KEY_LEN: usize = 64;
const MAX_FUTURE_SECONDS: i64 = 60;

/// Units sold in one transaction, 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quantity(u32);

impl Quantity {
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
    /// Writes `2026-01-31<sep>12:00:00.123456`; by hand because chrono's
    /// format strings are re-parsed on every call and this runs per row.
    pub fn write_to(self, out: &mut impl fmt::Write, sep: char) -> fmt::Result {
        let t = self.0;
        write!(
            out,
            "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}.{:06}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond() / 1000
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f, 'T')?;
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

/// A parsed request body.
#[derive(Debug)]
pub struct ParsedSales {
    pub items: Vec<SaleItem>,
    /// The body was an array (the answer is then `{"transactions": [...]}`).
    pub is_array: bool,
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum SalesParseError {
    #[error("malformed JSON: {0}")]
    BadJson(String),
    #[error("an array may hold at most {MAX_ITEMS} transactions, got {0}")]
    TooManyItems(usize),
    #[error("{message}")]
    Invalid {
        message: String,
        fields: BTreeMap<String, String>,
    },
}

/// Parses a request body for `tenant`/`branch` received at `now`.
pub fn parse_sales(
    body: &[u8],
    tenant: TenantId,
    branch: BranchId,
    now: DateTime<Utc>,
) -> Result<ParsedSales, SalesParseError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| SalesParseError::BadJson("body is not UTF-8".into()))?;
    let (raws, is_array): (Vec<&RawValue>, bool) = match text.trim_start().as_bytes().first() {
        Some(b'[') => (serde_json::from_str(text).map_err(bad_json)?, true),
        _ => {
            let raw: &RawValue = serde_json::from_str(text).map_err(bad_json)?;
            (vec![raw], false)
        }
    };
    if raws.len() > MAX_ITEMS {
        return Err(SalesParseError::TooManyItems(raws.len()));
    }
    if raws.is_empty() {
        return Err(invalid(
            "the array must hold 1 to 1000 transactions",
            BTreeMap::new(),
        ));
    }
    let ctx = ItemContext {
        tenant,
        branch,
        now,
    };
    let mut fields = BTreeMap::new();
    let mut items = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let prefix = if is_array {
            format!("[{i}].")
        } else {
            String::new()
        };
        match ctx.parse_item(raw, &prefix, &mut fields) {
            Some(item) => items.push(item),
            None => continue,
        }
    }
    check_repeated_keys(&items, is_array, &mut fields);
    if !fields.is_empty() {
        let n = fields.len();
        let message = if n == 1 {
            "1 field is invalid".to_string()
        } else {
            format!("{n} fields are invalid")
        };
        return Err(invalid(&message, fields));
    }
    Ok(ParsedSales { items, is_array })
}

fn bad_json(e: serde_json::Error) -> SalesParseError {
    SalesParseError::BadJson(e.to_string())
}

fn invalid(message: &str, fields: BTreeMap<String, String>) -> SalesParseError {
    SalesParseError::Invalid {
        message: message.to_string(),
        fields,
    }
}

/// One key twice in one request is ambiguous (which one is the original?), so
/// it is refused rather than guessed.
fn check_repeated_keys(items: &[SaleItem], is_array: bool, fields: &mut BTreeMap<String, String>) {
    if !is_array {
        return;
    }
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(key) = &item.idempotency_key {
            if let Some(first) = first_seen.insert(key.as_str(), i) {
                fields.insert(
                    format!("[{i}].idempotencyKey"),
                    format!("repeats the key of [{first}]"),
                );
            }
        }
    }
}

struct ItemContext {
    tenant: TenantId,
    branch: BranchId,
    now: DateTime<Utc>,
}

impl ItemContext {
    /// Parses one object; records every problem in `fields` and returns `None` if any.
    fn parse_item(
        &self,
        raw: &RawValue,
        prefix: &str,
        fields: &mut BTreeMap<String, String>,
    ) -> Option<SaleItem> {
        let Ok(object) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
            let name = if prefix.is_empty() {
                "body".to_string()
            } else {
                prefix.trim_end_matches('.').to_string()
            };
            fields.insert(name, "must be a transaction object".into());
            return None;
        };
        let before = fields.len();
        let mut err = |name: &str, msg: String| {
            fields.insert(format!("{prefix}{name}"), msg);
        };
        let mut product_id = None;
        let mut quantity = None;
        let mut price = None;
        let mut timestamp = None;
        let mut idempotency_key = None;
        for (name, value) in &object {
            let value = *value;
            match name.as_str() {
                "productID" => match positive_int(value) {
                    Some(id) => product_id = Some(id),
                    None => err(name, "must be an integer greater than 0".into()),
                },
                "quantitySold" => match serde_json::from_str::<i64>(value.get()) {
                    Ok(q) if (1..=MAX_QUANTITY).contains(&q) => quantity = Some(Quantity(q as u32)),
                    _ => err(name, "must be an integer between 1 and 1000000".into()),
                },
                "pricePerUnit" => match Money::parse_price(value.get()) {
                    Ok(p) => price = Some(p),
                    Err(msg) => err(name, msg.into()),
                },
                "timestamp" if value.get() == "null" => {}
                "timestamp" => match self.timestamp(value) {
                    Ok(t) => timestamp = Some(t),
                    Err(msg) => err(name, msg),
                },
                "tenantID" => {
                    if positive_int(value) != Some(self.tenant) {
                        err(
                            name,
                            format!("must equal the tenant in the path ({})", self.tenant),
                        );
                    }
                }
                "branchID" => {
                    if positive_int(value) != Some(self.branch) {
                        err(
                            name,
                            format!("must equal the branch in the path ({})", self.branch),
                        );
                    }
                }
                "idempotencyKey" if value.get() == "null" => {}
                "idempotencyKey" => match serde_json::from_str::<String>(value.get())
                    .ok()
                    .and_then(|s| IdempotencyKey::parse(&s))
                {
                    Some(k) => idempotency_key = Some(k),
                    None => err(
                        name,
                        "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -".into(),
                    ),
                },
                _ => err(name, "unknown field".into()),
            }
        }
        for (name, missing) in [
            ("productID", product_id.is_none()),
            ("quantitySold", quantity.is_none()),
            ("pricePerUnit", price.is_none()),
        ] {
            if missing && !object.contains_key(name) {
                err(name, "is required".into());
            }
        }
        if fields.len() != before {
            return None;
        }
        Some(SaleItem {
            product_id: product_id?,
            quantity: quantity?,
            price: price?,
            timestamp_given: timestamp.is_some(),
            timestamp: timestamp.unwrap_or_else(|| Timestamp::from_utc(self.now)),
            idempotency_key,
        })
    }

    fn timestamp(&self, value: &RawValue) -> Result<Timestamp, String> {
        let text: String = serde_json::from_str(value.get())
            .map_err(|_| "must be an RFC 3339 string".to_string())?;
        let t = DateTime::parse_from_rfc3339(&text)
            .map_err(|_| "must be RFC 3339, like 2026-01-31T12:00:00.123Z".to_string())?
            .with_timezone(&Utc);
        if t > self.now + chrono::Duration::seconds(MAX_FUTURE_SECONDS) {
            return Err(format!(
                "must not be more than {MAX_FUTURE_SECONDS} s in the future"
            ));
        }
        if t < DateTime::UNIX_EPOCH {
            return Err("must not be before 1970-01-01".into());
        }
        Ok(Timestamp::from_utc(t))
    }
}

fn positive_int(value: &RawValue) -> Option<u64> {
    serde_json::from_str::<u64>(value.get())
        .ok()
        .filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().expect("valid test input")
    }

    fn fields_of(body: &str) -> BTreeMap<String, String> {
        match parse_sales(body.as_bytes(), 1, 2, now()) {
            Err(SalesParseError::Invalid { fields, .. }) => fields,
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_go_client_body_is_accepted_and_truncated_to_microseconds() {
        let body = r#"{"tenantID":1,"branchID":2,"productID":3,"quantitySold":2,"pricePerUnit":"4.50","timestamp":"2026-11-25T13:59:59.123456789+02:00"}"#;
        let parsed = parse_sales(body.as_bytes(), 1, 2, now()).expect("valid test input");
        assert!(!parsed.is_array);
        let item = &parsed.items[0];
        assert_eq!(item.timestamp.to_string(), "2026-11-25T11:59:59.123456Z");
        assert_eq!(item.price.to_string(), "4.50");
        assert!(item.timestamp_given);
    }

    #[test]
    fn every_bad_field_of_an_array_is_named_with_its_index() {
        let f = fields_of(
            r#"[{"productID":1,"quantitySold":1,"pricePerUnit":"1.00"},{"productID":0,"quantitySold":0,"pricePerUnit":"1.001","colour":"red"}]"#,
        );
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f.contains_key("[1].productID"));
        assert!(f.contains_key("[1].quantitySold"));
        assert!(f.contains_key("[1].pricePerUnit"));
        assert_eq!(f["[1].colour"], "unknown field");
    }

    #[test]
    fn missing_fields_and_mismatched_path_ids_are_reported() {
        let f = fields_of(r#"{"tenantID":9,"branchID":2}"#);
        assert!(f.contains_key("tenantID"));
        assert_eq!(f["productID"], "is required");
        assert_eq!(f["quantitySold"], "is required");
        assert_eq!(f["pricePerUnit"], "is required");
    }

    #[test]
    fn timestamps_too_far_ahead_are_refused() {
        let f = fields_of(
            r#"{"productID":1,"quantitySold":1,"pricePerUnit":1,"timestamp":"2026-11-25T12:01:01Z"}"#,
        );
        assert!(f.contains_key("timestamp"));
    }

    #[test]
    fn malformed_json_is_not_a_validation_error() {
        assert!(matches!(
            parse_sales(b"{\"productID\":", 1, 1, now()),
            Err(SalesParseError::BadJson(_))
        ));
        assert!(matches!(
            parse_sales(b"[1,", 1, 1, now()),
            Err(SalesParseError::BadJson(_))
        ));
    }

    #[test]
    fn repeated_keys_in_one_request_are_refused() {
        let f = fields_of(
            r#"[{"productID":1,"quantitySold":1,"pricePerUnit":1,"idempotencyKey":"a"},{"productID":1,"quantitySold":1,"pricePerUnit":1,"idempotencyKey":"a"}]"#,
        );
        assert!(f.contains_key("[1].idempotencyKey"));
    }

    #[test]
    fn bad_keys_are_refused() {
        for key in [
            "\"\"",
            "\"has space\"",
            &format!("\"{}\"", "k".repeat(65)),
            "5",
        ] {
            let f = fields_of(&format!(
                r#"{{"productID":1,"quantitySold":1,"pricePerUnit":1,"idempotencyKey":{key}}}"#
            ));
            assert!(f.contains_key("idempotencyKey"), "{key}");
        }
    }
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
