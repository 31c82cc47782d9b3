#!/usr/bin/env bash
# Runs a command with the services the tests need, started once on loopback and stopped afterwards:
#   PostgreSQL (Debian's package; installed here if missing) -> TEST_POSTGRES_URL
#   Redis (Debian's redis-server; installed here if missing)  -> TEST_REDIS_URL
# Usage: scripts/with-services.sh COMMAND [ARGS...]
set -euo pipefail

log() { echo "[services] $*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

find_pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

ensure_postgres() {
  if ! find_pg_bin >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      log "installing PostgreSQL from Debian's packages"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      log "PostgreSQL is not installed: install it (e.g. 'sudo apt-get install postgresql') and retry"
      exit 1
    fi
  fi
}

# Run a command as the 'postgres' OS user when we are root (initdb refuses to run as root).
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  ensure_postgres
  local bin port
  bin=$(find_pg_bin)
  port=$(free_port)
  PG_DIR=$(mktemp -d /tmp/trading-race-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
  as_pg "$bin/initdb" -A trust -U postgres -D "$PG_DIR/data" >/dev/null
  as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  export TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  PG_BIN=$bin
  log "PostgreSQL ready on 127.0.0.1:$port"
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      log "installing Redis from Debian's packages"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      log "Redis is not installed: install it (e.g. 'sudo apt-get install redis-server') and retry"
      exit 1
    fi
  fi
}

start_redis() {
  ensure_redis
  local port i
  port=$(free_port)
  REDIS_DIR=$(mktemp -d /tmp/trading-race-redis.XXXXXX)
  # No persistence: the tests own this throwaway server.
  redis-server --daemonize yes --port "$port" --bind 127.0.0.1 --dir "$REDIS_DIR" \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly no >/dev/null
  for i in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$port" ping >/dev/null 2>&1 || { log "Redis did not start: $(tail -n 3 "$REDIS_DIR/redis.log")"; exit 1; }
  export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  log "Redis ready on 127.0.0.1:$port"
}

stop_services() {
  if [ -n "${REDIS_DIR:-}" ]; then
    [ -f "$REDIS_DIR/redis.pid" ] && kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    rm -rf "$REDIS_DIR"
  fi
  if [ -n "${PG_DIR:-}" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
trap stop_services EXIT INT TERM

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  start_postgres
else
  log "using TEST_POSTGRES_URL from the environment"
fi

if [ -z "${TEST_REDIS_URL:-}" ]; then
  start_redis
else
  log "using TEST_REDIS_URL from the environment"
fi

"$@"
