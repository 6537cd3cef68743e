//! The harness itself, where a test relies on it for more than convenience.

use mysql_async::prelude::*;

use crate::support::{mysql_server_url, TestDb};

async fn database_exists(name: &str) -> bool {
    let mut conn = mysql_async::Conn::from_url(mysql_server_url())
        .await
        .expect("the test server answers");
    let found: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        )
        .await
        .expect("the schemata are readable");
    let _ = conn.disconnect().await;
    found.is_some()
}

/// A test that fails before its clean-up does not leave its database behind.
#[actix_web::test]
async fn a_test_database_is_dropped_when_its_last_handle_goes() {
    let db = TestDb::create().await;
    let name = db.name.clone();
    let other = db.clone();
    drop(db);
    assert!(database_exists(&name).await, "another handle holds it");
    drop(other);
    assert!(!database_exists(&name).await, "{name} was left behind");
}
