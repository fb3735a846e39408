"""agora-worker under faults, with the http provider against the fake
gateway (tests/fakegateway.py): kill -9 again and again while 500 paid
orders flow, a gateway that fails, stalls or is gone, PostgreSQL
restarted under the worker, and two workers sharing 10,000 rows.  Money
rule checked throughout: exactly one successful charge per payment.

Runs under one web server setup only: the worker does not depend on it."""
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid

from agoratest import (MODE, SERVER, Gateway, Tap, ctl, need_stack, new_user, psql, request,
                       run_worker, start_worker, svc, wait_for)

need_stack()
# Payments only: the paid orders' invoices and mails are worker_invoices.py's.
PAY = ("--topics", "payment.charge,payment.refund")
if SERVER != "apache" or MODE != "managed":
    print("1..0 # SKIP runs once, under Apache managed: the worker does not use the web server")
    sys.exit(0)
t = Tap()
RUN = uuid.uuid4().hex[:10]
LOG = os.path.join(os.environ.get("AGORA_BUILDDIR", "."), "tests", "worker_faults.worker.log")
ADM = new_user("wf.admin.%s@example.com" % RUN, role="admin")
U = new_user("wf.u.%s@example.com" % RUN)
UID = request("GET", "/api/v1/users/me", headers=U).json()["id"]
P = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "WF-" + RUN, "name": "Fault thing", "price_cents": 700, "stock": 1000000}).json()["id"]


gw = Gateway()
ENV = dict(gw.env(), **{
       "AGORA_PAYMENT_TIMEOUT_MS": "500",
       "AGORA_WORKER_LEASE_SECONDS": "2", "AGORA_NOTIFY_TIMEOUT_MS": "1000",
       "AGORA_STORAGE_TIMEOUT_MS": "1000", "AGORA_OUTBOX_BACKOFF_MS": "100",
       "AGORA_OUTBOX_BACKOFF_MAX_MS": "800", "AGORA_WORKER_POLL_MS": "200"})


def place(n, token="tok_visa"):
    """n orders of U with a payment, straight through order_place()."""
    _, out, _ = psql("SELECT string_agg(order_place(%s, ARRAY[%s], ARRAY[1], NULL, "
                     "'{\"method\": \"card\", \"token\": \"%s\", \"provider\": \"http\"}', "
                     "3600)->'order'->>'id', ',') FROM generate_series(1, %d)"
                     % (UID, P, token, n))
    return out.split(",")


def statuses(ids):
    _, out, _ = psql("SELECT status, count(*) FROM orders WHERE id IN (%s) GROUP BY status"
                     % ",".join(ids))
    return dict(line.split("|") for line in out.split("\n") if line)


def payment_ids(ids):
    return psql("SELECT string_agg(id::text, ',') FROM payments WHERE order_id IN (%s)"
                % ",".join(ids))[1].split(",")


def one_charge_each(pids):
    ch = gw.charges()
    return [p for p in pids if len(ch.get(p, [])) != 1]


def wait_paid(ids, seconds):
    return wait_for(lambda: statuses(ids).get("paid") == str(len(ids)), seconds) is not None


def stop(w):
    w.send_signal(signal.SIGTERM)
    try:
        return w.wait(timeout=10)
    except subprocess.TimeoutExpired:
        w.kill()
        return None


def outbox_row(pid):
    _, out, _ = psql("SELECT state || '|' || attempts || '|' || COALESCE(last_error, '') FROM outbox "
                     "WHERE topic = 'payment.charge' AND payload->>'payment_id' = '%s'" % pid)
    return out.split("|") if out else None


# --- kill -9, again and again, while 500 paid orders flow ---------------------
# Ten waves of 50 orders; each time a worker starts on them and, once it
# is calling the gateway (20 ms a call here), is killed at a random moment
# of its batch.  After each kill, charges the gateway made that the
# database has not recorded show that the kill landed between the two.
ids, kills, midway = [], 0, 0
gw.mode("stall", 0.02)
for wave in range(10):
    ids += place(50)
    calls = gw.call("/_state")["calls"]
    w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
    wait_for(lambda: gw.call("/_state")["calls"] > calls, 10)
    time.sleep(random.uniform(0, 0.15))
    w.kill()
    w.wait()
    kills += 1
    charged = gw.charges()
    _, open_, _ = psql("SELECT string_agg(p.id::text, ',') FROM payments p WHERE p.status = "
                       "'pending' AND p.order_id IN (%s)" % ",".join(ids))
    midway += any(p in charged for p in (open_ or "").split(","))
