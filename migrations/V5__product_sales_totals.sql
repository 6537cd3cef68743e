-- All-time totals per product, updated in the same transaction as the
-- history rows; start-up reads this table, never the history.
CREATE TABLE IF NOT EXISTS product_sales_totals (
    tenant_id     BIGINT UNSIGNED NOT NULL,
    product_id    BIGINT UNSIGNED NOT NULL,
    quantity_sold BIGINT UNSIGNED NOT NULL,
    revenue       DECIMAL(20, 2)  NOT NULL,
    PRIMARY KEY (tenant_id, product_id),
    CONSTRAINT fk_totals_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_totals_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
