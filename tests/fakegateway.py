"""A fake payment gateway for the tests: the Stripe-like protocol that
agora-worker's http provider speaks, on loopback.

  python3 fakegateway.py PORTFILE [PORT [ADDRESS]]

(ADDRESS: 127.0.0.1 unless told; the cluster's peers host gives its own.)

POST /v1/charges and /v1/refunds take form fields and honour
Idempotency-Key: a key seen before gets the stored answer and makes no
new charge.  Every charge made is recorded by the payment id in
metadata[payment_id].  The tests steer it through

  POST /_mode {"mode": "ok" | "fail" | "stall", "stall": seconds,
               "stall_keys": [Idempotency-Key, ...]}
  GET  /_state -> {"charges": {payment_id: [charge ids]}, "refunds": {...},
                   "calls": n, "calls_by_key": {key: n},
                   "traces": {key: [traceparent of each call]}}

"fail" answers 500 and stores nothing; "stall" waits, then answers (and
charges) as "ok" would, as a slow real gateway does after the client gave
up.  A call whose key is in stall_keys stalls so in any mode.  This is the one fake the tests use: the gateway is a third party.
"""
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"mode": "ok", "stall": 2.0, "calls": 0, "charges": {}, "refunds": {}, "keys": {},
         "next": 1, "calls_by_key": {}, "traces": {}, "stall_keys": []}


def answer_charge(form):
    pid = form.get("metadata[payment_id]", "")
    if form.get("source") == "tok_chargeDeclined":
        return 402, {"error": {"type": "card_error", "code": "card_declined"}}
    ch = "ch_%d" % state["next"]
    state["next"] += 1
    state["charges"].setdefault(pid, []).append(ch)
    return 200, {"id": ch, "object": "charge", "status": "succeeded",
                 "amount": int(form.get("amount", "0"))}


def answer_refund(form):
    pid = form.get("metadata[payment_id]", "")
    re_id = "re_%d" % state["next"]
    state["next"] += 1
    state["refunds"].setdefault(pid, []).append(re_id)
    return 200, {"id": re_id, "object": "refund", "status": "succeeded",
                 "charge": form.get("charge")}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_state":
            with lock:
                self.send(200, {k: state[k] for k in ("charges", "refunds", "calls", "mode",
                                                      "calls_by_key", "traces")})
        else:
            self.send(404, {"error": {"code": "not_found"}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_mode":
            with lock:
                state.update(json.loads(raw))
            return self.send(200, {"ok": True})
        if self.path not in ("/v1/charges", "/v1/refunds"):
            return self.send(404, {"error": {"code": "not_found"}})
        if self.headers.get("Authorization", "") != "Bearer sk_test_agora":
            return self.send(401, {"error": {"code": "unauthorized"}})
        with lock:
            state["calls"] += 1
            k = self.headers.get("Idempotency-Key", "")
            state["calls_by_key"][k] = state["calls_by_key"].get(k, 0) + 1
            # The W3C traceparent of each call, by its key: the trace the
            # call is part of.
            state["traces"].setdefault(k, []).append(self.headers.get("traceparent"))
            mode, stall = state["mode"], state["stall"]
            slow = k in state["stall_keys"]
        if mode == "fail":
            return self.send(500, {"error": {"code": "internal"}})
        if mode == "stall" or slow:
            time.sleep(stall)
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        key = self.path + " " + self.headers.get("Idempotency-Key", "")
        with lock:
            if key not in state["keys"]:
                fn = answer_charge if self.path == "/v1/charges" else answer_refund
                state["keys"][key] = fn(form)
            status, obj = state["keys"][key]
        try:
            self.send(status, obj)
        except OSError:
            pass  # the client gave up (a stall); the charge stands


def main():
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    addr = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    srv = ThreadingHTTPServer((addr, port), Handler)
    # Written whole, then renamed: a reader never sees half a number.
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
