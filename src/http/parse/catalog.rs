//! The bodies of the back office's writes: tenants, branches, products and
//! till keys. Each is read member by member like a sale (a name given twice
//! or unknown is refused, every problem named by its field), so nothing
//! half-valid reaches the store.

use serde_json::value::RawValue;

use super::{boolean, positive_int, string, BodyError, Members, Problems};
use crate::domain::{
    repeated_skus, BranchId, BranchPatch, Code, Currency, EventType, Field, Money, Name, NewBranch,
    NewProduct, ProductPatch, Role, TenantPatch, MAX_WEBHOOK_URL,
};

/// A key the back office asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyRequest {
    pub role: Role,
    pub branch: Option<BranchId>,
    pub label: Name,
}

/// One product or an array of 1 to 1,000; `true` for an array.
pub fn parse_new_products(body: &[u8]) -> Result<(Vec<NewProduct>, bool), BodyError> {
    let (raws, is_array) = super::items(body)?;
    let mut problems = Problems::default();
    let mut products = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        if problems.full() {
            break;
        }
        let Some(m) = super::members(raw, &["sku", "name", "price"], i, &mut problems) else {
            continue;
        };
        let mut read = Reader::new(&m, i, &mut problems);
        let sku = read.code("sku");
        let name = read.name("name", true);
        let price = read.price("price");
        if let (Some(sku), Some(Some(name)), Some(price)) = (sku, name, price) {
            products.push(NewProduct { sku, name, price });
        }
    }
    if problems.is_empty() {
        for (i, first) in repeated_skus(&products) {
            problems.add(
                i,
                Field::Named("sku"),
                format!("repeats the sku of [{first}]"),
            );
        }
    }
    problems.finish((products, is_array), is_array)
}

/// `{"code", "name"}`.
pub fn parse_new_branch(body: &[u8]) -> Result<NewBranch, BodyError> {
    one_object(body, &["code", "name"], |read| {
        let code = read.code("code");
        let name = read.name("name", true);
        Some(NewBranch {
            code: code?,
            name: name??,
        })
    })
}

/// `{"name", "currency"?}`.
pub fn parse_new_tenant(body: &[u8]) -> Result<(Name, Option<Currency>), BodyError> {
    one_object(body, &["name", "currency"], |read| {
        let name = read.name("name", true);
        let currency = read.currency("currency");
        Some((name??, currency?))
    })
}

/// `{"name"?, "active"?, "price"?}` (`"price": null` takes the list price away).
pub fn parse_product_patch(body: &[u8]) -> Result<ProductPatch, BodyError> {
    one_object(body, &["name", "active", "price"], |read| {
        let name = read.name("name", false);
        let active = read.flag("active");
        let price = match read.members.get("price") {
            None => Some(None),
            Some(v) if v.get() == "null" => Some(Some(None)),
            Some(_) => read.price("price").map(Some),
        };
        Some(ProductPatch {
            name: name?,
            active: active?,
            price: price?,
        })
    })
}

/// `{"name"?, "open"?}`.
pub fn parse_branch_patch(body: &[u8]) -> Result<BranchPatch, BodyError> {
    one_object(body, &["name", "open"], |read| {
        let name = read.name("name", false);
        let open = read.flag("open");
        Some(BranchPatch {
            name: name?,
            open: open?,
        })
    })
}

/// `{"name"?, "suspended"?}`.
pub fn parse_tenant_patch(body: &[u8]) -> Result<TenantPatch, BodyError> {
    one_object(
        body,
        &["name", "suspended", "timeZone", "currency"],
        |read| {
            let name = read.name("name", false);
            let suspended = read.flag("suspended");
            let currency = read.currency("currency");
            let time_zone = match read.optional("timeZone") {
                None => Some(None),
                Some(v) => match string(v).and_then(|s| crate::domain::time_zone(&s)) {
                    Some(tz) => Some(Some(tz)),
                    None => read.problem("timeZone", crate::domain::TIME_ZONE_RULE),
                },
            };
            Some(TenantPatch {
                name: name?,
                suspended: suspended?,
                time_zone: time_zone?,
                currency: currency?,
            })
        },
    )
}

