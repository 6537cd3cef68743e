//! What the load generator sells: each tenant's open branches and active
//! products, learnt through the API like a till (`GET .../catalog`, with
//! the tenant's till key), so a run needs no database access. The tenants
//! are `--tenants`, else those of the keys file, else the first ones the
//! API lists (`GET /v1/tenants`, the operator's).

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use super::{LoadgenArgs, LoadgenError};
use crate::cli::keys_file::KeysFile;
use crate::domain::{BranchId, ProductId, TenantId};

/// Catalogs read at once.
const CONCURRENT_READS: usize = 16;

/// One tenant's ids, as its catalog lists them.
#[derive(Debug, Clone)]
pub struct Shop {
    pub tenant_id: TenantId,
    pub branches: Vec<BranchId>,
    pub products: Vec<ProductId>,
}

/// A GET of the API with a key (or none, for a server without keys).
pub(super) async fn get_json(
    client: &awc::Client,
    url: &str,
    token: Option<&str>,
) -> Result<Value, LoadgenError> {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let url = || url.to_string();
    let mut res = req
        .send()
        .await
        .map_err(|source| LoadgenError::Unanswered { url: url(), source })?;
    if !res.status().is_success() {
        let status = res.status();
        return Err(LoadgenError::Refused { url: url(), status });
    }
    res.json::<Value>()
        .limit(64 << 20)
        .await
        .map_err(|source| LoadgenError::Unreadable { url: url(), source })
}

/// The shops to drive; tenants without an open branch or an active product are left out.
pub async fn learn_shops(
    client: &awc::Client,
    base: &str,
    args: &LoadgenArgs,
    keys: Option<&KeysFile>,
) -> Result<Vec<Shop>, LoadgenError> {
    let wanted = args.terminals as usize;
    let operator = keys.and_then(|k| k.operator.as_deref());
    let tenants: Vec<TenantId> = if !args.tenants.is_empty() {
        args.tenants.clone()
    } else if let Some(k) = keys {
        k.tills.keys().copied().take(wanted).collect()
    } else {
        let url = format!("{base}/v1/tenants?limit={}", wanted.min(1000));
        let listed = get_json(client, &url, operator).await?;
        listed["tenants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_u64().and_then(TenantId::new))
            .collect()
    };
    let reads = tenants.into_iter().map(|tenant| {
        let token = keys
            .and_then(|k| k.tills.get(&tenant).map(String::as_str))
            .or(operator);
        async move {
            let url = format!("{base}/v1/tenants/{tenant}/catalog");
            let catalog = get_json(client, &url, token).await?;
            Ok::<_, LoadgenError>(shop_of(tenant, &catalog))
        }
    });
    let shops: Vec<Result<Shop, LoadgenError>> = stream::iter(reads)
        .buffered(CONCURRENT_READS)
        .collect()
        .await;
    let mut out = Vec::with_capacity(shops.len());
    for shop in shops {
        let shop = shop?;
        if !shop.branches.is_empty() && !shop.products.is_empty() {
            out.push(shop);
        }
    }
    if out.is_empty() {
        return Err(LoadgenError::NoShops);
    }
    Ok(out)
}

fn shop_of(tenant: TenantId, catalog: &Value) -> Shop {
    let ids = |list: &str| -> Vec<u64> {
        catalog[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["id"].as_u64())
            .collect()
    };
    Shop {
        tenant_id: tenant,
        branches: ids("branches")
            .into_iter()
            .filter_map(BranchId::new)
            .collect(),
        products: ids("products")
            .into_iter()
            .filter_map(ProductId::new)
            .collect(),
    }
}
