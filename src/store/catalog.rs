//! The catalog a chain manages through the API: tenants, branches and
//! products. Creates go by natural key (`sku`, `code`): the same key with
//! the same name finds the existing row, with another name it is a
//! conflict, and a create that races another for the same key finds the
//! other's row on its next round. Nothing here deletes anything.

use chrono::NaiveDateTime;
use mysql_async::prelude::*;
use mysql_async::{Conn, Params, TxOpts, Value};

use super::events::insert_catalog_event;
use super::{Result, StoreError};
use rust_decimal::Decimal;

use crate::domain::{
    repeated_skus, Branch, BranchId, BranchPatch, BranchView, Catalog, Code, Currency, EventType,
    Field, ItemProblem, Made, Money, Name, NewBranch, NewProduct, Product, ProductId, ProductView,
    TenantId, TenantPatch, Timestamp,
};

/// Rounds of a create that keeps meeting rows another request just made.
const CREATE_ROUNDS: usize = 3;

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: Name,
    pub created: Timestamp,
    pub suspended: bool,
    pub time_zone: chrono_tz::Tz,
    pub currency: Currency,
}

/// Why a tenant was not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRefusal {
    NoSuchTenant,
    /// Its currency may change only while it has no sales.
    HasSales,
}

/// Natural keys taken by rows with other content: one problem per item.
pub type Conflicts = Vec<ItemProblem>;

/// Why a create made nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogRefusal {
    /// Natural keys taken by rows with other content.
    Taken(Conflicts),
    /// A natural key given twice in one request.
    Repeated(Vec<ItemProblem>),
    /// The tenant would hold more than its bound: it holds `held` now.
    Full { held: u64 },
}

/// Locks the tenant's row until the transaction ends (creates of one
/// tenant then count its rows in turn; sales never lock it), and counts
/// its rows of `table`.
async fn lock_and_count(tx: &mut impl Queryable, tenant: TenantId, table: &str) -> Result<u64> {
    tx.exec_drop("SELECT id FROM tenants WHERE id = ? FOR UPDATE", (tenant,))
        .await?;
    let held: Option<u64> = tx
        .exec_first(
            format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?"),
            (tenant,),
        )
        .await?;
    Ok(held.unwrap_or(0))
}

/// Reads a tenant's branches and products; `None` if the tenant does not exist.
pub async fn load_catalog(conn: &mut Conn, tenant: TenantId) -> Result<Option<Catalog>> {
    let tenant_row: Option<(String, bool, String, Option<String>)> = conn
        .exec_first(
            "SELECT name, suspended, time_zone, currency FROM tenants WHERE id = ?",
            (tenant,),
        )
        .await?;
    let Some((name, suspended, zone, currency)) = tenant_row else {
        return Ok(None);
    };
    let branches: Vec<(BranchId, String, String, bool)> = conn
        .exec(
            "SELECT id, code, name, open FROM branches WHERE tenant_id = ?",
            (tenant,),
        )
        .await?;
    let mut catalog = Catalog {
        name: name.into(),
        suspended,
        time_zone: stored_zone(&zone),
        currency: stored_currency(currency.as_deref()),
        ..Catalog::default()
    };
    catalog.branches = branches
        .into_iter()
        .map(|(id, code, name, open)| {
            let branch = Branch {
                code: Code::stored(code),
                name: Name::stored(name),
                open,
            };
            (id, branch)
        })
        .collect();
    conn.exec_iter(
        format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = ?"),
        (tenant,),
    )
    .await?
    .for_each(|row| {
        let (id, product) = product_row(mysql_async::from_row(row));
        catalog.products.insert(id, product);
    })
    .await?;
    Ok(Some(catalog))
}

type TenantTuple = (
    TenantId,
    String,
    NaiveDateTime,
    bool,
    String,
    Option<String>,
);

