-- Foreign keys that also say "of the same tenant", and fewer checks per
-- history row (the ingest path's largest MySQL cost was three foreign-key
-- lookups and two extra indexes on every sales_transactions row):
--   * a sale's branch must be a branch of the sale's tenant
--     (sales_transactions (tenant_id, branch_id) -> branches (tenant_id, id));
--   * a product's totals row must name a product of that tenant
--     (product_sales_totals (tenant_id, product_id) -> products (tenant_id, id)).
-- The service writes every sale and its totals row in one transaction, so a
-- sale whose product is not the tenant's fails that transaction as a whole.
-- The new keys are added without re-reading existing rows (checks off for
-- this session, which keeps the ALTER in place on a large history): the
-- service already refused branches and products of other tenants.
SET foreign_key_checks = 0;
ALTER TABLE branches ADD UNIQUE KEY uq_branches_tenant_id (tenant_id, id), DROP INDEX ix_branches_tenant;
ALTER TABLE products ADD UNIQUE KEY uq_products_tenant_id (tenant_id, id), DROP INDEX ix_products_tenant;
ALTER TABLE sales_transactions
    DROP FOREIGN KEY fk_sales_tenant,
    DROP FOREIGN KEY fk_sales_branch,
    DROP FOREIGN KEY fk_sales_product,
    DROP INDEX fk_sales_branch,
    DROP INDEX fk_sales_product,
    ADD CONSTRAINT fk_sales_tenant_branch FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id);
ALTER TABLE product_sales_totals
    DROP FOREIGN KEY fk_totals_tenant,
    DROP FOREIGN KEY fk_totals_product,
    DROP INDEX fk_totals_product,
    ADD CONSTRAINT fk_totals_tenant_product FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id);
SET foreign_key_checks = 1;
