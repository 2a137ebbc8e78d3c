"""Receive hookrelay webhooks and verify their signatures with the standard library only.

    WEBHOOK_SECRET=whsec_... PORT=3000 python3 verify.py

Answers 204 to a valid delivery, 400 to anything else.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60

secret = os.environ.get("WEBHOOK_SECRET", "")
if not secret.startswith("whsec_"):
    sys.exit("set WEBHOOK_SECRET to the webhook's signing secret (whsec_...)")
# The HMAC key is the base64-decoded part after `whsec_`.
KEY = base64.b64decode(secret[len("whsec_"):])


class Invalid(Exception):
    pass


def verify(headers, raw_body: bytes) -> None:
    """Raises Invalid unless raw_body carries a valid, fresh hookrelay signature."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise Invalid("missing webhook-* headers")

    # Refuse old (replayed) and future timestamps.
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise Invalid("bad webhook-timestamp")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise Invalid("timestamp outside the tolerance")

    # Sign "<id>.<timestamp>.<raw body>" and compare, in constant time, with every
    # `v1,<base64>` entry: during a secret rotation there are two.
    signed = f"{msg_id}.{timestamp}.".encode() + raw_body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    for entry in signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
            return
    raise Invalid("no matching signature")


# Deliveries are at least once: remember the ids already handled (use your database).
seen = set()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        # Verify the raw bytes, before any JSON parsing.
        raw_body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            verify(self.headers, raw_body)  # self.headers looks names up case-insensitively
        except Invalid as err:
            print(f"rejected: {err}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        msg_id = self.headers["webhook-id"]
        if msg_id in seen:
            print(f"duplicate {msg_id}", flush=True)
        else:
            seen.add(msg_id)
            event = json.loads(raw_body)
            print(f"verified {msg_id} {event['type']}", flush=True)
        self.send_response(204)  # answer fast; do slow work after
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), Receiver)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