fn tenant_row((id, name, created, suspended, zone, currency): TenantTuple) -> TenantRow {
    TenantRow {
        id,
        name: Name::stored(name),
        created: Timestamp::from_naive_utc(created),
        suspended,
        time_zone: stored_zone(&zone),
        currency: stored_currency(currency.as_deref()),
    }
}

const PRODUCT_COLUMNS: &str = "id, sku, name, active, price";
type ProductTuple = (ProductId, String, String, bool, Option<Decimal>);

fn product_row((id, sku, name, active, price): ProductTuple) -> (ProductId, Product) {
    let product = Product {
        sku: Code::stored(sku),
        name: Name::stored(name),
        active,
        price: price.map(Money::new),
    };
    (id, product)
}

/// A currency as stored: the API checks it before; a tenant whose
/// currency was never filled in (the service fills them at start) or was
/// typed by hand counts in euros.
fn stored_currency(code: Option<&str>) -> Currency {
    code.and_then(Currency::stored).unwrap_or_default()
}

/// Gives every tenant without a currency (made before currencies) the
/// deployment's default (`POS_DEFAULT_CURRENCY`), once.
pub async fn fill_currencies(conn: &mut Conn, default: Currency) -> Result<()> {
    conn.exec_drop(
        "UPDATE tenants SET currency = ? WHERE currency IS NULL",
        (default.code(),),
    )
    .await?;
    Ok(())
}

/// A zone as stored: the API checks it before, so only SQL typed by hand
/// can leave a name chrono-tz does not know; such a tenant counts in UTC.
fn stored_zone(name: &str) -> chrono_tz::Tz {
    name.parse().unwrap_or_default()
}

const TENANT_COLUMNS: &str = "id, name, created, suspended, time_zone, currency";

/// Makes a tenant (the operator's first step for a new chain).
pub async fn create_tenant(conn: &mut Conn, name: &Name, currency: Currency) -> Result<TenantRow> {
    conn.exec_drop(
        "INSERT INTO tenants (name, created, currency) VALUES (?, UTC_TIMESTAMP(6), ?)",
        (name.as_str(), currency.code()),
    )
    .await?;
    let id = conn
        .last_insert_id()
        .and_then(TenantId::new)
        .ok_or_else(|| StoreError::invariant("INSERT gave no tenant id"))?;
    find_tenant(conn, id)
        .await?
        .ok_or_else(|| StoreError::invariant("a tenant just made is gone"))
}

/// Makes a tenant in the control database's directory on the pod (of
/// `pods`) with the fewest tenants, with the smallest free id above every
/// other that maps to it (`id % pods`, as shards own tenants). Makers take
/// turns on the deployment's row, so two never count the same pods.
pub async fn create_tenant_on_a_pod(
    conn: &mut Conn,
    name: &Name,
    currency: Currency,
    pods: u64,
) -> Result<TenantRow> {
    let pods = pods.max(1);
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let _: Option<u64> = tx
        .query_first("SELECT shard_count FROM shard_deployment WHERE id = 1 FOR UPDATE")
        .await?;
    // The count is ours (a number), written into the text so the
    // remainder's type is the server's integer, never a parameter's.
    let counts: Vec<(u64, u64)> = tx
        .query(format!(
            "SELECT CAST(id % {pods} AS UNSIGNED), COUNT(*) FROM tenants GROUP BY 1"
        ))
        .await?;
    let top: Option<Option<u64>> = tx
        .query_first("SELECT MAX(id) FROM tenants FOR UPDATE")
        .await?;
    let pod = emptiest_pod(&counts, pods);
    let id = TenantId::new(next_id_on_pod(top.flatten().unwrap_or(0), pod, pods))
        .ok_or_else(|| StoreError::invariant("a tenant id is never 0"))?;
    tx.exec_drop(
        "INSERT INTO tenants (id, name, created, currency) VALUES (?, ?, UTC_TIMESTAMP(6), ?)",
        (id, name.as_str(), currency.code()),
    )
    .await?;
    let row = find_tenant(&mut tx, id).await?;
    tx.commit().await?;
    row.ok_or_else(|| StoreError::invariant("a tenant just made is gone"))
}

