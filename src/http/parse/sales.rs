//! The sales-transaction request body: one object or an array of them, parsed
//! field by field so every problem is reported under its own name
//! (`[3].quantitySold`), and so prices never pass through a float.
//!
//! A body can only cost an answer of bounded size: at most
//! [`MAX_ERROR_FIELDS`] offending fields are listed (parsing stops there),
//! and names a client made up are echoed clipped. An object naming a member
//! twice is refused, never read as "the last one wins".

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{positive_int, BodyError, Name, Problems, MAX_ERROR_FIELDS};
use crate::domain::{
    clip, BranchId, Field, IdempotencyKey, Money, ProductId, Quantity, SaleItem, TenantId,
    Timestamp, MAX_FUTURE_SECONDS,
};

/// A parsed request body.
#[derive(Debug)]
pub struct ParsedSales {
    pub items: Vec<SaleItem>,
    /// The body was an array (the answer is then `{"transactions": [...]}`).
    pub is_array: bool,
}

/// Parses a request body for `tenant`/`branch` received at `now`.
pub fn parse_sales(
    body: &[u8],
    tenant: TenantId,
    branch: BranchId,
    now: DateTime<Utc>,
) -> Result<ParsedSales, BodyError> {
    let (raws, is_array) = super::items(body)?;
    let mut problems = Problems::default();
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
        if let Some(item) = ctx.parse_item(raw, i, &mut problems) {
            items.push(item);
        }
    }
    if problems.is_empty() {
        check_repeated_keys(&items, &mut problems);
    }
    problems.finish(ParsedSales { items, is_array }, is_array)
}

/// One key twice in one request is ambiguous (which one is the original?), so
/// it is refused rather than guessed. Runs once every item parsed, so the
/// positions in `items` are the request's.
fn check_repeated_keys(items: &[SaleItem], problems: &mut Problems) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(key) = &item.idempotency_key {
            if let Some(first) = first_seen.insert(key.as_str(), i) {
                problems.add(
                    i,
                    Field::Named("idempotencyKey"),
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

struct ItemContext {
    tenant: TenantId,
    branch: BranchId,
    now: DateTime<Utc>,
}

impl ItemContext {
    /// Parses one object; records every problem and returns `None` if any.
    fn parse_item(&self, raw: &RawValue, at: usize, problems: &mut Problems) -> Option<SaleItem> {
        let Ok(m) = serde_json::from_str::<Members>(raw.get()) else {
            problems.add(at, Field::Whole, "must be a transaction object");
            return None;
        };
        let before = problems.seen();
        for name in &m.repeated {
            problems.add(at, Field::Named(name), "appears more than once");
        }
        for name in m.unknown {
            problems.add(at, Field::Unknown(name), "unknown field");
        }
        let mut err = |name: &'static str, msg: String| problems.add(at, Field::Named(name), msg);
        let product_id = m.product_id.map(|v| {
            positive_int(v)
                .and_then(ProductId::new)
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
        // Left out (or null): the product's list price, if it has one.
        let price = m
            .price
            .filter(|v| v.get() != "null")
            .map(|v| Money::parse_price(v.get()).map_err(|msg| err("pricePerUnit", msg.into())));
        let timestamp = m
            .timestamp
            .filter(|v| v.get() != "null")
            .map(|v| self.timestamp(v).map_err(|msg| err("timestamp", msg)));
        if m.tenant_id
            .is_some_and(|v| positive_int(v) != Some(self.tenant.get()))
        {
            err(
                "tenantID",
                format!("must equal the tenant in the path ({})", self.tenant),
            );
        }
        if m.branch_id
            .is_some_and(|v| positive_int(v) != Some(self.branch.get()))
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
        ] {
            if missing {
                err(name, "is required".into());
            }
        }
        if problems.seen() != before {
            return None;
        }
        let timestamp = timestamp.transpose().ok()?;
        Some(SaleItem {
            product_id: product_id?.ok()?,
            quantity: quantity?.ok()?,
            price: price.transpose().ok()?,
            timestamp_given: timestamp.is_some(),
            timestamp_ahead: timestamp.is_some_and(|t| t > self.latest()),
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
        if t < DateTime::UNIX_EPOCH {
            return Err("must not be before 1970-01-01".into());
        }
        Ok(Timestamp::from_utc(t))
    }

    /// The latest timestamp a new sale may carry (later ones are refused
    /// by the tenant's actor unless they replay a stored sale).
    fn latest(&self) -> Timestamp {
        Timestamp::from_utc(self.now + chrono::Duration::seconds(MAX_FUTURE_SECONDS))
    }
}

#[cfg(test)]
mod tests;
