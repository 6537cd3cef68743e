//! Problems with the fields of a request's items, as every layer below HTTP
//! reports them: by item and field. How a client reads them
//! (`[3].quantitySold`, or `quantitySold` for a single object) is written in
//! one place, the HTTP layer.

/// Which field of an item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// A field of the transaction object (`productID`).
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
    pub fn new(index: usize, field: &'static str, problem: impl Into<String>) -> Self {
        ItemProblem {
            index,
            field: Field::Named(field),
            problem: problem.into(),
        }
    }
}
