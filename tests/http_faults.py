"""Faults while the stack runs: PostgreSQL stopped and started again,
memcached stopped.  Requests answer 503 quickly while the database is
down and recover without restarting the web server."""
import time
from agoratest import Tap, across_processes, need_stack, request, svc, wait_for

need_stack()
t = Tap()
EV = {"type": "fault", "session_id": "faults"}


def health(rid):
    return request("GET", "/api/v1/health", headers={"X-Request-Id": rid})


def event(rid):
    return request("POST", "/api/v1/analytics/events", body=EV, headers={"X-Request-Id": rid})


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
    r = request("POST", "/api/v1/analytics/events", body=EV)
    t.ok(r.is_problem(503, "service_unavailable") and r.header("Retry-After"),
         "a write while it is down: 503 problem+json with Retry-After", r)
    t.ok(b"postgres" not in r.body.lower() and b"connection" not in r.body.lower(),
         "no library message reaches the client", r)
    got, pids = across_processes(health, HEALTH)
    codes = set(x.status for x in got)
    t.ok(codes == {503} and HEALTH <= pids,
         "every process that held a connection answers 503 (%d answers)" % len(got),
         (codes, HEALTH - pids))
finally:
    svc("pg", "start")

took = wait_for(lambda: request("GET", "/api/v1/health").status == 200, 10)
t.ok(took is not None, "PostgreSQL back: /health 200 again, without a web server restart")
_, pids = across_processes(health, HEALTH)
t.ok(HEALTH <= pids, "the same health processes answer again: none crashed", HEALTH - pids)
got, pids = across_processes(event, EVENTS)
codes = set(x.status for x in got)
t.ok(codes == {202} and EVENTS <= pids,
     "every analytics process reconnected: its writes answer 202 (%d writes)" % len(got),
     (codes, EVENTS - pids))

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
