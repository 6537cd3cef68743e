-- Rollups: what reports read for closed stretches of time instead of the
-- history (see docs/reports.md). Kept by the rollup actor off the sales'
-- path, from the history by id range, in transactions that also move the
-- shard's marks: a history row is in the rollups exactly when its id is at
-- most its shard's mark, so a crash never loses or doubles one.
--
-- level 1: per UTC quarter hour, whole tenant (branch_id = product_id = 0)
-- level 2: per UTC quarter hour and branch (product_id = 0)
-- level 3: per local day of the zone in rollup_zones, branch and product
-- level 4: per local month of that zone, branch and product
-- level 5: per local day of that zone and branch (product_id = 0)
-- `start` is the UTC start of a quarter hour (levels 1, 2), or the local
-- midnight starting the day or month (levels 3, 4, 5). A refund counts at
-- its own branch and time, as in reports.
CREATE TABLE IF NOT EXISTS sales_rollups (
    tenant_id    BIGINT UNSIGNED  NOT NULL,
    level        TINYINT UNSIGNED NOT NULL,
    start        DATETIME         NOT NULL,
    branch_id    BIGINT UNSIGNED  NOT NULL,
    product_id   BIGINT UNSIGNED  NOT NULL,
    quantity     BIGINT UNSIGNED  NOT NULL,
    revenue      DECIMAL(28, 2)   NOT NULL,
    sales        BIGINT UNSIGNED  NOT NULL,
    refunded     BIGINT UNSIGNED  NOT NULL,
    refunds      DECIMAL(28, 2)   NOT NULL,
    refund_count BIGINT UNSIGNED  NOT NULL,
    PRIMARY KEY (tenant_id, level, start, branch_id, product_id)
) ENGINE = InnoDB;

-- The zone a tenant's day and month rollups (levels 3, 4, 5) are cut in: its
-- time zone when they were made. A tenant whose zone changed has them
-- made again in the new zone by the next roll of its rows; until then
-- reports read them for what they are (stretches of UTC time).
CREATE TABLE IF NOT EXISTS rollup_zones (
    tenant_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    zone      VARCHAR(64)     NOT NULL
) ENGINE = InnoDB;

-- Per shard: the highest sale and refund ids rolled up, into the quarter
-- hours (levels 1, 2) and into the zoned levels (3 to 5), which are rolled
-- less often. The shard's rows up to them are in those levels, none
-- above. `pos shards resize` rolls every shard up to the newest row and
-- writes the new shards' marks.
CREATE TABLE IF NOT EXISTS rollup_marks (
    shard_index           INT UNSIGNED    NOT NULL PRIMARY KEY,
    shard_count           INT UNSIGNED    NOT NULL,
    sales_through         BIGINT UNSIGNED NOT NULL,
    refunds_through       BIGINT UNSIGNED NOT NULL,
    zoned_sales_through   BIGINT UNSIGNED NOT NULL,
    zoned_refunds_through BIGINT UNSIGNED NOT NULL,
    updated               DATETIME(6)     NOT NULL
) ENGINE = InnoDB;
