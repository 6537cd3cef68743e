//! The Redis mirror of the global ranking, through `fred` (single node or
//! Cluster). Redis is never the source of truth: every write here is an
//! absolute score (`ZADD`), so a command fred re-sends after a reconnect, or
//! one that lands late, does no harm; and the whole view can be rewritten
//! from memory at any time.
//!
//! The two sorted sets are written with independent commands (a pipeline,
//! never MULTI), so they may live in different Cluster slots and the
//! default prefix `pos:` works on Cluster as is.
//!
//! With several shards (`POS_SHARD=i/n`, n > 1) the sets are the merge of
//! all instances: each writes the absolute totals of its own products (the
//! sets are disjoint by tenant), never removes members, and also keeps, in
//! the hash `{prefix}top_selling:products`, what a reader needs to show a
//! product (tenant, name, and the exact totals: scores are doubles). Any
//! instance then answers the global top sellers from Redis ([`Mirror::top`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use fred::types::sorted_sets::ZRange;
use fred::types::{ClusterHash, CustomCommand};

use serde::{Deserialize, Serialize};

use crate::domain::{Money, ProductId, ProductTotal, RankBy, TenantId};

/// Members written per pipeline during a full resync.
const RESYNC_CHUNK: usize = 5_000;
/// Products with the same score as the last one a reader asked for that are
/// fetched to break the tie by product id (beyond, the tie order is Redis's).
const TIE_CAP: usize = 10_000;

/// A product as the merged view's hash holds it.
#[derive(Serialize, Deserialize)]
struct Shown {
    #[serde(rename = "tenantID")]
    tenant_id: TenantId,
    name: String,
    quantity: u64,
    /// Exact, as text (a double score would lose cents on large totals).
    revenue: String,
    /// Taken back (absent in what an older build wrote: none).
    #[serde(default)]
    refunded: u64,
    #[serde(default)]
    refunds: Option<String>,
}

/// What an audit found.
#[derive(Debug, PartialEq, Eq)]
pub enum Audit {
    /// A key is gone, or a view of one instance has other members: rewrite
    /// everything.
    Lost,
    /// These products of the sample are not (fully) there.
    Missing(Vec<ProductId>),
}

/// A handle on the mirror; cheap to clone.
#[derive(Clone)]
pub struct Mirror {
    client: Client,
    quantity_key: String,
    revenue_key: String,
    products_key: String,
    /// Other shards write into the same sets (POS_SHARD with n > 1).
    merged: bool,
    /// Members are `tenant:product`: with pods, product ids are each pod
    /// database's own and repeat across pods.
    tenant_members: bool,
    reconnected: Arc<AtomicBool>,
}

