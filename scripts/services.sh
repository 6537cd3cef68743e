# Shared by scripts/test, scripts/demo and scripts/bench: make sure MariaDB
# and Redis are installed and running, and that the scripts have their own
# MariaDB admin (see make_admin). Safe to run again. Source it; do not
# execute it.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The scripts' own MariaDB admin, `pos_admin`, with a random password kept
# in files of mode 0600 (a client option file for `mysql`, a URL for `pos`
# and the tests): root is never changed, and no account without a password
# is made. ensure_mariadb sets POS_MYSQL_ADMIN_CNF and POS_MYSQL_ADMIN_URL.
POS_CONFIG_DIR="${XDG_CONFIG_HOME:-${HOME:-/root}/.config}/pos"
POS_MYSQL_ADMIN_CNF="$POS_CONFIG_DIR/mysql-admin.cnf"
POS_MYSQL_ADMIN_URL_FILE="$POS_CONFIG_DIR/mysql-admin.url"

# mysql as the scripts' admin (the password comes from the option file,
# never from the command line): sqla [mysql options...]
sqla() { mysql --defaults-extra-file="$POS_MYSQL_ADMIN_CNF" "$@"; }

admin_ok() {
  [ -r "$POS_MYSQL_ADMIN_CNF" ] && [ -r "$POS_MYSQL_ADMIN_URL_FILE" ] && sqla -e 'SELECT 1' >/dev/null 2>&1
}

# Runs SQL with whatever root access this machine gives (TCP without a
# password, as on a prepared CI machine, or the socket as on a fresh
# Debian install); it changes nothing about root itself.
# The SQL comes on stdin (a builtin's pipe: never in a command line).
as_root() {
  local sql; sql=$(cat)
  printf '%s\n' "$sql" | mysql --protocol=TCP -h127.0.0.1 -P3306 -uroot 2>/dev/null \
    || printf '%s\n' "$sql" | $SUDO mysql -uroot
}

mariadb_up() {
  admin_ok || mysql --protocol=TCP -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1 \
    || $SUDO mysql -uroot -e 'SELECT 1' >/dev/null 2>&1
}

make_admin() {
  log "making MariaDB user pos_admin (password in $POS_MYSQL_ADMIN_CNF, mode 0600)"
  ( umask 077 && mkdir -p "$POS_CONFIG_DIR" )
  local password
  password=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
  local host
  for host in 127.0.0.1 localhost; do
    as_root <<SQL
CREATE USER IF NOT EXISTS 'pos_admin'@'$host' IDENTIFIED BY '$password';
ALTER USER 'pos_admin'@'$host' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'pos_admin'@'$host' WITH GRANT OPTION;
SQL
  done
  ( umask 077
    printf '[client]\nuser=pos_admin\npassword=%s\nhost=127.0.0.1\nport=3306\nprotocol=TCP\n' "$password" >"$POS_MYSQL_ADMIN_CNF"
    printf 'mysql://pos_admin:%s@127.0.0.1:3306\n' "$password" >"$POS_MYSQL_ADMIN_URL_FILE"
    chmod 600 "$POS_MYSQL_ADMIN_CNF" "$POS_MYSQL_ADMIN_URL_FILE" )
}

ensure_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && ! [ -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
  fi
  if ! mariadb_up; then
    log "starting MariaDB"
    $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
    $SUDO service mariadb start >/dev/null 2>&1 \
      || $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
      || true
    for _ in $(seq 1 60); do
      mariadb_up && break
      sleep 1
    done
  fi
  mariadb_up || { log "MariaDB does not answer on 127.0.0.1:3306"; return 1; }
  admin_ok || make_admin || true
  admin_ok || { log "MariaDB does not let pos_admin in on 127.0.0.1:3306 (see $POS_MYSQL_ADMIN_CNF; making it needs root over TCP or the socket)"; return 1; }
  POS_MYSQL_ADMIN_URL=$(cat "$POS_MYSQL_ADMIN_URL_FILE")
  export POS_MYSQL_ADMIN_CNF POS_MYSQL_ADMIN_URL
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server redis-tools
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/pos-redis-6379.log >/dev/null
    for _ in $(seq 1 30); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { log "Redis does not answer on 6379"; return 1; }
}

