"""The attacks of the hardening review, each run again against the stack:
what an anonymous client, a fresh account or a careless admin could do to
hold a process, a database backend, memory or stock without bound.  Each
check here failed before its fix."""
import os
import subprocess
import time
import uuid

from agoratest import FcgiPool, Tap, need_stack, new_user, psql, request, wait_for

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
ADM = new_user("abuse.admin.%s@example.com" % RUN, role="admin")

# --- a category that is its own ancestor -------------------------------------
# Ids are predictable: a new category could name, as its parent, the id it
# was about to get.  A search by it then recursed for ever.
r = request("POST", "/api/v1/categories", body={"name": "Loop", "slug": "loop-" + RUN},
            headers=ADM)
top = r.json()["id"]
mine = str(int(top) + 1)
r = request("POST", "/api/v1/categories", body={"name": "Self", "slug": "self-" + RUN,
                                                "parent_id": mine}, headers=ADM)
t.ok(r.is_problem(422, "validation_failed") and "own ancestor" in r.body.decode(),
     "a category whose parent is the id it would get: 422", r)
r = request("POST", "/api/v1/categories", body={"name": "Child", "slug": "child-" + RUN,
                                                "parent_id": top}, headers=ADM)
child = r.json()["id"]
rc, _, err = psql("UPDATE categories SET parent_id = %s WHERE id = %s" % (child, top),
                  check=False)
t.ok(rc != 0 and "categories_acyclic" in err, "a loop made in psql is refused too", err)
# A loop made behind the trigger's back (a restore, a disabled trigger)
# still ends the search: the recursion stops 64 levels down.
psql(["ALTER TABLE categories DISABLE TRIGGER categories_acyclic",
      "UPDATE categories SET parent_id = %s WHERE id = %s" % (child, top),
      "ALTER TABLE categories ENABLE TRIGGER categories_acyclic"])
try:
    t0 = time.monotonic()
    r = request("GET", "/api/v1/products?category=%s&q=loop%s" % (top, RUN), timeout=20)
    t.ok(r.status == 200 and r.json()["data"] == [] and time.monotonic() - t0 < 10,
         "a search by a category in a loop ends (%.1f s)" % (time.monotonic() - t0), r)
finally:
    psql("UPDATE categories SET parent_id = NULL WHERE id = %s" % top)

# --- statement_timeout ----------------------------------------------------------
# A statement that waits (here on a lock; in the wild on a slow plan) is
# cancelled after db_statement_timeout_ms and the request answers 503.
pool = FcgiPool("categories", 1, env={"AGORA_DB_STATEMENT_TIMEOUT_MS": "300"})
try:
    lock = subprocess.Popen(["psql", "-X", "-q", os.environ["AGORA_TEST_ADMIN_URL"], "-c",
                             "BEGIN; LOCK TABLE categories; SELECT pg_sleep(8); COMMIT"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held = wait_for(lambda: psql("SELECT count(*) FROM pg_locks WHERE granted AND "
                                 "relation = 'categories'::regclass AND "
                                 "mode = 'AccessExclusiveLock'")[1] == "1", 10)
    t.ok(held is not None, "(psql holds a lock on categories)")
    t0 = time.monotonic()
    r = pool.request("GET", "/api/v1/categories/" + top)
    took = time.monotonic() - t0
    t.ok(r.is_problem(503, "service_unavailable") and took < 4,
         "a statement held past db_statement_timeout_ms: 503 (%.1f s)" % took, r)
    lock.wait(timeout=20)
    r = pool.request("GET", "/api/v1/categories/" + top)
    t.ok(r.status == 200, "and the next one, with the lock gone, is served", r)
finally:
    pool.close()

t.done()
