-- A product's all-time revenue needs room: one maximal sale is
-- 1,000,000 x 99,999,999.99, so DECIMAL(20,2) filled after 10,000 of them.
-- DECIMAL(28,2) holds 10^12 maximal sales; the service refuses (422) a sale
-- that would pass even that, and the connections run in strict mode, so
-- MySQL never clamps a value.
ALTER TABLE product_sales_totals MODIFY revenue DECIMAL(28, 2) NOT NULL;
