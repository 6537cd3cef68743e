//! The platform the nemesis attacks, all on this machine: a control
//! database (the shared MariaDB), two pods, each a private `mariadbd`
//! reached through a TCP link the nemesis can cut, hold or slow, two `pos
//! serve` per shard (one holds the lease, the other waits as its standby),
//! the shipped HAProxy, a private Redis, a private RabbitMQ with a durable
//! feed queue, and webhook receivers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::support::child::ChildServer;
use crate::support::mariadb_server::MariadbServer;
use crate::support::peers::Haproxy;
use crate::support::proxy::Proxy;
use crate::support::rabbitmq_server::RabbitmqServer;
use crate::support::redis_server::RedisServer;
use crate::support::{at_address, tenant_id, FeedConsumer, TestDb};
use crate::webhooks::{hooks, Receiver};

/// An answer as a client sees it.
pub struct Answer {
    /// 0: no answer (refused, cut, timed out).
    pub status: u16,
    pub retry_after: bool,
    pub body: Value,
}

pub struct Platform {
    pub control: TestDb,
    /// `pods[i]`: shard `i`'s database, as the checker reads it (directly).
    pub pods: [TestDb; 2],
    pub databases: [Mutex<MariadbServer>; 2],
    /// Between shard `i`'s instances and its database.
    pub links: [Proxy; 2],
    /// Taken by a fault on a link, so faults on one link take turns.
    pub link_turns: [Mutex<()>; 2],
    /// `instances[shard][slot]`.
    pub instances: [[Mutex<ChildServer>; 2]; 2],
    /// Their API bases (they keep their ports across restarts), readable
    /// while a fault holds one.
    pub bases: [[String; 2]; 2],
    pub redis: Mutex<RedisServer>,
    pub redis_url: String,
    pub prefix: String,
    pub broker: Mutex<RabbitmqServer>,
    pub feed: Mutex<FeedConsumer>,
    /// One per probe tenant (shard `i`'s at `receivers[i]`).
    pub receivers: [Receiver; 2],
    pub receiver_turn: Mutex<()>,
    _haproxy: Haproxy,
    /// HAProxy: what every client uses.
    pub base: String,
    pub client: awc::Client,
    /// For the instances' `/ready`: a paused one must not hold the answer up.
    ready_client: awc::Client,
}

/// A tenant made through the API with one branch, four products and a
/// till key for the branch.
#[derive(Clone, Debug)]
pub struct Shop {
    pub id: u64,
    pub branch: u64,
    pub products: Vec<u64>,
    pub till: String,
}

impl Shop {
    /// The shard (and pod) that owns it.
    pub fn shard(&self) -> usize {
        (self.id % 2) as usize
    }

    pub fn sales_path(&self) -> String {
        format!(
            "/v1/tenants/{}/branches/{}/sales-transactions",
            self.id, self.branch
        )
    }
}

