//! What a till sends is what MySQL keeps: prices to the cent as written (a
//! string or a number, never through a float), times in UTC truncated (never
//! rounded or shifted) to microseconds. The parser's own properties are in
//! `src/http/parse/sales/tests.rs`; this checks the rest of the way, on edge
//! values and on a few hundred generated sales.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Timelike, Utc};
use mysql_async::prelude::Queryable;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::support::spawn_app;

/// A sale as JSON text, with the price and time MySQL must hold.
struct Case {
    json: String,
    key: String,
    price: Decimal,
    at: NaiveDateTime,
}

fn case(
    key: String,
    product: u64,
    price_json: &str,
    price: Decimal,
    at: DateTime<FixedOffset>,
) -> Case {
    let written = at.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string();
    let utc = at.with_timezone(&Utc).naive_utc();
    let truncated = utc
        .with_nanosecond(utc.nanosecond() / 1000 * 1000)
        .expect("valid time");
    Case {
        json: format!(
            r#"{{"productID":{product},"quantitySold":1,"pricePerUnit":{price_json},"timestamp":"{written}","idempotencyKey":"{key}"}}"#
        ),
        key,
        price,
        at: truncated,
    }
}

fn zone(minutes: i32) -> FixedOffset {
    FixedOffset::east_opt(minutes * 60).expect("offset")
}

#[actix_web::test]
async fn stored_prices_and_times_are_exactly_what_the_tills_sent() {
    let app = spawn_app().await;
    let t = app.db.tenant(1, 1).await;
    let p = t.products[0];
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time");
    let mut cases = vec![
        case(
            "edge-1".into(),
            p,
            r#""0.01""#,
            Decimal::new(1, 2),
            at("1970-01-01T00:00:00Z"),
        ),
        case(
            "edge-2".into(),
            p,
            "99999999.99",
            Decimal::new(9_999_999_999, 2),
            at("2024-02-29T23:59:59.999999999+14:00"),
        ),
        case(
            "edge-3".into(),
            p,
            r#""12.3""#,
            Decimal::new(1230, 2),
            at("2026-11-25T00:00:00.000000999-12:00"),
        ),
        case(
            "edge-4".into(),
            p,
            "7",
            Decimal::new(700, 2),
            at("2000-01-01T05:30:00.123456789+05:30"),
        ),
        case(
            "edge-5".into(),
            p,
            "0.1",
            Decimal::new(10, 2),
            at("1999-12-31T23:59:59.9999995Z"),
        ),
    ];
    // And generated ones (a fixed seed: the same cases on every run).
    let mut seed: u64 = 0x5EED_2026_1125;
    let mut next = |below: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % below
    };
    let latest = Utc::now().timestamp() as u64;
    for i in 0..300 {
        let cents = 1 + next(9_999_999_999) as i64;
        let text = format!("{}.{:02}", cents / 100, cents % 100);
        let price_json = if i % 2 == 0 {
            format!("\"{text}\"")
        } else {
            text
        };
        let secs = next(latest) as i64;
        let nanos = next(1_000_000_000) as u32;
        let minutes = next(1561) as i32 - 720;
        let when = DateTime::<Utc>::from_timestamp(secs, nanos)
            .expect("in range")
            .with_timezone(&zone(minutes));
        cases.push(case(
            format!("gen-{i}"),
            p,
            &price_json,
            Decimal::new(cents, 2),
            when,
        ));
    }
    for chunk in cases.chunks(100) {
        let body = format!(
            "[{}]",
            chunk
                .iter()
                .map(|c| c.json.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let a = app
            .post_raw(
                &t.sales_path(0),
                Some("application/json"),
                body.into_bytes(),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        // The answer says the same.
        for (sent, answered) in chunk
            .iter()
            .zip(a.body["transactions"].as_array().expect("list"))
        {
            assert_eq!(
                answered["pricePerUnit"],
                Value::String(format!("{:.2}", sent.price))
            );
            assert_eq!(
                answered["timestamp"],
                Value::String(sent.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            );
        }
    }
    let rows: Vec<(String, Decimal, NaiveDateTime)> = app
        .db
        .conn()
        .await
        .query("SELECT idempotency_key, price_per_unit, log_timestamp FROM sales_transactions")
        .await
        .expect("rows");
    assert_eq!(rows.len(), cases.len());
    let by_key: std::collections::HashMap<_, _> =
        rows.into_iter().map(|(k, p, t)| (k, (p, t))).collect();
    for c in &cases {
        let (price, at) = by_key
            .get(&c.key)
            .unwrap_or_else(|| panic!("{} missing", c.key));
        assert_eq!(*price, c.price, "{}: price", c.key);
        assert_eq!(price.scale(), 2, "{}: DECIMAL(10,2) keeps cents", c.key);
        assert_eq!(*at, c.at, "{}: time", c.key);
    }
    app.cleanup().await;
}
