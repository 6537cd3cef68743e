-- The auto-increment step of the marked batch's INSERT, written in the
-- batch's own transaction: on Galera the step changes when a node joins
-- or leaves, so the ids of a batch are computed from the step it really
-- used, also when its answer was lost and it is settled by its mark.
ALTER TABLE commit_markers ADD COLUMN id_step BIGINT UNSIGNED NOT NULL DEFAULT 1 AFTER first_id;
