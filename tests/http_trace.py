"""Server-Timing, and one trace from a request to the gateway, by its id alone (W3C Trace
Context, lib/trace.c): the programs take a traceparent header or start a
trace, answer with traceresponse and log the trace id on each line; the
outbox rows the request writes keep it (sql/0018); agora-worker continues
it for each job, in its log lines, in the rows the job writes and in a
child traceparent on each call to the payment gateway."""
import glob
import os
import re
import time
import uuid

from agoratest import (Gateway, Tap, log_lines, log_mark, need_stack, new_user, psql, request,
                       run_worker, wait_for)

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
LOG = os.path.join(os.environ.get("AGORA_BUILDDIR", "."), "tests", "http_trace.worker.log")
TR = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def ids():
    return uuid.uuid4().hex, uuid.uuid4().hex[:16]


def answered(headers=None):
    """The traceresponse of GET /health: (trace id, span, flags), or None."""
    r = request("GET", "/api/v1/health", headers=headers)
    m = TR.match(r.header("traceresponse") or "")
    return (m.groups() if m else None), r


# --- a request's trace -----------------------------------------------------------
T, P = ids()
mark = log_mark()
got, r = answered({"traceparent": "00-%s-%s-01" % (T, P)})
t.ok(got is not None and got[0] == T and got[1] != P and got[2] == "01",
     "a valid traceparent: traceresponse continues its trace in a span of its own", r.headers)
rid = r.header("X-Request-Id")
# The line may reach the log through the web server a moment after the answer.
wait_for(lambda: any(j.get("trace_id") == T and j.get("request_id") == rid
                     for j in log_lines(mark)), 5)
lines = [j for j in log_lines(mark) if j.get("trace_id") == T]
t.ok(any(j.get("request_id") == rid and j.get("path") == "/api/v1/health"
         for j in lines), "the request's log line carries the trace id", lines)
got, _ = answered({"traceparent": "00-%s-%s-00" % (T, P)})
t.ok(got is not None and got[0] == T and got[2] == "00", "the flags are kept (not sampled: 00)", got)
got, _ = answered({"traceparent": "00-%s-%s-fe" % (T, P)})
t.ok(got is not None and got[0] == T and got[2] == "00",
     "of the flags only the sampled bit is version 00's: fe is 00", got)
got, _ = answered({"traceparent": "cc-%s-%s-01-a-later-version" % (T, P)})
t.ok(got is not None and got[0] == T, "a later version's first fields are read", got)

for bad in ["00-%s-%s-01" % (T.upper(), P), "00-%s-%s-01" % ("0" * 32, P),
            "00-%s-%s-01" % (T, "0" * 16), "ff-%s-%s-01" % (T, P),
            "00-%s-%s-01-extra" % (T, P), "00-%s-%s" % (T, P), "00_%s_%s_01" % (T, P),
            "00-%s-%s-0g" % (T, P), "x" * 200]:
    got, r = answered({"traceparent": bad})
    t.ok(got is not None and got[0] != T and r.status == 200,
         "traceparent %r: not continued, a trace of its own" % bad[:60], (got, r.status))
a, _ = answered()
b, _ = answered()
t.ok(a is not None and b is not None and a[0] != b[0], "without one, each request starts a trace",
     (a, b))
r = request("GET", "/api/v1/nosuchthing", headers={"traceparent": "00-%s-%s-01" % (T, P)})
t.ok(r.status == 404 and (r.header("traceresponse") or "").startswith("00-%s-" % T),
     "an error answer carries it too", r.headers)

# --- Server-Timing: where a request's time went ------------------------------------
ST = re.compile(r"^db;dur=(\d+\.\d{3}), cache;dur=(\d+\.\d{3}), total;dur=(\d+\.\d{3})$")


def timing(r):
    m = ST.match(r.header("Server-Timing") or "")
    return tuple(float(x) for x in m.groups()) if m else None


got = timing(request("GET", "/api/v1/health"))
t.ok(got is not None and got[0] > 0 and got[2] >= got[0],
     "Server-Timing: health's database round trip, within the total", got)
r = request("GET", "/api/v1/products?limit=1")
request("GET", "/api/v1/products?limit=1")
got = timing(request("GET", "/api/v1/products?limit=1"))
t.ok(got is not None and got[1] > 0 and got[2] >= got[0] + got[1] - 0.002,
     "Server-Timing: a cached list's memcached time, db and cache within the total", got)
got = timing(request("GET", "/api/v1/nosuchthing"))
t.ok(got is not None and got[0] == 0 and got[1] == 0, "an answer that waited for neither: 0 and 0",
     got)

# --- from POST /orders to the gateway, the invoice and the notification ----------
ADM = new_user("tr.admin.%s@example.com" % RUN, role="admin")
U = new_user("tr.u.%s@example.com" % RUN)
r = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "TR-" + RUN, "name": "Traced thing", "price_cents": 1200, "stock": 10})
assert r.status == 201, r
PID = r.json()["id"]
T2, P2 = ids()
mark = log_mark()
r = request("POST", "/api/v1/orders", headers=dict(U, traceparent="00-%s-%s-01" % (T2, P2)),
            body={"items": [{"product_id": PID, "quantity": 1}],
                  "payment": {"method": "card", "token": "tok_visa"}})
