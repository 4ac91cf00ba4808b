#!/usr/bin/env python3
"""A webhook receiver for Ladder's tests (tests/it/webhooks.rs).

It checks every delivery with the official `standardwebhooks` package, an
implementation that is not Ladder's, and also checks that the same library
refuses the delivery with its body tampered with. It prints its port, then
serves on 127.0.0.1:

  POST /_control  {"secret": ..., "status": 200, "delay": 0.0, "redirect": null}
                  sets how it answers from now on
  GET  /_log      {"in_flight": n, "deliveries": [...]}: the deliveries
                  answered so far, in arrival order, each with its status
  POST any other  a delivery: checked, held for `delay` seconds, answered
                  as set (400 if the signature does not verify), logged

An optional argument is the port to listen on (to come back up after a stop).
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

settings = {"secret": None, "status": 200, "delay": 0.0, "redirect": None}
deliveries = []
in_flight = [0]
lock = threading.Lock()


def refused(secret, body, headers):
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return True
    return False


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/_log":
            return self.answer(404)
        with lock:
            body = json.dumps({"in_flight": in_flight[0], "deliveries": deliveries}).encode()
        self.answer(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/_control":
            with lock:
                settings.update(json.loads(body))
            return self.answer(200)
        with lock:
            current = dict(settings)
            in_flight[0] += 1
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {
            "path": self.path,
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "content_type": headers.get("content-type"),
            "body": body.decode("utf-8", "replace"),
            "arrived": time.time(),
        }
        try:
            entry["payload"] = Webhook(current["secret"]).verify(body, headers)
            entry["verified"] = True
            entry["tampered_refused"] = refused(current["secret"], body + b" ", headers)
        except Exception as e:  # a wrong secret, an old timestamp, no headers
            entry["verified"] = False
            entry["error"] = str(e)
        if current["delay"]:
            time.sleep(current["delay"])
        if not entry["verified"]:
            status, headers = 400, []
        elif current["redirect"]:
            status, headers = 307, [("Location", current["redirect"])]
        else:
            status, headers = int(current["status"]), []
        entry["answered"] = status
        with lock:
            deliveries.append(entry)
            in_flight[0] -= 1
        self.answer(status, b"", headers)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
