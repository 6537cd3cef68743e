-- API keys. A token reads pos_<id>_<secret>; only the SHA-256 of the secret
-- is kept, never the secret. The role decides what the key may do and what
-- it is bound to (a till to a tenant and maybe a branch, a back office to a
-- tenant, the operator to nothing); the schema refuses other combinations
-- and scopes that name another tenant's branch. Revoked keys stay, for the
-- record; servers poll `revoked` to drop them from their caches. Times are
-- UTC (written with UTC_TIMESTAMP(6), whatever the server's time zone).
CREATE TABLE IF NOT EXISTS api_keys (
    id          VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    secret_hash BINARY(32)      NOT NULL,
    role        ENUM('till', 'backoffice', 'operator') NOT NULL,
    tenant_id   BIGINT UNSIGNED NULL,
    branch_id   BIGINT UNSIGNED NULL,
    label       VARCHAR(255)    NOT NULL DEFAULT '',
    created     DATETIME(6)     NOT NULL,
    revoked     DATETIME(6)     NULL,
    KEY ix_api_keys_tenant (tenant_id),
    KEY ix_api_keys_revoked (revoked),
    CONSTRAINT fk_api_keys_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_api_keys_branch FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
    CONSTRAINT ck_api_keys_scope CHECK (
        (role = 'operator' AND tenant_id IS NULL AND branch_id IS NULL)
        OR (role = 'backoffice' AND tenant_id IS NOT NULL AND branch_id IS NULL)
        OR (role = 'till' AND tenant_id IS NOT NULL)
    )
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
