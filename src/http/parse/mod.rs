//! Requests read into the domain's types: the wire format (member names,
//! JSON shapes, query parameters) ends here.
//!
//! What every JSON request body shares: one object or an array of 1 to
//! [`MAX_ITEMS`], the problems found (by item and field, at most
//! [`MAX_ERROR_FIELDS`]), member names borrowed from the body, and objects
//! read member by member so that a name given twice is refused, never read
//! as "the last one wins". The sales body ([`parse_sales`]) and the
//! catalog bodies ([`catalog`]) are built from these.

mod catalog;
mod refunds;
mod report;
mod sales;

pub use catalog::{
    parse_branch_patch, parse_new_branch, parse_new_key, parse_new_products, parse_new_tenant,
    parse_new_webhook, parse_product_patch, parse_tenant_patch, NewKeyRequest,
};
pub use refunds::parse_refunds;
pub use report::{group_by, report_query, sales_listing, ReportProblem};
pub use sales::{parse_sales, ParsedSales};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::domain::{clip, Field, ItemProblem};

/// Most items one request may carry.
pub const MAX_ITEMS: usize = 1000;
/// Most offending fields one error lists.
pub const MAX_ERROR_FIELDS: usize = 20;

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("malformed JSON: {0}")]
    BadJson(String),
    #[error("an array may hold at most {MAX_ITEMS} items, got {0}")]
    TooManyItems(usize),
    #[error("{message}")]
    Invalid {
        message: String,
        problems: Vec<ItemProblem>,
        /// The body was an array (its items are named `[i]`).
        is_array: bool,
    },
}

impl BodyError {
    /// One problem with a single object's field.
    pub fn field(field: &'static str, problem: impl Into<String>) -> BodyError {
        let mut problems = Problems::default();
        problems.add(0, Field::Named(field), problem);
        let message = problems.summary();
        problems.into_error(&message, false)
    }
}

pub(super) fn bad_json(e: serde_json::Error) -> BodyError {
    BodyError::BadJson(e.to_string())
}

/// The body's items, raw, and whether it was an array (of 1 to [`MAX_ITEMS`]).
pub(super) fn items(body: &[u8]) -> Result<(Vec<&RawValue>, bool), BodyError> {
    let text =
        std::str::from_utf8(body).map_err(|_| BodyError::BadJson("body is not UTF-8".into()))?;
    let (raws, is_array): (Vec<&RawValue>, bool) = match text.trim_start().as_bytes().first() {
        Some(b'[') => (serde_json::from_str(text).map_err(bad_json)?, true),
        _ => {
            let raw: &RawValue = serde_json::from_str(text).map_err(bad_json)?;
            (vec![raw], false)
        }
    };
    if raws.len() > MAX_ITEMS {
        return Err(BodyError::TooManyItems(raws.len()));
    }
    if raws.is_empty() {
        let message = format!("the array must hold 1 to {MAX_ITEMS} items");
        return Err(Problems::default().into_error(&message, true));
    }
    Ok((raws, is_array))
}

/// The offending fields of a request, at most [`MAX_ERROR_FIELDS`] (a
/// field named twice keeps its last problem).
#[derive(Default)]
pub(super) struct Problems {
    pub(super) fields: BTreeMap<(usize, Field), String>,
    /// More were found than are listed.
    pub(super) cut: bool,
}

impl Problems {
    pub(super) fn add(&mut self, index: usize, field: Field, problem: impl Into<String>) {
        if self.full() {
            self.cut = true;
        } else {
            self.fields.insert((index, field), problem.into());
        }
    }

    pub(super) fn full(&self) -> bool {
        self.fields.len() >= MAX_ERROR_FIELDS
    }

    pub(super) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// How many problems were seen (a cut list counts one more).
    pub(super) fn seen(&self) -> usize {
        self.fields.len() + usize::from(self.cut)
    }

    pub(super) fn summary(&self) -> String {
        match self.fields.len() {
            _ if self.cut || self.full() => format!(
                "at least {MAX_ERROR_FIELDS} fields are invalid; the first {MAX_ERROR_FIELDS} found are listed"
            ),
            1 => "1 field is invalid".into(),
            n => format!("{n} fields are invalid"),
        }
    }

    pub(super) fn into_error(self, message: &str, is_array: bool) -> BodyError {
        BodyError::Invalid {
            message: message.to_string(),
            problems: self
                .fields
                .into_iter()
                .map(|((index, field), problem)| ItemProblem {
                    index,
                    field,
                    problem,
                })
                .collect(),
            is_array,
        }
    }

    /// `Ok(value)` if no problem was found, else the error listing them.
    pub(super) fn finish<T>(self, value: T, is_array: bool) -> Result<T, BodyError> {
        if self.is_empty() {
            return Ok(value);
        }
        let message = self.summary();
        Err(self.into_error(&message, is_array))
    }
}

/// A member name, borrowed from the body unless it holds escapes.
pub(super) struct Name<'de>(pub(super) Cow<'de, str>);

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

/// The members of one object with its known names, raw; a known name
/// given twice and a name that is no member are recorded as problems of
/// item `at`. `None` (and a problem) if `raw` is not an object.
pub(super) fn members<'a>(
    raw: &'a RawValue,
    known: &[&'static str],
    at: usize,
    problems: &mut Problems,
) -> Option<Members<'a>> {
    let Ok(AnyMembers(found)) = serde_json::from_str::<AnyMembers>(raw.get()) else {
        problems.add(at, Field::Whole, "must be an object");
        return None;
    };
    let mut m = Members(Vec::with_capacity(known.len()));
    let mut unknown = 0;
    for (name, value) in found {
        match known.iter().find(|k| **k == name.0) {
            Some(&k) if m.get(k).is_some() => {
                problems.add(at, Field::Named(k), "appears more than once");
            }
            Some(&k) => m.0.push((k, value)),
            None if unknown < MAX_ERROR_FIELDS => {
                unknown += 1;
                problems.add(
                    at,
                    Field::Unknown(clip(&name.0).into_owned()),
                    "unknown field",
                );
            }
            None => {}
        }
    }
    Some(m)
}

/// An object's known members, in body order.
pub(super) struct Members<'a>(Vec<(&'static str, &'a RawValue)>);

impl<'a> Members<'a> {
    pub(super) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// Every member of an object, duplicates included.
struct AnyMembers<'a>(Vec<(Name<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for AnyMembers<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyMembers<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyMembers<'de>, A::Error> {
                let mut found = Vec::new();
                while let Some(name) = map.next_key::<Name>()? {
                    // Bounded by the body's size (1 MiB); past the members
                    // anyone reads, the rest is only skipped.
                    if found.len() < 64 {
                        found.push((name, map.next_value()?));
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(AnyMembers(found))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON string member.
pub(super) fn string(value: &RawValue) -> Option<String> {
    serde_json::from_str(value.get()).ok()
}

/// A JSON `true` or `false` member.
pub(super) fn boolean(value: &RawValue) -> Option<bool> {
    serde_json::from_str(value.get()).ok()
}

/// A JSON integer member greater than 0.
pub(super) fn positive_int(value: &RawValue) -> Option<u64> {
    serde_json::from_str::<u64>(value.get())
        .ok()
        .filter(|&n| n > 0)
}
