-- log_timestamp is UTC with microseconds; idempotency keys are ASCII and
-- compared byte for byte, unique per tenant (NULL = no key).
CREATE TABLE IF NOT EXISTS sales_transactions (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id       BIGINT UNSIGNED NOT NULL,
    branch_id       BIGINT UNSIGNED NOT NULL,
    product_id      BIGINT UNSIGNED NOT NULL,
    quantity_sold   INT UNSIGNED    NOT NULL,
    price_per_unit  DECIMAL(10, 2)  NOT NULL,
    log_timestamp   DATETIME(6)     NOT NULL,
    idempotency_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    UNIQUE KEY uq_sales_tenant_idempotency (tenant_id, idempotency_key),
    KEY ix_sales_tenant_time (tenant_id, log_timestamp),
    CONSTRAINT fk_sales_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_sales_branch FOREIGN KEY (branch_id) REFERENCES branches (id),
    CONSTRAINT fk_sales_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