# RabbitMQ for the feed's tests (127.0.0.1:5672, guest/guest from localhost).
ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    apt_install rabbitmq-server
  fi
  if port_free 5672; then
    log "starting RabbitMQ"
    $SUDO service rabbitmq-server start >/dev/null 2>&1 \
      || $SUDO env HOME=/var/lib/rabbitmq runuser -u rabbitmq -- rabbitmq-server -detached >/dev/null 2>&1 \
      || $SUDO rabbitmq-server -detached >/dev/null 2>&1 || true
    for _ in $(seq 1 120); do port_free 5672 || break; sleep 0.5; done
  fi
  ! port_free 5672 || { log "RabbitMQ does not answer on 5672"; return 1; }
  # The port opens before the broker takes connections.
  for _ in $(seq 1 60); do $SUDO rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 0.5; done
}

# Rust through rustup when cargo is missing (a fresh machine).
ensure_rust() {
  command -v cargo >/dev/null 2>&1 && return 0
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    log "installing Rust (rustup)"
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    command -v cc >/dev/null 2>&1 || apt_install build-essential
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  }
  export PATH="$HOME/.cargo/bin:$PATH"
}

ensure_services() {
  command -v mysql >/dev/null 2>&1 || apt_install mariadb-client
  ensure_mariadb
  ensure_redis
  ensure_rabbitmq
}

# The real peers of the tests: HAProxy (in front of shards and of a Galera
# cluster), Prometheus (scraping them), and Galera with rsync for its state
# transfers (scripts/galera), Chromium with its WebDriver, from Debian's packages. Installed, never
# started: each test starts its own on free ports.
ensure_peers() {
  export PATH="$PATH:/usr/sbin:/sbin"
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_install haproxy
  command -v prometheus >/dev/null 2>&1 || apt_install --no-install-recommends prometheus
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  command -v rsync >/dev/null 2>&1 || apt_install rsync
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  command -v jq >/dev/null 2>&1 || apt_install jq
  command -v curl >/dev/null 2>&1 || apt_install curl
  [ -e /usr/lib/galera/libgalera_smm.so ] || [ -e /usr/lib/libgalera_smm.so ] || apt_install galera-4
  # The web back office's tests drive a real browser (WebDriver).
  command -v chromedriver >/dev/null 2>&1 || apt_install chromium chromium-driver
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a 3-master Redis Cluster on free ports; sets CLUSTER_DIR and
# CLUSTER_URL. Stop it with stop_redis_cluster.
start_redis_cluster() {
  CLUSTER_DIR=$(mktemp -d /tmp/pos-cluster.XXXXXX)
  local ports=() p=17100
  while [ "${#ports[@]}" -lt 3 ]; do
    p=$((p + 1))
    if port_free "$p" && port_free "$((p + 10000))"; then ports+=("$p"); fi
  done
  for p in "${ports[@]}"; do
    mkdir -p "$CLUSTER_DIR/$p"
    (cd "$CLUSTER_DIR/$p" && redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --save '' --appendonly no --daemonize yes \
      --pidfile "$CLUSTER_DIR/$p.pid" --logfile "$CLUSTER_DIR/$p.log")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
    --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  CLUSTER_URL="redis-cluster://127.0.0.1:${ports[0]}?node=127.0.0.1:${ports[1]}&node=127.0.0.1:${ports[2]}"
  log "Redis Cluster on ports ${ports[*]}"
}

stop_redis_cluster() {
  [ -n "${CLUSTER_DIR:-}" ] || return 0
  local pidfile pid
  for pidfile in "$CLUSTER_DIR"/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    # A stopping Redis still writes its log: removing the directory under
    # it failed once ("Directory not empty") and failed a whole CI run.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  rm -rf "$CLUSTER_DIR" || { sleep 0.5; rm -rf "$CLUSTER_DIR"; } || true
}
