//! The refunds request body: one object or an array of 1 to 1,000, every
//! problem named by item and field, nothing half-valid passed on.

use super::{members, positive_int, string, BodyError, Problems};
use crate::domain::{Field, IdempotencyKey, Name, Quantity, RefundItem, RefundKind, SaleId};

const MEMBERS: &[&str] = &["saleID", "quantity", "kind", "reason", "idempotencyKey"];

/// The items of a refunds body, and whether it was an array.
pub fn parse_refunds(body: &[u8]) -> Result<(Vec<RefundItem>, bool), BodyError> {
    let (raws, is_array) = super::items(body)?;
    let mut problems = Problems::default();
    let mut items = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        if problems.full() {
            break;
        }
        let Some(m) = members(raw, MEMBERS, i, &mut problems) else {
            continue;
        };
        let given = |name| m.get(name).filter(|v| v.get() != "null");
        let mut problem = |field, text: &str| problems.add(i, Field::Named(field), text);
        let sale_id = match given("saleID") {
            None => {
                problem("saleID", "is required");
                None
            }
            Some(v) => positive_int(v).and_then(SaleId::new).or_else(|| {
                problem("saleID", "must be an integer greater than 0");
                None
            }),
        };
        let quantity = given("quantity").map(|v| {
            serde_json::from_str::<i64>(v.get())
                .ok()
                .and_then(Quantity::new)
                .ok_or_else(|| problem("quantity", "must be an integer between 1 and 1000000"))
        });
        let kind = match given("kind") {
            None => Some(RefundKind::Refund),
            Some(v) => string(v).and_then(|s| RefundKind::parse(&s)).or_else(|| {
                problem("kind", "must be \"refund\" or \"void\"");
                None
            }),
        };
        let reason = given("reason").map(|v| {
            string(v)
                .and_then(|s| Name::parse(&s))
                .ok_or_else(|| problem("reason", Name::RULE))
        });
        let key = given("idempotencyKey").map(|v| {
            string(v)
                .and_then(|s| IdempotencyKey::parse(&s))
                .ok_or_else(|| {
                    problem(
                        "idempotencyKey",
                        "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
                    )
                })
        });
        if kind == Some(RefundKind::Refund) && quantity.is_none() {
            problem(
                "quantity",
                "is required for a refund (a void may leave it out)",
            );
        }
        let (Some(sale_id), Some(kind)) = (sale_id, kind) else {
            continue;
        };
        let (Ok(quantity), Ok(reason), Ok(idempotency_key)) =
            (quantity.transpose(), reason.transpose(), key.transpose())
        else {
            continue;
        };
        items.push(RefundItem {
            sale_id,
            quantity,
            kind,
            reason,
            idempotency_key,
        });
    }
    problems.finish((items, is_array), is_array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(e: BodyError) -> Vec<String> {
        match e {
            BodyError::Invalid { problems, .. } => problems
                .into_iter()
                .map(|p| format!("{}:{:?}", p.index, p.field))
                .collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn a_refund_a_void_and_every_problem_by_item_and_field() {
        let (items, is_array) = parse_refunds(
            br#"[{"saleID": 7, "quantity": 2, "reason": "damaged", "idempotencyKey": "r-1"},
                {"saleID": 8, "kind": "void"}]"#,
        )
        .expect("valid");
        assert!(is_array);
        assert_eq!(items[0].quantity.map(Quantity::get), Some(2));
        assert_eq!(items[0].kind, RefundKind::Refund);
        assert_eq!(items[1].kind, RefundKind::Void);
        assert_eq!(items[1].quantity, None);
        let e = parse_refunds(
            br#"[{"saleID": 0, "quantity": 1}, {"saleID": 1}, {"saleID": 1, "quantity": 1, "kind": "undo"},
                {"saleID": 1, "quantity": 1, "reason": ""}, {"saleID": 1, "quantity": 1, "amount": "1.00"}]"#,
        )
        .expect_err("invalid");
        let f = named(e);
        for expected in [
            "0:Named(\"saleID\")",
            "1:Named(\"quantity\")",
            "2:Named(\"kind\")",
            "3:Named(\"reason\")",
            "4:Unknown(\"amount\")",
        ] {
            assert!(f.iter().any(|k| k == expected), "{expected} in {f:?}");
        }
    }
}