/// The pod with the fewest tenants (the lowest index of those tied).
fn emptiest_pod(counts: &[(u64, u64)], pods: u64) -> u64 {
    (0..pods)
        .min_by_key(|pod| {
            let held = counts.iter().find(|(p, _)| p == pod).map_or(0, |(_, n)| *n);
            (held, *pod)
        })
        .unwrap_or(0)
}

/// The smallest id above `top` that maps to `pod`.
fn next_id_on_pod(top: u64, pod: u64, pods: u64) -> u64 {
    let next = top + 1;
    next + (pod + pods - next % pods) % pods
}

/// Copies a tenant from the directory into its pod's database, where its
/// catalog and sales refer to it (once: a pod that has it keeps its own).
pub async fn adopt_tenant(conn: &mut Conn, t: &TenantRow) -> Result<()> {
    conn.exec_drop(
        "INSERT IGNORE INTO tenants (id, name, created, suspended, time_zone, currency) \
         VALUES (?, ?, ?, ?, ?, ?)",
        (
            t.id,
            t.name.as_str(),
            t.created.naive_utc(),
            t.suspended,
            t.time_zone.name(),
            t.currency.code(),
        ),
    )
    .await?;
    Ok(())
}

/// Writes a tenant's row as its pod has it into the directory (after a
/// change, which the pod decides: its currency rule reads the sales).
pub async fn record_tenant(conn: &mut Conn, t: &TenantRow) -> Result<()> {
    conn.exec_drop(
        "UPDATE tenants SET name = ?, suspended = ?, time_zone = ?, currency = ? WHERE id = ?",
        (
            t.name.as_str(),
            t.suspended,
            t.time_zone.name(),
            t.currency.code(),
            t.id,
        ),
    )
    .await?;
    Ok(())
}

/// The tenants with these ids (at most a page of them), by id.
pub async fn find_tenants(conn: &mut Conn, ids: &[TenantId]) -> Result<Vec<TenantRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let rows: Vec<TenantTuple> = conn
        .exec(
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id IN ({marks}) ORDER BY id"),
            Params::Positional(ids.iter().map(|id| Value::from(id.get())).collect()),
        )
        .await?;
    Ok(rows.into_iter().map(tenant_row).collect())
}

/// The tenant with this id, on a connection or in a transaction.
pub async fn find_tenant(conn: &mut impl Queryable, id: TenantId) -> Result<Option<TenantRow>> {
    let row: Option<TenantTuple> = conn
        .exec_first(
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"),
            (id,),
        )
        .await?;
    Ok(row.map(tenant_row))
}

/// At most `limit` tenants with ids above `after`, by id.
pub async fn list_tenants(
    conn: &mut Conn,
    after: Option<TenantId>,
    limit: usize,
) -> Result<Vec<TenantRow>> {
    let rows: Vec<TenantTuple> = conn
        .exec(
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id > ? ORDER BY id LIMIT ?"),
            (after.map_or(0, TenantId::get), limit as u64),
        )
        .await?;
    Ok(rows.into_iter().map(tenant_row).collect())
}

