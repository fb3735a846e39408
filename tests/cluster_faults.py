"""Failures the cluster must survive (./dev check --cluster, on the hosts
of tests/cluster.sh), each while shoppers search, read products and place
paid orders through HAProxy:

- one web host killed: HAProxy drains it, and only the requests it held
  fail; an order among them, sent again with its Idempotency-Key, is
  made once;
- one memcached killed: nothing fails;
- one worker killed in the middle of its charges: the other finishes
  them after the lease, and nothing is charged twice;
- the replica stopped: reads go to the primary, nothing fails;
- the primary killed and the synchronous replica promoted: every order
  that was answered 201 is in the new primary, and nothing is charged
  twice.

The traffic speaks HTTP itself rather than through agoratest.request():
while a host is down HAProxy's own 503 page is an expected answer, not
one of agora's."""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

from agoratest import Tap, new_user, request, sbin, wait_for

if not os.environ.get("AGORA_TEST_CLUSTER"):
    print("1..0 # SKIP not on a cluster (./dev check --cluster)")
    sys.exit(0)
t = Tap()
RUN = uuid.uuid4().hex[:10]
LB = os.environ["AGORA_TEST_URL"].split("//", 1)[1]
GATEWAY = "http://10.213.0.50:8090"  # tests/cluster.sh: peers
DB2 = "host=10.213.0.22 port=5432 dbname=agora user=postgres"
THREADS = 6


def cluster(host, *action):
    subprocess.run([os.environ["AGORA_TEST_DEV"], "_cluster", host] + list(action),
                   check=True, stdout=subprocess.DEVNULL)


def gateway(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(GATEWAY + path, data=data, timeout=10) as r:
        return json.loads(r.read())


def raw(method, path, body=None, headers=None):
    """(status, parsed JSON or None); status 0 when no answer came."""
    c = http.client.HTTPConnection(LB, timeout=15)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        return r.status, doc
    except OSError:
        return 0, None
    finally:
        c.close()


ADM = new_user("cluster.admin.%s@example.com" % RUN, role="admin")
WORD = "".join(chr(ord("k") + int(c, 16)) for c in RUN)
PRODUCTS = []
for i in range(8):
    r = request("POST", "/api/v1/products", headers=ADM, body={
        "sku": "CL-%s-%d" % (RUN, i), "name": "Cluster thing %s %d" % (WORD, i),
        "price_cents": 700 + i, "stock": 100000})
    assert r.status == 201, r
    PRODUCTS.append(r.json()["id"])
SHOPPERS = [new_user("cluster.%s.%d@example.com" % (RUN, i)) for i in range(THREADS)]


class Traffic:
    """THREADS shoppers, each in a loop: a search, a product read, and a
    paid order with an Idempotency-Key.  Every request is recorded as
    (kind, start, end, status); every order answered 201 by its id."""

    def __init__(self):
        self.stop = threading.Event()
        self.log = []
        self.orders = {}  # Idempotency-Key: order id, of the 201s
        self.failed_orders = []  # (headers, body) of orders with no answer
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.shop, args=(i,)) for i in range(THREADS)]

    def note(self, kind, t0, status, doc=None):
        with self.lock:
            self.log.append((kind, t0, time.monotonic(), status))
            # Every error answer, HAProxy's own included, is problem+json.
            if status >= 400 and not (isinstance(doc, dict) and doc.get("status") == status):
                NOT_PROBLEM.append((kind, status, doc))

    def shop(self, i):
        n = 0
        while not self.stop.is_set():
            n += 1
            pid = PRODUCTS[(i + n) % len(PRODUCTS)]
            t0 = time.monotonic()
            s, doc = raw("GET", "/api/v1/products?q=%s&max_price=%d" % (WORD, 10000 + n))
            self.note("search", t0, s, doc)
            t0 = time.monotonic()
            s, doc = raw("GET", "/api/v1/products/" + pid)
            self.note("read", t0, s, doc)
            key = "cl-%s-%d-%d" % (RUN, i, n)
            h = dict(SHOPPERS[i], **{"Idempotency-Key": key})
            body = {"items": [{"product_id": pid, "quantity": 1}],
                    "payment": {"method": "card", "token": "tok_visa"}}
            t0 = time.monotonic()
            s, doc = raw("POST", "/api/v1/orders", body, h)
            self.note("order", t0, s, doc)
            with self.lock:
                if s == 201:
                    self.orders[key] = doc["id"]
                elif s != 201:
                    self.failed_orders.append((key, h, body))

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join()

    def failures(self, since=None):
        return [x for x in self.log if x[3] not in (200, 201) and (since is None or x[1] >= since)]

    def done(self):
        return len(self.log)


