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
    url: String,
    queue: String,
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
        FeedConsumer::bind_on(&amqp_url(), binding, None).await
    }

    /// One on the broker at `url` whose queue is durable: it outlives a
    /// restart of the broker, then [`FeedConsumer::reconnect`] consumes it
    /// again.
    pub async fn bind_durable(url: &str, binding: &str) -> FeedConsumer {
        let queue = format!("pos.test.q.{}", uuid::Uuid::new_v4().simple());
        FeedConsumer::bind_on(url, binding, Some(queue)).await
    }

    async fn bind_on(url: &str, binding: &str, durable: Option<String>) -> FeedConsumer {
        let exchange = format!("pos.test.{}", uuid::Uuid::new_v4().simple());
        let (conn, channel) = open(url).await;
        let options = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            )
            .await
            .expect("exchange declared");
        let options = QueueDeclareOptions {
            durable: durable.is_some(),
            exclusive: durable.is_none(),
            auto_delete: durable.is_none(),
            ..Default::default()
        };
        let queue = channel
            .queue_declare(
                durable.clone().unwrap_or_default().as_str().into(),
                options,
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
        let queue = queue.name().to_string();
        let consumer = consume(&channel, &queue).await;
        FeedConsumer {
            exchange,
            url: url.to_string(),
            queue,
            _conn: conn,
            channel,
            consumer,
            received: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Connects again and consumes its (durable) queue, keeping what it
    /// received: what was not acknowledged comes again.
    pub async fn reconnect(&mut self) {
        let (conn, channel) = open(&self.url).await;
        self.consumer = consume(&channel, &self.queue).await;
        self._conn = conn;
        self.channel = channel;
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

async fn open(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ answers (scripts/test installs and starts it)");
    let channel = conn.create_channel().await.expect("a channel");
    (conn, channel)
}

async fn consume(channel: &Channel, queue: &str) -> Consumer {
    channel
        .basic_consume(
            queue.into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consuming")
}
