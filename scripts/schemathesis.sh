#!/usr/bin/env bash
# Property-based API tests: schemathesis (pinned, from PyPI) against a live hookrelay server,
# driven by the server's own /api/v1/openapi.json, with schemathesis' standard checks (no
# server errors; status codes, content types, headers and bodies conform to the document;
# data the document forbids is rejected).
#
# The server runs on a temporary SQLite database with an admin key made here; a tenant and a
# tenant key are created through the API. Tenant and public routes are tested with the tenant
# key, admin routes with the admin key.
#
# Generated webhook URLs are arbitrary, and test sends and event deliveries really connect.
# So the server and schemathesis run in a network namespace of their own holding only
# loopback: no generated address outside this machine can be reached.
#
# Environment: SCHEMATHESIS_EXAMPLES (cases per operation and phase, default 30),
# SCHEMATHESIS_SEED (default fixed, so CI is reproducible; set another to explore),
# HOOKRELAY_BIN (default: builds target/debug/hookrelay).
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."

ST_VERSION=4.32.5
VENV="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-30}"
SEED="${SCHEMATHESIS_SEED:-20261202}"

if [ "${1:-}" != "--in-netns" ]; then
  # Outside the namespace: what needs the network (PyPI) or cargo.
  if ! "$VENV/bin/st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
    # --clear: a venv left by a moved or copied target/ has stale interpreter paths.
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
  fi
  if [ -z "${HOOKRELAY_BIN:-}" ]; then
    cargo build --quiet -p hookrelay --bin hookrelay
    export HOOKRELAY_BIN=target/debug/hookrelay
  fi
  unshare_flags=(--net)
  [ "$(id -u)" -eq 0 ] || unshare_flags=(--map-root-user --net)
  exec unshare "${unshare_flags[@]}" -- bash "$self" --in-netns
fi

ip link set lo up
started=$(date +%s)
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
admin_key="admin-$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')-schemathesis"

HOOKRELAY_ADMIN_KEY="$admin_key" "$HOOKRELAY_BIN" serve \
  --listen "127.0.0.1:$port" \
  --database-url "sqlite://$tmp/hookrelay.db" \
  --allow-private-targets 127.0.0.0/8,::1/128 \
  --retry-base 100ms --retry-max-delay 24h --shutdown-grace 1s \
  --rate-limit-per-key 0 --rate-limit-per-ip 0 --auth-failures-per-minute 0 --test-sends-per-minute 0 \
  --max-webhooks-per-tenant 0 \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log"; echo "server exited" >&2; exit 1; }
  sleep 0.1
done

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }
admin=(-H "Authorization: Bearer $admin_key" -H "Content-Type: application/json")
tenant_id=$(curl -fsS "${admin[@]}" -d '{"name": "schemathesis"}' "$base/api/v1/tenants" | json_field id)
tenant_key=$(curl -fsS "${admin[@]}" -d '{"name": "schemathesis"}' \
  "$base/api/v1/tenants/$tenant_id/keys" | json_field key)

# One worker: with two, Hypothesis once failed inside itself (a race between its threads),
# which would make CI flaky for no fault of the server.
st() {
  SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$PWD/scripts" "$VENV/bin/st" --config-file scripts/schemathesis.toml run "$base/api/v1/openapi.json" \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
    --request-timeout 20 --warnings off "$@"
}

status=0
echo "== schemathesis $ST_VERSION: tenant and public routes (tenant key)"
st --exclude-tag-regex '^(tenants|operational|event-types)$' -H "Authorization: Bearer $tenant_key" || status=1
echo "== schemathesis $ST_VERSION: admin routes (admin key)"
st --include-tag-regex '^(tenants|operational|event-types)$' -H "Authorization: Bearer $admin_key" || status=1

if [ "$status" -ne 0 ]; then
  echo "-- last lines of the server log:" >&2
  tail -n 40 "$tmp/server.log" >&2
fi
if grep -q "handler panicked\|internal error" "$tmp/server.log"; then
  echo "the server logged internal errors:" >&2
  grep -B2 -A5 "handler panicked\|internal error" "$tmp/server.log" | head -50 >&2
  status=1
fi
echo "schemathesis: $(($(date +%s) - started)) s, exit $status"
exit "$status"
