//! Problems with the fields of a request's items, as every layer below HTTP
//! reports them: by item and field. How a client reads them
//! (`[3].quantitySold`, or `quantitySold` for a single object) is written in
//! one place, the HTTP layer (`http::error`), which also names the fields.

/// Which field of an item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// A sale's product.
    Product,
    /// A sale's quantity.
    Quantity,
    /// A sale's unit price.
    UnitPrice,
    /// When a sale happened.
    Timestamp,
    /// A product's SKU.
    Sku,
    /// A branch's code.
    Code,
    /// A member as the HTTP layer's parser read it (its name on the wire).
    Named(&'static str),
    /// A member name the client made up (clipped).
    Unknown(String),
    /// The item as a whole (it is not an object).
    Whole,
}

/// What is wrong with one field of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    /// The item's position in the request (0 for a single object).
    pub index: usize,
    pub field: Field,
    pub problem: String,
}

impl ItemProblem {
    pub fn new(index: usize, field: Field, problem: impl Into<String>) -> Self {
        ItemProblem {
            index,
            field,
            problem: problem.into(),
        }
    }
}
