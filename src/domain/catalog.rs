//! A tenant's catalog: its branches and products as the tenant actor checks
//! sales against them and the API shows them, the texts a chain names them
//! with, and the changes a back office asks for. Nothing is ever deleted: a
//! branch closes, a product is deactivated, a tenant is suspended.

use std::collections::HashMap;
use std::sync::Arc;

use super::{BranchId, Currency, Money, ProductId, ProductMap};

/// Longest name, in characters after trimming.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `sku` or `code`.
pub const MAX_CODE_LEN: usize = 64;

/// A name a person gave (tenant, branch, product, key label), as it will
/// show in pages, charts and every spreadsheet a back office downloads:
/// trimmed, in Unicode's composed form (NFC, so one name has one
/// spelling), 1 to [`MAX_NAME_CHARS`] characters with at least one
/// visible one (a letter, digit, punctuation or symbol). Refused: control
/// characters, line and paragraph separators, format characters (right-
/// to-left overrides that show a name reversed, zero-width spaces, byte
/// order marks; the zero-width joiner and non-joiner stay, Persian, Indic
/// scripts and emoji need them), noncharacters, and more than
/// [`MAX_MARKS_IN_A_ROW`] combining marks on one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(Arc<str>);

/// Most combining marks on one character: real words stack a few (Hebrew
/// points, Vietnamese tones, Tibetan), a wall of them is a prank that
/// spills over the lines around it.
pub const MAX_MARKS_IN_A_ROW: usize = 4;

impl Name {
    pub const RULE: &'static str = "must be 1 to 200 characters with a visible one, \
        without control or format characters, noncharacters or more than 4 combining marks in a row";

    pub fn parse(text: &str) -> Option<Name> {
        // As sent, spaces around it included: the API's documented bound
        // is on the text as it comes (200 characters, JSON's `maxLength`).
        if text.chars().nth(MAX_NAME_CHARS).is_some() {
            return None;
        }
        let text = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(text.trim());
        let (mut chars, mut marks, mut visible) = (0, 0, false);
        for c in text.chars() {
            chars += 1;
            marks = match name_char(c)? {
                NameChar::Mark => marks + 1,
                NameChar::Visible => {
                    visible = true;
                    0
                }
                NameChar::Invisible => 0,
            };
            if chars > MAX_NAME_CHARS || marks > MAX_MARKS_IN_A_ROW {
                return None;
            }
        }
        visible.then(|| Name(Arc::from(text.as_ref())))
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

/// What a character of a name is, or `None` if a name may not hold it.
enum NameChar {
    Visible,
    /// A space, or a joiner between letters.
    Invisible,
    /// Combines with the character before it.
    Mark,
}

fn name_char(c: char) -> Option<NameChar> {
    use icu_properties::props::GeneralCategory as Gc;
    let code = u32::from(c);
    if (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE {
        return None;
    }
    let category = icu_properties::CodePointMapData::<Gc>::new().get(c);
    match category {
        Gc::Control | Gc::Surrogate | Gc::LineSeparator | Gc::ParagraphSeparator => None,
        // Zero-width non-joiner and joiner: part of how some words are spelt.
        Gc::Format if matches!(c, '\u{200C}' | '\u{200D}') => Some(NameChar::Invisible),
        Gc::Format => None,
        Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark => Some(NameChar::Mark),
        Gc::SpaceSeparator | Gc::PrivateUse | Gc::Unassigned => Some(NameChar::Invisible),
        _ => Some(NameChar::Visible),
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

/// How much one tenant may have and ask at once (`POS_MAX_*_PER_TENANT`),
/// and how long its sales may be voided (`POS_VOID_WINDOW_SECS`):
/// what a tenant holds is memory in its actor and bytes in every till's
/// catalog download; what it asks at once, work the others wait behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// Products, inactive ones included (nothing is ever deleted).
    pub products: usize,
    /// Branches, closed ones included.
    pub branches: usize,
    /// Till and back-office keys not revoked.
    pub keys: usize,
    /// Sales requests in its actor at once (more get 503 at once).
    pub requests_in_flight: usize,
    /// How long after a sale was stored it may be voided.
    pub void_window: std::time::Duration,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            products: 20_000,
            branches: 1_000,
            keys: 5_000,
            requests_in_flight: 1_024,
            void_window: std::time::Duration::from_secs(900),
        }
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
    /// The list price a sale uses when it names none.
    pub price: Option<Money>,
}

/// A tenant's branches and products, all of them (closed and inactive
/// ones too: their names still show in the totals).
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// The tenant's name, as its pages show it.
    pub name: Arc<str>,
    /// A suspended tenant's tills are refused.
    pub suspended: bool,
    /// The zone the back office counts the tenant's days in.
    pub time_zone: chrono_tz::Tz,
    /// What its prices and totals are in.
    pub currency: Currency,
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

/// Which rows of a catalog list to show: those with an id above `after`
/// whose name or code holds `q` (any case), in `state` (active or open)
/// when given, at most `limit` by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFilter {
    pub q: String,
    pub state: Option<bool>,
    pub after: u64,
    pub limit: usize,
}

impl RowFilter {
    /// One page of `rows` (`row` gives a row's id, name, code and state),
    /// and whether more follow.
    pub fn page<'a, K: Copy + Ord, T>(
        &self,
        rows: impl Iterator<Item = (&'a K, &'a T)>,
        row: impl Fn(K, &T) -> (u64, &Name, &Code, bool),
    ) -> (Vec<(&'a K, &'a T)>, bool) {
        let q = self.q.trim().to_lowercase();
        let holds = |text: &str| text.to_lowercase().contains(&q);
        let mut rows: Vec<_> = rows
            .filter(|(k, t)| {
                let (id, name, code, on) = row(**k, t);
                id > self.after
                    && self.state.is_none_or(|s| s == on)
                    && (q.is_empty() || holds(name.as_str()) || holds(code.as_str()))
            })
            .collect();
        rows.sort_unstable_by_key(|(k, _)| **k);
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        (rows, more)
    }
}

/// A product to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub sku: Code,
    pub name: Name,
    pub price: Option<Money>,
}

