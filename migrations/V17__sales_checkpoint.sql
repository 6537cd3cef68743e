-- The summary table no longer changes in every sale's transaction: a
-- checkpoint adds the history rows above `through_id` to it every few
-- seconds, and moves `through_id` in the same transaction. So the summary
-- holds exactly the history rows with id <= through_id, and a product's
-- total is its summary row plus its history rows above through_id (what
-- start-up reads, and what the view below shows).
-- Every history row already stored is in the summary (they were written
-- together until now): the checkpoint starts at the last one. Stop every
-- older instance before this runs; rows it wrote afterwards would be
-- counted twice.
CREATE TABLE IF NOT EXISTS sales_checkpoint (
    id         TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    through_id BIGINT UNSIGNED  NOT NULL,
    updated    DATETIME(6)      NOT NULL,
    CONSTRAINT ck_one_checkpoint CHECK (id = 1)
) ENGINE = InnoDB;

INSERT INTO sales_checkpoint (id, through_id, updated)
SELECT 1, COALESCE(MAX(id), 0), UTC_TIMESTAMP(6) FROM sales_transactions;

-- Every product's exact all-time totals now, for people and tools that
-- read MySQL (the service reads the two parts itself).
CREATE OR REPLACE SQL SECURITY INVOKER VIEW product_totals_now AS
SELECT tenant_id, product_id,
       CAST(SUM(quantity_sold) AS UNSIGNED) AS quantity_sold,
       CAST(SUM(revenue) AS DECIMAL(28, 2)) AS revenue
FROM (
    SELECT tenant_id, product_id, quantity_sold, revenue FROM product_sales_totals
    UNION ALL
    SELECT s.tenant_id, s.product_id, s.quantity_sold, s.quantity_sold * s.price_per_unit
    FROM sales_transactions s JOIN sales_checkpoint c ON c.id = 1 AND s.id > c.through_id
) parts
GROUP BY tenant_id, product_id;
