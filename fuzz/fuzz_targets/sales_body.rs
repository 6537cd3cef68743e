//! Any request body: the sales parser answers (a parsed request or an
//! error), never panics, never lists more than 20 offending fields, and
//! what it accepts holds only values within the rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pos::domain::{BranchId, TenantId};
use pos::http::parse::{parse_sales, BodyError, MAX_ERROR_FIELDS, MAX_ITEMS};

fuzz_target!(|body: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("a valid instant");
    let (tenant, branch) = (
        TenantId::new(1).expect("positive"),
        BranchId::new(2).expect("positive"),
    );
    match parse_sales(body, tenant, branch, now) {
        Ok(parsed) => {
            assert!(!parsed.items.is_empty() && parsed.items.len() <= MAX_ITEMS);
            for item in &parsed.items {
                assert!(item.product_id.get() > 0);
                assert!((1..=1_000_000).contains(&item.quantity.get()));
                // Left out: the product's list price, decided by the tenant.
                if let Some(price) = item.price.map(|p| p.amount()) {
                    assert!(price > rust_decimal::Decimal::ZERO && price.scale() == 2);
                }
            }
        }
        Err(BodyError::Invalid { problems, .. }) => assert!(problems.len() <= MAX_ERROR_FIELDS),
        Err(_) => {}
    }
});
