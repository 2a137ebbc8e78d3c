#!/usr/bin/env bash
# End-to-end smoke test of a running hookrelay: creates a tenant and a key, exercises every
# endpoint of docs/api.md, delivers to `hookrelay listen` and checks the signature, then cleans
# up (webhooks deleted, key revoked). Prints `PASS <step>` or `FAIL <step>: <why>` per step and
# exits 1 if any step failed.
#
#   HOOKRELAY_ADMIN_KEY=… scripts/smoke.sh [BASE_URL]     (default http://127.0.0.1:8080)
#
# Needs bash, curl and jq. The server must be allowed to reach this machine's loopback
# (HOOKRELAY_ALLOW_PRIVATE_TARGETS=127.0.0.0/8), where the script runs `hookrelay listen`:
# HOOKRELAY_BIN names the binary (default: target/release/hookrelay, built by cargo first;
# without cargo, `hookrelay` on PATH).
# Tenants cannot be deleted through the API: the tenant made here ("smoke-…") stays, keyless.
set -uo pipefail

BASE_URL="${1:-${HOOKRELAY_URL:-http://127.0.0.1:8080}}"
BASE_URL="${BASE_URL%/}"
API="$BASE_URL/api/v1"
ADMIN_KEY="${HOOKRELAY_ADMIN_KEY:-}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

failures=0
passes=0
pass() { passes=$((passes + 1)); echo "PASS $1"; }
fail() { failures=$((failures + 1)); echo "FAIL $1: $2"; }

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "FAIL prerequisites: $tool is not installed"; exit 1; }
done
if [ -z "$ADMIN_KEY" ]; then
  echo "FAIL prerequisites: set HOOKRELAY_ADMIN_KEY to the server's admin key"
  exit 1
fi
if [ -n "${HOOKRELAY_BIN:-}" ]; then
  HOOKRELAY=("$HOOKRELAY_BIN")
elif command -v cargo >/dev/null && [ -f "$ROOT/Cargo.toml" ]; then
  # Built (a no-op when up to date), then run directly: a `cargo run` in the background would
  # outlive `kill`, and an old target/release binary may predate `listen`.
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p hookrelay \
    || { echo "FAIL prerequisites: cargo build --release failed"; exit 1; }
  HOOKRELAY=("$ROOT/target/release/hookrelay")
elif command -v hookrelay >/dev/null; then
  HOOKRELAY=(hookrelay)
else
  echo "FAIL prerequisites: no hookrelay binary: set HOOKRELAY_BIN"
  exit 1
fi

work="$(mktemp -d)"
listener_pid=""
tenant_id=""
key_id=""
webhooks=()

