-- Reports (GET /v1/tenants/{t}/reports/sales) read a tenant's range of
-- history from this index alone: every column they group or sum is in it,
-- so no table row is read and no other tenant's entry is touched. It takes
-- the place of (tenant_id, log_timestamp), which it extends: still one
-- secondary index written per sale.
ALTER TABLE sales_transactions
    ADD KEY ix_sales_report (tenant_id, log_timestamp, branch_id, product_id, quantity_sold, price_per_unit),
    DROP KEY ix_sales_tenant_time;
