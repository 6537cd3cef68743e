//! Built-in names so seeded shops read like real ones on dashboards.

const SHOP_WORDS: &[&str] = &[
    "Corner",
    "Harbour",
    "Maple",
    "Little",
    "Golden",
    "Union",
    "Riverside",
    "Market",
    "Northside",
    "Oak",
    "Copper",
    "Lantern",
    "Bluebird",
    "Station",
    "Orchard",
    "Juniper",
    "Bramble",
    "Hillside",
    "Old Town",
    "Willow",
];
const SHOP_KINDS: &[&str] = &[
    "Café",
    "Bakery",
    "Coffee Co.",
    "Deli",
    "Kitchen",
    "Roasters",
    "Pantry",
    "Espresso Bar",
];
const PLACES: &[&str] = &[
    "High Street",
    "Station Road",
    "Market Square",
    "Riverside",
    "Old Town",
    "Airport",
    "University",
    "Harbour Front",
    "Central",
    "West End",
    "Mall",
    "Park Lane",
];
const FLAVOURS: &[&str] = &[
    "Oat", "Classic", "Iced", "Vanilla", "Caramel", "Double", "Decaf", "Hazelnut", "Honey",
    "Almond", "Salted", "Spiced",
];
const ITEMS: &[&str] = &[
    "Latte",
    "Flat White",
    "Cappuccino",
    "Americano",
    "Mocha",
    "Chai",
    "Espresso",
    "Cold Brew",
    "Croissant",
    "Scone",
    "Muffin",
    "Brownie",
    "Cookie",
    "Bagel",
    "Sandwich",
    "Smoothie",
];
const SIZES: &[&str] = &["8oz", "12oz", "16oz"];

/// How seeded rows are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NameStyle {
    /// "Maple Bakery", "Oat Latte 12oz"
    Realistic,
    /// "Tenant 1", "Product 1"
    Plain,
}

pub fn tenant(style: NameStyle, n: usize) -> String {
    match style {
        NameStyle::Realistic => {
            let word = SHOP_WORDS[n % SHOP_WORDS.len()];
            let kind = SHOP_KINDS[(n / SHOP_WORDS.len()) % SHOP_KINDS.len()];
            format!("{word} {kind}")
        }
        NameStyle::Plain => format!("Tenant {}", n + 1),
    }
}

pub fn branch(style: NameStyle, n: usize) -> String {
    match style {
        NameStyle::Realistic if n < PLACES.len() => PLACES[n].to_string(),
        NameStyle::Realistic => format!("{} {}", PLACES[n % PLACES.len()], n / PLACES.len() + 1),
        NameStyle::Plain => format!("Branch {}", n + 1),
    }
}

/// Products cycle through item, then flavour, then size, so the first ones
/// of a shop are distinct everyday items.
pub fn product(style: NameStyle, n: usize) -> String {
    match style {
        NameStyle::Realistic => {
            let item = ITEMS[n % ITEMS.len()];
            let flavour = FLAVOURS[(n / ITEMS.len()) % FLAVOURS.len()];
            let size = SIZES[(n / (ITEMS.len() * FLAVOURS.len())) % SIZES.len()];
            let round = n / (ITEMS.len() * FLAVOURS.len() * SIZES.len());
            if round == 0 {
                format!("{flavour} {item} {size}")
            } else {
                format!("{flavour} {item} {size} #{}", round + 1)
            }
        }
        NameStyle::Plain => format!("Product {}", n + 1),
    }
}
