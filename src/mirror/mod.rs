//! The Redis mirror of the global ranking, through `fred` (single node or
//! Cluster). Redis is never the source of truth: every write here is an
//! absolute score (`ZADD`), so a command fred re-sends after a reconnect, or
//! one that lands late, does no harm; and the whole view can be rewritten
//! from memory at any time.
//!
//! The two sorted sets are written with independent commands (a pipeline,
//! never MULTI), so they may live in different Cluster slots and the
//! default prefix `pos:` works on Cluster as is.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use fred::types::sorted_sets::ZRange;
use fred::types::{ClusterHash, CustomCommand};

use crate::domain::{Money, ProductId};

/// Members written per pipeline during a full resync.
const RESYNC_CHUNK: usize = 5_000;

/// One product's scores.
#[derive(Debug, Clone)]
pub struct MirrorEntry {
    pub product_id: ProductId,
    pub quantity: u64,
    pub revenue: Money,
}

/// A handle on the mirror; cheap to clone.
#[derive(Clone)]
pub struct Mirror {
    client: Client,
    quantity_key: String,
    revenue_key: String,
    reconnected: Arc<AtomicBool>,
}

impl Mirror {
    /// Configures the client and starts connecting in the background; start-up
    /// never waits for Redis, and a lost connection is retried forever.
    pub fn connect(url: &str, prefix: &str) -> Result<Mirror, Error> {
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
            reconnected,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// True once after each (re)connection: the mirror must then be rewritten.
    pub fn take_reconnected(&self) -> bool {
        self.reconnected.swap(false, Ordering::SeqCst)
    }

    /// Writes these products' current scores.
    pub async fn write(&self, entries: &[MirrorEntry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        let quantity = zadd_args(&self.quantity_key, entries, |e| e.quantity.to_string());
        let revenue = zadd_args(&self.revenue_key, entries, |e| e.revenue.to_string());
        let _: () = pipeline.custom(zadd(), quantity).await?;
        let _: () = pipeline.custom(zadd(), revenue).await?;
        let _: Vec<Value> = pipeline.all().await?;
        Ok(())
    }

    /// Makes both sets hold exactly `entries`: every score rewritten, then
    /// members Redis has and the ranking does not removed. The sets are
    /// never empty on the way, unlike DEL-then-fill.
    pub async fn replace_all(&self, entries: &[MirrorEntry]) -> Result<(), Error> {
        for chunk in entries.chunks(RESYNC_CHUNK) {
            self.write(chunk).await?;
        }
        let wanted: HashSet<String> = entries.iter().map(|e| e.product_id.to_string()).collect();
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

    /// Members in the quantity set (a flushed or restarted Redis shows 0).
    pub async fn count(&self) -> Result<u64, Error> {
        self.client.zcard(&self.quantity_key).await
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
    entries: &[MirrorEntry],
    score: impl Fn(&MirrorEntry) -> String,
) -> Vec<String> {
    let mut args = Vec::with_capacity(1 + 2 * entries.len());
    args.push(key.to_string());
    for e in entries {
        args.push(score(e));
        args.push(e.product_id.to_string());
    }
    args
}