/// `{"role", "branchID"?, "label"}`: a till or back-office key.
pub fn parse_new_key(body: &[u8]) -> Result<NewKeyRequest, BodyError> {
    one_object(body, &["role", "branchID", "label"], |read| {
        let role = read.required("role").and_then(|v| {
            let role = string(v).and_then(|s| Role::parse(&s));
            match role {
                Some(r @ (Role::Till | Role::Backoffice)) => Some(r),
                _ => read.problem("role", "must be \"till\" or \"backoffice\""),
            }
        });
        let branch = match read.optional("branchID") {
            None => Some(None),
            Some(v) => match positive_int(v).and_then(BranchId::new) {
                Some(b) => Some(Some(b)),
                None => read.problem("branchID", "must be an integer greater than 0"),
            },
        };
        let label = read.name("label", true);
        let (role, branch) = (role?, branch?);
        if role == Role::Backoffice && branch.is_some() {
            return read.problem("branchID", "only a till key can be bound to a branch");
        }
        Some(NewKeyRequest {
            role,
            branch,
            label: label??,
        })
    })
}

/// `{"url", "types": [...]}` of a new webhook: the URL as text (its rules
/// depend on the deployment: the service checks them) and known types,
/// each once.
pub fn parse_new_webhook(body: &[u8]) -> Result<(String, Vec<EventType>), BodyError> {
    one_object(body, &["url", "types"], |read| {
        let url = read.required("url").and_then(|v| match string(v) {
            Some(u) if u.len() <= MAX_WEBHOOK_URL => Some(u),
            _ => read.problem("url", "must be a URL of at most 2048 characters"),
        });
        let types = read.required("types").and_then(|v| {
            let names: Option<Vec<String>> = serde_json::from_str(v.get()).ok();
            let types: Option<Vec<EventType>> = names
                .filter(|n| !n.is_empty() && n.len() <= EventType::ALL.len())
                .and_then(|n| n.iter().map(|t| EventType::parse(t)).collect());
            match types {
                Some(mut t) => {
                    t.sort();
                    t.dedup();
                    Some(t)
                }
                None => read.problem("types", EVENT_TYPES_RULE),
            }
        });
        Some((url?, types?))
    })
}

const EVENT_TYPES_RULE: &str = "must be a list of event types among sale.created, refund.created, \
product.created, product.updated, branch.created, branch.updated";

/// A body that must be one object with these members.
fn one_object<T>(
    body: &[u8],
    known: &[&'static str],
    parse: impl FnOnce(&mut Reader) -> Option<T>,
) -> Result<T, BodyError> {
    let text =
        std::str::from_utf8(body).map_err(|_| BodyError::BadJson("body is not UTF-8".into()))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(super::bad_json)?;
    let mut problems = Problems::default();
    let value = super::members(raw, known, 0, &mut problems).and_then(|m| {
        let mut read = Reader::new(&m, 0, &mut problems);
        parse(&mut read)
    });
    match value {
        Some(v) => problems.finish(v, false),
        None => {
            if problems.is_empty() {
                problems.add(0, Field::Whole, "is invalid");
            }
            let message = problems.summary();
            Err(problems.into_error(&message, false))
        }
    }
}

/// Reads the members of one object, recording each problem under its name.
struct Reader<'m, 'a, 'p> {
    members: &'m Members<'a>,
    at: usize,
    problems: &'p mut Problems,
}

impl<'m, 'a, 'p> Reader<'m, 'a, 'p> {
    fn new(members: &'m Members<'a>, at: usize, problems: &'p mut Problems) -> Self {
        Reader {
            members,
            at,
            problems,
        }
    }

    /// Records a problem; always `None`, so a parse can `return` it.
    fn problem<T>(&mut self, field: &'static str, problem: &str) -> Option<T> {
        self.problems.add(self.at, Field::Named(field), problem);
        None
    }

