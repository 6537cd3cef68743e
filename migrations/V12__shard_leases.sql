-- One owner per shard. The deployment's shard count, recorded by the first
-- instance and changed only by `pos shards resize`; and a lease per shard:
-- its holder (address and process), a fencing number that grows with every
-- new holder and that every batch checks in its own transaction, and when
-- the lease ends unless renewed (on the database's clock).
CREATE TABLE IF NOT EXISTS shard_deployment (
    id          TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    shard_count INT UNSIGNED     NOT NULL,
    updated     DATETIME(6)      NOT NULL,
    CONSTRAINT ck_one_deployment CHECK (id = 1)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS shard_leases (
    shard_index INT UNSIGNED    NOT NULL PRIMARY KEY,
    holder      VARCHAR(255)    NOT NULL,
    instance    BIGINT UNSIGNED NOT NULL,
    fence       BIGINT UNSIGNED NOT NULL,
    expires     DATETIME(6)     NOT NULL
) ENGINE = InnoDB;