/// Renames, suspends, or moves a tenant to another zone or currency. Its
/// currency changes only while it has no sales: the tenant's row is
/// locked first, and the check for a sale is a locking read of the
/// tenant's first history entry, so a sale committing meanwhile either
/// came first (refused) or waits for this change.
pub async fn update_tenant(
    conn: &mut Conn,
    id: TenantId,
    patch: &TenantPatch,
) -> Result<std::result::Result<TenantRow, TenantRefusal>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let current: Option<Option<String>> = tx
        .exec_first(
            "SELECT currency FROM tenants WHERE id = ? FOR UPDATE",
            (id,),
        )
        .await?;
    let Some(current) = current else {
        return Ok(Err(TenantRefusal::NoSuchTenant));
    };
    let new_currency = patch
        .currency
        .filter(|c| current.as_deref() != Some(c.code()));
    if new_currency.is_some() {
        let sold: Option<u64> = tx
            .exec_first(
                "SELECT 1 FROM sales_transactions WHERE tenant_id = ? LIMIT 1 LOCK IN SHARE MODE",
                (id,),
            )
            .await?;
        if sold.is_some() {
            return Ok(Err(TenantRefusal::HasSales));
        }
    }
    tx.exec_drop(
        "UPDATE tenants SET name = COALESCE(?, name), suspended = COALESCE(?, suspended), \
         time_zone = COALESCE(?, time_zone), currency = COALESCE(?, currency) WHERE id = ?",
        (
            patch.name.as_ref().map(Name::as_str),
            patch.suspended,
            patch.time_zone.map(|tz| tz.name()),
            new_currency.map(Currency::code),
            id,
        ),
    )
    .await?;
    let row = find_tenant(&mut tx, id).await?;
    tx.commit().await?;
    Ok(row.ok_or(TenantRefusal::NoSuchTenant))
}

