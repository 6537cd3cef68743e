//! Pods (SPEC 9a): two shards, each with a database of its own (a private
//! `mariadbd`), sharing a control database (the tenants directory, keys,
//! leases), behind the shipped HAProxy.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use serde_json::{json, Value};

use crate::support::child::{pos_cli, ChildServer};
use crate::support::ledger::{assert_exactly_once, load_under_way};
use crate::support::mariadb_server::MariadbServer;
use crate::support::peers::Haproxy;
use crate::support::{eventually, redis_url, sale, Tenant, TestDb};

struct Pods {
    control: TestDb,
    /// `servers[i]` holds pod `i`'s database.
    servers: [MariadbServer; 2],
    pods: [TestDb; 2],
    shards: [ChildServer; 2],
    /// Shard 1's hot standby, if asked for.
    standby: Option<ChildServer>,
    /// Runs as long as the pods do.
    _haproxy: Haproxy,
    view: PodsView,
}

/// What a client of the platform sees: HAProxy, as the operator.
struct PodsView {
    operator: String,
    base: String,
    client: awc::Client,
}

impl std::ops::Deref for Pods {
    type Target = PodsView;

    fn deref(&self) -> &PodsView {
        &self.view
    }
}

/// A tenant made through the API, with a till key for its one branch.
struct PodTenant {
    id: u64,
    branch: u64,
    product: u64,
    till: String,
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn start_pods() -> Pods {
    start_pods_with(false).await
}

/// The pods; with `standby`, shard 1 has a hot standby (and leases last 3 s).
async fn start_pods_with(standby: bool) -> Pods {
    let control = TestDb::create().await;
    let servers = [MariadbServer::start().await, MariadbServer::start().await];
    let pods = [
        TestDb::create_on(&servers[0].url()).await,
        TestDb::create_on(&servers[1].url()).await,
    ];
    let prefix = format!("{{t{}}}:", uuid::Uuid::new_v4().simple());
    let redis = redis_url();
    let shard = |i: usize, second: bool| {
        let (pod, control, redis, prefix) = (
            pods[i].url.clone(),
            control.url.clone(),
            redis.clone(),
            prefix.clone(),
        );
        async move {
            let shard = format!("{i}/2");
            let lease = if standby { "3" } else { "10" };
            let env = [
                ("POS_SHARD_LEASE_SECS", lease),
                ("POS_SHARD", shard.as_str()),
                ("POS_CONTROL_DATABASE_URL", control.as_str()),
                ("POS_REDIS_URL", redis.as_str()),
                ("POS_REDIS_PREFIX", prefix.as_str()),
                ("POS_SESSION_SECRET", crate::leases::SESSION_SECRET),
                ("POS_STORAGE_RETRY_MS", "500"),
            ];
            match second {
                false => ChildServer::start(&pod, &env).await,
                true => ChildServer::spawn(&pod, &env),
            }
        }
    };
    let shards = [shard(0, false).await, shard(1, false).await];
    let (standby, haproxy) = match standby {
        true => {
            let standby = shard(1, true).await;
            let waiting = standby.until_waiting_for_lease().await;
            assert!(waiting, "the standby waits: {}", standby.log_text());
            let env = [("SHARD1_STANDBY", standby.addr())];
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let haproxy = Haproxy::start_with(&shards[0].addr(), &shards[1].addr(), &env).await;
            (Some(standby), haproxy)
        }
        false => (
            None,
            Haproxy::start(&shards[0].addr(), &shards[1].addr()).await,
        ),
    };
    let view = PodsView {
        operator: control.operator.clone(),
        base: haproxy.base.clone(),
        client: awc::Client::builder()
            .timeout(Duration::from_secs(20))
            .finish(),
    };
    Pods {
        control,
        servers,
        pods,
        shards,
        standby,
        _haproxy: haproxy,
        view,
    }
}

impl PodsView {
    async fn send(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Answer {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.client.post(url),
            "PATCH" => self.client.patch(url),
            _ => self.client.get(url),
        }
        .bearer_auth(token);
        let mut res = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        }
        .expect("an answer");
        Answer {
            status: res.status().as_u16(),
            retry_after: res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            body: res.json().limit(1 << 20).await.unwrap_or(Value::Null),
        }
    }

