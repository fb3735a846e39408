"""agora-worker with the simulated gateway, against the real stack:
orders paid as soon as they are placed (LISTEN/NOTIFY), declines, transient failures retried,
POST /payments, refunds, cancelling a paid order, expiry, housekeeping,
the signed webhook, and agoractl outbox."""
import json
import os
import signal
import time
import uuid

from agoratest import (Tap, config_value, ctl, mc_get, need_stack, new_user, psql, request,
                       run_worker, sign, start_worker, wait_for)

need_stack()
# Payments only: the paid orders' invoices and mails are worker_invoices.py's.
PAY = ("--topics", "payment.charge,payment.refund")
t = Tap()
RUN = uuid.uuid4().hex[:10]
LOG = os.path.join(os.environ.get("AGORA_BUILDDIR", "."), "tests", "worker_payments.worker.log")
# Fast retries, and the slowest poll there is (60 s): a worker woken
# only by its poll would find nothing for a minute, so every order paid
# here within the waits below (30 s at most) proves that LISTEN/NOTIFY,
# or the wait for a retry's due time, woke it, however loaded the
# machine.
POLL_S = 60
FAST = {"AGORA_OUTBOX_BACKOFF_MS": "50", "AGORA_WORKER_POLL_MS": str(POLL_S * 1000)}
ADM = new_user("wp.admin.%s@example.com" % RUN, role="admin")
A = new_user("wp.a.%s@example.com" % RUN)
B = new_user("wp.b.%s@example.com" % RUN)


def product(stock=100, price=1500):
    r = request("POST", "/api/v1/products", headers=ADM, body={
        "sku": "WP-%s-%s" % (RUN, uuid.uuid4().hex[:8]), "name": "Paid thing",
        "price_cents": price, "stock": stock})
    assert r.status == 201, r
    return r.json()["id"]


def inventory(pid):
    return request("GET", "/api/v1/inventory/" + pid).json() or {}


def order(h, pid, token=None, qty=1):
    body = {"items": [{"product_id": pid, "quantity": qty}]}
    if token:
        body["payment"] = {"method": "card", "token": token}
    return request("POST", "/api/v1/orders", body=body, headers=h).json()


def wait_order(h, oid, want, seconds=10):
    """Poll the order until it has status want; (the order, seconds taken or None)."""
    got = {}

    def reached():
        got["d"] = request("GET", "/api/v1/orders/" + oid, headers=h).json()
        return got["d"].get("status") == want and got["d"].get("payment_status") != "refund_pending"
    took = wait_for(reached, seconds)
    return got.get("d"), took


def payments(h, oid):
    return request("GET", "/api/v1/orders/%s/payments" % oid, headers=h).json().get("data", [])


P = product()
w = start_worker(*PAY, "--loop", "--deadline", "300", env=FAST, log=LOG)


def worker_waiting():
    """The worker has LISTENed, drained and asked when the next row is
    due: it waits now, and only a NOTIFY (or the poll) wakes it."""
    return psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND query "
                "LIKE 'SELECT COALESCE((extract(epoch FROM min(next_attempt_at)%'",
                admin=False)[1] not in ("", "0")


t.ok(wait_for(worker_waiting, 30) is not None, "the worker starts and waits for work")

# --- charges ------------------------------------------------------------------
o = order(A, P, "tok_visa")
d, took = wait_order(A, o["id"], "paid", POLL_S / 2)
t.ok(took is not None and d["payment_status"] == "paid",
     "an order paid with tok_visa is paid before the worker's poll came (LISTEN/NOTIFY, "
     "%.0f ms)" % ((took or 0) * 1000), d)
pay = payments(A, o["id"])
t.ok(len(pay) == 1 and pay[0]["status"] == "succeeded" and pay[0]["attempts"] == 1
     and pay[0]["provider"] == "simulated" and pay[0]["provider_ref"]
     and pay[0]["amount_cents"] == 1500, "GET /orders/{id}/payments: one succeeded payment", pay)