gw.mode("ok")
w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
done = wait_paid(ids, 30)
stop(w)
_, again, _ = psql("SELECT count(*) FROM payments WHERE attempts > 1 AND order_id IN (%s)"
                   % ",".join(ids))
retried = [k for k, n in gw.call("/_state")["calls_by_key"].items() if n > 1]
t.ok(done and kills == 10 and len(ids) == 500,
     "kill -9 ten times while 500 paid orders flow (%s charges begun again after a kill): "
     "every order ends paid" % again, statuses(ids))
t.ok(midway >= 1 and int(again) >= 1 and retried,
     "%d of the kills landed between a charge the gateway made and its record; those charges "
     "were asked again with their idempotency keys (%d)" % (midway, len(retried)),
     (midway, again, len(retried)))
pids = payment_ids(ids)
bad = one_charge_each(pids)
t.ok(len(pids) == 500 and not bad, "the gateway holds exactly one successful charge per order",
     bad[:10])

# --- a gateway answering 500 for a while -------------------------------------
gw.mode("fail")
ids = place(1)
pid = payment_ids(ids)[0]
w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
wait_for(lambda: int((outbox_row(pid) or ["", "0"])[1]) >= 3, 10)
row = outbox_row(pid)
t.ok(row is not None and int(row[1]) >= 3 and "HTTP 500" in row[2]
     and statuses(ids) == {"pending": "1"},
     "gateway 500s: retried with backoff, the error kept, the order still pending", row)
gw.mode("ok")
t.ok(wait_paid(ids, 10) and not one_charge_each([pid]), "then the gateway recovers: paid, once",
     (statuses(ids), gw.charges().get(pid)))
stop(w)

# --- a gateway that stalls past the timeout, then charges ----------------------
gw.mode("stall", 1.5)
ids = place(1)
pid = payment_ids(ids)[0]
w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
wait_for(lambda: pid in gw.charges(), 10)
gw.mode("ok")
t.ok(wait_paid(ids, 10) and not one_charge_each([pid]),
     "a charge that timed out but went through is found by its idempotency key: paid, once",
     (statuses(ids), gw.charges().get(pid)))
stop(w)

# --- a refund that timed out but went through, retried -----------------------
gw.mode("ok")
ids = place(1)
pid = payment_ids(ids)[0]
w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
wait_paid(ids, 10)
gw.mode("stall", 1.5)
r = request("POST", "/api/v1/payments/%s/refund" % pid, headers=ADM)
wait_for(lambda: pid in gw.refunds(), 10)
gw.mode("ok")
wait_for(lambda: psql("SELECT status FROM payments WHERE id = %s" % pid)[1] == "refunded", 15)
_, ps, _ = psql("SELECT status || ' ' || refund_status FROM payments WHERE id = %s" % pid)
keys = {k: n for k, n in gw.call("/_state")["calls_by_key"].items()
        if k.startswith("refund-%s-" % pid)}
t.ok(r.status == 202 and ps == "refunded succeeded" and len(gw.refunds().get(pid, [])) == 1
     and len(keys) == 1 and list(keys.values())[0] >= 2,
     "a refund that timed out but went through is asked again with its key: refunded, once",
     (r.status, ps, gw.refunds().get(pid), keys))
stop(w)

# --- cancelled while its charge is in flight: charged, then refunded ---------
gw.mode("stall", 1.5)
ids = place(1)
pid = payment_ids(ids)[0]
w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
wait_for(lambda: "payment-" + pid in gw.call("/_state")["calls_by_key"], 10)
r = request("PUT", "/api/v1/orders/%s/cancel" % ids[0], headers=U)
wait_for(lambda: pid in gw.charges(), 10)
gw.mode("ok")
wait_for(lambda: psql("SELECT status FROM payments WHERE id = %s" % pid)[1] == "refunded", 15)
_, ps, _ = psql("SELECT status || ' ' || refund_status FROM payments WHERE id = %s" % pid)
t.ok(r.status == 200 and statuses(ids) == {"cancelled": "1"} and ps == "refunded succeeded"
     and len(gw.charges().get(pid, [])) == 1 and len(gw.refunds().get(pid, [])) == 1,
     "an order cancelled while its charge was in flight: the charge is refunded, once",
     (r.status, statuses(ids), ps, gw.charges().get(pid), gw.refunds().get(pid)))
stop(w)

