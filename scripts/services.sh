# Shared by scripts/test, scripts/demo and scripts/bench: make sure MariaDB
# and Redis are installed and running, with root over TCP and no password.
# Safe to run again. Source it; do not execute it.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

mysql_tcp_ok() {
  mysql --protocol=TCP -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1
}

ensure_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && ! [ -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
  fi
  if ! mysql_tcp_ok; then
    log "starting MariaDB"
    $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
    $SUDO service mariadb start >/dev/null 2>&1 \
      || $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
      || true
    for _ in $(seq 1 60); do
      mysql_tcp_ok && break
      # A fresh Debian install lets root in only through the socket: open TCP.
      if $SUDO mysql -uroot -e 'SELECT 1' >/dev/null 2>&1; then
        $SUDO mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; \
          CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
          GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" >/dev/null 2>&1 || true
      fi
      sleep 1
    done
  fi
  mysql_tcp_ok || { log "MariaDB does not accept root over TCP on 127.0.0.1:3306"; return 1; }
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
  for pidfile in "$CLUSTER_DIR"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$CLUSTER_DIR"
}