r = request("GET", "/api/v1/payments/" + pay[0]["id"], headers=A)
t.ok(r.status == 200 and r.json() == pay[0], "GET /payments/{id} by the owner", r)
r = request("GET", "/api/v1/payments/" + pay[0]["id"], headers=B)
t.ok(r.is_problem(404), "another user's payment: 404", r)
r = request("GET", "/api/v1/orders/%s/payments" % o["id"], headers=B)
t.ok(r.is_problem(404), "another user's order payments: 404", r)
_, ev, _ = psql("SELECT string_agg(status, ',' ORDER BY seq) FROM order_events WHERE order_id = %s"
                % o["id"])
t.ok(ev == "pending,paid", "the paid event is recorded", ev)
PAID = o

before = inventory(P)
o = order(A, P, "tok_chargeDeclined", qty=2)
d, took = wait_order(A, o["id"], "payment_failed")
pay = payments(A, o["id"])
t.ok(took is not None and d["payment_status"] == "failed" and pay[0]["failure_code"] == "card_declined",
     "tok_chargeDeclined: payment_failed, card_declined", (d, pay))
t.ok(inventory(P)["reserved"] == before["reserved"], "and the stock is released", inventory(P))

o = order(A, P, "tok_flaky")
d, took = wait_order(A, o["id"], "paid", 15)
pay = payments(A, o["id"])
t.ok(took is not None and pay[0]["attempts"] == 3,
     "tok_flaky: two transient failures, then paid on the third attempt", pay)

# --- POST /payments -----------------------------------------------------------
o = order(A, P)
r = request("POST", "/api/v1/payments", headers=B,
            body={"order_id": o["id"], "method": "card", "token": "tok_visa"})
t.ok(r.is_problem(404), "paying another user's order: 404", r)
for body, want in [({"order_id": o["id"], "method": "cash", "token": "x"}, 422),
                   ({"order_id": o["id"], "method": "card"}, 422),
                   ({"order_id": "999999999", "method": "card", "token": "tok_visa"}, 404),
                   ({"order_id": 5, "method": "card", "token": "tok_visa"}, 400)]:
    r = request("POST", "/api/v1/payments", headers=A, body=body)
    t.ok(r.is_problem(want), "POST /payments %s: %d" % (json.dumps(body), want), r)
key = {"Idempotency-Key": "pay-" + RUN}
r = request("POST", "/api/v1/payments", headers=dict(A, **key),
            body={"order_id": o["id"], "method": "card", "token": "tok_visa"})
p1 = r.json() or {}
t.ok(r.status == 202 and p1.get("status") == "pending" and p1.get("amount_cents") == 1500
     and r.header("Location") == "/api/v1/payments/%s" % p1.get("id"),
     "POST /payments: 202, pending", r)
r2 = request("POST", "/api/v1/payments", headers=dict(A, **key),
             body={"order_id": o["id"], "method": "card", "token": "tok_visa"})
t.ok(r2.status == 202 and r2.body == r.body and r2.header("Idempotent-Replayed") == "true",
     "a replay with the same key: the same answer", r2)
d, took = wait_order(A, o["id"], "paid")
t.ok(took is not None, "the worker charges it", d)
r = request("POST", "/api/v1/payments", headers=A,
            body={"order_id": o["id"], "method": "card", "token": "tok_visa"})
t.ok(r.is_problem(409, "order_not_awaiting_payment"), "a paid order: 409", r)

# --- refunds ------------------------------------------------------------------
pid = payments(A, PAID["id"])[0]["id"]
r = request("POST", "/api/v1/payments/%s/refund" % pid, headers=A)
t.ok(r.is_problem(403), "a customer cannot refund: 403", r)
RK = dict(ADM, **{"Idempotency-Key": "refund-" + RUN})
r = request("POST", "/api/v1/payments/%s/refund" % pid, headers=RK)
t.ok(r.status == 202 and r.json().get("refund_status") == "pending"
     and r.header("Idempotent-Replayed") is None, "an admin refunds: 202", r)
# (Asked again for real, the refund would be 409 not_refundable now.)
r2 = request("POST", "/api/v1/payments/%s/refund" % pid, headers=RK)
t.ok(r2.status == 202 and r2.body == r.body and r2.header("Idempotent-Replayed") == "true",
     "the refund again with its Idempotency-Key: the same 202 and body, replayed", r2)
