"""Schemathesis hooks for hookrelay (loaded through SCHEMATHESIS_HOOKS by schemathesis.sh).

One rule of the API cannot be stated in JSON Schema: a new API key's `expires_at` must lie in
the future (the document says so in words). A generated `expires_at` that is a valid date but
not at least a minute ahead is moved to the end of 2099, so "schema-valid data is accepted" is
checked on the dates the rule allows instead of failing on the clock. Anything that is not a
date is left as generated (it is what negative tests send), and no check is turned off.

A webhook's `headers` may not use reserved names (`Host`, `webhook-*`, …) nor the same name
twice in different case; the schema states the name syntax but not these two rules. Generated
headers that break only them are dropped, so the rest of the body is still tested.

A webhook's `retry_schedule` entries must be more than zero and within the server's longest
retry delay (a setting: schemathesis.sh starts the server with 24h, RETRY_MAX_DELAY_MS here),
and `retry_schedule` may not come with `retry_count`. The document states the second rule (a
`not` over the body), but the examples and coverage phases build bodies from the properties
alone and send the pair as valid. A schedule of the documented form that breaks only these
rules is mended (such an entry becomes "5s"; beside `retry_count` the schedule is dropped); one
that is not of the form is left as generated. This runs in `before_call`, so it covers every
phase, and schemathesis validates the mended body against the document again before it
decides whether the API had to accept or refuse it: a mended body is never judged by what
was generated.

A webhook's `filter` has three bounds JSON Schema cannot state (the document says them in
words): at most 4096 bytes as JSON, 64 conditions (each path and each operator), and `$and`,
`$or`, `$not` nested at most 8 deep. A generated filter past one of them is dropped from the
body in `before_call`, as a schedule is mended, so the rest of the body is still tested.
"""

import json
import re
from datetime import datetime, timedelta, timezone

import schemathesis

FAR_FUTURE = "2099-12-31T23:59:59Z"


def _is_past_date(value):
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return at.tzinfo is not None and at <= datetime.now(timezone.utc) + timedelta(minutes=1)


RESERVED = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    "te", "trailer", "expect", "content-type", "content-encoding", "user-agent",
}
RESERVED_PREFIXES = ("webhook-", "x-hookrelay-", "proxy-", ":")
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _allowed_headers(headers):
    kept, seen = {}, set()
    for name, value in headers.items():
        lower = name.lower() if isinstance(name, str) else name
        if isinstance(name, str) and TOKEN.fullmatch(name):
            if lower in RESERVED or lower.startswith(RESERVED_PREFIXES) or lower in seen:
                continue
            seen.add(lower)
        kept[name] = value
    return kept


RETRY_MAX_DELAY_MS = 24 * 3600 * 1000
SCHEDULE_MAX = 20
DELAY = re.compile(r"[0-9]{1,7}(ms|s|m|h)( [0-9]{1,7}(ms|s|m|h))*")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def _delay_ms(text):
    return sum(int(part[:-2]) if part.endswith("ms") else int(part[:-1]) * UNIT_MS[part[-1]]
               for part in text.split(" "))


def _schedule_of_the_form(schedule):
    if schedule == "standard":
        return True
    return (
        isinstance(schedule, list)
        and 1 <= len(schedule) <= SCHEDULE_MAX
        and all(isinstance(d, str) and DELAY.fullmatch(d) for d in schedule)
    )


def _allowed_schedule(body):
    schedule = body.get("retry_schedule")
    if not _schedule_of_the_form(schedule):
        return body
    if "retry_count" in body:
        return {k: v for k, v in body.items() if k != "retry_schedule"}
    if isinstance(schedule, list):
        mended = [d if 0 < _delay_ms(d) <= RETRY_MAX_DELAY_MS else "5s" for d in schedule]
        return dict(body, retry_schedule=mended)
    return body


WEBHOOK_PATHS = (
    "/api/v1/webhooks",
    "/api/v1/webhooks/{id}",
    "/api/v1/operational-webhooks",
    "/api/v1/operational-webhooks/{id}",
)


FILTER_MAX_BYTES = 4096
FILTER_MAX_CONDITIONS = 64
FILTER_MAX_DEPTH = 8


def _filter_cost(value, depth):
    """(conditions, deepest nesting) of a filter object, counted as the server counts them."""
    conditions, deepest = 0, depth
    for key, inner in value.items():
        if key.startswith("$"):
            items = inner if isinstance(inner, list) else [inner]
            for item in items:
                if isinstance(item, dict):
                    c, d = _filter_cost(item, depth + 1)
                    conditions, deepest = conditions + c, max(deepest, d)
                else:
                    deepest = max(deepest, depth + 1)
        else:
            conditions += 1
            c, d = _condition_cost(inner, depth)
            conditions, deepest = conditions + c, max(deepest, d)
    return conditions, deepest


def _condition_cost(value, depth):
    if not isinstance(value, dict) or not any(k.startswith("$") for k in value):
        return 0, depth
    conditions, deepest = 0, depth
    for op, operand in value.items():
        conditions += 1
        if op == "$not":
            deepest = max(deepest, depth + 1)
            c, d = _condition_cost(operand, depth + 1)
            conditions, deepest = conditions + c, max(deepest, d)
    return conditions, deepest


def _allowed_filter(body):
    """The body without its `filter` if that filter breaks only the unstated bounds."""
    value = body.get("filter")
    if not isinstance(value, dict):
        return body
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    conditions, depth = _filter_cost(value, 0)
    # A little below the byte bound: Python and the server may write numbers differently.
    if size > FILTER_MAX_BYTES - 64 or conditions > FILTER_MAX_CONDITIONS or depth > FILTER_MAX_DEPTH:
        return {k: v for k, v in body.items() if k != "filter"}
    return body


@schemathesis.hook
def before_call(context, case, **kwargs):
    operation = case.operation
    body = case.body
    if operation.path in WEBHOOK_PATHS and isinstance(body, dict):
        mended = _allowed_filter(_allowed_schedule(body))
        if mended is not body:
            # In place, so schemathesis sees the edit and validates the body again.
            body.clear()
            body.update(mended)


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if (
        operation is not None
        and operation.path in WEBHOOK_PATHS
        and isinstance(body, dict)
        and isinstance(body.get("headers"), dict)
    ):
        body = dict(body, headers=_allowed_headers(body["headers"]))
    if (
        operation is not None
        and operation.method.upper() == "POST"
        and operation.path == "/api/v1/tenants/{id}/keys"
        and isinstance(body, dict)
        and isinstance(body.get("expires_at"), str)
        and _is_past_date(body["expires_at"])
    ):
        body = dict(body, expires_at=FAR_FUTURE)
    return body

