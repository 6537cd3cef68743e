-- One row per persistence writer (a persistence actor in one process run):
-- the id of the last batch it committed, written in the same transaction
-- as the batch. When a COMMIT's answer is lost, reading the row back tells
-- whether that batch is stored, whatever happened to auto-increment ids
-- meanwhile. Rows of writers that stopped are left for the record (one per
-- actor per start); `updated` says when they last wrote.
CREATE TABLE IF NOT EXISTS commit_markers (
    writer_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    batch_id  BIGINT UNSIGNED NOT NULL,
    updated   DATETIME(6)     NOT NULL
) ENGINE = InnoDB;