    /// A tenant made by the operator, its branch and product made by its
    /// back office, and a till key for the branch, all through HAProxy.
    async fn tenant(&self, name: &str) -> PodTenant {
        let op = self.operator.clone();
        let made = self
            .send("POST", "/v1/tenants", &op, Some(&json!({"name": name})))
            .await;
        assert_eq!(made.status, 201, "{:?}", made.body);
        let id = made.body["id"].as_u64().expect("tenant id");
        let t = format!("/v1/tenants/{id}");
        let branch = self
            .send(
                "POST",
                &format!("{t}/branches"),
                &op,
                Some(&json!({"code": "B1", "name": "Branch"})),
            )
            .await;
        assert_eq!(branch.status, 201, "{:?}", branch.body);
        let branch = branch.body["id"].as_u64().expect("branch id");
        let product = self
            .send(
                "POST",
                &format!("{t}/products"),
                &op,
                Some(&json!([{"sku": "P1", "name": "Product"}])),
            )
            .await;
        assert_eq!(product.status, 201, "{:?}", product.body);
        let product = product.body["products"][0]["id"]
            .as_u64()
            .expect("product id");
        let key = self
            .send(
                "POST",
                &format!("{t}/keys"),
                &op,
                Some(&json!({"role": "till", "branchID": branch, "label": "till"})),
            )
            .await;
        assert_eq!(key.status, 201, "{:?}", key.body);
        let till = key.body["token"].as_str().expect("token").to_string();
        PodTenant {
            id,
            branch,
            product,
            till,
        }
    }

    async fn sell(&self, t: &PodTenant) -> Answer {
        let path = format!(
            "/v1/tenants/{}/branches/{}/sales-transactions",
            t.id, t.branch
        );
        self.send("POST", &path, &t.till, Some(&sale(t.product, 1, "2.50")))
            .await
    }

    /// The tenant's quantity sold, as its own read answers.
    async fn quantity_read(&self, t: &PodTenant) -> u64 {
        let read = self
            .send(
                "GET",
                &format!("/v1/tenants/{}/sales", t.id),
                &self.operator,
                None,
            )
            .await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        read.body["sales_per_product"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|p| p["quantitySold"].as_u64().unwrap_or(0))
            .sum()
    }
}

async fn count(db: &TestDb, sql: &str) -> u64 {
    let mut conn = db.conn().await;
    let n: Option<u64> = conn.query_first(sql).await.expect("a count");
    n.unwrap_or(0)
}