/// Makes the products whose `sku` is new and finds those that exist with
/// the same name, all or nothing: one whose `sku` is taken by a product
/// with another name makes the whole request a conflict, a `sku` given
/// twice is refused, and so is a create that would give the tenant more
/// than `limit` products.
pub async fn create_products(
    conn: &mut Conn,
    tenant: TenantId,
    items: &[NewProduct],
    limit: usize,
) -> Result<std::result::Result<Vec<Made<(ProductId, Product)>>, CatalogRefusal>> {
    let repeated: Vec<ItemProblem> = repeated_skus(items)
        .into_iter()
        .map(|(i, _)| ItemProblem::new(i, Field::Sku, "repeats the sku of an earlier item"))
        .collect();
    if !repeated.is_empty() {
        return Ok(Err(CatalogRefusal::Repeated(repeated)));
    }
    let keys: Vec<&Code> = items.iter().map(|p| &p.sku).collect();
    for _ in 0..CREATE_ROUNDS {
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        let held = lock_and_count(&mut tx, tenant, "products").await?;
        let found = products_by_sku(&mut tx, tenant, &keys).await?;
        let conflicts: Conflicts = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let (id, p) = found.iter().find(|(_, p)| p.sku == item.sku)?;
                let other = if p.name != item.name {
                    "name"
                } else if p.price != item.price {
                    "price (change a price with PATCH)"
                } else {
                    return None;
                };
                let problem = format!(
                    "SKU {} is already used by “{}” (product {id}), with another {other}",
                    item.sku.as_str(),
                    p.name.as_str()
                );
                Some(ItemProblem::new(i, Field::Sku, problem))
            })
            .collect();
        if !conflicts.is_empty() {
            return Ok(Err(CatalogRefusal::Taken(conflicts)));
        }
        let new: Vec<&NewProduct> = items
            .iter()
            .filter(|item| !found.iter().any(|(_, p)| p.sku == item.sku))
            .collect();
        if held.saturating_add(new.len() as u64) > limit as u64 {
            return Ok(Err(CatalogRefusal::Full { held }));
        }
        if !new.is_empty() {
            let rows = vec!["(?, ?, ?, ?)"; new.len()].join(", ");
            let params: Vec<Value> = new
                .iter()
                .flat_map(|p| {
                    let price = p.price.map(Money::amount);
                    [
                        tenant.into(),
                        p.sku.as_str().into(),
                        p.name.as_str().into(),
                        price.into(),
                    ]
                })
                .collect();
            let insert = tx
                .exec_drop(
                    format!("INSERT INTO products (tenant_id, sku, name, price) VALUES {rows}"),
                    Params::Positional(params),
                )
                .await;
            match insert.map_err(StoreError::from) {
                // Another request made one of these meanwhile: read again.
                Err(StoreError::DuplicateKey(_)) => continue,
                other => other?,
            }
        }
        let made = products_by_sku(&mut tx, tenant, &keys).await?;
        let was_there = |sku: &Code| found.iter().any(|(_, p)| &p.sku == sku);
        let mut created: Vec<&(ProductId, Product)> =
            made.iter().filter(|(_, p)| !was_there(&p.sku)).collect();
        created.sort_by_key(|(id, _)| *id);
        for (id, p) in created {
            let data = ProductView::new(*id, p);
            insert_catalog_event(&mut tx, tenant, EventType::ProductCreated, &data).await?;
        }
        tx.commit().await?;
        return items
            .iter()
            .map(|item| {
                let (id, p) = made
                    .iter()
                    .find(|(_, p)| p.sku == item.sku)
                    .ok_or_else(|| StoreError::invariant("a product just made is gone"))?;
                Ok(Made {
                    row: (*id, p.clone()),
                    created: !was_there(&item.sku),
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Ok);
    }
    Err(StoreError::unavailable(
        "products kept changing under this create",
    ))
}

async fn products_by_sku(
    conn: &mut impl Queryable,
    tenant: TenantId,
    skus: &[&Code],
) -> Result<Vec<(ProductId, Product)>> {
    let marks = vec!["?"; skus.len()].join(", ");
    let mut params: Vec<Value> = vec![tenant.into()];
    params.extend(skus.iter().map(|s| Value::from(s.as_str())));
    let rows: Vec<ProductTuple> = conn
        .exec(
            format!(
                "SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = ? AND sku IN ({marks})"
            ),
            Params::Positional(params),
        )
        .await?;
    Ok(rows.into_iter().map(product_row).collect())
}

/// Renames, deactivates or activates a product; `None` if the tenant has no such product.
pub async fn update_product(
    conn: &mut Conn,
    tenant: TenantId,
    id: ProductId,
    patch: &crate::domain::ProductPatch,
) -> Result<Option<Product>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    // `price` is set only when the patch names it (to a price or NULL).
    tx.exec_drop(
        "UPDATE products SET name = COALESCE(?, name), active = COALESCE(?, active), \
         price = IF(?, ?, price) WHERE tenant_id = ? AND id = ?",
        (
            patch.name.as_ref().map(Name::as_str),
            patch.active,
            patch.price.is_some(),
            patch.price.flatten().map(Money::amount),
            tenant,
            id,
        ),
    )
    .await?;
    let row: Option<ProductTuple> = tx
        .exec_first(
            format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = ? AND id = ?"),
            (tenant, id),
        )
        .await?;
    let changed = row.map(|r| product_row(r).1);
    if let Some(p) = &changed {
        let data = ProductView::new(id, p);
        insert_catalog_event(&mut tx, tenant, EventType::ProductUpdated, &data).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Makes a branch, or finds it by `code` with the same name; refused if
/// the tenant holds `limit` branches already.
pub async fn create_branch(
    conn: &mut Conn,
    tenant: TenantId,
    new: &NewBranch,
    limit: usize,
) -> Result<std::result::Result<Made<(BranchId, Branch)>, CatalogRefusal>> {
    for _ in 0..CREATE_ROUNDS {
        if let Some((id, branch)) = branch_by_code(conn, tenant, &new.code).await? {
            if branch.name != new.name {
                let problem = format!(
                    "code {} is already used by “{}” (branch {id}), with another name",
                    new.code.as_str(),
                    branch.name.as_str()
                );
                let taken = vec![ItemProblem::new(0, Field::Code, problem)];
                return Ok(Err(CatalogRefusal::Taken(taken)));
            }
            return Ok(Ok(Made {
                row: (id, branch),
                created: false,
            }));
        }
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        let held = lock_and_count(&mut tx, tenant, "branches").await?;
        if held >= limit as u64 {
            return Ok(Err(CatalogRefusal::Full { held }));
        }
        let insert = tx
            .exec_drop(
                "INSERT INTO branches (tenant_id, code, name) VALUES (?, ?, ?)",
                (tenant, new.code.as_str(), new.name.as_str()),
            )
            .await;
        match insert.map_err(StoreError::from) {
            Err(StoreError::DuplicateKey(_)) => continue,
            other => other?,
        }
        let id = tx
            .last_insert_id()
            .and_then(BranchId::new)
            .ok_or_else(|| StoreError::invariant("INSERT gave no branch id"))?;
        let branch = Branch {
            code: new.code.clone(),
            name: new.name.clone(),
            open: true,
        };
        let data = BranchView::new(id, &branch);
        insert_catalog_event(&mut tx, tenant, EventType::BranchCreated, &data).await?;
        tx.commit().await?;
        return Ok(Ok(Made {
            row: (id, branch),
            created: true,
        }));
    }
    Err(StoreError::unavailable(
        "branches kept changing under this create",
    ))
}

async fn branch_by_code(
    conn: &mut Conn,
    tenant: TenantId,
    code: &Code,
) -> Result<Option<(BranchId, Branch)>> {
    let row: Option<(BranchId, String, bool)> = conn
        .exec_first(
            "SELECT id, name, open FROM branches WHERE tenant_id = ? AND code = ?",
            (tenant, code.as_str()),
        )
        .await?;
    Ok(row.map(|(id, name, open)| {
        let branch = Branch {
            code: code.clone(),
            name: Name::stored(name),
            open,
        };
        (id, branch)
    }))
}

/// Renames, closes or opens a branch; `None` if the tenant has no such branch.
pub async fn update_branch(
    conn: &mut Conn,
    tenant: TenantId,
    id: BranchId,
    patch: &BranchPatch,
) -> Result<Option<Branch>> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    tx.exec_drop(
        "UPDATE branches SET name = COALESCE(?, name), open = COALESCE(?, open) \
         WHERE tenant_id = ? AND id = ?",
        (
            patch.name.as_ref().map(Name::as_str),
            patch.open,
            tenant,
            id,
        ),
    )
    .await?;
    let row: Option<(String, String, bool)> = tx
        .exec_first(
            "SELECT code, name, open FROM branches WHERE tenant_id = ? AND id = ?",
            (tenant, id),
        )
        .await?;
    let changed = row.map(|(code, name, open)| Branch {
        code: Code::stored(code),
        name: Name::stored(name),
        open,
    });
    if let Some(b) = &changed {
        let data = BranchView::new(id, b);
        insert_catalog_event(&mut tx, tenant, EventType::BranchUpdated, &data).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

#[cfg(test)]
mod pod_tests {
    use super::{emptiest_pod, next_id_on_pod};

    #[test]
    fn a_new_tenant_goes_to_the_pod_with_fewest_and_its_id_maps_there() {
        assert_eq!(emptiest_pod(&[], 2), 0);
        assert_eq!(emptiest_pod(&[(0, 3), (1, 2)], 2), 1);
        assert_eq!(emptiest_pod(&[(0, 2), (1, 2)], 2), 0);
        assert_eq!(emptiest_pod(&[(0, 1), (2, 1)], 3), 1);
        assert_eq!(next_id_on_pod(0, 0, 2), 2);
        assert_eq!(next_id_on_pod(0, 1, 2), 1);
        assert_eq!(next_id_on_pod(7, 1, 2), 9);
        assert_eq!(next_id_on_pod(7, 0, 2), 8);
        assert_eq!(next_id_on_pod(9, 2, 3), 11);
        assert_eq!(next_id_on_pod(5, 0, 1), 6);
    }
}