/// Each product of `items` whose `sku` an earlier one has: its position
/// and the first one's. One request never makes two products of one `sku`.
pub fn repeated_skus(items: &[NewProduct]) -> Vec<(usize, usize)> {
    let mut first_seen: HashMap<&Code, usize> = HashMap::with_capacity(items.len());
    items
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match first_seen.entry(&p.sku) {
            std::collections::hash_map::Entry::Occupied(first) => Some((i, *first.get())),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                None
            }
        })
        .collect()
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
    /// `Some(None)`: the product has no list price from now on.
    pub price: Option<Option<Money>>,
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
    /// Changeable only while the tenant has no sales.
    pub currency: Option<Currency>,
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
    fn a_row_filter_pages_by_id_searches_any_case_and_filters_by_state() {
        let code = |c: &str| Code::parse(c).expect("a code");
        let name = |n: &str| Name::parse(n).expect("a name");
        let rows: Vec<(u64, (Name, Code, bool))> = vec![
            (3, (name("Oat Latte"), code("LATTE"), true)),
            (1, (name("Espresso"), code("ESP"), false)),
            (7, (name("Tea"), code("TEA-latte"), true)),
            (5, (name("Cake"), code("CAKE"), true)),
        ];
        let page = |filter: RowFilter| {
            let (shown, more) = filter.page(rows.iter().map(|(k, v)| (k, v)), |k, (n, c, on)| {
                (k, n, c, *on)
            });
            (shown.iter().map(|(k, _)| **k).collect::<Vec<_>>(), more)
        };
        let all = RowFilter {
            q: String::new(),
            state: None,
            after: 0,
            limit: 10,
        };
        assert_eq!(page(all.clone()), (vec![1, 3, 5, 7], false));
        let latte = RowFilter {
            q: " LaTTe ".into(),
            ..all.clone()
        };
        assert_eq!(page(latte), (vec![3, 7], false), "name or code, any case");
        let off = RowFilter {
            state: Some(false),
            ..all.clone()
        };
        assert_eq!(page(off), (vec![1], false));
        let two = RowFilter {
            limit: 2,
            ..all.clone()
        };
        assert_eq!(page(two), (vec![1, 3], true));
        let next = RowFilter {
            limit: 2,
            after: 3,
            ..all
        };
        assert_eq!(page(next), (vec![5, 7], false));
    }

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
        assert_eq!(
            Name::parse(&format!("\r {}", "a".repeat(MAX_NAME_CHARS - 1))),
            None,
            "200 characters as sent, spaces included (schemathesis found one more accepted)"
        );
        let ok = "é".repeat(MAX_NAME_CHARS);
        assert!(
            Name::parse(&ok).is_some(),
            "200 characters of two bytes each"
        );
        assert!(Name::parse(&format!("{ok}é")).is_none());
    }

    #[test]
    fn names_hold_a_visible_character_and_nothing_that_hides_or_reverses_text() {
        for bad in [
            "\u{200B}",           // a zero-width space alone
            "\u{200D}\u{200C}",   // joiners alone
            "\u{0301}\u{0301}",   // marks with nothing to sit on
            "Latte\u{202E}ettaL", // a right-to-left override
            "\u{FEFF}Latte",      // a byte order mark
            "Lat\u{2066}te",      // a directional isolate
            "Latte\u{FDD0}",      // a noncharacter
            "Latte\u{1FFFF}",     // a plane's last noncharacter
            "Latte\u{2028}Mocha", // a line separator
            "Latte\u{00AD}",      // a soft hyphen (format)
        ] {
            assert!(Name::parse(bad).is_none(), "{bad:?}");
        }
        // (U+0316 composes with no letter, so NFC leaves every one.)
        let zalgo = format!("x{}atte", "\u{0316}".repeat(MAX_MARKS_IN_A_ROW + 1));
        assert!(Name::parse(&zalgo).is_none());
        let stacked = format!("x{}atte", "\u{0316}".repeat(MAX_MARKS_IN_A_ROW));
        assert!(Name::parse(&stacked).is_some());
        for good in [
            "می\u{200C}خواهم",      // Persian with a zero-width non-joiner
            "👩\u{200D}🍳 Kitchen", // an emoji sequence
            "Tiếng Việt",
            "שָׁלוֹם", // Hebrew points
            "Café №5",
        ] {
            assert!(Name::parse(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn names_are_stored_composed() {
        let decomposed = "Cafe\u{0301}";
        let name = Name::parse(decomposed).expect("a name");
        assert_eq!(name.as_str(), "Caf\u{e9}");
        assert_eq!(Name::parse("Caf\u{e9}"), Some(name));
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
