-- The catalog a chain manages through the API. Natural keys make retries
-- safe: a product's `sku` is unique per tenant, a branch's `code` per
-- tenant's branches (both ASCII, compared exactly). Nothing is ever deleted:
-- a product is deactivated, a branch closed, a tenant suspended, and the
-- history keeps pointing at the same ids.
--
-- Rows made before this migration get a key from their id (`P12`, `B3`),
-- so every row has one; new rows get theirs from the API or `pos seed`.
ALTER TABLE tenants ADD COLUMN suspended BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE branches
    ADD COLUMN code VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN open BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE branches SET code = CONCAT('B', id) WHERE code IS NULL;
ALTER TABLE branches
    MODIFY code VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    ADD UNIQUE KEY uq_branches_tenant_code (tenant_id, code);

ALTER TABLE products
    ADD COLUMN sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE products SET sku = CONCAT('P', id) WHERE sku IS NULL;
ALTER TABLE products
    MODIFY sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    ADD UNIQUE KEY uq_products_tenant_sku (tenant_id, sku);