impl Mirror {
    /// Configures the client and starts connecting in the background; start-up
    /// never waits for Redis, and a lost connection is retried forever.
    pub fn connect(url: &str, prefix: &str, merged: bool) -> Result<Mirror, Error> {
        let mut config = Config::from_url(url)?;
        config.fail_fast = false;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.max_command_buffer_len = 10_000;
            })
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()?;
        let reconnected = Arc::new(AtomicBool::new(true));
        let flag = reconnected.clone();
        client.on_reconnect(move |_| {
            flag.store(true, Ordering::SeqCst);
            async { Ok(()) }
        });
        let _connection = client.connect();
        Ok(Mirror {
            client,
            quantity_key: format!("{prefix}top_selling:quantity"),
            revenue_key: format!("{prefix}top_selling:revenue"),
            products_key: format!("{prefix}top_selling:products"),
            merged,
            tenant_members: false,
            reconnected,
        })
    }

    /// Names members `tenant:product` (pods: see the field).
    pub fn with_tenant_members(mut self, on: bool) -> Mirror {
        self.tenant_members = on;
        self
    }

    /// A product's member in the sets and field in the hash.
    fn member(&self, tenant: TenantId, product: ProductId) -> String {
        match self.tenant_members {
            true => format!("{tenant}:{product}"),
            false => product.to_string(),
        }
    }

    /// Other shards write into the same sets.
    pub fn is_merged(&self) -> bool {
        self.merged
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// True once after each (re)connection: the mirror must then be rewritten.
    pub fn take_reconnected(&self) -> bool {
        self.reconnected.swap(false, Ordering::SeqCst)
    }

    /// Writes these products' current scores.
    pub async fn write(&self, entries: &[ProductTotal]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        // Ranked by what is sold and not taken back.
        let member = |e: &ProductTotal| self.member(e.tenant_id, e.product_id);
        let quantity = zadd_args(&self.quantity_key, entries, member, |e| {
            e.net_quantity().to_string()
        });
        let revenue = zadd_args(&self.revenue_key, entries, member, |e| {
            e.net_revenue().to_string()
        });
        let _: () = pipeline.custom(zadd(), quantity).await?;
        let _: () = pipeline.custom(zadd(), revenue).await?;
        if self.merged {
            let shown: Vec<(String, String)> = entries
                .iter()
                .map(|e| {
                    let shown = Shown {
                        tenant_id: e.tenant_id,
                        name: e.name.to_string(),
                        quantity: e.quantity,
                        revenue: e.revenue.to_string(),
                        refunded: e.refunded,
                        refunds: Some(e.refunds.to_string()),
                    };
                    (member(e), serde_json::to_string(&shown).unwrap_or_default())
                })
                .collect();
            let _: () = pipeline.hset(&self.products_key, shown).await?;
        }
        let _: Vec<Value> = pipeline.all().await?;
        Ok(())
    }

    /// The merged view's first `limit` products by `by` (ties by product
    /// id, on the exact totals), from Redis.
    pub async fn top(&self, limit: usize, by: RankBy) -> Result<Vec<ProductTotal>, Error> {
        let key = match by {
            RankBy::Quantity => &self.quantity_key,
            RankBy::Revenue => &self.revenue_key,
        };
        let head: Vec<(String, f64)> = self
            .client
            .zrevrange(key, 0, limit as i64 - 1, true)
            .await?;
        // A tie at the last place is taken whole, so the smallest product
        // ids win it, as in the in-memory ranking.
        let candidates: Vec<(String, f64)> = match head.last() {
            Some((_, floor)) if head.len() == limit => {
                self.client
                    .zrevrangebyscore(
                        key,
                        "+inf",
                        *floor,
                        true,
                        Some((0, (limit + TIE_CAP) as i64)),
                    )
                    .await?
            }
            _ => head,
        };
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = candidates.into_iter().map(|(id, _)| id).collect();
        let shown: Vec<Option<String>> = self.client.hmget(&self.products_key, ids.clone()).await?;
        let mut top: Vec<ProductTotal> = ids
            .iter()
            .zip(shown)
            .filter_map(|(id, shown)| {
                let s: Shown = serde_json::from_str(shown.as_deref()?).ok()?;
                Some(ProductTotal {
                    tenant_id: s.tenant_id,
                    // `tenant:product` or `product` (see `member`).
                    product_id: ProductId::parse(id.rsplit(':').next()?)?,
                    name: Arc::from(s.name),
                    quantity: s.quantity,
                    revenue: s.revenue.parse().ok()?,
                    refunded: s.refunded,
                    refunds: match s.refunds {
                        Some(r) => r.parse().ok()?,
                        None => Money::ZERO,
                    },
                })
            })
            .collect();
        by.sort(&mut top);
        top.truncate(limit);
        Ok(top)
    }

    /// Makes both sets hold exactly `entries`: every score rewritten, then
    /// members Redis has and the ranking does not removed. The sets are
    /// never empty on the way, unlike DEL-then-fill. In a merged view the
    /// other members belong to other shards: they stay.
    pub async fn replace_all(&self, entries: &[ProductTotal]) -> Result<(), Error> {
        for chunk in entries.chunks(RESYNC_CHUNK) {
            self.write(chunk).await?;
        }
        if self.merged {
            return Ok(());
        }
        let wanted: HashSet<String> = entries
            .iter()
            .map(|e| self.member(e.tenant_id, e.product_id))
            .collect();
        for key in [&self.quantity_key, &self.revenue_key] {
            let count: u64 = self.client.zcard(key).await?;
            if count as usize > wanted.len() {
                let members: Vec<String> = self
                    .client
                    .zrange(
                        key,
                        ZRange::from(0),
                        ZRange::from(-1),
                        None,
                        false,
                        None,
                        false,
                    )
                    .await?;
                let extra: Vec<String> = members
                    .into_iter()
                    .filter(|m| !wanted.contains(m))
                    .collect();
                for chunk in extra.chunks(RESYNC_CHUNK) {
                    let _: () = self.client.zrem(key, chunk.to_vec()).await?;
                }
            }
        }
        Ok(())
    }

    /// Checks Redis against this instance's view: the keys exist (a flush
    /// or an eviction drops whole keys), a view of one instance has exactly
    /// `own` members, and each product of `sample` is a member of both sets
    /// and, in a merged view, has its entry in the hash (without it readers
    /// leave the product out). Other shards' members are never judged.
    pub async fn audit(&self, own: u64, sample: &[(TenantId, ProductId)]) -> Result<Audit, Error> {
        let mut keys = vec![&self.quantity_key, &self.revenue_key];
        if self.merged {
            keys.push(&self.products_key);
        }
        for key in keys {
            let exists: u64 = self.client.exists(key).await?;
            if exists == 0 && own > 0 {
                return Ok(Audit::Lost);
            }
        }
        if !self.merged {
            let count: u64 = self.client.zcard(&self.quantity_key).await?;
            if count != own {
                return Ok(Audit::Lost);
            }
        }
        if sample.is_empty() {
            return Ok(Audit::Missing(Vec::new()));
        }
        let ids: Vec<String> = sample.iter().map(|(t, p)| self.member(*t, *p)).collect();
        let mut missing = vec![false; ids.len()];
        for key in [&self.quantity_key, &self.revenue_key] {
            let scores: Vec<Option<f64>> = self.client.zmscore(key, ids.clone()).await?;
            for (m, score) in missing.iter_mut().zip(scores) {
                *m |= score.is_none();
            }
        }
        if self.merged {
            let shown: Vec<Option<String>> = self.client.hmget(&self.products_key, ids).await?;
            for (m, entry) in missing.iter_mut().zip(shown) {
                *m |= entry.is_none();
            }
        }
        Ok(Audit::Missing(
            sample
                .iter()
                .zip(missing)
                .filter_map(|((_, p), m)| m.then_some(*p))
                .collect(),
        ))
    }

    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}

/// `ZADD` sent with scores as decimal text, exactly as the ranking holds
/// them (Redis parses them itself), so money never passes through a float here.
fn zadd() -> CustomCommand {
    CustomCommand::new_static("ZADD", ClusterHash::FirstKey, false)
}

/// `key score member score member ...`
fn zadd_args(
    key: &str,
    entries: &[ProductTotal],
    member: impl Fn(&ProductTotal) -> String,
    score: impl Fn(&ProductTotal) -> String,
) -> Vec<String> {
    let mut args = Vec::with_capacity(1 + 2 * entries.len());
    args.push(key.to_string());
    for e in entries {
        args.push(score(e));
        args.push(member(e));
    }
    args
}
