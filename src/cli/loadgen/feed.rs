//! `--verify-feed amqp://…`: a queue of its own, bound to the feed's
//! exchange before the run, holds what RabbitMQ delivered; after the run
//! the run's sales and refunds in it (told by their idempotency keys,
//! `lg-<run>-…` and `lgr-<run>-…`), each counted once by event id, must be
//! exactly what the server confirmed (plus any part of what has an unknown
//! outcome), and each tenant's events must have come in `seq` order.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;

use super::{compare, money, LoadgenError, Sent, Snapshot};
use crate::domain::Money;

/// How long the feed may take to deliver the last of the run.
const CATCH_UP: Duration = Duration::from_secs(30);

/// What the queue delivered so far.
#[derive(Default)]
struct Delivered {
    ids: HashSet<String>,
    sold: Snapshot,
    refunded: Snapshot,
    last_seq: HashMap<u64, u64>,
    out_of_order: Vec<String>,
}

pub struct FeedWatch {
    _conn: Connection,
    delivered: Rc<RefCell<Delivered>>,
}

impl FeedWatch {
    /// Binds a queue of its own to `exchange` at `url` (every routing key)
    /// and starts taking what comes for run `run_id`.
    pub async fn start(url: &str, exchange: &str, run_id: &str) -> Result<FeedWatch, LoadgenError> {
        let broker = |e: lapin::Error| LoadgenError::Feed(e.to_string());
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(broker)?;
        let channel = conn.create_channel().await.map_err(broker)?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        let own = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = channel
            .queue_declare("".into(), own, FieldTable::default())
            .await
            .map_err(broker)?;
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "loadgen".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        let delivered: Rc<RefCell<Delivered>> = Rc::default();
        let (kept, sales, refunds) = (
            delivered.clone(),
            format!("lg-{run_id}-"),
            format!("lgr-{run_id}-"),
        );
        actix_web::rt::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let _ = delivery.ack(BasicAckOptions::default()).await;
                let id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
                    .unwrap_or_default();
                let event: Value = serde_json::from_slice(&delivery.data).unwrap_or_default();
                kept.borrow_mut().take(id, &event, &sales, &refunds);
            }
        });
        Ok(FeedWatch {
            _conn: conn,
            delivered,
        })
    }

    /// Waits until the queue holds what the run confirmed (at most a
    /// 30 s), then every difference.
    pub async fn verify(&self, sold: &Sent, refunded: &Sent) -> Vec<String> {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let problems = self.problems(sold, refunded);
            if problems.is_empty() || Instant::now() > deadline {
                return problems;
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn problems(&self, sold: &Sent, refunded: &Sent) -> Vec<String> {
        let d = self.delivered.borrow();
        let none = Snapshot::default();
        let mut problems: Vec<String> = compare(&none, &with_tenants_of(&d.sold, sold), sold)
            .into_iter()
            .map(|p| format!("feed: {p}"))
            .collect();
        for p in compare(&none, &with_tenants_of(&d.refunded, refunded), refunded) {
            problems.push(format!("feed, refunded: {p}"));
        }
        problems.extend(d.out_of_order.iter().cloned());
        problems
    }
}

/// `got` with every tenant the run sent to (a tenant the feed told
/// nothing of is checked too: it must then have been sent nothing).
fn with_tenants_of(got: &Snapshot, sent: &Sent) -> Snapshot {
    let mut all = Snapshot {
        tenants: got.tenants.clone(),
        top: HashMap::new(),
    };
    for (tenant, _) in sent.confirmed.keys().chain(sent.uncertain.keys()) {
        all.tenants.entry(*tenant).or_default();
    }
    all
}

impl Delivered {
    /// One delivery: counted once by id, the run's sales and refunds summed
    /// by (tenant, product), each tenant's `seq` order checked.
    fn take(&mut self, id: String, event: &Value, sales: &str, refunds: &str) {
        if !self.ids.insert(id) {
            return;
        }
        let data = &event["data"];
        let (Some(tenant), Some(seq)) = (data["tenantID"].as_u64(), event["seq"].as_u64()) else {
            return;
        };
        let last = self.last_seq.entry(tenant).or_default();
        if seq <= *last {
            self.out_of_order.push(format!(
                "feed: tenant {tenant}'s event {seq} came after its event {last}"
            ));
        }
        *last = (*last).max(seq);
        let key = data["idempotencyKey"].as_str().unwrap_or_default();
        let product = data["productID"].as_u64().unwrap_or_default();
        let (into, quantity, amount) = match event["type"].as_str() {
            Some("sale.created") if key.starts_with(sales) => {
                let quantity = data["quantitySold"].as_u64().unwrap_or_default();
                let each = money(&data["pricePerUnit"]);
                (&mut self.sold, quantity, each.times(quantity as u32))
            }
            Some("refund.created") if key.starts_with(refunds) => (
                &mut self.refunded,
                data["quantity"].as_u64().unwrap_or_default(),
                money(&data["amount"]),
            ),
            _ => return,
        };
        let total = into
            .tenants
            .entry(tenant)
            .or_default()
            .entry(product)
            .or_insert((0, Money::ZERO));
        total.0 += quantity;
        total.1 += amount;
    }
}
