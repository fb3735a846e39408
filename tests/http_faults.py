"""Faults while the stack runs: PostgreSQL stopped and started again,
memcached stopped.  Requests answer 503 quickly while the database is
down and recover without restarting the web server."""
import os
import time
import uuid
from agoratest import (Tap, across_processes, live, log_lines, log_mark, need_stack, new_user,
                       request, svc, wait_for)

need_stack()
t = Tap()
EV = {"type": "fault", "session_id": "faults"}


def health(rid):
    return request("GET", "/api/v1/health", headers={"X-Request-Id": rid})


def event(rid):
    return request("POST", "/api/v1/analytics/events", body=EV, headers={"X-Request-Id": rid})


def alive_of(pids):
    """The pids of pids that are running (this test runs on the stack's host)."""
    return {p for p in pids if os.path.exists("/proc/%d" % p)}


def alive(pids):
    return alive_of(pids) == set(pids)


r = request("GET", "/api/v1/health")
t.ok(r.status == 200, "healthy to begin with", r)
# Warm several processes up, concurrently, so that each holds a connection
# that will break; the logs say which processes answered.
# health answers in a millisecond, and mod_fcgid starts a second process
# only for requests that had to wait: give it rounds enough to.
_, HEALTH = across_processes(health, None, rounds=8)
_, EVENTS = across_processes(event, None, rounds=3)
t.ok(len(HEALTH) >= 2 and len(EVENTS) >= 2,
     "concurrent requests were served by several processes (health %d, analytics %d)"
     % (len(HEALTH), len(EVENTS)), (HEALTH, EVENTS))

svc("pg", "stop")
try:
    t0 = time.monotonic()
    r = request("GET", "/api/v1/health")
    took = time.monotonic() - t0
    j = r.json() or {}
    t.ok(r.status == 503 and took < 2.0, "PostgreSQL down: /health 503 in %.2f s" % took, r)
    t.ok(j.get("checks", {}).get("database") == "unavailable" and r.header("Retry-After"),
         "with the database check failed and Retry-After", r)
    r = request("GET", "/api/v1/health/ready")
    t.ok(r.status == 503 and r.json() == {"status": "unavailable"} and r.header("Retry-After"),
         "not ready: /health/ready 503 with Retry-After", r)
    r = request("GET", "/api/v1/health/live")
    t.ok(r.status == 200, "but alive: /health/live 200", r)
    r = request("POST", "/api/v1/analytics/events", body=EV)
    t.ok(r.is_problem(503, "service_unavailable") and r.header("Retry-After"),
         "a write while it is down: 503 problem+json with Retry-After", r)
    t.ok(b"postgres" not in r.body.lower() and b"connection" not in r.body.lower(),
         "no library message reaches the client", r)
    # mod_fcgid hands a request to a process of its choosing, and answers
    # this quick need few: the processes that held a connection must be
    # alive, and every answer, whichever process gave it, a 503.
    got, pids = across_processes(health, HEALTH, rounds=4)
    codes = set(x.status for x in got)
    t.ok(codes == {503} and pids and alive(HEALTH),
         "the processes that held a connection live on; %d answers from %d of them, all 503"
         % (len(got), len(pids & HEALTH)), (codes, pids, HEALTH - alive_of(HEALTH)))
finally:
    svc("pg", "start")

took = wait_for(lambda: request("GET", "/api/v1/health").status == 200, 10)
t.ok(took is not None, "PostgreSQL back: /health 200 again, without a web server restart")
# One process answered 200; another that tried its reconnect just before
# PostgreSQL took connections tries again at most RECONNECT_MS (lib/db.c)
# later, and its request waits for that: none may answer 503 now.
got, pids = across_processes(health, HEALTH, rounds=4)
t.ok(set(x.status for x in got) == {200} and alive(HEALTH) and pids & HEALTH,
     "health answers 200 again from the same processes: none crashed",
     (pids, HEALTH - alive_of(HEALTH)))