# --- cancelled while an earlier order's charge is in flight --------------------
# Only the charge being made counts as tried: the ones waiting behind it
# in the worker's batch are withdrawn by a cancellation, never charged.
gw.mode("stall", 1.5)
ids = place(3)
pids = payment_ids(ids)
w = start_worker(*PAY, "--loop", env=dict(ENV, AGORA_PAYMENT_TIMEOUT_MS="5000"), log=LOG)
wait_for(lambda: any("payment-" + p in gw.call("/_state")["calls_by_key"] for p in pids), 10)
flying = [p for p in pids if "payment-" + p in gw.call("/_state")["calls_by_key"]]
_, behind, _ = psql("SELECT string_agg(order_id::text, ',') FROM payments WHERE id IN (%s) "
                    "AND id <> ALL(ARRAY[%s]::bigint[])" % (",".join(pids), ",".join(flying or ["0"])))
behind = behind.split(",") if behind else []
codes = [request("PUT", "/api/v1/orders/%s/cancel" % o, headers=U).status for o in behind]
wait_for(lambda: statuses(ids) == {"paid": "1", "cancelled": "2"}, 15)
gw.mode("ok")
time.sleep(0.5)  # the worker's next chunk, had it charged them
_, ps, _ = psql("SELECT string_agg(status || ' ' || COALESCE(failure_code, '') || ' ' || attempts, "
                "',') FROM payments WHERE order_id IN (%s)" % ",".join(behind or ["0"]))
charged = gw.charges()
t.ok(len(flying) == 1 and codes == [200, 200] and statuses(ids) == {"paid": "1", "cancelled": "2"}
     and ps == "failed order_cancelled 0,failed order_cancelled 0"
     and not any(p in charged or p in gw.refunds() for p in pids if p not in flying),
     "two orders cancelled while the charge of an earlier one is in flight: withdrawn, "
     "never charged nor refunded",
     (flying, codes, statuses(ids), ps, {p: charged.get(p) for p in pids}))
stop(w)

# --- a chunk cut short by one slow call ----------------------------------------
# A fast gateway grows the worker's chunks; when a call of one is then
# slow, the chunk stops calling, and the charges it began but did not
# make are taken back (payment_charge_unbegin): cancelled meanwhile, they
# are withdrawn, never charged.  Which payments share a chunk depends on
# how fast the first ones went, so the case is tried until the worker
# says it took some back (three times at most).
gw.mode("ok", 1.5)
taken, rounds = False, []
for _ in range(3):
    ids = place(4)
    pids = sorted(payment_ids(ids), key=int)
    gw.call("/_mode", {"stall_keys": ["payment-" + pids[1]]})
    start = os.path.getsize(LOG) if os.path.exists(LOG) else 0
    w = start_worker(*PAY, "--loop", env=dict(ENV, AGORA_PAYMENT_TIMEOUT_MS="5000"), log=LOG)
    wait_for(lambda: "payment-" + pids[1] in gw.call("/_state")["calls_by_key"], 10)
    _, behind, _ = psql("SELECT string_agg(order_id::text, ',') FROM payments WHERE id IN (%s, %s)"
                        % (pids[2], pids[3]))
    codes = [request("PUT", "/api/v1/orders/%s/cancel" % o, headers=U).status
             for o in behind.split(",")]
    wait_for(lambda: statuses(ids) == {"paid": "2", "cancelled": "2"}, 15)
    time.sleep(0.3)  # the next chunk, had it charged them
    stop(w)
    gw.call("/_mode", {"stall_keys": []})
    _, ps, _ = psql("SELECT string_agg(status || ' ' || COALESCE(failure_code, '') || ' ' "
                    "|| attempts, ',') FROM payments WHERE id IN (%s, %s)" % (pids[2], pids[3]))
    charged = gw.charges()
    rounds.append((codes, statuses(ids), ps, [charged.get(p) for p in pids],
                   [gw.refunds().get(p) for p in pids]))
    if not (codes == [200, 200] and ps == "failed order_cancelled 0,failed order_cancelled 0"
            and all(p not in charged for p in pids[2:])
            and not any(p in gw.refunds() for p in pids)):
        break
    with open(LOG, "rb") as f:
        f.seek(start)
        taken = re.search(rb"taken back: [0-9]+", f.read()) is not None
    if taken:
        break
t.ok(taken, "a chunk cut short by a slow call takes back the charge it began behind it: "
     "cancelled meanwhile, withdrawn, never charged nor refunded", rounds)

# --- a gateway gone for good: dead, listed, re-driven -------------------------
port = gw.port
gw.stop()
ids = place(1)
pid = payment_ids(ids)[0]
wait_for(lambda: run_worker(*PAY, "--once", env=dict(ENV, AGORA_OUTBOX_MAX_ATTEMPTS="3"), log=LOG)
         is not None and (outbox_row(pid) or [""])[0] == "dead", 20)
