//! A database of one test: a random name, migrated by the service's own
//! code, with tenants and keys made the way the service makes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::*;
use pos::auth::NewKey;
use pos::domain::Scope;
use pos::store::KeyInsert;

use super::{mysql_server_url, tenant_id};

/// A database of one test; dropped by [`TestDb::drop_database`], or,
/// when a test fails before that, once its last handle goes.
#[derive(Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The server, without a database (`mysql://user@host:port`).
    pub server: String,
    pub pool: mysql_async::Pool,
    /// Token of an operator key made with the database.
    pub operator: String,
    /// Till and back-office tokens of each tenant made by [`TestDb::tenant`].
    keys: Arc<Mutex<HashMap<u64, Tenant>>>,
    dropped: Arc<DropGuard>,
}

/// Drops the database when the last handle of it goes without
/// [`TestDb::drop_database`] (a failing test unwinds past its clean-up).
struct DropGuard {
    name: String,
    server: String,
    done: AtomicBool,
}

impl DropGuard {
    fn new(server: &str, name: &str) -> Arc<DropGuard> {
        Arc::new(DropGuard {
            name: name.to_string(),
            server: server.to_string(),
            done: AtomicBool::new(false),
        })
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside the test's
        // runtime, which must not block on itself.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let drop = drop_database(&server, &name);
            let _ =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), drop).await });
        })
        .join();
    }
}

/// `DROP DATABASE` on `server`, if it still answers.
async fn drop_database(server: &str, name: &str) {
    let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{name}-keys.json")));
    let Ok(mut conn) = mysql_async::Conn::from_url(server).await else {
        return; // a private server that is gone takes its databases along
    };
    let _ = conn
        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await;
    let _ = conn.disconnect().await;
}

impl TestDb {
    pub async fn create() -> TestDb {
        TestDb::create_on(&mysql_server_url()).await
    }

    /// A fresh database on `server` (`mysql://user@host:port`).
    pub async fn create_on(server: &str) -> TestDb {
        let name = format!("pos_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{server}/{name}");
        pos::store::migrate(&url)
            .await
            .expect("test database migrates");
        let pool = mysql_async::Pool::new(format!("{url}?pool_min=0&pool_max=3").as_str());
        let mut db = TestDb {
            dropped: DropGuard::new(server, &name),
            name,
            url,
            server: server.to_string(),
            pool,
            operator: String::new(),
            keys: Arc::default(),
        };
        db.operator = db.key(Scope::Operator).await;
        db
    }

    /// A database the test made elsewhere (no keys are made); it is the
    /// test's to drop all the same.
    pub fn attach(name: &str) -> TestDb {
        let url = format!("{}/{}", mysql_server_url(), name);
        TestDb {
            dropped: DropGuard::new(&mysql_server_url(), name),
            name: name.to_string(),
            pool: mysql_async::Pool::new(format!("{url}?pool_min=0&pool_max=3").as_str()),
            url,
            server: mysql_server_url(),
            operator: String::new(),
            keys: Arc::default(),
        }
    }

    /// Makes a key with the service's own code; returns its token.
    pub async fn key(&self, scope: Scope) -> String {
        let key = NewKey::generate().expect("random bytes");
        let insert = KeyInsert {
            id: &key.id,
            hash: key.hash,
            scope,
            label: "test",
        };
        pos::store::insert_key(&mut self.conn().await, &insert)
            .await
            .expect("key stored");
        key.token
    }

    /// A keys file (as `pos seed --keys-file` writes it) with the till keys
    /// of every tenant made so far and the operator key.
    pub fn keys_file(&self) -> std::path::PathBuf {
        let mut file = pos::cli::keys_file::KeysFile {
            operator: Some(self.operator.clone()),
            ..Default::default()
        };
        if let Ok(keys) = self.keys.lock() {
            for (id, t) in keys.iter() {
                file.tills.insert(tenant_id(*id), t.till.clone());
            }
        }
        let path = std::env::temp_dir().join(format!("{}-keys.json", self.name));
        file.write(&path).expect("keys file written");
        path
    }

    /// The tenant (with its keys) that [`TestDb::tenant`] made, if any.
    pub fn known_tenant(&self, id: u64) -> Option<Tenant> {
        self.keys.lock().ok()?.get(&id).cloned()
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        self.pool.get_conn().await.expect("test connection")
    }