# mod_fcgid gives a request to the process it used last, so one that
# idles may go unchosen through every round: the promise is that no write
# fails, and that processes which held a broken connection took part.
got, pids = across_processes(event, EVENTS)
codes = set(x.status for x in got)
t.ok(codes == {202} and EVENTS & pids,
     "the analytics processes reconnected: every write answers 202 (%d writes, %d of %d "
     "processes that held a connection)" % (len(got), len(EVENTS & pids), len(EVENTS)),
     (codes, EVENTS - pids))

# A restart of PostgreSQL as a crash or a failover makes it (immediate:
# every session ends at once): once it takes connections again, no
# request fails.
# Each process holds a connection that broke while it waited; it must find
# out before or at its next request and carry that request over to a new
# connection (lib/db.c), reads and writes alike.
RUN = uuid.uuid4().hex[:10]
ADM = new_user("faults.admin.%s@example.com" % RUN, role="admin")
SHOPPER = new_user("faults.%s@example.com" % RUN)
r = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "F-" + RUN, "name": "Restart proof", "price_cents": 100, "stock": 1000})
PID = str((r.json() or {}).get("id"))
t.ok(r.status == 201, "a product for the restart", r)


def me(rid):
    return request("GET", "/api/v1/users/me", headers=dict(SHOPPER, **{"X-Request-Id": rid}))


def cart_put(rid):
    return request("PUT", "/api/v1/cart/items/" + PID, body={"quantity": 1},
                   headers=dict(SHOPPER, **{"X-Request-Id": rid}))


SEARCHES = iter(range(1000000, 2000000))


def search(rid):
    # A new max_price each time: no cache holds the answer.
    return request("GET", "/api/v1/products?q=restart&max_price=%d" % next(SEARCHES),
                   headers={"X-Request-Id": rid})


KINDS = [("health", health, 200), ("an analytics write", event, 202), ("a profile read", me, 200),
         ("a cart write", cart_put, 200), ("a search", search, 200)]
HELD = {}
for name, send, _ in KINDS:
    HELD[name] = across_processes(send, None, rounds=3)[1]
mark = log_mark()
svc("pg", "restart")
for name, send, code in KINDS:
    got, pids = across_processes(send, HELD[name], rounds=6)
    codes = sorted(set(x.status for x in got))
    # mod_fcgid may end an idle process, or leave it unchosen (above).
    t.ok(codes == [code] and HELD[name] & pids,
         "PostgreSQL restarted: %s answers %d every time, served by processes that held "
         "a broken connection (%d answers, %d of %d of them)"
         % (name, code, len(got), len(HELD[name] & pids), len(HELD[name])),
         (codes, [x for x in got if x.status != code][:1], live(HELD[name]) - pids))
# Found before the request, not by a statement that failed on the dead
# session (lib/db.c, agora_db_check): a write outside a transaction that
# met it could not be tried again.
dead = [j.get("msg", "")[:80] for j in log_lines(mark) if j.get("level") == "error"
        and j.get("program") != "worker" and "msg" in j]
t.ok(not dead, "every process found its broken connection between requests: no statement "
     "met it", dead[:3])

svc("mc", "stop")
try:
    # Each process re-checks the cache at most once a second.
    took = wait_for(lambda: (request("GET", "/api/v1/health").json() or {}).get("status")
                    == "degraded", 5)
    r = request("GET", "/api/v1/health")
    j = r.json() or {}
    t.ok(took is not None and r.status == 200
         and j.get("checks", {}).get("cache") in ("unavailable", "ok"),
         "memcached down: /health 200, degraded", r)
    codes = [request("POST", "/api/v1/analytics/events", body=EV).status for _ in range(10)]
    t.ok(set(codes) == {202}, "memcached down: requests still succeed", codes)
finally:
    svc("mc", "start")
took = wait_for(lambda: (request("GET", "/api/v1/health").json() or {}).get("status") == "ok", 15)
t.ok(took is not None, "memcached back: the cache check recovers")

t.done()
