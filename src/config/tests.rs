use super::*;

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = Config::from_pairs([]).expect("defaults are valid");
    assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
    assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
    assert_eq!(c.batch_rows, 1000);
    assert_eq!(c.batch_linger, Duration::ZERO);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert_eq!(c.persistence_actors, (cores / 2).clamp(1, 64));
    assert_eq!(c.http_addr.port(), 8080);
    assert_eq!(c.metrics_addr.to_string(), "127.0.0.1:8081");
    assert!(c.auth_enabled);
    assert_eq!(c.rate_limit_per_key.get(), 100);
    assert_eq!(c.rate_limit_burst.get(), 200);
    assert_eq!(c.body_timeout, Duration::from_secs(10));
    assert_eq!(c.migration_url(), DEFAULT_DATABASE_URL);
}

#[test]
fn a_shard_is_i_of_n() {
    assert_eq!(Config::from_pairs([]).expect("valid").shard, Shard::ALL);
    let c =
        Config::from_pairs([("POS_SHARD", "1/2"), ("POS_SESSION_SECRET", SECRET)]).expect("valid");
    assert_eq!(c.shard, Shard { index: 1, count: 2 });
    let id = |n| crate::domain::TenantId::new(n).expect("positive");
    assert!(c.shard.owns(id(3)) && !c.shard.owns(id(4)) && c.shard.is_partial());
    for bad in ["2/2", "1", "a/b", "0/0", "-1/2", "0/2000"] {
        let e = Config::from_pairs([("POS_SHARD", bad)]).unwrap_err();
        assert!(e.to_string().starts_with("POS_SHARD:"), "{bad}: {e}");
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn several_shards_need_one_session_secret_that_is_never_printed() {
    let e = Config::from_pairs([("POS_SHARD", "0/2")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_SESSION_SECRET:"), "{e}");
    let e = Config::from_pairs([("POS_SESSION_SECRET", "short")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_SESSION_SECRET:"), "{e}");
    assert!(!e.to_string().contains("short"), "{e}");
    let c = Config::from_pairs([("POS_SESSION_SECRET", SECRET)]).expect("valid");
    assert!(!format!("{c:?}").contains(SECRET));
    assert!(Config::from_pairs([])
        .expect("valid")
        .session_secret
        .is_none());
}

#[test]
fn auth_is_on_unless_disabled_by_name() {
    let c = Config::from_pairs([("POS_AUTH", "disabled")]).expect("valid");
    assert!(!c.auth_enabled);
    let e = Config::from_pairs([("POS_AUTH", "off")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_AUTH:"), "{e}");
}

#[test]
fn passwords_in_urls_are_never_printed() {
    let e = Config::from_pairs([(
        "POS_DATABASE_URL",
        "mysql://pos:s3cret@db:3306/pos?pool_max=many",
    )])
    .unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
    assert!(e.to_string().contains("pos:***@db:3306"), "{e}");
    let e = Config::from_pairs([("POS_REDIS_URL", "http://u:s3cret@r:6379")]).unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
    assert_eq!(
        redact_url("mysql://root@127.0.0.1/pos"),
        "mysql://root@127.0.0.1/pos"
    );
    assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
    assert_eq!(
        redact_url("mysql://a:b:c@h/db?p=@"),
        "mysql://a:***@h/db?p=@"
    );
}

/// Passwords with the characters that end a URL's authority: the parser
/// reads them as host, path, query or fragment, or not at all.
#[test]
fn passwords_with_url_delimiters_are_hidden_too() {
    for (url, shown) in [
        ("mysql://pos:pa/ss@db:3306/pos", "mysql://***@db:3306/pos"),
        ("mysql://pos:12?x@db/pos", "mysql://***@db/pos"),
        ("redis://:p#w@r:6379", "redis://***@r:6379"),
        ("mysql://pos:a%2Fb@db/pos", "mysql://pos:***@db/pos"),
        ("mysql://pos@db/pos", "mysql://pos@db/pos"),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
    }
}

#[test]
fn bad_integer_names_the_variable_and_value() {
    let e = Config::from_pairs([("POS_BATCH_LINGER_MS", "fast")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"POS_BATCH_LINGER_MS: expected an integer, got "fast""#
    );
}

#[test]
fn empty_redis_url_disables_the_mirror() {
    let c = Config::from_pairs([("POS_REDIS_URL", "")]).expect("valid");
    assert!(c.redis_url.is_none());
}

#[test]
fn bad_address_and_format_are_named() {
    let e = Config::from_pairs([("POS_HTTP_ADDR", "nonsense")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_HTTP_ADDR:"), "{e}");
    let e = Config::from_pairs([("POS_LOG_FORMAT", "xml")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_LOG_FORMAT:"), "{e}");
    let e = Config::from_pairs([("POS_TRUSTED_PROXIES", "10.0.0.1,haproxy")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_TRUSTED_PROXIES:"), "{e}");
    assert!(e.to_string().contains("haproxy"), "{e}");
}

#[test]
fn no_proxy_is_trusted_unless_listed() {
    let c = Config::from_pairs([]).expect("valid");
    assert!(c.trusted_proxies.is_empty());
    let c = Config::from_pairs([("POS_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).expect("valid");
    assert_eq!(c.trusted_proxies.to_string(), "127.0.0.1/32,10.0.0.0/8");
}

#[test]
fn a_listener_may_be_named_by_host_name() {
    let c = Config::from_pairs([("POS_HTTP_ADDR", "localhost:18080")]).expect("valid");
    assert!(c.http_addr.ip().is_loopback(), "{}", c.http_addr);
    assert_eq!(c.http_addr.port(), 18080);
    let e = Config::from_pairs([("POS_HTTP_ADDR", "localhost")]).unwrap_err();
    assert!(e.to_string().starts_with("POS_HTTP_ADDR:"), "{e}");
}

#[test]
fn the_control_database_is_the_data_database_unless_named() {
    let one = Config::from_pairs([("POS_DATABASE_URL", "mysql://u@h/pos")]).expect("valid");
    assert_eq!(one.control_url(), "mysql://u@h/pos");
    assert!(!one.pods());
    let pods = Config::from_pairs([
        ("POS_DATABASE_URL", "mysql://u@h/pod0"),
        ("POS_MIGRATE_DATABASE_URL", "mysql://root@h/pod0"),
        ("POS_CONTROL_DATABASE_URL", "mysql://u@c/control"),
    ])
    .expect("valid");
    assert!(pods.pods());
    assert_eq!(pods.control_migration_url(), "mysql://u@c/control");
    let alone =
        Config::from_pairs([("POS_CONTROL_MIGRATE_DATABASE_URL", "mysql://root@c/x")]).unwrap_err();
    assert!(
        alone
            .to_string()
            .starts_with("POS_CONTROL_MIGRATE_DATABASE_URL:"),
        "{alone}"
    );
}