r = request("POST", "/api/v1/payments/%s/refund" % pid, headers=ADM)
t.ok(r.is_problem(409, "not_refundable"), "a second refund: 409", r)
wait_for(lambda: request("GET", "/api/v1/payments/" + pid,
                         headers=A).json().get("status") == "refunded", 5)
d = request("GET", "/api/v1/orders/" + PAID["id"], headers=A).json()
t.ok(request("GET", "/api/v1/payments/" + pid, headers=A).json().get("status") == "refunded"
     and d["payment_status"] == "refunded", "the worker refunds it", d)
failed = payments(A, request("GET", "/api/v1/orders?status=payment_failed",
                             headers=A).json()["data"][0]["id"])[0]["id"]
r = request("POST", "/api/v1/payments/%s/refund" % failed, headers=RK)
t.ok(r.is_problem(422, "idempotency_key_reused"),
     "the refund's Idempotency-Key on another payment: 422 idempotency_key_reused", r)
r = request("POST", "/api/v1/payments/%s/refund" % failed, headers=ADM)
t.ok(r.is_problem(409, "not_refundable"), "a failed payment cannot be refunded", r)
r = request("POST", "/api/v1/payments/999999999/refund", headers=ADM)
t.ok(r.is_problem(404), "an unknown payment: 404", r)

# Cancelling a paid order refunds it and gives the stock back.
o = order(A, P, "tok_visa", qty=3)
wait_order(A, o["id"], "paid")
r = request("PUT", "/api/v1/orders/%s/cancel" % o["id"], headers=A)
d, took = wait_order(A, o["id"], "cancelled")
pay = payments(A, o["id"])
t.ok(r.status == 200 and d["payment_status"] == "refunded" and pay[0]["status"] == "refunded",
     "cancelling a paid order refunds it through the worker", (d, pay))

# --- expiry and housekeeping --------------------------------------------------
before = inventory(P)
o = order(B, P, qty=4)
psql("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = %s" % o["id"])
psql("INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at) "
     "SELECT user_id, 'old-%s', 'x', 201, '{}', now() - interval '25 hours' FROM orders "
     "WHERE id = %s" % (RUN, o["id"]))
rc = run_worker(*PAY, "--once", env=FAST, log=LOG)
d = request("GET", "/api/v1/orders/" + o["id"], headers=B).json()
_, detail, _ = psql("SELECT detail FROM order_events WHERE order_id = %s ORDER BY seq DESC LIMIT 1"
                    % o["id"])
t.ok(rc == 0 and d["status"] == "cancelled" and detail == "expired",
     "an unpaid order past expires_at is cancelled with detail expired", (rc, d, detail))
t.ok(inventory(P)["reserved"] == before["reserved"], "and its stock released", inventory(P))
_, n, _ = psql("SELECT count(*) FROM idempotency_keys WHERE key = 'old-%s'" % RUN)
t.ok(n == "0", "idempotency keys older than 24 hours are removed", n)

# --- the webhook --------------------------------------------------------------
with open(config_value("webhook_secret_file")) as f:
    SECRET = f.read().strip()


def hook(obj, secret=SECRET, t=None, raw=None):
    body = raw if raw is not None else json.dumps(obj).encode()
    h = {"Content-Type": "application/json"}
    if secret is not None:
        h["Agora-Signature"] = sign(secret, body, t)
    return request("POST", "/api/v1/payments/webhook", body=body, headers=h)


def unworked_payment(h):
    """A pending payment no worker will charge: its outbox row is gone."""
    o = order(h, P)
    _, pid, _ = psql(["BEGIN", "SELECT payment_create(%s, '{\"method\": \"card\", "
                      "\"token\": \"tok_visa\", \"provider\": \"http\"}')" % o["id"],
                      "DELETE FROM outbox WHERE topic = 'payment.charge' AND payload->>'payment_id' "
                      "= (SELECT max(id)::text FROM payments WHERE order_id = %s)" % o["id"],
                      "COMMIT"])
    return o, pid


