"""The read replica (database_read_url; doc/scale-out.md, "The read
replica") against a real streaming standby: anonymous catalog reads and
the reports go to it, a signed-in reader never misses their own write, a
replica that lags past database_read_max_lag_ms or is down hands the
reads back to the primary, and nothing it answers is cached."""
import os
import re
import sys
import time
import uuid

from agoratest import (MODE, SERVER, Tap, across_processes, ctl, log_lines, log_mark,
                       need_stack, new_user, request, svc, wait_for)

need_stack()
# Two setups cover both servers and both process models; the routing
# is in the library, the same under every one.
if (SERVER, MODE) in (("apache", "pool"), ("lighttpd", "managed")):
    print("1..0 # SKIP the replica runs on apache/managed and lighttpd/pool")
    sys.exit(0)
t = Tap()
RUN = uuid.uuid4().hex[:10]
MAX_LAG_MS = 2000
CHECK_MS = 250  # lib/db.c, LAG_CHECK_MS
# A replica's answer is cached for max(1 s, the bound), plus up to half
# again (lib/cache.c).
CACHED_MS = 1.5 * max(1000, MAX_LAG_MS)
PORT = os.environ["AGORA_TEST_REPLICA_PORT"]
READ_URL = re.sub(r"port=\d+", "port=" + PORT, os.environ["AGORA_TEST_APP_URL"])
SUPER_URL = re.sub(r"user=\w+", "user=postgres", READ_URL)
CONF = os.environ["AGORA_CONFIG"]


def on_replica(sql):
    import subprocess
    p = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", SUPER_URL, "-c", sql],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return p.stdout.strip()


def get(path, headers=None):
    """A GET with a request id; returns (Resp, whether the replica answered:
    True, False, or None when no log line says)."""
    rid = "rep-" + uuid.uuid4().hex
    mark = log_mark()
    r = request("GET", path, headers=dict(headers or {}, **{"X-Request-Id": rid}))
    lines = []
    wait_for(lambda: lines.extend(j for j in log_lines(mark) if j.get("request_id") == rid)
             or lines, 2)
    return r, (lines[0].get("replica") is True) if lines else None


def price(r):
    return (r.json() or {}).get("price_cents")


# One word no other product has: the run's hex digits as letters.
WORD = "".join(chr(ord("k") + int(c, 16)) for c in RUN)
SEARCHES = iter(range(1000000, 2000000))


def search():
    """An anonymous search for the product that no cache holds (each asks
    a new max_price); returns (Resp, its price or None, replica)."""
    r, rep = get("/api/v1/products?q=%s&max_price=%d" % (WORD, next(SEARCHES)))
    items = (r.json() or {}).get("data") or [{}]
    return r, items[0].get("price_cents"), rep


ADM = new_user("replica.admin.%s@example.com" % RUN, role="admin")
SHOPPER = new_user("replica.%s@example.com" % RUN)
svc("replica", "start")
with open(CONF) as f:
    ORIGINAL = f.read()