impl Platform {
    pub async fn start() -> Platform {
        let control = TestDb::create().await;
        let databases = [MariadbServer::start().await, MariadbServer::start().await];
        let pods = [
            TestDb::create_on(&databases[0].url()).await,
            TestDb::create_on(&databases[1].url()).await,
        ];
        let links = [
            Proxy::start(format!("127.0.0.1:{}", databases[0].port)).await,
            Proxy::start(format!("127.0.0.1:{}", databases[1].port)).await,
        ];
        let redis = RedisServer::start().await;
        let broker = RabbitmqServer::start().await;
        let feed = FeedConsumer::bind_durable(&broker.url(), "#").await;
        let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
        let env = Env {
            control: control.url.clone(),
            redis: redis.url(),
            prefix: prefix.clone(),
            broker: broker.url(),
            exchange: feed.exchange.clone(),
        };
        let through = |i: usize| at_address(&pods[i].url, &format!("127.0.0.1:{}", links[i].port));
        let mut instances = Vec::new();
        for shard in 0..2 {
            let vars = env.of(shard);
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let first = ChildServer::start(&through(shard), &vars).await;
            let standby = ChildServer::spawn(&through(shard), &vars);
            let waiting = standby.until_waiting_for_lease().await;
            assert!(waiting, "the standby waits: {}", standby.log_text());
            instances.push([first, standby]);
        }
        let [s0, s1] = <[[ChildServer; 2]; 2]>::try_from(instances)
            .unwrap_or_else(|_| unreachable!("two shards"));
        let bases = [
            [s0[0].base.clone(), s0[1].base.clone()],
            [s1[0].base.clone(), s1[1].base.clone()],
        ];
        let standbys = [
            ("SHARD0_STANDBY", s0[1].addr()),
            ("SHARD1_STANDBY", s1[1].addr()),
        ];
        let standbys: Vec<(&str, &str)> = standbys.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let haproxy = Haproxy::start_with(&s0[0].addr(), &s1[0].addr(), &standbys).await;
        let [a, b] = s0;
        let [c, d] = s1;
        Platform {
            control,
            pods,
            databases: databases.map(Mutex::new),
            links,
            link_turns: [Mutex::new(()), Mutex::new(())],
            instances: [
                [Mutex::new(a), Mutex::new(b)],
                [Mutex::new(c), Mutex::new(d)],
            ],
            bases,
            redis_url: redis.url(),
            redis: Mutex::new(redis),
            prefix,
            broker: Mutex::new(broker),
            feed: Mutex::new(feed),
            receivers: [Receiver::start().await, Receiver::start().await],
            receiver_turn: Mutex::new(()),
            base: haproxy.base.clone(),
            _haproxy: haproxy,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(5))
                .finish(),
            ready_client: awc::Client::builder()
                .timeout(Duration::from_millis(250))
                .finish(),
        }
    }

    /// `method path` through HAProxy with `token`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.client.post(url),
            "PATCH" => self.client.patch(url),
            _ => self.client.get(url),
        }
        .bearer_auth(token);
        let sent = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        };
        match sent {
            Ok(mut res) => Answer {
                status: res.status().as_u16(),
                retry_after: res.headers().contains_key("retry-after"),
                body: res.json().limit(16 << 20).await.unwrap_or(Value::Null),
            },
            Err(_) => Answer {
                status: 0,
                retry_after: false,
                body: Value::Null,
            },
        }
    }

    /// `send`, again while the answer says to try again (before any fault).
    async fn must(&self, method: &str, path: &str, body: &Value, status: u16) -> Value {
        let operator = self.control.operator.clone();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let a = self.send(method, path, &operator, Some(body)).await;
            if a.status == status {
                return a.body;
            }
            assert!(
                Instant::now() < until && matches!(a.status, 0 | 502 | 503 | 504),
                "{method} {path}: {} {:?}",
                a.status,
                a.body
            );
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A tenant with one branch, four products and a till key, made by the
    /// operator through HAProxy.
    pub async fn shop(&self, name: &str) -> Shop {
        let made = self
            .must("POST", "/v1/tenants", &json!({"name": name}), 201)
            .await;
        let id = made["id"].as_u64().expect("tenant id");
        let t = format!("/v1/tenants/{id}");
        let branch = self
            .must(
                "POST",
                &format!("{t}/branches"),
                &json!({"code": "B1", "name": "Branch"}),
                201,
            )
            .await["id"]
            .as_u64()
            .expect("branch id");
        let products: Vec<Value> = (1..=4)
            .map(|p| json!({"sku": format!("P{p}"), "name": format!("Product {p}")}))
            .collect();
        let made = self
            .must("POST", &format!("{t}/products"), &json!(products), 201)
            .await;
        let products = made["products"]
            .as_array()
            .expect("products")
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .collect();
        let key = json!({"role": "till", "branchID": branch, "label": "till"});
        let till = self.must("POST", &format!("{t}/keys"), &key, 201).await["token"]
            .as_str()
            .expect("token")
            .to_string();
        Shop {
            id,
            branch,
            products,
            till,
        }
    }

    /// Shard `shard`'s webhook receiver gets every event of `shop` from the
    /// next one on; the last seq before those.
    pub async fn hook(&self, shop: &Shop) -> u64 {
        let types = [
            "sale.created",
            "refund.created",
            "product.created",
            "product.updated",
            "branch.created",
            "branch.updated",
        ];
        let body = json!({"url": self.receivers[shop.shard()].url, "types": types});
        self.must("POST", &hooks(shop.id), &body, 201).await["deliveredSeq"]
            .as_u64()
            .expect("deliveredSeq")
    }

    /// A keys file for `pos loadgen` with the operator key and `shops`' tills.
    pub fn keys_file(&self, shops: &[Shop]) -> std::path::PathBuf {
        let mut file = pos::cli::keys_file::KeysFile {
            operator: Some(self.control.operator.clone()),
            ..Default::default()
        };
        for s in shops {
            file.tills.insert(tenant_id(s.id), s.till.clone());
        }
        let path = std::env::temp_dir().join(format!(
            "pos-nemesis-keys-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        file.write(&path).expect("keys file written");
        path
    }

    /// Whether one of shard `shard`'s instances says it is ready.
    pub async fn shard_ready(&self, shard: usize) -> bool {
        for base in &self.bases[shard] {
            let ready = self.ready_client.get(format!("{base}/ready")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return true;
            }
        }
        false
    }
}

/// What every instance is told, but its shard.
struct Env {
    control: String,
    redis: String,
    prefix: String,
    broker: String,
    exchange: String,
}

impl Env {
    fn of(&self, shard: usize) -> Vec<(&str, String)> {
        vec![
            ("POS_SHARD", format!("{shard}/2")),
            ("POS_CONTROL_DATABASE_URL", self.control.clone()),
            ("POS_REDIS_URL", self.redis.clone()),
            ("POS_REDIS_PREFIX", self.prefix.clone()),
            ("POS_AMQP_URL", self.broker.clone()),
            ("POS_AMQP_EXCHANGE", self.exchange.clone()),
            ("POS_WEBHOOKS_ALLOW_PRIVATE", "true".into()),
            ("POS_WEBHOOKS_ALLOW_HTTP", "true".into()),
            ("POS_SESSION_SECRET", crate::leases::SESSION_SECRET.into()),
        ]
    }
}