o, pid = unworked_payment(A)
ev = {"id": "evt_%s_1" % RUN, "type": "charge.succeeded",
      "data": {"payment_id": pid, "provider_ref": "ch_hook"}}
r = hook(ev, secret="wrong secret")
t.ok(r.is_problem(400, "bad_signature"), "a wrong signature: 400", r)
r = hook(ev, t=int(time.time()) - 301)
t.ok(r.is_problem(400, "bad_signature"), "a signature over 5 minutes old: 400", r)
r = hook(ev, secret=None)
t.ok(r.is_problem(400, "bad_signature"), "no signature: 400", r)
r = hook(None, raw=b'{"id": "evt_x", "type": "charge.succeeded", "data": {"payment_id": "1"}} x')
t.ok(r.is_problem(400), "signed garbage: 400", r)
# The signature is checked before the body is parsed: nobody without the
# secret makes the program build anything out of what they send.
r = hook(None, secret=None, raw=b"[" * 16 + b"]" * 16 + b" not json")
t.ok(r.is_problem(400, "bad_signature"), "unsigned garbage: bad_signature, not parsed", r)
r = hook(None, secret="wrong secret", raw=b'{"id": 1}')
t.ok(r.is_problem(400, "bad_signature"), "a body of the wrong shape, wrongly signed: "
     "bad_signature, not validated", r)
r = hook(ev, t=int(time.time()) + 301)
t.ok(r.is_problem(400, "bad_signature"), "a signature from over 5 minutes ahead: 400", r)
r = hook({"id": "evt_%s_0" % RUN, "type": "charge.succeeded", "data": {"payment_id": "abc"}})
t.ok(r.status == 200 and r.json()["result"] == "ignored",
     "an event about no payment of ours: acknowledged and ignored", r)
t.ok(request("GET", "/api/v1/orders/" + o["id"], headers=A).json()["status"] == "pending",
     "none of those changed anything", "")

def cache_versions():
    """The product's and the lists' cache versions, after reads that make them."""
    request("GET", "/api/v1/products/" + P)
    request("GET", "/api/v1/products?limit=1")
    return mc_get("agora:pv:" + P), mc_get("agora:cv")


versions = cache_versions()
body = json.dumps(ev).encode()
both = sign("an old secret", body) + "," + sign(SECRET, body).split(",")[1]
r = request("POST", "/api/v1/payments/webhook", body=body,
            headers={"Content-Type": "application/json", "Agora-Signature": both})
t.ok(r.status == 200 and r.json() == {"received": True, "result": "applied"},
     "a signed charge.succeeded is applied (one of two v1 signatures matching)", r)
d = request("GET", "/api/v1/orders/" + o["id"], headers=A).json()
p = request("GET", "/api/v1/payments/" + pid, headers=A).json()
t.ok(d["status"] == "paid" and p["status"] == "succeeded" and p["provider_ref"] == "ch_hook",
     "the order is paid", (d, p))
# A paid order keeps its stock reserved: the cached product stays.
# (The product's version only: a worker of the stack may move the lists'.)
t.ok(versions[0] is not None and cache_versions()[0] == versions[0],
     "charge.succeeded leaves the product's cache version alone", versions)
r = hook(ev)
_, nev, _ = psql("SELECT count(*) FROM order_events WHERE order_id = %s" % o["id"])
t.ok(r.status == 200 and r.json()["result"] == "duplicate" and nev == "2",
     "the same event again: a no-op", (r, nev))
# The gateway says it refunded that charge on its own.
r = hook({"id": "evt_%s_r" % RUN, "type": "charge.refunded", "data": {"payment_id": pid}})
d = request("GET", "/api/v1/orders/" + o["id"], headers=A).json()
p = request("GET", "/api/v1/payments/" + pid, headers=A).json()
t.ok(r.status == 200 and r.json()["result"] == "applied" and p["status"] == "refunded"
     and p["refund_status"] == "succeeded" and d["payment_status"] == "refunded"
     and d["status"] == "paid",
     "a charge.refunded webhook: the payment refunded, the order's payment_status refunded",
     (r, p, d))