    /// A member given and not `null`.
    fn optional(&self, field: &'static str) -> Option<&'a RawValue> {
        self.members.get(field).filter(|v| v.get() != "null")
    }

    fn required(&mut self, field: &'static str) -> Option<&'a RawValue> {
        match self.optional(field) {
            Some(v) => Some(v),
            None => self.problem(field, "is required"),
        }
    }

    fn code(&mut self, field: &'static str) -> Option<Code> {
        let v = self.required(field)?;
        match string(v).and_then(|s| Code::parse(&s)) {
            Some(c) => Some(c),
            None => self.problem(field, Code::RULE),
        }
    }

    /// `Some(None)`: absent and not required; `None`: a problem.
    fn name(&mut self, field: &'static str, required: bool) -> Option<Option<Name>> {
        let v = if required {
            self.required(field)?
        } else {
            match self.optional(field) {
                Some(v) => v,
                None => return Some(None),
            }
        };
        match string(v).and_then(|s| Name::parse(&s)) {
            Some(n) => Some(Some(n)),
            None => self.problem(field, Name::RULE),
        }
    }

    /// A list price: money like a sale's `pricePerUnit`, or absent or
    /// `null` (`Some(None)`); `None`: a problem.
    fn price(&mut self, field: &'static str) -> Option<Option<Money>> {
        let Some(v) = self.optional(field) else {
            return Some(None);
        };
        match Money::parse_price(v.get()) {
            Ok(price) => Some(Some(price)),
            Err(problem) => self.problem(field, problem),
        }
    }

    /// An ISO 4217 code, or absent (`Some(None)`); `None`: a problem.
    fn currency(&mut self, field: &'static str) -> Option<Option<Currency>> {
        let Some(v) = self.optional(field) else {
            return Some(None);
        };
        match string(v).map(|s| Currency::parse(&s)) {
            Some(Ok(c)) => Some(Some(c)),
            Some(Err(e)) => self.problem(field, &e.to_string()),
            None => self.problem(field, "must be an ISO 4217 currency code like \"EUR\""),
        }
    }

    /// `Some(None)`: absent; `None`: a problem.
    fn flag(&mut self, field: &'static str) -> Option<Option<bool>> {
        let Some(v) = self.optional(field) else {
            return Some(None);
        };
        match boolean(v) {
            Some(b) => Some(Some(b)),
            None => self.problem(field, "must be true or false"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: BodyError) -> Vec<(String, String)> {
        match e {
            BodyError::Invalid { problems, .. } => problems
                .into_iter()
                .map(|p| (format!("{}:{:?}", p.index, p.field), p.problem))
                .collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn products_one_or_many_with_every_problem_named() {
        let (one, is_array) =
            parse_new_products(br#"{"sku": "LAT-1", "name": " Latte "}"#).expect("valid");
        assert!(!is_array);
        assert_eq!(one[0].name.as_str(), "Latte");
        let (many, is_array) =
            parse_new_products(br#"[{"sku": "A", "name": "a"}, {"sku": "B", "name": "b"}]"#)
                .expect("valid");
        assert!(is_array);
        assert_eq!(many.len(), 2);
        let e = parse_new_products(
            br#"[{"sku": "A", "name": ""}, {"sku": "a b", "name": "x", "cost": 1}, 3]"#,
        )
        .expect_err("invalid");
        let f = fields(e);
        assert!(f.iter().any(|(k, _)| k == "0:Named(\"name\")"), "{f:?}");
        assert!(f.iter().any(|(k, _)| k == "1:Named(\"sku\")"), "{f:?}");
        assert!(f.iter().any(|(k, _)| k.starts_with("1:Unknown")), "{f:?}");
        assert!(f.iter().any(|(k, _)| k == "2:Whole"), "{f:?}");
    }

    #[test]
    fn a_sku_twice_in_one_request_or_a_member_twice_is_refused() {
        let e = parse_new_products(br#"[{"sku": "A", "name": "a"}, {"sku": "A", "name": "b"}]"#)
            .expect_err("repeated sku");
        assert_eq!(
            fields(e),
            vec![("1:Named(\"sku\")".into(), "repeats the sku of [0]".into())]
        );
        let e = parse_new_branch(br#"{"code": "A", "code": "B", "name": "x"}"#)
            .expect_err("member twice");
        assert_eq!(fields(e)[0].1, "appears more than once");
    }

    #[test]
    fn patches_take_what_is_given() {
        assert_eq!(
            parse_product_patch(br#"{"active": false}"#).expect("valid"),
            ProductPatch {
                name: None,
                active: Some(false),
                price: None,
            }
        );
        assert_eq!(
            parse_tenant_patch(b"{}").expect("valid"),
            TenantPatch::default()
        );
        let e = parse_branch_patch(br#"{"open": "yes"}"#).expect_err("not a flag");
        assert_eq!(fields(e)[0].1, "must be true or false");
        assert!(matches!(
            parse_branch_patch(b"[]"),
            Err(BodyError::Invalid { .. })
        ));
        assert!(matches!(
            parse_branch_patch(b"{"),
            Err(BodyError::BadJson(_))
        ));
    }

    #[test]
    fn keys_are_tills_or_back_offices_and_only_tills_have_a_branch() {
        let k =
            parse_new_key(br#"{"role": "till", "branchID": 3, "label": "till 3"}"#).expect("valid");
        assert_eq!((k.role, k.branch.map(|b| b.get())), (Role::Till, Some(3)));
        for bad in [
            br#"{"role": "operator", "label": "x"}"#.as_slice(),
            br#"{"role": "backoffice", "branchID": 3, "label": "x"}"#,
            br#"{"role": "till", "branchID": 0, "label": "x"}"#,
            br#"{"role": "till"}"#,
        ] {
            assert!(
                matches!(parse_new_key(bad), Err(BodyError::Invalid { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