cleanup() {
  local id
  for id in "${webhooks[@]+"${webhooks[@]}"}"; do
    curl -s -o /dev/null -X DELETE "$API/webhooks/$id" -H "Authorization: Bearer $ADMIN_KEY" \
      -H "X-Tenant-Id: $tenant_id"
  done
  if [ -n "$key_id" ]; then
    curl -s -o /dev/null -X DELETE "$API/tenants/$tenant_id/keys/$key_id" \
      -H "Authorization: Bearer $ADMIN_KEY"
  fi
  if [ -n "$listener_pid" ]; then
    kill "$listener_pid" 2>/dev/null
    wait "$listener_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# call METHOD PATH KEY [JSON]: sets $status and $body (the answer).
call() {
  local method=$1 path=$2 key=$3 data=${4:-}
  local args=(-s -o "$work/body" -w '%{http_code}' -X "$method" "$API$path")
  [ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data "$data")
  status=$(curl "${args[@]}") || status="000 (no answer from $BASE_URL)"
  body=$(cat "$work/body" 2>/dev/null)
}

# expect STEP STATUS JQ-CHECK: passes when the last answer has STATUS and the jq expression
# is true of its body.
expect() {
  local step=$1 want=$2 check=${3:-true}
  if [ "$status" != "$want" ]; then
    fail "$step" "HTTP $status, expected $want: $(printf '%s' "$body" | head -c 300)"
    return 1
  fi
  if [ -n "$body" ] || [ "$check" != true ]; then
    if ! printf '%s' "$body" | jq -e "$check" >/dev/null 2>&1; then
      fail "$step" "answer does not satisfy $check: $(printf '%s' "$body" | head -c 300)"
      return 1
    fi
  fi
  pass "$step"
}

# Stops here (after cleaning up) when a step everything else needs has failed.
need() { echo "stopping: the steps after this one need it"; exit 1; }

# ---- health -------------------------------------------------------------------------------
health=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/healthz") || health=000
if [ "$health" = 200 ]; then pass "GET /healthz"; else fail "GET /healthz" "HTTP $health from $BASE_URL"; need; fi
ready=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz") || ready=000
if [ "$ready" = 200 ]; then pass "GET /readyz"; else fail "GET /readyz" "HTTP $ready"; fi

# ---- tenants and keys (admin) -------------------------------------------------------------
tenant_name="smoke-$(date -u +%Y%m%dT%H%M%SZ)-$$"
call POST /tenants "$ADMIN_KEY" "{\"name\": \"$tenant_name\"}"
expect "POST /tenants" 201 '.id | startswith("ten_")' || need
tenant_id=$(jq -r .id <<<"$body")
call GET "/tenants?limit=200" "$ADMIN_KEY"
expect "GET /tenants" 200 "any(.data[]; .id == \"$tenant_id\")"
call GET "/tenants/$tenant_id" "$ADMIN_KEY"
expect "GET /tenants/{id}" 200 ".name == \"$tenant_name\""
call POST "/tenants/$tenant_id/keys" "$ADMIN_KEY" '{"name": "smoke"}'
expect "POST /tenants/{id}/keys" 201 '(.key | startswith("hr_")) and (.id | startswith("key_"))' || need
key=$(jq -r .key <<<"$body")
key_id=$(jq -r .id <<<"$body")
call GET "/tenants/$tenant_id/keys" "$ADMIN_KEY"
expect "GET /tenants/{id}/keys" 200 "any(.data[]; .id == \"$key_id\" and (has(\"key\") | not))"

# ---- authentication -----------------------------------------------------------------------
call GET /webhooks ""
expect "no key is 401" 401 '.title == "Unauthorized"'
call GET /tenants "$key"
expect "tenant key on an admin route is 403" 403 '.status == 403'

# ---- the catalogue ------------------------------------------------------------------------
call GET /webhooks/events "$key"
expect "GET /webhooks/events" 200 'any(.data[]; .name == "message.new" and has("sample"))'

# ---- a receiver: hookrelay listen ---------------------------------------------------------
secret="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
"${HOOKRELAY[@]}" listen --port 0 --secret "$secret" --json >"$work/listen.out" 2>"$work/listen.err" &
listener_pid=$!
listen_url=""
for _ in $(seq 1 600); do
  listen_url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/listen.err" 2>/dev/null | head -n 1)
  [ -n "$listen_url" ] && break
  kill -0 "$listener_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -n "$listen_url" ]; then
  pass "hookrelay listen started ($listen_url)"
else
  fail "hookrelay listen started" "$(head -c 300 "$work/listen.err")"
  need
fi

# received JQ-CHECK: waits (30 s at most) for a delivery line of `hookrelay listen` matching.
# received CHECK [N]: at least N (default 1) deliveries printed by `listen` pass CHECK.
received() {
  local check=$1 count=${2:-1}
  for _ in $(seq 1 300); do
    jq -e -s "[.[] | select($check)] | length >= $count" "$work/listen.out" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# ---- webhooks CRUD ------------------------------------------------------------------------
call POST /webhooks "$key" "{\"name\": \"smoke\", \"url\": \"$listen_url/smoke\",
  \"events\": [\"message.new\", \"contact.created\"], \"secret\": \"$secret\"}"
expect "POST /webhooks" 201 ".secret == \"$secret\" and .status == \"active\"" || need
webhook_id=$(jq -r .id <<<"$body")
webhooks+=("$webhook_id")
call POST /webhooks "$key" '{"name": "bad", "url": "ftp://example.com", "events": ["message.nope"]}'
expect "POST /webhooks refuses bad fields (422)" 422 '[.errors[].field] == ["url", "events[0]"]'
call GET "/webhooks?is_active=true" "$key"
expect "GET /webhooks" 200 "any(.data[]; .id == \"$webhook_id\") and has(\"next_cursor\")"
call GET "/webhooks/$webhook_id" "$key"
expect "GET /webhooks/{id} (secret masked)" 200 ".id == \"$webhook_id\" and .secret != \"$secret\""
call GET "/webhooks/$webhook_id/secret" "$key"
expect "GET /webhooks/{id}/secret" 200 ".secret == \"$secret\""
call PATCH "/webhooks/$webhook_id" "$key" '{"retry_count": 5, "description": "smoke test"}'
expect "PATCH /webhooks/{id}" 200 '.retry_count == 5 and .description == "smoke test"'
call GET /webhooks/wh_00000000000000000000000000 "$key"
expect "GET /webhooks/{unknown} is 404" 404 '.title == "Not found"'

# ---- test send ----------------------------------------------------------------------------
call POST "/webhooks/$webhook_id/test" "$key" '{"event_type": "contact.created"}'
expect "POST /webhooks/{id}/test" 200 '.success == true and .response_status == 200'
if received '.event_type == "contact.created" and .verified == true'; then
  pass "test send received and verified by hookrelay listen"
else
  fail "test send received and verified by hookrelay listen" "$(tail -c 300 "$work/listen.out")"
fi

# ---- events -------------------------------------------------------------------------------
idem="smoke-$$-$RANDOM"
call POST /events "$key" "{\"type\": \"message.new\", \"idempotency_key\": \"$idem\",
  \"data\": {\"message_id\": \"$idem\", \"text\": \"smoke\"}}"
expect "POST /events" 202 '.deliveries == 1 and .duplicate == false'
event_id=$(jq -r .id <<<"$body")
call POST /events "$key" "{\"type\": \"message.new\", \"idempotency_key\": \"$idem\", \"data\": {}}"
expect "POST /events again with the idempotency key" 200 ".id == \"$event_id\" and .duplicate == true"
for _ in $(seq 1 300); do
  call GET "/events/$event_id" "$key"
  [ "$(jq -r '.deliveries[0].state' <<<"$body" 2>/dev/null)" = succeeded ] && break
  sleep 0.1
done
expect "GET /events/{id}: delivered" 200 '.deliveries[0].state == "succeeded" and .deliveries[0].attempts == 1'
if received ".webhook_id == \"$event_id\" and .verified == true and .attempt == 1 and .body.data.text == \"smoke\""; then
  pass "event received and verified by hookrelay listen"
else
  fail "event received and verified by hookrelay listen" "$(tail -c 300 "$work/listen.out")"
fi
call POST /events/batch "$key" '{"events": [
  {"type": "message.new", "data": {"n": 1}}, {"type": "contact.created", "data": {"n": 2}}]}'
