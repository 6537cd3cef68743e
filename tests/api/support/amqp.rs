//! A RabbitMQ consumer of the feed: a private queue bound to a test's own
//! exchange, holding what it received deduplicated by message id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde_json::Value;

/// The broker the tests use (the scripts install and start it).
pub fn amqp_url() -> String {
    std::env::var("POS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub routing_key: String,
    pub persistent: bool,
    pub body: Value,
}

pub struct FeedConsumer {
    pub exchange: String,
    _conn: Connection,
    channel: Channel,
    consumer: Consumer,
    /// Every message by id, and how many times each came.
    pub received: BTreeMap<String, (Received, usize)>,
    /// Message ids in the order they first came.
    pub order: Vec<String>,
}

impl FeedConsumer {
    /// A consumer of a new exchange's `binding` (e.g. `12.#`).
    pub async fn bind(binding: &str) -> FeedConsumer {
        let exchange = format!("pos.test.{}", uuid::Uuid::new_v4().simple());
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("RabbitMQ answers (scripts/test installs and starts it)");
        let channel = conn.create_channel().await.expect("a channel");
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .expect("exchange declared");
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue declared");
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                binding.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("queue bound");
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "test".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consuming");
        FeedConsumer {
            exchange,
            _conn: conn,
            channel,
            consumer,
            received: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Receives until `done` holds of what was received, or `timeout`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&FeedConsumer) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let next = match tokio::time::timeout(left, self.consumer.next()).await {
                Ok(Some(Ok(delivery))) => delivery,
                Ok(_) | Err(_) => return done(self),
            };
            let _ = next.ack(BasicAckOptions::default()).await;
            let message_id = next
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.to_string())
                .unwrap_or_default();
            let received = Received {
                message_id: message_id.clone(),
                routing_key: next.routing_key.to_string(),
                persistent: *next.properties.delivery_mode() == Some(2),
                body: serde_json::from_slice(&next.data).unwrap_or(Value::Null),
            };
            match self.received.get_mut(&message_id) {
                Some((_, times)) => *times += 1,
                None => {
                    self.order.push(message_id.clone());
                    self.received.insert(message_id, (received, 1));
                }
            }
        }
        true
    }

    /// The events received (each once), in the order they first came.
    pub fn events(&self) -> Vec<Received> {
        self.order
            .iter()
            .filter_map(|id| self.received.get(id).map(|(r, _)| r.clone()))
            .collect()
    }

    /// Deletes the test's exchange.
    pub async fn close(self) {
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
}