row = outbox_row(pid)
t.ok(row is not None and row[0] == "dead" and row[1] == "3",
     "gateway gone: dead after the maximum attempts, with its error", row)
rc, out, err = ctl("outbox", "list", "--status", "dead")
t.ok(rc == 0 and "payment.charge" in out and "order:%s" % ids[0] in out,
     "agoractl outbox list --status dead shows it", out + err)
rc, out, err = ctl("outbox", "stats")
t.ok(rc == 0 and int(out.split("\n")[1].split("\t")[2]) >= 1, "agoractl outbox stats counts it", out)
gw = Gateway(port)
rc, out, err = ctl("outbox", "retry", "--all-dead")
t.ok(rc == 0 and out.startswith("1 rows"), "agoractl outbox retry --all-dead", out + err)
run_worker(*PAY, "--once", env=ENV, log=LOG)
t.ok(statuses(ids) == {"paid": "1"} and not one_charge_each([pid]),
     "with the gateway back, the re-driven row is paid, once", (statuses(ids), gw.charges()))

# --- PostgreSQL restarted under a running worker ------------------------------
w = start_worker(*PAY, "--loop", env=ENV, log=LOG)
time.sleep(0.5)
svc("pg", "stop")
time.sleep(1.5)
svc("pg", "start")
ids = place(20)
t.ok(wait_paid(ids, 20) and w.poll() is None,
     "PostgreSQL restarted: the worker reconnects and pays what comes next", statuses(ids))
t.ok(not one_charge_each(payment_ids(ids)), "nothing doubled", "")
t.ok(stop(w) == 0, "and it still stops cleanly", "")

# --- two workers side by side on 10,000 rows ----------------------------------
SIM = dict(ENV, AGORA_PAYMENT_PROVIDER="simulated")
ids = place(10000)
logs = [LOG + ".a", LOG + ".b"]
for f in logs:
    if os.path.exists(f):
        os.unlink(f)
a = start_worker(*PAY, "--once", env=SIM, log=logs[0])
b = start_worker(*PAY, "--once", env=SIM, log=logs[1])
ra, rb = a.wait(timeout=300), b.wait(timeout=300)


def handled(log):
    """The rows a worker says it handled, from its last line."""
    with open(log, errors="replace") as f:
        m = re.findall(r"done: (\d+) handled", f.read())
    return int(m[-1]) if m else None


took = [handled(f) for f in logs]
_, out, _ = psql("SELECT status || ' ' || attempts, count(*) FROM payments WHERE order_id IN "
                 "(SELECT id FROM orders WHERE id BETWEEN %s AND %s AND user_id = %s) "
                 "GROUP BY 1" % (min(ids, key=int), max(ids, key=int), UID))
t.ok(ra == 0 and rb == 0 and out == "succeeded 1|10000",
     "two workers on 10,000 rows: each handled exactly once", out)
t.ok(None not in took and min(took) >= 500 and sum(took) >= 10000,
     "and both workers took rows (%s)" % took, took)
_, n, _ = psql("SELECT count(*) FROM outbox WHERE topic = 'payment.charge'")
t.ok(n == "0", "and the finished rows left the outbox", n)
# Whatever happened above, money taken is never kept without a paid order.
_, kept, _ = psql("SELECT string_agg(id::text, ',') FROM payments WHERE status = 'succeeded'")
kept = set((kept or "").split(","))
_, refunded, _ = psql("SELECT string_agg(id::text, ',') FROM payments WHERE status = 'refunded'")
refunded = set((refunded or "").split(","))
stray = [p for p in gw.charges() if p not in kept and p not in refunded]
unrefunded = [p for p in refunded if p and p in gw.charges() and not gw.refunds().get(p)]
t.ok(not stray and not unrefunded,
     "every charge the gateway made belongs to a succeeded payment, or was refunded",
     (stray[:5], unrefunded[:5]))
# A lease too short for one call's timeout would let a second worker take a
# row whose call is still running: the worker takes a longer one, says so,
# and goes on working.
short = dict(ENV, AGORA_STORAGE_TIMEOUT_MS="10000")
before = os.path.getsize(LOG) if os.path.exists(LOG) else 0
rc = run_worker(*PAY, "--once", env=short, log=LOG)
with open(LOG, errors="replace") as f:
    f.seek(before)
    said = f.read()
t.ok(rc == 0 and "worker_lease_seconds 2 is less than twice the longest" in said
     and "using 20" in said,
     "a lease shorter than twice a timeout: the worker uses 20 s and says so", (rc, said[-300:]))
gw.stop()
t.done()
