-- The first history id of the marked batch, written in the batch's own
-- transaction: a batch whose whole transaction (COMMIT included) went in
-- one round trip and whose answer was lost is settled, ids and all, by
-- reading its mark back. Rows of earlier writers keep 0; no writer reads
-- them (writer ids are new at every start).
ALTER TABLE commit_markers ADD COLUMN first_id BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER batch_id;
