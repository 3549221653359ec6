#!/usr/bin/env bash
# Start or stop the local parts the demo and the tests run against: a Docker engine, an OCI
# registry and a PostgreSQL, all on loopback, in a state directory of their own (nothing
# system-wide).
#   scripts/services.sh start   -> prints `export ...` lines for DOCKER_HOST, CM_TEST_REGISTRY,
#                                  CM_REGISTRY_ADDR and CM_TEST_POSTGRES_URL
#   scripts/services.sh stop
#   scripts/services.sh start-postgres | stop-postgres   (PostgreSQL alone)
# Reuses an engine, registry and PostgreSQL already running from an earlier `start` in the same
# state directory. The demo's directory (the default) keeps its registry on 127.0.0.1:5000;
# any other directory (a test run's) gets a free port, remembered in the directory, so its
# tests never talk to a registry someone else left listening on 5000. CM_REGISTRY_ADDR chooses.
# PostgreSQL: CM_POSTGRES_DIR (default $STATE/postgres), CM_POSTGRES_PORT (default: the port it
# had, else a free one); it runs as the `postgres` user when started by root.
set -euo pipefail
DEMO_STATE=/tmp/container-mapping-services
STATE=${CM_SERVICES_DIR:-$DEMO_STATE}
SOCK="$STATE/docker.sock"
PG_DIR=${CM_POSTGRES_DIR:-$STATE/postgres}
PG_BIN=${CM_POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

log() { printf '%s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

registry_addr() {
  if [ -n "${CM_REGISTRY_ADDR:-}" ]; then echo "$CM_REGISTRY_ADDR"
  elif [ -s "$STATE/registry.addr" ]; then cat "$STATE/registry.addr"
  elif [ "$STATE" = "$DEMO_STATE" ]; then echo 127.0.0.1:5000
  else echo "127.0.0.1:$(free_port)"
  fi
}

engine_up() { [ -S "$SOCK" ] && curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
registry_up() { curl -fsS --max-time 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

start_engine() {
  engine_up && return 0
  mkdir -p "$STATE/data" "$STATE/exec"
  rm -f "$SOCK" "$STATE/docker.pid"
  # vfs storage and no bridge, iptables or ip6tables: this also starts inside a container or
  # sandbox without overlayfs or netfilter (tried on the development machine). Images here
  # are FROM scratch and never reach a network, so nothing is lost.
  nohup dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root="$STATE/data" --exec-root="$STATE/exec" --pidfile="$STATE/docker.pid" \
    --insecure-registry "$REGISTRY_ADDR" -H "unix://$SOCK" >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 100); do engine_up && return 0; sleep 0.1; done
  log "dockerd did not start; see $STATE/dockerd.log"; tail -20 "$STATE/dockerd.log" >&2; return 1
}

start_registry() {
  registry_up && return 0
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 1 100); do registry_up && return 0; sleep 0.1; done
  log "docker-registry did not start; see $STATE/registry.log"; return 1
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_port() { cat "$PG_DIR/port" 2>/dev/null || true; }
postgres_up() {
  local port; port=$(pg_port)
  [ -n "$port" ] && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 >/dev/null 2>&1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_postgres() {
  [ -x "$PG_BIN/initdb" ] || { log "PostgreSQL server binaries not found (apt-get install postgresql)"; return 1; }
  postgres_up && return 0
  mkdir -p "$PG_DIR/sock"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$PG_DIR"
    # the postgres user must pass through every parent (a test run's mktemp -d is 0700)
    local dir=$PG_DIR
    while dir=$(dirname "$dir") && [ "$dir" != / ]; do chmod o+x "$dir" 2>/dev/null || true; done
  fi
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-instructions >"$PG_DIR/initdb.log" 2>&1 \
      || { log "initdb failed; see $PG_DIR/initdb.log"; return 1; }
  fi
  local port=${CM_POSTGRES_PORT:-$(pg_port)}
  port=${port:-$(free_port)}
  echo "$port" >"$PG_DIR/port"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR/sock -c max_connections=200" start >/dev/null \
    || { log "PostgreSQL did not start; see $PG_DIR/postgres.log"; tail -20 "$PG_DIR/postgres.log" >&2; return 1; }
}

stop_postgres() {
  [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

case "${1:-}" in
  start)
    mkdir -p "$STATE"
    REGISTRY_ADDR=$(registry_addr)
    echo "$REGISTRY_ADDR" >"$STATE/registry.addr"
    start_engine
    start_registry
    start_postgres
    echo "export DOCKER_HOST=unix://$SOCK"
    echo "export CM_TEST_REGISTRY=$REGISTRY_ADDR"
    echo "export CM_REGISTRY_ADDR=$REGISTRY_ADDR"
    echo "export CM_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$(pg_port)/postgres"
    ;;
  stop)
    stop_postgres
    stop_pidfile "$STATE/registry.pid"
    stop_pidfile "$STATE/docker.pid"
    ;;
  start-postgres)
    start_postgres
    echo "export CM_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$(pg_port)/postgres"
    ;;
  stop-postgres) stop_postgres ;;
  *) log "usage: $0 start|stop|start-postgres|stop-postgres"; exit 2 ;;
esac