expect "POST /events/batch" 202 '(.data | length) == 2 and all(.data[]; .deliveries == 1)'

# ---- the CLI sends too --------------------------------------------------------------------
if out=$(HOOKRELAY_URL="$BASE_URL" HOOKRELAY_KEY="$key" \
  "${HOOKRELAY[@]}" send message.new '{"text": "from the CLI"}' --wait --json 2>"$work/send.err"); then
  if jq -e '.deliveries[0].state == "succeeded"' >/dev/null 2>&1 <<<"$out"; then
    pass "hookrelay send --wait"
  else
    fail "hookrelay send --wait" "unexpected output: $(head -c 300 <<<"$out")"
  fi
else
  fail "hookrelay send --wait" "$(head -c 300 "$work/send.err")"
fi

# ---- logs and statistics ------------------------------------------------------------------
call GET "/webhooks/$webhook_id/logs?event_type=message.new&success=true" "$key"
expect "GET /webhooks/{id}/logs" 200 \
  '(.data | length) >= 2 and all(.data[]; .event_type == "message.new" and .is_success == true)'
log_id=$(jq -r '.data[0].id' <<<"$body")
call GET "/webhooks/$webhook_id/logs/$log_id" "$key"
expect "GET /webhooks/{id}/logs/{log_id}" 200 '.request_headers | tostring | test("webhook-signature")'
call GET "/webhooks/$webhook_id/stats" "$key"
expect "GET /webhooks/{id}/stats" 200 '.total_deliveries >= 3 and .success_rate == 1'

# ---- secret rotation: the old secret keeps verifying during the grace period ---------------
call POST "/webhooks/$webhook_id/rotate-secret" "$key" '{"grace_period": "1h"}'
expect "POST /webhooks/{id}/rotate-secret" 200 ".secret != \"$secret\""
call POST /events "$key" '{"type": "message.new", "data": {"text": "after rotation"}}'
rotated_event=$(jq -r .id <<<"$body")
if received ".webhook_id == \"$rotated_event\" and .verified == true"; then
  pass "delivery after rotation verifies with the old secret"
else
  fail "delivery after rotation verifies with the old secret" "$(tail -c 300 "$work/listen.out")"
fi

# ---- deliveries, replay, recovery ----------------------------------------------------------
call GET "/webhooks/$webhook_id/deliveries?status=succeeded&limit=5" "$key"
expect "GET /webhooks/{id}/deliveries" 200 \
  "any(.data[]; .event_id == \"$event_id\" and .status == \"succeeded\")"
call POST "/events/$event_id/replay" "$key" "{\"webhook_ids\": [\"$webhook_id\"]}"
expect "POST /events/{id}/replay" 202 ".deliveries[0].webhook_id == \"$webhook_id\""
if received ".webhook_id == \"$event_id\" and .verified == true and .attempt == 1 and .body.data.text == \"smoke\"" 2; then
  pass "replay received with the event's webhook-id"
else
  fail "replay received with the event's webhook-id" "$(tail -c 300 "$work/listen.out")"
fi
since=$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)
call POST "/webhooks/$webhook_id/recover" "$key" "{\"since\": \"$since\"}"
expect "POST /webhooks/{id}/recover" 202 '.state == "running" or .state == "completed"'
recovery_id=$(jq -r .id <<<"$body")
call GET "/webhooks/$webhook_id/recoveries/$recovery_id" "$key"
expect "GET /webhooks/{id}/recoveries/{recovery_id}" 200 ".id == \"$recovery_id\""

# ---- clean up, checking each answer -------------------------------------------------------
call DELETE "/webhooks/$webhook_id" "$key"
expect "DELETE /webhooks/{id}" 204 && webhooks=()
call GET "/webhooks/$webhook_id" "$key"
expect "GET /webhooks/{id} after DELETE is 404" 404
call DELETE "/tenants/$tenant_id/keys/$key_id" "$ADMIN_KEY"
expect "DELETE /tenants/{id}/keys/{key_id}" 204 && key_id=""
call GET /webhooks "$key"
expect "a revoked key is 401" 401

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
