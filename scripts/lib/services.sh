# Shared by scripts/test and scripts/bench: installs PostgreSQL and Redis with
# apt when missing and starts throwaway instances on free loopback ports with
# their own data directories (also as root: initdb refuses root, so the data
# directory belongs to the unprivileged `postgres` user). Call
# `services_start`; everything is stopped and removed on exit.
# shellcheck shell=bash

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root (or sudo) to run: $*"; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/authrealm-test.XXXXXX")
chmod 755 "$workdir"
pg_dir="" pg_bin="" pg_owner="" redis_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$pg_dir" ] && [ -f "$pg_dir/postmaster.pid" ]; then
    run_pg "$pg_bin/pg_ctl" -D "$pg_dir" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run_pg() {
  if [ -n "$pg_owner" ]; then runuser -u "$pg_owner" -- "$@"; else "$@"; fi
}

start_postgres() {
  pg_bin=$(pg_bindir) || { log "installing PostgreSQL"; apt_install postgresql; pg_bin=$(pg_bindir); }
  # initdb refuses to run as root: use an unprivileged owner for the data dir.
  if [ "$(id -u)" = 0 ]; then
    pg_owner=postgres
    id "$pg_owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_owner"
  fi
  pg_dir="$workdir/pg"
  mkdir -p "$pg_dir"
  [ -n "$pg_owner" ] && chown "$pg_owner" "$pg_dir"
  local port; port=$(free_port)
  run_pg "$pg_bin/initdb" -D "$pg_dir" -U postgres --auth=trust --no-sync -E UTF8 >"$workdir/initdb.log" 2>&1 \
    || { cat "$workdir/initdb.log" >&2; return 1; }
  run_pg "$pg_bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w -t 60 \
    -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null || { cat "$pg_dir/server.log" >&2; return 1; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL on 127.0.0.1:$port"
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || { log "installing Redis"; apt_install redis-server; }
  local port; port=$(free_port)
  mkdir -p "$workdir/redis"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$workdir/redis" \
    --daemonize no --loglevel warning >"$workdir/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export REDIS_URL="redis://127.0.0.1:$port"
  log "Redis on 127.0.0.1:$port"
}

# Debian's nginx (its auth_request module is built in) for the forward-auth
# test in flow/tests/nginx.rs; the test only runs it, on a port of its own.
ensure_nginx() {
  if [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; then return 0; fi
  log "installing nginx"
  apt_install nginx
}

services_start() {
  if [ -n "${DATABASE_URL:-}" ]; then log "using DATABASE_URL from the environment"; else start_postgres; fi
  if [ -n "${REDIS_URL:-}" ]; then log "using REDIS_URL from the environment"; else start_redis; fi
}
