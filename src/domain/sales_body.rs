//! The sales-transaction request body: one object or an array of them, parsed
//! field by field so every problem is reported under its own name
//! (`[3].quantitySold`), and so prices never pass through a float.
//!
//! A body can only cost an answer of bounded size: at most
//! [`MAX_ERROR_FIELDS`] offending fields are listed (parsing stops there),
//! and names a client made up are echoed clipped. An object naming a member
//! twice is refused, never read as "the last one wins".

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{clip, BranchId, IdempotencyKey, Money, Quantity, SaleItem, TenantId, Timestamp};

/// Most transactions one request may carry.
pub const MAX_ITEMS: usize = 1000;
/// Most offending fields one error lists.
pub const MAX_ERROR_FIELDS: usize = 20;
const MAX_FUTURE_SECONDS: i64 = 60;

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
    let mut problems = Problems::default();
    if raws.is_empty() {
        return Err(problems.into_error("the array must hold 1 to 1000 transactions"));
    }
    let ctx = ItemContext {
        tenant,
        branch,
        now,
    };
    let mut items = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        if problems.full() {
            break;
        }
        let at = Place(is_array.then_some(i));
        if let Some(item) = ctx.parse_item(raw, at, &mut problems) {
            items.push(item);
        }
    }
    if is_array {
        check_repeated_keys(&items, &mut problems);
    }
    if problems.is_empty() {
        return Ok(ParsedSales { items, is_array });
    }
    let message = problems.summary();
    Err(problems.into_error(&message))
}

fn bad_json(e: serde_json::Error) -> SalesParseError {
    SalesParseError::BadJson(e.to_string())
}

/// The offending fields of a request, at most [`MAX_ERROR_FIELDS`].
#[derive(Default)]
struct Problems {
    fields: BTreeMap<String, String>,
    /// More were found than are listed.
    cut: bool,
}

impl Problems {
    fn add(&mut self, field: String, problem: impl Into<String>) {
        if self.full() {
            self.cut = true;
        } else {
            self.fields.insert(field, problem.into());
        }
    }

    fn full(&self) -> bool {
        self.fields.len() >= MAX_ERROR_FIELDS
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn summary(&self) -> String {
        match self.fields.len() {
            _ if self.cut || self.full() => format!(
                "at least {MAX_ERROR_FIELDS} fields are invalid; the first {MAX_ERROR_FIELDS} found are listed"
            ),
            1 => "1 field is invalid".into(),
            n => format!("{n} fields are invalid"),
        }
    }

    fn into_error(self, message: &str) -> SalesParseError {
        SalesParseError::Invalid {
            message: message.to_string(),
            fields: self.fields,
        }
    }
}

/// Where an item sits: its index in an array, or `None` for a single object.
/// Field names are formatted only for errors.
#[derive(Clone, Copy)]
struct Place(Option<usize>);

impl Place {
    fn field(self, name: &str) -> String {
        match self.0 {
            Some(i) => format!("[{i}].{name}"),
            None => name.to_string(),
        }
    }

    /// The name of the item itself.
    fn item(self) -> String {
        match self.0 {
            Some(i) => format!("[{i}]"),
            None => "body".to_string(),
        }
    }
}

/// One key twice in one request is ambiguous (which one is the original?), so
/// it is refused rather than guessed.
fn check_repeated_keys(items: &[SaleItem], problems: &mut Problems) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(key) = &item.idempotency_key {
            if let Some(first) = first_seen.insert(key.as_str(), i) {
                problems.add(
                    format!("[{i}].idempotencyKey"),
                    format!("repeats the key of [{first}]"),
                );
            }
        }
    }
}

/// The members of one transaction object, each kept as raw JSON until its
/// rule reads it. A known name seen twice is set aside in `repeated`.
#[derive(Default)]
struct Members<'a> {
    product_id: Option<&'a RawValue>,
    quantity: Option<&'a RawValue>,
    price: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    tenant_id: Option<&'a RawValue>,
    branch_id: Option<&'a RawValue>,
    idempotency_key: Option<&'a RawValue>,
    repeated: Vec<&'static str>,
    /// Names that are no field of a transaction (clipped, at most [`MAX_ERROR_FIELDS`]).
    unknown: Vec<String>,
}

