"""Schemathesis hooks for hookrelay (loaded through SCHEMATHESIS_HOOKS by schemathesis.sh).

One rule of the API cannot be stated in JSON Schema: a new API key's `expires_at` must lie in
the future (the document says so in words). Generated bodies whose `expires_at` is not at
least a minute ahead are dropped, so "schema-valid data is accepted" is checked on the bodies
the rule allows, instead of failing on the clock. Nothing else is filtered, and no check is
turned off.
"""

from datetime import datetime, timedelta, timezone

import schemathesis


@schemathesis.hook
def filter_body(context, body):
    operation = context.operation
    if operation is None or operation.method.upper() != "POST":
        return True
    if operation.path != "/api/v1/tenants/{id}/keys" or not isinstance(body, dict):
        return True
    value = body.get("expires_at")
    if not isinstance(value, str):
        return True
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return True
    if at.tzinfo is None:
        return True
    return at > datetime.now(timezone.utc) + timedelta(minutes=1)
