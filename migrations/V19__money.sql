-- Money a chain can run on: a currency per tenant, list prices, refunds
-- and voids.
--
-- tenants.currency: ISO 4217, NULL until the service fills it with
-- POS_DEFAULT_CURRENCY at its next start (existing tenants get the
-- deployment's default, which a migration cannot know).
ALTER TABLE tenants ADD COLUMN currency CHAR(3) CHARACTER SET ascii NULL;

-- A product's list price: a sale may leave its price out when it has one.
ALTER TABLE products ADD COLUMN price DECIMAL(10, 2) NULL;

-- What is refunded of each sale, beside what was sold: the refund's
-- transaction raises it and fails (NULL into NOT NULL, strict mode) when it
-- would pass quantity_sold, so the refunds of a sale never exceed it,
-- whatever the concurrency. stored_at (when the row was stored, for the
-- void window) is filled by MySQL: the sales INSERT does not name it.
-- Both are added in place (no table copy); rows stored before have NULL,
-- older than any void window.
ALTER TABLE sales_transactions
    ADD COLUMN quantity_refunded INT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN stored_at DATETIME(6) NULL;
ALTER TABLE sales_transactions ALTER COLUMN stored_at SET DEFAULT (UTC_TIMESTAMP(6));

-- A product's all-time refunds beside its sales (net = sold - refunded).
ALTER TABLE product_sales_totals
    ADD COLUMN quantity_refunded BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN refunds DECIMAL(28, 2) NOT NULL DEFAULT 0;

-- A refund or void counts at its own branch and time. amount =
-- quantity x the sale's price: 1,000,000 x 99,999,999.99 fits (16,2).
CREATE TABLE IF NOT EXISTS refunds (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id       BIGINT UNSIGNED NOT NULL,
    branch_id       BIGINT UNSIGNED NOT NULL,
    sale_id         BIGINT UNSIGNED NOT NULL,
    product_id      BIGINT UNSIGNED NOT NULL,
    quantity        INT UNSIGNED    NOT NULL,
    amount          DECIMAL(16, 2)  NOT NULL,
    kind            ENUM('refund', 'void') NOT NULL,
    reason          VARCHAR(200)    NULL,
    idempotency_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    created_at      DATETIME(6)     NOT NULL,
    UNIQUE KEY uq_refunds_tenant_idempotency (tenant_id, idempotency_key),
    KEY ix_refunds_sale (tenant_id, sale_id),
    KEY ix_refunds_report (tenant_id, created_at, branch_id, product_id, quantity, amount),
    CONSTRAINT fk_refunds_branch FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
    CONSTRAINT fk_refunds_sale FOREIGN KEY (sale_id) REFERENCES sales_transactions (id),
    CONSTRAINT fk_refunds_product FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
