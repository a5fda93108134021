"""A help desk's receiver for Coverline's events: verifies each delivery with an off-the-shelf
Standard Webhooks library, keeps the latest coverage per product, and drops stale deliveries by
their per-product sequence number (deliveries are at least once, and retries reorder them).

    python examples/helpdesk_receiver.py --port 8900 --secret whsec_…

Register it with `POST /v1/webhook-endpoints {"url": "http://127.0.0.1:8900/hooks",
"event_types": ["coverage.changed"], "locale": "sv"}` (admin) and run `coverline worker`
(`make run` starts one).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Coverage:
    """The latest coverage.changed per product, by sequence number. Deliveries arrive at once on
    several threads: each is compared and kept (and told) under one lock, so an older one that
    lands a moment later can never replace a newer one, and two lines never mix."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def apply(self, event: dict[str, Any]) -> bool:
        """Keep and print the event when it is newer than what is known for its product."""
        product = event["data"]["product_id"]
        with self.lock:
            known = self.latest.get(product)
            if known is not None and known["sequence"] >= event["sequence"]:
                return False  # a retry of one we have, or an older one arriving late
            self.latest[product] = event
            data, texts = event["data"], event.get("texts") or {}
            state = "covered" if data["covered"] else f"not covered ({data['reason']})"
            print(f"{product} #{event['sequence']}: {state}. {texts.get('summary', '')}", flush=True)
            return True


def serve(port: int, secret: str) -> None:
    verifier = Webhook(secret)
    coverage = Coverage()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                event = verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
            except WebhookVerificationError:
                self.send_response(401)
                self.end_headers()
                return
            if event["type"] == "coverage.changed":
                coverage.apply(event)
            self.send_response(204)  # any 2xx: delivered
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_… secret")
    args = parser.parse_args()
    print(json.dumps({"listening": f"http://127.0.0.1:{args.port}/hooks"}), flush=True)
    serve(args.port, args.secret)
