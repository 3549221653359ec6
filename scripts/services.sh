#!/usr/bin/env bash
# Start or stop the local parts the demo and the tests run against: a Docker engine and an
# OCI registry, both on loopback, in a state directory of their own (nothing system-wide).
#   scripts/services.sh start   -> prints `export ...` lines for DOCKER_HOST, CM_TEST_REGISTRY
#                                  and CM_REGISTRY_ADDR
#   scripts/services.sh stop
# Reuses an engine and registry that are already running from an earlier `start` in the same
# state directory. The demo's directory (the default) keeps its registry on 127.0.0.1:5000;
# any other directory (a test run's) gets a free port, remembered in the directory, so its
# tests never talk to a registry someone else left listening on 5000. CM_REGISTRY_ADDR chooses.
set -euo pipefail
DEMO_STATE=/tmp/container-mapping-services
STATE=${CM_SERVICES_DIR:-$DEMO_STATE}
SOCK="$STATE/docker.sock"

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
    echo "export DOCKER_HOST=unix://$SOCK"
    echo "export CM_TEST_REGISTRY=$REGISTRY_ADDR"
    echo "export CM_REGISTRY_ADDR=$REGISTRY_ADDR"
    ;;
  stop)
    stop_pidfile "$STATE/registry.pid"
    stop_pidfile "$STATE/docker.pid"
    ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
