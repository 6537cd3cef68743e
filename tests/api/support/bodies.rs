//! Request bodies the tests send.

use serde_json::{json, Value};

/// One sale as a till sends it.
pub fn sale(product: u64, quantity: u64, price: &str) -> Value {
    json!({"productID": product, "quantitySold": quantity, "pricePerUnit": price})
}

/// `sale` with an idempotency key.
pub fn keyed(mut sale: Value, key: &str) -> Value {
    sale["idempotencyKey"] = json!(key);
    sale
}
