use std::collections::BTreeMap;

use super::*;
use crate::domain::ItemProblem;

fn now() -> DateTime<Utc> {
    "2026-11-25T12:00:00Z".parse().expect("valid test input")
}

fn tenant() -> TenantId {
    TenantId::new(1).expect("positive")
}

fn branch() -> BranchId {
    BranchId::new(2).expect("positive")
}

fn parse(body: &[u8]) -> Result<ParsedSales, BodyError> {
    parse_sales(body, tenant(), branch(), now())
}

/// The problems as a client reads them.
fn named(problems: Vec<ItemProblem>, is_array: bool) -> BTreeMap<String, String> {
    crate::http::field_names(problems, is_array)
}

fn fields_of(body: &str) -> BTreeMap<String, String> {
    match parse(body.as_bytes()) {
        Err(BodyError::Invalid {
            problems, is_array, ..
        }) => named(problems, is_array),
        other => panic!("expected validation error, got {other:?}"),
    }
}

#[test]
fn a_go_client_body_is_accepted_and_truncated_to_microseconds() {
    let body = r#"{"tenantID":1,"branchID":2,"productID":3,"quantitySold":2,"pricePerUnit":"4.50","timestamp":"2026-11-25T13:59:59.123456789+02:00"}"#;
    let parsed = parse(body.as_bytes()).expect("valid test input");
    assert!(!parsed.is_array);
    let item = &parsed.items[0];
    assert_eq!(item.timestamp.to_string(), "2026-11-25T11:59:59.123456Z");
    assert_eq!(item.price.map(|p| p.to_string()).as_deref(), Some("4.50"));
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
    // A price left out is the product's list price: the tenant decides.
    assert!(!f.contains_key("pricePerUnit"));
}

#[test]
fn timestamps_too_far_ahead_are_marked_for_the_tenant_to_refuse_unless_replayed() {
    let at = |t: &str| {
        let body =
            format!(r#"{{"productID":1,"quantitySold":1,"pricePerUnit":1,"timestamp":"{t}"}}"#);
        parse(body.as_bytes()).expect("parses").items[0].timestamp_ahead
    };
    assert!(at("2026-11-25T12:01:01Z"));
    assert!(!at("2026-11-25T12:01:00Z"));
    assert!(!at("2026-11-25T11:00:00Z"));
}

#[test]
fn malformed_json_is_not_a_validation_error() {
    assert!(matches!(
        parse(b"{\"productID\":"),
        Err(BodyError::BadJson(_))
    ));
    assert!(matches!(parse(b"[1,"), Err(BodyError::BadJson(_))));
}

#[test]
fn repeated_keys_in_one_request_are_refused() {
    let f = fields_of(
        r#"[{"productID":1,"quantitySold":1,"pricePerUnit":1,"idempotencyKey":"a"},{"productID":1,"quantitySold":1,"pricePerUnit":1,"idempotencyKey":"a"}]"#,
    );
    assert!(f.contains_key("[1].idempotencyKey"));
}

#[test]
fn a_repeated_key_is_named_at_its_place_in_the_request() {
    let sale = |key: &str| {
        format!(r#"{{"productID":1,"quantitySold":1,"pricePerUnit":1,"idempotencyKey":"{key}"}}"#)
    };
    let f = fields_of(&format!("[{},{},{}]", sale("a"), sale("b"), sale("b")));
    assert_eq!(f["[2].idempotencyKey"], "repeats the key of [1]");
    assert_eq!(f.len(), 1, "{f:?}");
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
    let f = fields_of(r#"{"productID":1,"quantitySold":1,"quantitySold":5,"pricePerUnit":"1.00"}"#);
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
    match parse(format!("[{}]", items.join(",")).as_bytes()) {
        Err(BodyError::Invalid {
            message, problems, ..
        }) => {
            assert_eq!(problems.len(), MAX_ERROR_FIELDS);
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
    use super::{now, parse};

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
            match parse(body.as_bytes()) {
                Ok(parsed) => {
                    prop_assert!(!repeated, "a repeated key was accepted");
                    prop_assert_eq!(parsed.is_array, as_array);
                    prop_assert_eq!(parsed.items.len(), items.len());
                    for (got, want) in parsed.items.iter().zip(&items) {
                        prop_assert_eq!(got.product_id.get(), want.product);
                        prop_assert_eq!(got.quantity.get(), want.quantity);
                        // Exact: same value, written back with two digits.
                        prop_assert_eq!(got.price.map(|p| p.amount()), Some(want.price));
                        prop_assert_eq!(got.price.map(|p| p.to_string()), Some(format!("{:.2}", want.price)));
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
            let _ = parse(&bytes);
        }

        #[test]
        fn any_json_gets_an_answer_not_a_panic(text in any_json()) {
            match parse(text.as_bytes()) {
                Ok(p) => prop_assert!(!p.items.is_empty()),
                Err(BodyError::Invalid { problems, .. }) => {
                    prop_assert!(problems.len() <= MAX_ERROR_FIELDS)
                }
                Err(_) => {}
            }
        }
    }
}
