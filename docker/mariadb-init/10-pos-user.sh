# Sourced (not executed: keep this file non-executable) by the MariaDB
# image's entrypoint once, when the data volume is first initialised, so
# its helpers docker_process_sql and docker_sql_escape_string_literal are
# at hand. Creates the service's own user: it may read and write the pos
# tables and nothing else (no DDL, no DELETE, no GRANT); migrations run as
# root from the one-shot `migrate` service.
pos_password=$(docker_sql_escape_string_literal "${SERVICE_DB_PASSWORD:?SERVICE_DB_PASSWORD must be set}")
docker_process_sql --database=mysql <<EOSQL
CREATE USER IF NOT EXISTS 'pos'@'%' IDENTIFIED BY '${pos_password}';
GRANT SELECT, INSERT, UPDATE ON \`pos\`.* TO 'pos'@'%';
EOSQL
unset pos_password