try:
    with open(CONF, "w") as f:
        # First: provider sections run to the end of the file.
        f.write("database_read_url = %s\ndatabase_read_max_lag_ms = %d\n%s"
                % (READ_URL, MAX_LAG_MS, ORIGINAL))
    svc("web", "restart")
    r = request("POST", "/api/v1/products", headers=ADM, body={
        "sku": "R-" + RUN, "name": "Replica proof " + WORD, "price_cents": 100, "stock": 5})
    t.ok(r.status == 201, "a product, written to the primary", r)
    PID = str((r.json() or {}).get("id"))
    P = "/api/v1/products/" + PID
    took = wait_for(lambda: on_replica("SELECT count(*) FROM products WHERE id = %s" % PID)
                    == "1", 10)
    t.ok(took is not None, "the replica has it after %.2f s" % (took or 0))

    # --- who reads the replica ---------------------------------------------
    r, rep = get(P)
    t.ok(r.status == 200 and price(r) == 100 and rep,
         "an anonymous product read is answered by the replica", (r, rep))
    r, rep = get("/api/v1/products?q=replica&limit=5")
    t.ok(r.status == 200 and rep, "so is an anonymous search", (r, rep))
    r, rep = get("/api/v1/categories")
    t.ok(r.status == 200 and rep, "and the category list", (r, rep))
    r, rep = get(P, SHOPPER)
    t.ok(r.status == 200 and rep is False,
         "a signed-in reader's product read goes to the primary", (r, rep))
    r, rep = get("/api/v1/users/me", SHOPPER)
    t.ok(r.status == 200 and rep is False, "and their profile", (r, rep))
    r, rep = get("/api/v1/analytics/summary", ADM)
    t.ok(r.status == 200 and rep, "the admin's report, which tolerates a second, reads the replica",
         (r, rep))

    # --- a lagging replica: stale only within the bound ----------------------
    # A second product, read only anonymously, shows the cache's bound.
    r = request("POST", "/api/v1/products", headers=ADM, body={
        "sku": "RQ-" + RUN, "name": "Replica cache proof", "price_cents": 100, "stock": 5})
    Q = "/api/v1/products/" + str((r.json() or {}).get("id"))
    wait_for(lambda: on_replica("SELECT count(*) FROM products WHERE sku = 'RQ-%s'" % RUN)
             == "1", 10)
    # Every process has measured the replica current a moment ago (each
    # keeps its own marks of the primary's position: lib/db.c).
    across_processes(lambda rid: request(
        "GET", "/api/v1/products?q=%s&max_price=%d" % (WORD, next(SEARCHES)),
        headers={"X-Request-Id": rid}), None, rounds=4)
    on_replica("SELECT pg_wal_replay_pause()")
    try:
        base = time.time()
        r = request("PATCH", P, headers=ADM, body={"price_cents": 555})
        t.ok(r.status == 200 and price(r) == 555, "the price changes on the primary", r)
        request("PATCH", Q, headers=ADM, body={"price_cents": 555})
        r, rep = get(P)
        t.ok(price(r) == 100 and rep is True,
             "an anonymous read gets the old price from the replica, which is cached", (r, rep))
        r, rep = get(P, ADM)
        t.ok(price(r) == 555 and rep is False,
             "its writer reads the new price from the primary, past that cached answer", (r, rep))
        stale, late, fresh_at, cached = [], [], None, []
        while time.time() - base < (MAX_LAG_MS + CACHED_MS + 1500) / 1000:
            t0 = time.time()
            r, cents, rep = search()
            if r.status != 200:
                late.append(r)
            elif cents == 100:
                stale.append(round((t0 - base) * 1000))
            elif fresh_at is None:
                fresh_at = round((t0 - base) * 1000)
            # The other product's read goes through the cache, which may
            # keep what the replica answered, for CACHED_MS at most.
            t0 = time.time()
            r, rep = get(Q)
            if r.status != 200:
                late.append(r)
            elif price(r) == 100:
                cached.append(round((t0 - base) * 1000))
            time.sleep(0.05)
        # The lag is the age of the last transaction replayed; a process
        # may go on with the answer of a check CHECK_MS old, and the clock
        # of a request starts before its check: 300 ms of slack.
        bound = MAX_LAG_MS + CHECK_MS + 300
        t.ok(not late, "every read answers 200 while the replica lags", late[:1])
        t.ok(stale and max(stale) <= bound,
             "anonymous reads were stale (%d of them) only within the bound: the last %d ms "
             "after the change, bound %d ms" % (len(stale), max(stale or [0]), bound),
             stale)
        t.ok(fresh_at is not None, "then they read the new price from the primary (at %s ms)"
             % fresh_at)
        t.ok(cached and max(cached) <= bound + CACHED_MS,
             "product reads, through the cache, were stale (%d) only within the bound and the "
             "replica's cache lifetime: the last %d ms after the change, bound %d ms"
             % (len(cached), max(cached or [0]), bound + CACHED_MS), cached)
        r, rep = get(P, SHOPPER)
        t.ok(price(r) == 555 and rep is False,
             "a signed-in reader reads the new price from the primary", (r, rep))
    finally:
        on_replica("SELECT pg_wal_replay_resume()")
    # Each process finds the replica current again at its next check.
    got = []
    took = wait_for(lambda: got.append(search()) or (got[-1][2] and got[-1][1] == 555), 10)
    t.ok(took is not None,
         "replay resumed: reads go back to the replica, with the new price", got[-1:])
    r, rep = get(P)
    t.ok(price(r) == 555, "no stale product is cached any more", r)

    # --- a replica that is down ------------------------------------------------
    svc("replica", "stop")
    got = []
    for _ in range(15):
        t0 = time.monotonic()
        got.append(search())
        got[-1] += (time.monotonic() - t0,)  # the request and its log line
    took = max(g[3] for g in got)
    t.ok(all(r.status == 200 and cents == 555 and rep is False for r, cents, rep, _ in got)
         and took < 1.5,
         "the replica down: every read answers 200 from the primary, at once (%d reads, the "
         "slowest %.2f s)" % (len(got), took), [g for g in got if g[0].status != 200 or g[2]][:1])
    svc("replica", "start")
    took = wait_for(lambda: search()[2], 10)
    t.ok(took is not None, "the replica back: reads return to it (%.2f s)" % (took or 0))

    # --- agoractl failover on this throwaway replica ------------------------------
    usage = [ctl("failover")[0], ctl("failover", "--force")[0], ctl("failover", "-x")[0]]
    rc, _, err = ctl("failover", "host=127.0.0.1 port=1 connect_timeout=2")
    t.ok(usage == [2, 2, 2] and rc == 1 and "127.0.0.1" in err,
         "agoractl failover: no standby or an option for one is a usage error (2); an "
         "unreachable one is said (1)", (usage, rc, err))
    rc, out, err = ctl("failover", SUPER_URL)
    t.ok(rc == 1 and "still takes writes" in err and on_replica("SELECT pg_is_in_recovery()")
         == "t", "agoractl failover refuses while the primary takes writes", (rc, out, err))
    rc, out, err = ctl("failover", "--force", SUPER_URL)
    t.ok(rc == 0 and "is promoted" in out and on_replica("SELECT pg_is_in_recovery()") == "f",
         "with --force it promotes the replica", (rc, out, err))
    rc, out, err = ctl("failover", SUPER_URL)
    t.ok(rc == 0 and "a primary already" in out, "and a second run has nothing to do",
         (rc, out, err))
finally:
    with open(CONF, "w") as f:
        f.write(ORIGINAL)
    svc("web", "restart")
    svc("replica", "stop")
t.done()
