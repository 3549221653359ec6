#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine (root): the real parts the demo and the tests use,
# and the Python package with its test extras. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v curl >/dev/null || need+=(curl)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v podman >/dev/null || need+=(podman)
command -v buildah >/dev/null || need+=(buildah)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v wrk >/dev/null || need+=(wrk)  # bench/service.py's load generator
command -v valgrind >/dev/null || need+=(valgrind)  # bench/ingest_instructions.py counts with it
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! python3 -c "import container_mapping, pytest, hypothesis, jsonschema, docker, yaml, bcrypt, cryptography, fastapi, uvicorn, sqlalchemy, alembic, jwt, psycopg, httpx, schemathesis, selenium, azure.devops, azure.identity, azure.mgmt.security, azure.mgmt.resourcegraph, msrest, rich" 2>/dev/null \
   || [ "$(python3 -c 'import container_mapping,os;print(os.path.dirname(container_mapping.__file__))' 2>/dev/null)" != "$PWD/container_mapping" ]; then
  echo "setup: installing the package with its service, azure and test extras (pip)" >&2
  python3 -m pip install -q --disable-pip-version-check -e '.[service,azure,test]' 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
fi

if [ -f tools/tfx/package-lock.json ] && [ ! -x tools/tfx/node_modules/.bin/tfx ]; then
  echo "setup: installing tfx-cli from its lockfile (npm ci)" >&2
  npm ci --prefix tools/tfx --no-audit --no-fund --loglevel=error >/dev/null
fi
