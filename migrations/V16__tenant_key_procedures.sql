-- The service's own MySQL user may read api_keys but not write it (see
-- store::grant_service_user): a compromised server must not mint an
-- operator key, nor take a revocation back, nor revoke the operator's. It
-- makes and revokes a tenant's keys through these two procedures, which run
-- with their definer's rights and do only that. Operator keys are made by
-- `pos keys` with the privileged URL. (A statement each, so a failed run
-- can be run again.)
DROP PROCEDURE IF EXISTS pos_make_tenant_key;
CREATE PROCEDURE pos_make_tenant_key(
    IN p_id VARCHAR(32) CHARACTER SET ascii,
    IN p_hash BINARY(32),
    IN p_role VARCHAR(16) CHARACTER SET ascii,
    IN p_tenant BIGINT UNSIGNED,
    IN p_branch BIGINT UNSIGNED,
    IN p_label VARCHAR(255) CHARACTER SET utf8mb4
)
SQL SECURITY DEFINER
BEGIN
    IF p_role NOT IN ('till', 'backoffice') OR p_tenant IS NULL THEN
        SIGNAL SQLSTATE '45000'
            SET MESSAGE_TEXT = 'only till and back-office keys of a tenant are made here';
    END IF;
    INSERT INTO api_keys (id, secret_hash, role, tenant_id, branch_id, label, created)
        VALUES (p_id, p_hash, p_role, p_tenant, p_branch, p_label, UTC_TIMESTAMP(6));
END;

-- Revokes a tenant's till or back-office key once: the first revocation
-- time stays, and nothing here can clear it.
DROP PROCEDURE IF EXISTS pos_revoke_key;
CREATE PROCEDURE pos_revoke_key(
    IN p_id VARCHAR(32) CHARACTER SET ascii,
    IN p_tenant BIGINT UNSIGNED
)
SQL SECURITY DEFINER
BEGIN
    UPDATE api_keys SET revoked = UTC_TIMESTAMP(6)
        WHERE id = p_id AND tenant_id = p_tenant AND role <> 'operator' AND revoked IS NULL;
END;
