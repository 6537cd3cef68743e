# Sourced (not executed: keep this file non-executable) by the MariaDB
# image's entrypoint once, when the data volume is first initialised, so
# its helpers docker_process_sql and docker_sql_escape_string_literal are
# at hand. Creates the service's own user, with no rights yet: the one-shot
# `migrate` service (as root) grants it, table by table, SELECT, INSERT and
# UPDATE on the pos tables, SELECT only on api_keys and EXECUTE on the two
# key procedures (no DDL, no DELETE, no GRANT; see store::grant_service_user).
pos_password=$(docker_sql_escape_string_literal "${SERVICE_DB_PASSWORD:?SERVICE_DB_PASSWORD must be set}")
docker_process_sql --database=mysql <<EOSQL
CREATE USER IF NOT EXISTS 'pos'@'%' IDENTIFIED BY '${pos_password}';
EOSQL
unset pos_password
