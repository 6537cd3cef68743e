-- A tenant's keys are bounded (POS_MAX_KEYS_PER_TENANT): the procedure
-- that makes them counts the tenant's keys not revoked and refuses past
-- the bound it is given. The caller runs it in a transaction: the tenant's
-- row, locked first, makes concurrent makes of one tenant count in turn.
-- The service passes its bound; the procedure still makes only till and
-- back-office keys of a tenant, as in V16. (A statement each, so a failed
-- run can be run again.)
DROP PROCEDURE IF EXISTS pos_make_tenant_key;
CREATE PROCEDURE pos_make_tenant_key(
    IN p_id VARCHAR(32) CHARACTER SET ascii,
    IN p_hash BINARY(32),
    IN p_role VARCHAR(16) CHARACTER SET ascii,
    IN p_tenant BIGINT UNSIGNED,
    IN p_branch BIGINT UNSIGNED,
    IN p_label VARCHAR(255) CHARACTER SET utf8mb4,
    IN p_max_keys INT UNSIGNED
)
SQL SECURITY DEFINER
BEGIN
    DECLARE held BIGINT UNSIGNED;
    IF p_role NOT IN ('till', 'backoffice') OR p_tenant IS NULL THEN
        SIGNAL SQLSTATE '45000'
            SET MESSAGE_TEXT = 'only till and back-office keys of a tenant are made here';
    END IF;
    SELECT COUNT(*) INTO held FROM tenants WHERE id = p_tenant FOR UPDATE;
    SELECT COUNT(*) INTO held FROM api_keys WHERE tenant_id = p_tenant AND revoked IS NULL;
    IF held >= p_max_keys THEN
        SIGNAL SQLSTATE '45000'
            SET MESSAGE_TEXT = 'pos: the tenant holds its most keys', MYSQL_ERRNO = 1644;
    END IF;
    INSERT INTO api_keys (id, secret_hash, role, tenant_id, branch_id, label, created)
        VALUES (p_id, p_hash, p_role, p_tenant, p_branch, p_label, UTC_TIMESTAMP(6));
END;
