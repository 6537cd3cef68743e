-- Back-office sessions that a sign-out ended, on every instance: the
-- sessions of key `key_id` that began (signed in) at or before `began_ms`
-- (Unix milliseconds, from the session's own cookie) are over. One row per
-- key, so the table grows with the keys, not with the sign-ins; a later
-- sign-out only moves `began_ms` forward. Servers poll `ended` as they poll
-- api_keys.revoked, and drop the key from their caches, so its sessions
-- end within the same 2 s.
CREATE TABLE IF NOT EXISTS session_ends (
    key_id   VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    began_ms BIGINT UNSIGNED NOT NULL,
    ended    DATETIME(6)     NOT NULL,
    KEY ix_session_ends_ended (ended),
    CONSTRAINT fk_session_ends_key FOREIGN KEY (key_id) REFERENCES api_keys (id)
) ENGINE = InnoDB;
