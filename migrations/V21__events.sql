-- Events (SPEC §3): every committed sale, refund and catalog change is an
-- event of its tenant, numbered 1, 2, 3… in commit order. A sale's and a
-- refund's event is its own row: the persistence actor that commits the
-- tenant's rows numbers them in the same transaction (no extra row per
-- sale). Rows stored before this migration carry no number: the feed
-- starts here. The unique keys are the last guard against a number given
-- twice (a writer that numbered from a stale head fails and reads again).
ALTER TABLE sales_transactions
    ADD COLUMN event_seq BIGINT UNSIGNED NULL,
    ADD UNIQUE KEY uq_sales_tenant_event (tenant_id, event_seq);
ALTER TABLE refunds
    ADD COLUMN event_seq BIGINT UNSIGNED NULL,
    ADD UNIQUE KEY uq_refunds_tenant_event (tenant_id, event_seq);

-- A catalog change's event, written in the change's own transaction with
-- the object as the API answers it, and numbered (seq) just after by the
-- tenant's persistence actor, which numbers the tenant's sales too. Until
-- numbered it is not part of the feed; a boot numbers any left unnumbered.
CREATE TABLE IF NOT EXISTS catalog_events (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id  BIGINT UNSIGNED NOT NULL,
    seq        BIGINT UNSIGNED NULL,
    type       ENUM('product.created', 'product.updated', 'branch.created', 'branch.updated') NOT NULL,
    created_at DATETIME(6) NOT NULL,
    data       TEXT NOT NULL,
    UNIQUE KEY uq_catalog_events_seq (tenant_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- How far each sink delivered each tenant's events (`amqp`: RabbitMQ).
-- Moved only after the sink confirmed: at least once, in seq order.
CREATE TABLE IF NOT EXISTS feed_cursors (
    sink      VARCHAR(32) CHARACTER SET ascii NOT NULL,
    tenant_id BIGINT UNSIGNED NOT NULL,
    seq       BIGINT UNSIGNED NOT NULL,
    updated   DATETIME(6) NOT NULL,
    PRIMARY KEY (sink, tenant_id)
) ENGINE = InnoDB;

-- A tenant's webhook endpoints. The secret signs deliveries (HMAC-SHA256),
-- so it is kept as issued (shown once to the back office). delivered_seq is
-- the endpoint's cursor; failing_since is set while its next event fails.
CREATE TABLE IF NOT EXISTS webhooks (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id     BIGINT UNSIGNED NOT NULL,
    url           VARCHAR(2048) NOT NULL,
    types         VARCHAR(200) CHARACTER SET ascii NOT NULL,
    secret        VARCHAR(80) CHARACTER SET ascii NOT NULL,
    delivered_seq BIGINT UNSIGNED NOT NULL,
    failing_since DATETIME(6) NULL,
    failed        BOOLEAN NOT NULL DEFAULT FALSE,
    deleted       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    DATETIME(6) NOT NULL,
    KEY ix_webhooks_tenant (tenant_id, deleted)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Every delivery attempt of a webhook endpoint (kept for 7 days).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webhook_id   BIGINT UNSIGNED NOT NULL,
    event_seq    BIGINT UNSIGNED NOT NULL,
    attempted_at DATETIME(6) NOT NULL,
    status       SMALLINT UNSIGNED NULL,
    error        VARCHAR(200) NULL,
    duration_ms  INT UNSIGNED NOT NULL,
    KEY ix_deliveries_webhook (webhook_id, id),
    KEY ix_deliveries_time (attempted_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