impl<'a> Members<'a> {
    fn slot(&mut self, name: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)> {
        Some(match name {
            "productID" => ("productID", &mut self.product_id),
            "quantitySold" => ("quantitySold", &mut self.quantity),
            "pricePerUnit" => ("pricePerUnit", &mut self.price),
            "timestamp" => ("timestamp", &mut self.timestamp),
            "tenantID" => ("tenantID", &mut self.tenant_id),
            "branchID" => ("branchID", &mut self.branch_id),
            "idempotencyKey" => ("idempotencyKey", &mut self.idempotency_key),
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a transaction object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut m = Members::default();
        while let Some(Name(name)) = map.next_key()? {
            match m.slot(&name) {
                Some((_, slot @ None)) => *slot = Some(map.next_value()?),
                Some((field, Some(_))) => {
                    if !m.repeated.contains(&field) {
                        m.repeated.push(field);
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                None => {
                    let name = clip(&name).into_owned();
                    if m.unknown.len() < MAX_ERROR_FIELDS && !m.unknown.contains(&name) {
                        m.unknown.push(name);
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
}

/// A member name, borrowed from the body unless it holds escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

struct ItemContext {
    tenant: TenantId,
    branch: BranchId,
    now: DateTime<Utc>,
}

impl ItemContext {
    /// Parses one object; records every problem and returns `None` if any.
    fn parse_item(&self, raw: &RawValue, at: Place, problems: &mut Problems) -> Option<SaleItem> {
        let Ok(m) = serde_json::from_str::<Members>(raw.get()) else {
            problems.add(at.item(), "must be a transaction object");
            return None;
        };
        let before = problems.fields.len() + usize::from(problems.cut);
        let mut err = |name: &str, msg: String| problems.add(at.field(name), msg);
        for name in &m.repeated {
            err(name, "appears more than once".into());
        }
        for name in &m.unknown {
            err(name, "unknown field".into());
        }
        let product_id = m.product_id.map(|v| {
            positive_int(v)
                .ok_or_else(|| err("productID", "must be an integer greater than 0".into()))
        });
        let quantity = m.quantity.map(|v| {
            serde_json::from_str::<i64>(v.get())
                .ok()
                .and_then(Quantity::new)
                .ok_or_else(|| {
                    err(
                        "quantitySold",
                        "must be an integer between 1 and 1000000".into(),
                    )
                })
        });
        let price = m
            .price
            .map(|v| Money::parse_price(v.get()).map_err(|msg| err("pricePerUnit", msg.into())));
        let timestamp = m
            .timestamp
            .filter(|v| v.get() != "null")
            .map(|v| self.timestamp(v).map_err(|msg| err("timestamp", msg)));
        if m.tenant_id
            .is_some_and(|v| positive_int(v) != Some(self.tenant))
        {
            err(
                "tenantID",
                format!("must equal the tenant in the path ({})", self.tenant),
            );
        }
        if m.branch_id
            .is_some_and(|v| positive_int(v) != Some(self.branch))
        {
            err(
                "branchID",
                format!("must equal the branch in the path ({})", self.branch),
            );
        }
        let idempotency_key = m.idempotency_key.filter(|v| v.get() != "null").map(|v| {
            serde_json::from_str::<String>(v.get())
                .ok()
                .and_then(|s| IdempotencyKey::parse(&s))
                .ok_or_else(|| {
                    err(
                        "idempotencyKey",
                        "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -".into(),
                    )
                })
        });
        for (name, missing) in [
            ("productID", product_id.is_none()),
            ("quantitySold", quantity.is_none()),
            ("pricePerUnit", price.is_none()),
        ] {
            if missing {
                err(name, "is required".into());
            }
        }
        if problems.fields.len() + usize::from(problems.cut) != before {
            return None;
        }
        let timestamp = timestamp.transpose().ok()?;
        Some(SaleItem {
            product_id: product_id?.ok()?,
            quantity: quantity?.ok()?,
            price: price?.ok()?,
            timestamp_given: timestamp.is_some(),
            timestamp: timestamp.unwrap_or_else(|| Timestamp::from_utc(self.now)),
            idempotency_key: idempotency_key.transpose().ok()?,
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

    #[test]
    fn a_member_named_twice_is_refused_not_last_one_wins() {
        let f =
            fields_of(r#"{"productID":1,"quantitySold":1,"quantitySold":5,"pricePerUnit":"1.00"}"#);
        assert_eq!(f["quantitySold"], "appears more than once");
        assert_eq!(f.len(), 1, "{f:?}");
        let f = fields_of(
            r#"[{"productID":1,"quantitySold":1,"pricePerUnit":"1.00"},{"productID":1,"productID":1,"quantitySold":1,"pricePerUnit":"1.00"}]"#,
        );
        assert_eq!(f["[1].productID"], "appears more than once");
        // Escapes spell the same name.
        let f = fields_of(
            r#"{"productID":1,"quantitySold":1,"pricePerUnit":"1.00","price\u0050erUnit":"9.00"}"#,
        );
        assert_eq!(f["pricePerUnit"], "appears more than once");
    }

    #[test]
    fn an_error_lists_at_most_20_fields_and_clips_made_up_names() {
        let long = "x".repeat(10_000);
        let mut body = String::from(r#"{"productID":1,"quantitySold":1,"pricePerUnit":"1.00""#);
        for i in 0..500 {
            body.push_str(&format!(r#","{i}{long}":0"#));
        }
        body.push('}');
        let f = fields_of(&body);
        assert_eq!(f.len(), MAX_ERROR_FIELDS);
        assert!(
            f.keys().all(|k| k.chars().count() <= 65),
            "{:?}",
            f.keys().next()
        );
        let items: Vec<String> = (0..1000)
            .map(|_| r#"{"productID":0,"quantitySold":0,"pricePerUnit":"0"}"#.to_string())
            .collect();
        match parse_sales(format!("[{}]", items.join(",")).as_bytes(), 1, 2, now()) {
            Err(SalesParseError::Invalid { message, fields }) => {
                assert_eq!(fields.len(), MAX_ERROR_FIELDS);
                assert!(message.starts_with("at least 20"), "{message}");
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn items_that_are_not_objects_are_named() {
        let f = fields_of(r#"[{"productID":1,"quantitySold":1,"pricePerUnit":"1.00"},5,"x",[1]]"#);
        assert_eq!(f["[1]"], "must be a transaction object");
        assert_eq!(f["[2]"], "must be a transaction object");
        assert_eq!(f["[3]"], "must be a transaction object");
        assert_eq!(fields_of("7")["body"], "must be a transaction object");
    }

    mod properties {
        use chrono::{DateTime, FixedOffset, Utc};
        use proptest::prelude::*;
        use rust_decimal::Decimal;

        use super::super::*;
        use super::now;

        /// A price as a client may write it (string or number, with 0 to 2
        /// fractional digits) and the exact amount it means.
        fn price() -> impl Strategy<Value = (String, Decimal)> {
            (1i64..=9_999_999_999, 0..4u8).prop_map(|(cents, form)| {
                let (units, rest) = (cents / 100, cents % 100);
                let short = if rest == 0 {
                    format!("{units}")
                } else if rest % 10 == 0 {
                    format!("{units}.{}", rest / 10)
                } else {
                    format!("{units}.{rest:02}")
                };
                let text = match form {
                    0 => format!("\"{units}.{rest:02}\""),
                    1 => format!("\"{short}\""),
                    2 => format!("{units}.{rest:02}"),
                    _ => short,
                };
                (text, Decimal::new(cents, 2))
            })
        }

        /// An RFC 3339 time with nanoseconds and an offset, up to now, and
        /// the UTC instant it is stored as (truncated to microseconds).
        fn timestamp() -> impl Strategy<Value = (String, Timestamp)> {
            let latest = now().timestamp();
            (0..=latest, 0u32..1_000_000_000, -720i32..=840).prop_map(|(secs, nanos, minutes)| {
                let utc = DateTime::<Utc>::from_timestamp(secs, nanos).expect("in range");
                let zone = FixedOffset::east_opt(minutes * 60).expect("valid offset");
                let text = utc
                    .with_timezone(&zone)
                    .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
                    .to_string();
                (text, Timestamp::from_utc(utc))
            })
        }

        #[derive(Debug, Clone)]
        struct Written {
            json: String,
            product: u64,
            quantity: u32,
            price: Decimal,
            timestamp: Option<Timestamp>,
            key: Option<String>,
        }

        fn item() -> impl Strategy<Value = Written> {
            (
                1u64..=u64::MAX,
                1u32..=1_000_000,
                price(),
                proptest::option::of(timestamp()),
                proptest::option::of("[A-Za-z0-9._:-]{1,64}"),
            )
                .prop_map(|(product, quantity, (price_text, price), ts, key)| {
                    let mut json = format!(
                        r#"{{"productID":{product},"quantitySold":{quantity},"pricePerUnit":{price_text}"#
                    );
                    if let Some((text, _)) = &ts {
                        json.push_str(&format!(r#","timestamp":"{text}""#));
                    }
                    if let Some(k) = &key {
                        json.push_str(&format!(r#","idempotencyKey":"{k}""#));
                    }
                    json.push('}');
                    Written {
                        json,
                        product,
                        quantity,
                        price,
                        timestamp: ts.map(|(_, t)| t),
                        key,
                    }
                })
        }

        /// Any JSON text at all, with the sale's member names among the
        /// keys. Written as text, so numbers come as exact decimal text
        /// (never through a float) and members may repeat.
        fn any_json() -> impl Strategy<Value = String> {
            let quoted = |s: String| serde_json::Value::String(s).to_string();
            let leaf = prop_oneof![
                Just("null".to_string()),
                any::<bool>().prop_map(|b| b.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
                ".{0,12}".prop_map(quoted),
            ];
            leaf.prop_recursive(4, 64, 8, move |inner| {
                let key = prop_oneof![
                    Just("productID".to_string()),
                    Just("quantitySold".to_string()),
                    Just("pricePerUnit".to_string()),
                    Just("timestamp".to_string()),
                    Just("idempotencyKey".to_string()),
                    ".{0,8}",
                ];
                let member =
                    (key.prop_map(quoted), inner.clone()).prop_map(|(k, v)| format!("{k}:{v}"));
                prop_oneof![
                    proptest::collection::vec(inner, 0..8)
                        .prop_map(|items| format!("[{}]", items.join(","))),
                    proptest::collection::vec(member, 0..8)
                        .prop_map(|members| format!("{{{}}}", members.join(","))),
                ]
            })
        }

        proptest! {
            #[test]
            fn an_accepted_body_holds_exactly_what_was_written(
                items in proptest::collection::vec(item(), 1..12),
                as_array in any::<bool>(),
            ) {
                let items = if as_array { items } else { items[..1].to_vec() };
                let body = if as_array {
                    format!("[{}]", items.iter().map(|i| i.json.as_str()).collect::<Vec<_>>().join(","))
                } else {
                    items[0].json.clone()
                };
                let keys: std::collections::HashSet<_> = items.iter().filter_map(|i| i.key.as_ref()).collect();
                let repeated = keys.len() < items.iter().filter(|i| i.key.is_some()).count();
                match parse_sales(body.as_bytes(), 1, 2, now()) {
                    Ok(parsed) => {
                        prop_assert!(!repeated, "a repeated key was accepted");
                        prop_assert_eq!(parsed.is_array, as_array);
                        prop_assert_eq!(parsed.items.len(), items.len());
                        for (got, want) in parsed.items.iter().zip(&items) {
                            prop_assert_eq!(got.product_id, want.product);
                            prop_assert_eq!(got.quantity.get(), want.quantity);
                            // Exact: same value, written back with two digits.
                            prop_assert_eq!(got.price.amount(), want.price);
                            prop_assert_eq!(got.price.to_string(), format!("{:.2}", want.price));
                            match want.timestamp {
                                Some(t) => prop_assert_eq!(got.timestamp, t),
                                None => prop_assert_eq!(got.timestamp, Timestamp::from_utc(now())),
                            }
                            prop_assert_eq!(got.timestamp_given, want.timestamp.is_some());
                            prop_assert_eq!(
                                got.idempotency_key.as_ref().map(|k| k.as_str().to_string()),
                                want.key.clone()
                            );
                        }
                    }
                    Err(e) => prop_assert!(repeated, "refused a valid body: {e:?}\n{body}"),
                }
            }

            #[test]
            fn any_bytes_get_an_answer_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = parse_sales(&bytes, 1, 2, now());
            }

            #[test]
            fn any_json_gets_an_answer_not_a_panic(text in any_json()) {
                match parse_sales(text.as_bytes(), 1, 2, now()) {
                    Ok(p) => prop_assert!(!p.items.is_empty()),
                    Err(SalesParseError::Invalid { fields, .. }) => {
                        prop_assert!(fields.len() <= MAX_ERROR_FIELDS)
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