t.ok(r.status == 201, "an order placed under a trace", r)
OID = (r.json() or {}).get("id")
span = (TR.match(r.header("traceresponse") or "") or [None, None, None])[2]
_, rows, _ = psql("SELECT string_agg(topic || ' ' || coalesce(trace_id, '-'), ',' ORDER BY id) "
                  "FROM outbox WHERE aggregate_id = 'order:%s'" % OID)
t.ok(rows and all(x.endswith(" " + T2) for x in rows.split(",")) and "payment.charge" in rows,
     "every outbox row the request wrote keeps its trace id", rows)

before_workers = time.time()


def to_front():
    """Make this trace's rows the first the worker claims: earlier tests
    may leave thousands of rows due, and a worker takes the oldest first."""
    psql("UPDATE outbox SET next_attempt_at = now() - interval '1 day' "
         "WHERE trace_id = '%s' AND state <> 'dead'" % T2)


gw = Gateway()
try:
    to_front()
    rc = run_worker("--once", "--topics", "payment.charge", env=gw.env(), log=LOG)
    traces = gw.call("/_state")["traces"]
    sent = [TR.match(h or "") for calls in traces.values() for h in calls]
    mine = [m for m in sent if m and m.group(1) == T2]
    t.ok(rc == 0 and len(mine) == 1 and mine[0].group(2) not in (P2, span),
         "the worker's call to the gateway carries a child traceparent of the trace",
         (rc, traces))
finally:
    gw.stop()
_, status, _ = psql("SELECT status FROM orders WHERE id = %s" % OID)
t.ok(status == "paid", "the order is paid", status)
_, rows, _ = psql("SELECT string_agg(topic || ' ' || coalesce(trace_id, '-'), ',' ORDER BY id) "
                  "FROM outbox WHERE aggregate_id = 'order:%s'" % OID)
t.ok(rows and "invoice.create " + T2 in rows and all(x.endswith(" " + T2) for x in rows.split(",")),
     "the rows the payment's end wrote (invoice, notification) keep the trace", rows)

for _ in range(2):  # the notification's send is a row its fan-out writes
    to_front()
    run_worker("--loop", "--deadline", "5", "--topics", "invoice.create,notify.order,notify.send",
               env={"AGORA_NOTIFY_TIMEOUT_MS": "500"}, log=LOG)
wait_for(lambda: any(j.get("trace_id") == T2 and j.get("path") == "/api/v1/orders"
                     for j in log_lines(mark)), 5)
# Whichever worker took a job (another test's may still run, with its own
# log), its lines carry the trace.
WORKER_LOGS = glob.glob(os.path.join(os.path.dirname(LOG), "*.worker.log"))
lines = [j for j in log_lines(mark, WORKER_LOGS) if j.get("trace_id") == T2]
msgs = [j.get("msg", "") for j in lines]
t.ok(any(j.get("path") == "/api/v1/orders" and j.get("method") == "POST" for j in lines),
     "by the trace id alone: the request's log line", msgs)
t.ok(any("invoice" in m and "order %s" % OID in m for m in msgs),
     "the invoice job's lines", msgs)
_, n, _ = psql("SELECT count(*) FROM outbox WHERE aggregate_id LIKE 'notification:%%' "
               "AND trace_id = '%s'" % T2)
t.ok(any("notification" in m or "notify.send" in m for m in msgs) or int(n) > 0,
     "the notification's: its lines (sent, or retried: the test runs no mail server), "
     "or its send rows, still due behind other tests' backlog, in the trace", (msgs, n))
_, other, _ = psql("SELECT count(*) FROM outbox o JOIN notifications n "
                   "ON o.aggregate_id = 'notification:' || n.id "
                   "WHERE n.order_id = %s AND o.trace_id IS DISTINCT FROM '%s'" % (OID, T2))
t.ok(other == "0" and (int(n) > 0 or any("notification" in m for m in msgs)),
     "the order's notifications are the trace's: their rows, or their lines once sent",
     (n + " in it", other + " outside"))

# The workers just ran: GET /health shows their heartbeat (sql/0019; the
# report is kept a second per process).
def beat():
    w = (request("GET", "/api/v1/health").json() or {}).get("worker") or {}
    ago = w.get("seconds_since_last_pass")
    return w if (ago is not None and ago <= time.time() - before_workers + 1
                 and w.get("active", 0) >= 1) else None


wait_for(lambda: beat() is not None, 5)
w = beat()
t.ok(w is not None and re.match(r"^\d{4}-\d\d-\d\dT", w.get("last_pass_at") or ""),
     "GET /health reports a pass of the workers this test ran", w)
t.done()
