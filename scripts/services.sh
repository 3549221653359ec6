#!/usr/bin/env bash
# Start or stop the local parts the demo and the tests run against: a Docker engine and an
# OCI registry, both on loopback, in a state directory of their own (nothing system-wide).
#   scripts/services.sh start   -> prints `export ...` lines for DOCKER_HOST and CM_TEST_REGISTRY
#   scripts/services.sh stop
# Reuses an engine and registry that are already running from an earlier `start`.
set -euo pipefail
STATE=${CM_SERVICES_DIR:-/tmp/container-mapping-services}
REGISTRY_ADDR=${CM_REGISTRY_ADDR:-127.0.0.1:5000}
SOCK="$STATE/docker.sock"

log() { printf '%s\n' "$*" >&2; }

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
    start_engine
    start_registry
    echo "export DOCKER_HOST=unix://$SOCK"
    echo "export CM_TEST_REGISTRY=$REGISTRY_ADDR"
    ;;
  stop)
    stop_pidfile "$STATE/registry.pid"
    stop_pidfile "$STATE/docker.pid"
    ;;
  *) log "usage: $0 start|stop"; exit 2 ;;
esac
