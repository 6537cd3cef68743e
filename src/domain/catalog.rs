//! A tenant's catalog: its branches and products as the tenant actor checks
//! sales against them and the API shows them, the texts a chain names them
//! with, and the changes a back office asks for. Nothing is ever deleted: a
//! branch closes, a product is deactivated, a tenant is suspended.

use std::collections::HashMap;
use std::sync::Arc;

use super::{BranchId, ProductId, ProductMap};

/// Longest name, in characters after trimming.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `sku` or `code`.
pub const MAX_CODE_LEN: usize = 64;

/// A name a person gave (tenant, branch, product, key label): 1 to
/// [`MAX_NAME_CHARS`] characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(Arc<str>);

impl Name {
    pub const RULE: &'static str = "must be 1 to 200 characters without control characters";

    pub fn parse(text: &str) -> Option<Name> {
        let text = text.trim();
        let ok = !text.is_empty()
            && text.chars().count() <= MAX_NAME_CHARS
            && !text.chars().any(char::is_control);
        ok.then(|| Name(Arc::from(text)))
    }

    /// A name as MySQL holds it (rows made before the rules, or by SQL).
    pub fn stored(text: String) -> Name {
        Name(Arc::from(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

/// A natural key a chain chooses (`sku`, `code`): 1 to [`MAX_CODE_LEN`]
/// of `A-Z a-z 0-9 . _ : -`, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(Arc<str>);

impl Code {
    pub const RULE: &'static str = "must be 1 to 64 characters of A-Z a-z 0-9 . _ : -";

    pub fn parse(text: &str) -> Option<Code> {
        let ok = (1..=MAX_CODE_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| Code(Arc::from(text)))
    }

    /// A key as MySQL holds it.
    pub fn stored(text: String) -> Code {
        Code(Arc::from(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A branch of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub code: Code,
    pub name: Name,
    /// A closed branch takes no new sales; its history and totals stay.
    pub open: bool,
}

/// A product of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Code,
    pub name: Name,
    /// An inactive product is refused in new sales; its totals stay.
    pub active: bool,
}

/// A tenant's branches and products, all of them (closed and inactive
/// ones too: their names still show in the totals).
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// A suspended tenant's tills are refused.
    pub suspended: bool,
    /// The zone the back office counts the tenant's days in.
    pub time_zone: chrono_tz::Tz,
    pub branches: HashMap<BranchId, Branch>,
    pub products: ProductMap<Product>,
}

impl Catalog {
    /// The product's name, empty if the catalog does not know it.
    pub fn product_name(&self, product: ProductId) -> Arc<str> {
        self.products
            .get(&product)
            .map_or_else(|| Arc::from(""), |p| p.name.shared())
    }
}

/// A product to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub sku: Code,
    pub name: Name,
}

/// A branch to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBranch {
    pub code: Code,
    pub name: Name,
}

/// What a `PATCH` of a product changes (`None`: left as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<Name>,
    pub active: Option<bool>,
}

/// What a `PATCH` of a branch changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchPatch {
    pub name: Option<Name>,
    pub open: Option<bool>,
}

/// What a `PATCH` of a tenant changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantPatch {
    pub name: Option<Name>,
    pub suspended: Option<bool>,
    pub time_zone: Option<chrono_tz::Tz>,
}

/// A row a create found or made: natural keys make a repeated create
/// answer the existing row (200) instead of a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made<T> {
    pub row: T,
    /// Made by this request (201) rather than found (200).
    pub created: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(
            Name::parse("  Latte ").map(|n| n.as_str().to_string()),
            Some("Latte".into())
        );
        assert!(Name::parse("").is_none());
        assert!(Name::parse("   ").is_none());
        assert!(Name::parse("a\u{7}b").is_none());
        assert!(Name::parse("line\nbreak").is_none());
        let ok = "é".repeat(MAX_NAME_CHARS);
        assert!(
            Name::parse(&ok).is_some(),
            "200 characters of two bytes each"
        );
        assert!(Name::parse(&format!("{ok}é")).is_none());
    }

    #[test]
    fn codes_are_exact_ascii() {
        for good in ["A", "sku-1.2_3:4", &"x".repeat(MAX_CODE_LEN)] {
            assert!(Code::parse(good).is_some(), "{good:?}");
        }
        for bad in ["", " A", "A ", "é", "a/b", &"x".repeat(MAX_CODE_LEN + 1)] {
            assert!(Code::parse(bad).is_none(), "{bad:?}");
        }
    }
}