#[actix_web::test]
async fn two_pods_keep_their_tenants_apart_and_one_pods_database_down_stops_only_its_own() {
    let mut p = start_pods().await;
    // Two tenants already on pod 0 (ids 2 and 4, made elsewhere): the next
    // go to pod 1 until it has as many, then alternate, each with the
    // smallest id above the others that maps to its pod.
    let earlier = "INSERT INTO tenants (id, name, created) VALUES (2, 'Earlier', UTC_TIMESTAMP(6)), (4, 'Earlier', UTC_TIMESTAMP(6))";
    p.control.exec(earlier).await;
    let mut tenants = Vec::new();
    for name in ["Alpha", "Beta", "Gamma", "Delta"] {
        tenants.push(p.tenant(name).await);
    }
    let ids: Vec<u64> = tenants.iter().map(|t| t.id).collect();
    assert_eq!(ids, [5, 7, 8, 9]);
    // The operator's list is the directory's; a change, decided in the
    // tenant's pod, reaches it.
    let renamed = p
        .send(
            "PATCH",
            "/v1/tenants/7",
            &p.operator,
            Some(&json!({"name": "Beta renamed"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let listed = p.send("GET", "/v1/tenants", &p.operator, None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let names: Vec<(u64, String)> = listed.body["tenants"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| {
            (
                t["id"].as_u64().unwrap_or(0),
                t["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (2, "Earlier"),
        (4, "Earlier"),
        (5, "Alpha"),
        (7, "Beta renamed"),
        (8, "Gamma"),
        (9, "Delta"),
    ]
    .iter()
    .map(|(i, n)| (*i, n.to_string()))
    .collect();
    assert_eq!(names, expected);
    // A report on a tenant its pod has not seen yet (made by another
    // instance a moment ago) finds it.
    let epsilon = p
        .send(
            "POST",
            "/v1/tenants",
            &p.operator,
            Some(&json!({"name": "Epsilon"})),
        )
        .await;
    assert_eq!(epsilon.status, 201, "{:?}", epsilon.body);
    let report = p
        .send(
            "GET",
            &format!(
                "/v1/tenants/{}/reports/sales?from=2026-12-01&to=2026-12-31&tz=UTC",
                epsilon.body["id"]
            ),
            &p.operator,
            None,
        )
        .await;
    assert_eq!(report.status, 200, "{:?}", report.body);

    let mut sold = vec![0u64; tenants.len()];
    for _ in 0..3 {
        for (i, t) in tenants.iter().enumerate() {
            let a = p.sell(t).await;
            assert_eq!(a.status, 201, "{:?}", a.body);
            sold[i] += 1;
        }
    }
    // Each pod's database holds its own tenants' rows and no other's; the
    // control database holds none, but every key.
    for (i, t) in tenants.iter().enumerate() {
        let (own, other) = (
            &p.pods[(t.id % 2) as usize],
            &p.pods[1 - (t.id % 2) as usize],
        );
        let sql = format!(
            "SELECT COUNT(*) FROM sales_transactions WHERE tenant_id = {}",
            t.id
        );
        assert_eq!(count(own, &sql).await, sold[i], "tenant {}", t.id);
        assert_eq!(count(other, &sql).await, 0, "tenant {}", t.id);
    }
    assert_eq!(
        count(&p.control, "SELECT COUNT(*) FROM sales_transactions").await,
        0
    );
    let till_keys = "SELECT COUNT(*) FROM api_keys WHERE role = 'till'";
    assert_eq!(count(&p.control, till_keys).await, 4);
    assert_eq!(count(&p.pods[0], till_keys).await, 0);
    assert_eq!(count(&p.pods[1], till_keys).await, 0);
    // The global top sellers merge both pods, whose product ids repeat
    // (each pod numbers its own): every tenant's product, with its sales.
    let merged = eventually(Duration::from_secs(10), || async {
        let top = p
            .send("GET", "/v1/top-selling?limit=10", &p.operator, None)
            .await;
        let mut seen: Vec<(u64, u64)> = top.body["top_selling_products"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|e| {
                        (
                            e["tenantID"].as_u64().unwrap_or(0),
                            e["quantitySold"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        seen.sort();
        seen == ids.iter().map(|id| (*id, 3)).collect::<Vec<_>>()
    })
    .await;
    assert!(merged, "top sellers of both pods, none overwriting another");

    // Pod 1's database dies: pod 0's tenants go on, pod 1's are told to
    // come back later, and nothing they were told is lost.
    p.servers[1].kill();
    let one = tenants
        .iter()
        .position(|t| t.id % 2 == 1)
        .expect("a pod-1 tenant");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = p.sell(&tenants[one]).await;
        match a.status {
            // Sold before the death was seen: it counts.
            201 => sold[one] += 1,
            503 => {
                assert!(a.retry_after.is_some(), "a 503 says when to retry");
                break;
            }
            other => panic!("{other} {:?}", a.body),
        }
        assert!(Instant::now() < deadline, "pod 1's tenants are refused");
    }
    // The shard itself answers so (not only HAProxy, once it sees the
    // shard unready).
    let direct = PodsView {
        operator: p.operator.clone(),
        base: p.shards[1].base.clone(),
        client: p.client.clone(),
    };
    let a = direct.sell(&tenants[one]).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(a.retry_after.is_some(), "a 503 says when to retry");
    for _ in 0..3 {
        for (i, t) in tenants.iter().enumerate().filter(|(_, t)| t.id % 2 == 0) {
            let a = p.sell(t).await;
            assert_eq!(a.status, 201, "pod 0 is untouched: {:?}", a.body);
            sold[i] += 1;
        }
    }
    // They read and report too, while pod 1's database is down.
    for (i, t) in tenants.iter().enumerate().filter(|(_, t)| t.id % 2 == 0) {
        assert_eq!(p.quantity_read(t).await, sold[i], "tenant {}", t.id);
        let report = p
            .send(
                "GET",
                &format!(
                    "/v1/tenants/{}/reports/sales?from=2026-12-01&to=2026-12-31&groupBy=day",
                    t.id
                ),
                &p.operator,
                None,
            )
            .await;
        assert_eq!(report.status, 200, "{:?}", report.body);
    }
    p.servers[1].restart().await;
    for (i, t) in tenants.iter().enumerate().filter(|(_, t)| t.id % 2 == 1) {
        let back = eventually(Duration::from_secs(30), || async {
            p.sell(t).await.status == 201
        })
        .await;
        assert!(
            back,
            "tenant {} sells again once its database is back",
            t.id
        );
        sold[i] += 1;
    }
    for (i, t) in tenants.iter().enumerate() {
        let own = &p.pods[(t.id % 2) as usize];
        let sql = format!(
            "SELECT COUNT(*) FROM sales_transactions WHERE tenant_id = {}",
            t.id
        );
        assert_eq!(count(own, &sql).await, sold[i], "tenant {}", t.id);
        assert_eq!(p.quantity_read(t).await, sold[i], "tenant {}", t.id);
    }
    // `pos keys` makes keys in the control database and looks a key's
    // branch up in the pod POS_DATABASE_URL names: the tenant's, or a hint.
    let t = &tenants[one];
    let (tenant, branch) = (t.id.to_string(), t.branch.to_string());
    let args = [
        "keys", "create", "--role", "till", "--tenant", &tenant, "--branch", &branch, "--label",
        "cli till",
    ];
    for (pod, made) in [(0, false), (1, true)] {
        let env = [
            ("POS_DATABASE_URL", p.pods[pod].url.as_str()),
            ("POS_CONTROL_DATABASE_URL", p.control.url.as_str()),
        ];
        let (code, _, err) = pos_cli(&env, &args).await;
        assert_eq!(code == 0, made, "pod {pod}: {err}");
        assert_eq!(err.contains("point it at the tenant's pod"), !made, "{err}");
    }
    let cli_keys = "SELECT COUNT(*) FROM api_keys WHERE label = 'cli till'";
    assert_eq!(count(&p.control, cli_keys).await, 1);
    // A new shard count would send tenants to pods without their rows.
    let env = [
        ("POS_DATABASE_URL", p.pods[0].url.as_str()),
        ("POS_CONTROL_DATABASE_URL", p.control.url.as_str()),
    ];
    let (code, _, err) = pos_cli(&env, &["shards", "resize", "3"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused with pods once there are tenants"),
        "{err}"
    );
    for s in &mut p.shards {
        s.kill().await;
    }
}

#[actix_web::test]
async fn with_the_control_database_down_proven_keys_fail_closed_and_nothing_stored_is_lost() {
    let mut control_server = MariadbServer::start().await;
    let control = TestDb::create_on(&control_server.url()).await;
    let pod = TestDb::create().await;
    let env = [
        ("POS_CONTROL_DATABASE_URL", control.url.as_str()),
        ("POS_STORAGE_RETRY_MS", "500"),
        // The till sells as fast as it is answered until it is refused.
        ("POS_RATE_LIMIT_PER_KEY", "100000"),
        ("POS_RATE_LIMIT_BURST", "100000"),
    ];
    let shard = ChildServer::start(&pod.url, &env).await;
    let haproxy = Haproxy::start(&shard.addr(), &shard.addr()).await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish();
    let p = PodsView {
        operator: control.operator.clone(),
        base: haproxy.base.clone(),
        client,
    };
    let t = p.tenant("Alpha").await;
    let mut sold = 0u64;
    assert_eq!(p.sell(&t).await.status, 201);
    sold += 1;

    // The control database dies: keys proven before are trusted only while
    // revocations are fresh, then every sale is refused with Retry-After.
    control_server.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = p.sell(&t).await;
        match a.status {
            201 => sold += 1,
            503 => {
                assert!(a.retry_after.is_some(), "a 503 says when to retry");
                break;
            }
            other => panic!("{other} {:?}", a.body),
        }
        assert!(Instant::now() < deadline, "the sales failed closed");
    }
    let made = p
        .send(
            "POST",
            "/v1/tenants",
            &p.operator,
            Some(&json!({"name": "Beta"})),
        )
        .await;
    assert_eq!(
        made.status, 503,
        "no tenant is made without the directory: {:?}",
        made.body
    );

    control_server.restart().await;
    let back = eventually(Duration::from_secs(30), || async {
        p.sell(&t).await.status == 201
    })
    .await;
    assert!(back, "sales go on once the control database is back");
    sold += 1;
    let sql = format!(
        "SELECT COUNT(*) FROM sales_transactions WHERE tenant_id = {}",
        t.id
    );
    assert_eq!(count(&pod, &sql).await, sold);
    assert_eq!(p.quantity_read(&t).await, sold);
}

#[actix_web::test]
async fn a_standby_fences_its_pod_so_a_paused_holder_that_wakes_commits_nothing_more() {
    let mut p = start_pods_with(true).await;
    // HAProxy takes a server for up until its checks say otherwise: wait
    // until it has found the standby unready (no answer of its "starting").
    let settled = eventually(Duration::from_secs(20), || async {
        for _ in 0..6 {
            let any = p.send("GET", "/v1/tenants", &p.operator, None).await;
            let shard1 = p.send("GET", "/v1/tenants/1", &p.operator, None).await;
            if any.status != 200 || shard1.status != 404 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(settled, "HAProxy sends nothing to the waiting standby");
    p.tenant("Alpha").await;
    let t = p.tenant("Beta").await;
    assert_eq!(t.id % 2, 1, "the second tenant goes to pod 1");
    let tenant = Tenant {
        id: t.id,
        branches: vec![t.branch],
        products: vec![t.product],
        till: t.till.clone(),
        backoffice: String::new(),
    };
    let (load, ledger) = load_under_way(&p.base, &tenant).await;

    // The holder stops dead with batches in hand; its lease runs out and
    // the standby takes the shard, fencing the pod's database first.
    let holder = p.shards[1].pid().to_string();
    signal("-STOP", &holder);
    let standby = p.standby.as_ref().expect("a standby");
    let took_over = eventually(Duration::from_secs(30), || async {
        standby.status("/ready", None).await == Some(200)
    })
    .await;
    assert!(took_over, "the standby took over: {}", standby.log_text());
    // Woken, the old holder's batches fail the pod's fence and it stops.
    signal("-CONT", &holder);
    let status = p.shards[1].wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1), "{}", p.shards[1].log_text());
    load.await.expect("the load");
    assert_eq!(ledger.confirmed_count(), 4 * 60);
    let fences = "SELECT fence FROM shard_leases WHERE shard_index = 1";
    let pod_fence = count(&p.pods[1], fences).await;
    assert_eq!(pod_fence, count(&p.control, fences).await);
    assert_eq!(pod_fence, 2, "the standby's fencing number is the pod's");
    let read = p
        .send(
            "GET",
            &format!("/v1/tenants/{}/sales", t.id),
            &p.operator,
            None,
        )
        .await;
    assert_eq!(read.status, 200);
    assert_exactly_once(&p.pods[1], &tenant, &ledger, &read.body).await;
}

fn signal(which: &str, pid: &str) {
    let sent = std::process::Command::new("kill")
        .args([which, pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {which} {pid}");
}
