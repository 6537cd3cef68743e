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