def lb_state(server):
    """What HAProxy's statistics say of a web host: UP, DOWN, ..."""
    with urllib.request.urlopen("http://%s:8404/stats;csv" % LB, timeout=5) as r:
        for line in r.read().decode().splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "web" and f[1] == server:
                return f[17]
    return None


def resend_failed(tr):
    """Each order that got no answer, sent again with its key, as a client
    would: it is made once (201, or 200 for a key that already made it)."""
    bad = []
    for key, h, body in tr.failed_orders:
        s, doc = raw("POST", "/api/v1/orders", body, h)
        if s in (200, 201) and doc and doc.get("id"):
            tr.orders[key] = doc["id"]
        else:
            bad.append((key, s, doc))
    return bad


ALL = {}  # every order made: Idempotency-Key to id
NOT_PROBLEM = []  # error answers that were not problem+json


def settle(tr):
    ALL.update(tr.orders)


def charges():
    return gateway("/_state")["charges"]


# --- one web host killed ----------------------------------------------------------
with Traffic() as tr:
    time.sleep(2)
    before = tr.done()
    kill_at = time.monotonic()
    cluster("web1", "kill")
    killed = time.monotonic()
    time.sleep(5)
fails = tr.failures()
late = tr.failures(since=killed + 0.2)
t.ok(before > 0 and tr.done() > before + 20,
     "web1 killed under traffic: the shoppers went on (%d requests before, %d after)"
     % (before, tr.done() - before))
# In flight: sent before web1's processes were all gone.  HAProxy tries
# another host for a request it could not deliver, never for one that
# reached a host (it may have been an order).
t.ok(not late,
     "only requests in flight failed: %d failures, each sent before web1 was gone (the kill "
     "took %.2f s)" % (len(fails), killed - kill_at), late[:5])
bad = resend_failed(tr)
t.ok(not bad, "the orders that got no answer, sent again with their keys, are made (%d)"
     % len(tr.failed_orders), bad[:3])
settle(tr)
t.ok(lb_state("web1") == "DOWN", "HAProxy took web1 out (%s)" % lb_state("web1"))
cluster("web1", "start")
took = wait_for(lambda: lb_state("web1") == "UP", 15)
t.ok(took is not None, "web1 back: HAProxy sends it requests again")

# --- one memcached killed ------------------------------------------------------------
with Traffic() as tr:
    time.sleep(1)
    cluster("mc1", "kill")
    time.sleep(4)
t.ok(not tr.failures() and tr.done() > 20,
     "mc1 killed under traffic: no request failed (%d requests)" % tr.done(), tr.failures()[:5])
settle(tr)
cluster("mc1", "start")

# --- one worker killed in the middle of its charges ----------------------------------
def charging(host):
    """How many charges host's worker is waiting on: its connections to
    the gateway."""
    p = subprocess.run(["ip", "netns", "exec", "agora-" + host, "ss", "-Htn", "state",
                        "established", "dst", GATEWAY.split("//")[1]],
                       capture_output=True, text=True)
    return len(p.stdout.splitlines())


# A stalling gateway charges after its client gave up, as a slow real one
# does: the charge wk1 waited on is made, and wk2 must not make it again.
gateway("/_mode", {"mode": "stall", "stall": 1.5})
with Traffic() as tr:
    held = wait_for(lambda: charging("wk1") > 0, 10)
    cluster("wk1", "kill")
    time.sleep(2)
gateway("/_mode", {"mode": "ok"})
settle(tr)
t.ok(held is not None, "wk1 killed while it waited on a charge")


def unpaid():
    ids = list(ALL.values())
    rc, out = psql_primary("SELECT count(*) FROM orders WHERE id = ANY('{%s}'::bigint[]) "
                                  "AND payment_status <> 'paid'" % ",".join(ids))
    return int(out) if rc == 0 and out else len(ids)  # unknown counts as unpaid


