"""Receive hookrelay webhooks and verify them with the official `standardwebhooks` package.

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    WEBHOOK_SECRET=whsec_... PORT=3000 .venv/bin/python verify_standardwebhooks.py

Answers 204 to a valid delivery, 400 to anything else.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret = os.environ.get("WEBHOOK_SECRET", "")
if not secret.startswith("whsec_"):
    sys.exit("set WEBHOOK_SECRET to the webhook's signing secret (whsec_...)")
# The library takes the secret as hookrelay shows it, `whsec_` prefix included.
webhook = Webhook(secret)

# Deliveries are at least once: remember the ids already handled (use your database).
seen = set()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        raw_body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            # Checks the timestamp (5 minutes), compares in constant time, accepts either
            # signature during a rotation, and returns the parsed JSON.
            event = webhook.verify(raw_body, dict(self.headers))
        except (WebhookVerificationError, ValueError) as err:
            # ValueError: a malformed signature header the library could not split or decode.
            print(f"rejected: {err}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        msg_id = self.headers["webhook-id"]
        if msg_id in seen:
            print(f"duplicate {msg_id}", flush=True)
        else:
            seen.add(msg_id)
            print(f"verified {msg_id} {event['type']}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), Receiver)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