    pub async fn exec(&self, sql: &str) {
        self.conn()
            .await
            .query_drop(sql)
            .await
            .expect("test SQL runs");
    }

    pub async fn scalar(&self, sql: &str) -> String {
        let v: Option<String> = self
            .conn()
            .await
            .query_first(sql)
            .await
            .expect("test SQL runs");
        v.unwrap_or_default()
    }

    pub async fn count(&self, table: &str) -> u64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .parse()
            .expect("a count")
    }

    /// Transactions of this database's connections waiting for a row lock.
    pub async fn lock_waits(&self) -> u64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t \
             JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
             WHERE t.trx_state = 'LOCK WAIT' AND p.DB = '{}'",
            self.name
        ))
        .await
        .parse()
        .expect("a count")
    }

    /// Starts a transaction on its own connection that locks the summary
    /// rows of `tenant` until the returned connection rolls back (or drops).
    pub async fn lock_totals(&self, tenant: u64) -> mysql_async::Conn {
        let mut conn = self.conn().await;
        conn.query_drop("START TRANSACTION").await.expect("begin");
        conn.query_drop(format!(
            "SELECT * FROM product_sales_totals WHERE tenant_id = {tenant} FOR UPDATE"
        ))
        .await
        .expect("lock");
        conn
    }

    /// `quantity revenue` of every product of `tenant` in the summary, and
    /// the same summed from the history, by product.
    pub async fn summary_and_history(&self, tenant: u64) -> (String, String) {
        let summary = self
            .scalar(&format!(
                "SELECT GROUP_CONCAT(CONCAT(product_id, ':', quantity_sold, '/', revenue) ORDER BY product_id) \
                 FROM product_sales_totals WHERE tenant_id = {tenant}"
            ))
            .await;
        let history = self
            .scalar(&format!(
                "SELECT GROUP_CONCAT(s ORDER BY p) FROM (SELECT product_id p, \
                 CONCAT(product_id, ':', SUM(quantity_sold), '/', SUM(quantity_sold * price_per_unit)) s \
                 FROM sales_transactions WHERE tenant_id = {tenant} GROUP BY product_id) h"
            ))
            .await;
        (summary, history)
    }

    /// A tenant with `branches` branches and `products` products (prices are the client's).
    pub async fn tenant(&self, branches: usize, products: usize) -> Tenant {
        let mut conn = self.conn().await;
        conn.query_drop("INSERT INTO tenants (name) VALUES ('Test tenant')")
            .await
            .expect("insert tenant");
        let id = conn.last_insert_id().expect("tenant id");
        let mut t = Tenant {
            id,
            branches: Vec::new(),
            products: Vec::new(),
            till: String::new(),
            backoffice: String::new(),
        };
        for b in 0..branches {
            conn.exec_drop(
                "INSERT INTO branches (tenant_id, code, name) VALUES (?, ?, ?)",
                (id, format!("B{b}"), format!("Branch {b}")),
            )
            .await
            .expect("insert branch");
            t.branches.push(conn.last_insert_id().expect("branch id"));
        }
        for p in 0..products {
            conn.exec_drop(
                "INSERT INTO products (tenant_id, sku, name) VALUES (?, ?, ?)",
                (id, format!("P{p}"), format!("Product {p}")),
            )
            .await
            .expect("insert product");
            t.products.push(conn.last_insert_id().expect("product id"));
        }
        drop(conn);
        t.till = self
            .key(Scope::Till {
                tenant: tenant_id(id),
                branch: None,
            })
            .await;
        t.backoffice = self
            .key(Scope::Backoffice {
                tenant: tenant_id(id),
            })
            .await;
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(id, t.clone());
        }
        t
    }

    pub async fn drop_database(self) {
        self.dropped.done.store(true, Ordering::Relaxed);
        let _ = self.pool.disconnect().await;
        drop_database(&self.server, &self.name).await;
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: u64,
    pub branches: Vec<u64>,
    pub products: Vec<u64>,
    /// Token of a till key of this tenant (any branch).
    pub till: String,
    /// Token of a back-office key of this tenant.
    pub backoffice: String,
}

impl Tenant {
    pub fn sales_path(&self, branch: usize) -> String {
        format!(
            "/v1/tenants/{}/branches/{}/sales-transactions",
            self.id, self.branches[branch]
        )
    }
}