def psql_db(url, sql):
    p = subprocess.run(["psql", "-X", "-qAt", url, "-c", sql], capture_output=True, text=True)
    return p.returncode, p.stdout.strip()


def psql_primary(sql):
    return psql_db(os.environ["AGORA_TEST_ADMIN_URL"], sql)


took = wait_for(lambda: unpaid() == 0, 90)
t.ok(took is not None, "wk2 paid every order, wk1's included, after the lease (%.1f s; %d orders)"
     % (took or -1, len(ALL)), unpaid())
twice = {k: v for k, v in charges().items() if len(v) != 1}
t.ok(not twice, "no payment was charged twice (%d charged)" % len(charges()), twice)
cluster("wk1", "start")

# --- the replica stopped ---------------------------------------------------------------
with Traffic() as tr:
    time.sleep(1)
    cluster("db2", "stop")
    time.sleep(4)
t.ok(not tr.failures() and tr.done() > 20,
     "db2 stopped under traffic: no request failed, reads went to the primary (%d requests)"
     % tr.done(), tr.failures()[:5])
settle(tr)
cluster("db2", "start")
ok = wait_for(lambda: psql_db("host=10.213.0.21 port=5432 dbname=postgres user=postgres",
                              "SELECT count(*) FROM pg_stat_replication WHERE state = "
                              "'streaming'")[1] == "1", 30)
t.ok(ok is not None, "db2 back, streaming again")

# --- the primary killed, the synchronous replica promoted ----------------------------
cluster("db1", "sync", "on")
ok = wait_for(lambda: psql_db("host=10.213.0.21 port=5432 dbname=postgres user=postgres",
                              "SELECT sync_state FROM pg_stat_replication")[1] == "sync", 15)
t.ok(ok is not None, "db1 waits for db2 on every commit (synchronous)")
FAILOVER = [sbin("agoractl"), "failover", DB2.replace("dbname=agora", "dbname=postgres")]
p = subprocess.run(FAILOVER, capture_output=True, text=True)
t.ok(p.returncode == 1 and "10.213.0.21 still takes writes" in p.stderr
     and psql_db(DB2, "SELECT pg_is_in_recovery()")[1] == "t",
     "agoractl failover refuses while the primary takes writes: no second primary", p)
with Traffic() as tr:
    time.sleep(2)
    kill_at = time.monotonic()
    cluster("db1", "kill")
    p = subprocess.run(FAILOVER, capture_output=True, text=True)
    promoted = time.monotonic() - kill_at
    time.sleep(8)
t.ok(p.returncode == 0 and "is promoted" in p.stdout
     and psql_db(DB2, "SELECT pg_is_in_recovery()")[1] == "f",
     "db1 killed: agoractl failover promotes db2", p)
settle(tr)
ok_after = [x for x in tr.log if x[1] > kill_at + promoted + 5 and x[3] in (200, 201)]
late = tr.failures(since=kill_at + promoted + 5)
t.ok(ok_after and not late,
     "db2 promoted %.1f s after the kill: 5 s later every request succeeds (%d)"
     % (promoted, len(ok_after)), late[:5])
bad = resend_failed(tr)
settle(tr)
t.ok(not bad, "the orders that failed during the failover, sent again with their keys, are "
     "made (%d)" % len(tr.failed_orders), bad[:3])
ids = sorted(set(ALL.values()), key=int)
rc, out = psql_db(DB2, "SELECT count(*) FROM orders WHERE id = ANY('{%s}'::bigint[])"
                  % ",".join(ids))
t.ok(rc == 0 and out == str(len(ids)),
     "every order answered 201 or made again is in the new primary (%s of %d)" % (out, len(ids)))
took = wait_for(lambda: psql_db(DB2, "SELECT count(*) FROM orders WHERE id = ANY('{%s}'::bigint[]) "
                                "AND payment_status <> 'paid'" % ",".join(ids))[1] == "0", 90)
t.ok(took is not None, "every one of them is paid, by the workers on the new primary")
twice = {k: v for k, v in charges().items() if len(v) != 1}
t.ok(not twice, "no payment was charged twice (%d charged)" % len(charges()), twice)
errors = [x for x in tr.log if x[3] >= 400]
t.ok(not NOT_PROBLEM, "every error answer of every fault, HAProxy's own included, was "
     "problem+json (%d in the failover)" % len(errors), NOT_PROBLEM[:3])
t.done()