# A charge.failed gives the stock back, and the cached product shows it.
o3, pid3 = unworked_payment(A)
versions = cache_versions()
stock = request("GET", "/api/v1/products/" + P).json()["stock_available"]
r = hook({"id": "evt_%s_3" % RUN, "type": "charge.failed",
          "data": {"payment_id": pid3, "failure_code": "card_declined"}})
d = request("GET", "/api/v1/orders/" + o3["id"], headers=A).json()
t.ok(r.status == 200 and r.json()["result"] == "applied" and d["status"] == "payment_failed"
     and request("GET", "/api/v1/products/" + P).json()["stock_available"] == stock + 1,
     "a charge.failed webhook fails the order and releases its stock, seen at once", (r, d))
after = (mc_get("agora:pv:" + P), mc_get("agora:cv"))
t.ok(None not in versions and after[0] != versions[0] and after[1] == versions[1],
     "charge.failed moves the product's cache version, and leaves the lists to expire"
     " (a change of stock alone, fcgi/openapi.json)", (versions, after))
# Another charge.failed for that payment (a new event id) releases nothing:
# the cache stays.
again = cache_versions()
r = hook({"id": "evt_%s_3b" % RUN, "type": "charge.failed",
          "data": {"payment_id": pid3, "failure_code": "card_declined"}})
t.ok(r.status == 200 and r.json()["result"] == "applied" and again[0] is not None
     and mc_get("agora:pv:" + P) == again[0],
     "a charge.failed that releases nothing leaves the product's cache version alone",
     (r, again))
# An event about a payment not known yet waits, and is applied once it is.
_, future, _ = psql("SELECT COALESCE(max(id), 0) + 1000 FROM payments")
ev2 = {"id": "evt_%s_2" % RUN, "type": "charge.failed",
       "data": {"payment_id": future, "failure_code": "expired_card"}}
r = hook(ev2)
t.ok(r.status == 200 and r.json()["result"] == "waiting", "an event before its payment is kept", r)
o2 = order(A, P, qty=2)
psql(["INSERT INTO payments (id, order_id, amount_cents, currency, method, token, provider) "
      "OVERRIDING SYSTEM VALUE SELECT %s, id, total_cents, currency, 'card', 'tok_visa', 'http' "
      "FROM orders WHERE id = %s" % (future, o2["id"]),
      # The identity must not hand out that id again.
      "SELECT setval(pg_get_serial_sequence('payments', 'id'), (SELECT max(id) FROM payments))"])
stock = request("GET", "/api/v1/products/" + P).json()["stock_available"]
run_worker(*PAY, "--once", env=FAST, log=LOG)
d = request("GET", "/api/v1/orders/" + o2["id"], headers=A).json()
t.ok(d["status"] == "payment_failed", "and applied once its payment exists", d)
later = request("GET", "/api/v1/products/" + P).json()["stock_available"]
t.ok(later == stock + 2, "the stock it gave back shows in the cached product at once",
     (stock, later))

# --- agoractl outbox ----------------------------------------------------------
rc, out, err = ctl("outbox", "stats")
lines = out.strip().split("\n")
t.ok(rc == 0 and lines[0].startswith("pending\trunning\tdead") and len(lines) == 2,
     "agoractl outbox stats", out + err)
rc, out, err = ctl("outbox", "list")
t.ok(rc == 0 and out.startswith("id\ttopic"), "agoractl outbox list", out + err)
rc, out, err = ctl("outbox", "retry", "999999999")
t.ok(rc != 0 and "no dead outbox row" in err, "retry of a row that is not dead: an error", err)
rc, out, err = ctl("outbox", "frobnicate")
t.ok(rc == 2 and "usage" in err, "an unknown subcommand: usage", err)

# --- SIGTERM ------------------------------------------------------------------
w.send_signal(signal.SIGTERM)
try:
    rc = w.wait(timeout=5)
except Exception:
    w.kill()
    rc = None
t.ok(rc == 0, "SIGTERM: the worker finishes and exits 0", rc)
for bad in ("payment.charge,bogus", "payment.charge,", ""):
    rc = run_worker("--once", "--topics", bad, log=LOG)
    t.ok(rc == 2, "--topics %r: a topic this build does not handle is refused (exit 2)" % bad, rc)
t.done()
