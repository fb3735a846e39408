"""The attacks of the hardening review, each run again against the stack:
what an anonymous client, a fresh account or a careless admin could do to
hold a process, a database backend, memory or stock without bound.  Each
check here failed before its fix."""
import os
import signal
import subprocess
import time
import tempfile
import uuid

from agoratest import (FcgiPool, Tap, bearer, cgi, config_value, ctl, need_stack, new_user,
                       psql, request, run_worker, svc, wait_for)

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
    # The lock's work is done: psql cancels its own sleep (SIGINT), rather
    # than wait it out; the next request comes once the lock is gone.
    lock.send_signal(signal.SIGINT)
    lock.wait(timeout=20)
    wait_for(lambda: psql("SELECT count(*) FROM pg_locks WHERE "
                          "relation = 'categories'::regclass AND "
                          "mode = 'AccessExclusiveLock'")[1] == "0", 10)
    r = pool.request("GET", "/api/v1/categories/" + top)
    t.ok(r.status == 200, "and the next one, with the lock gone, is served", r)
finally:
    pool.close()

# --- unpaid orders that hoard stock ------------------------------------------
# One fresh account reserved a product's whole stock with one unpaid order
# and kept everyone out for 30 minutes.  The shipped defaults hold: at
# most 5 orders awaiting payment and 100 units reserved per account, and
# an order without a payment holds its stock 10 minutes.  (The check stack
# raises the limits for the other tests; these programs run with the
# defaults.)
DEFAULTS = {"AGORA_ORDER_UNPAID_MAX": "5", "AGORA_ORDER_RESERVED_UNITS_MAX": "100",
            "AGORA_ORDER_UNPAID_HOLD_SECONDS": "600", "AGORA_ORDER_EXPIRY_SECONDS": "1800"}
r = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "HOARD-" + RUN, "name": "Scarce", "price_cents": 500, "stock": 1000})
HOARDED = r.json()["id"]


def items(n):
    return {"items": [{"product_id": HOARDED, "quantity": n}]}


def available():
    return request("GET", "/api/v1/inventory/" + HOARDED).json()["available"]


pool = FcgiPool("orders", 4, env=DEFAULTS)
payments = FcgiPool("payments", 1, env=DEFAULTS)
try:
    H = new_user("abuse.hoarder.%s@example.com" % RUN)
    r = pool.request("POST", "/api/v1/orders", body=items(101), headers=H)
    t.ok(r.is_problem(409, "reserved_units_limit") and r.json().get("limit") == 100,
         "101 units in one unpaid order: 409 reserved_units_limit", r)
    t.ok(available() == 1000, "and nothing was reserved", available())
    r = pool.request("POST", "/api/v1/orders", body=items(99), headers=H)
    t.ok(r.status == 201, "99 units: placed", r)
    first = r.json()
    _, secs, _ = psql("SELECT extract(epoch FROM expires_at - created_at)::int FROM orders "
                      "WHERE id = %s" % first["id"])
    t.ok(secs == "600", "an order without a payment holds its stock 10 minutes", secs)
    r = pool.request("POST", "/api/v1/orders", body=items(2), headers=H)
    t.ok(r.is_problem(409, "reserved_units_limit"),
         "2 more units (101 reserved in all): 409 reserved_units_limit", r)
    r = payments.request("POST", "/api/v1/payments", headers=H,
                         body={"order_id": first["id"], "method": "card", "token": "tok_visa"})
    _, secs, _ = psql("SELECT extract(epoch FROM expires_at - created_at)::int FROM orders "
                      "WHERE id = %s" % first["id"])
    t.ok(r.status == 202 and secs == "1800",
         "a payment given later holds the order 30 minutes from its placement", (r, secs))
    # Orders awaiting payment, raced: exactly 5 of 12 get through.
    R = new_user("abuse.racer.%s@example.com" % RUN)
    import threading
    out = []

    def one():
        out.append(pool.request("POST", "/api/v1/orders", body=items(1), headers=R))
    threads = [threading.Thread(target=one) for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ok = [x for x in out if x.status == 201]
    refused = [x for x in out if x.is_problem(409, "unpaid_order_limit")]
    t.ok(len(ok) == 5 and len(refused) == 7,
         "12 concurrent orders of one account: 5 placed, 7 refused unpaid_order_limit",
         [x.status for x in out])
    # Cancelling one makes room for one more.
    C = FcgiPool("orders", 1, env=DEFAULTS)
    try:
        r = C.request("PUT", "/api/v1/orders/%s/cancel" % ok[0].json()["id"], headers=R)
        r2 = C.request("POST", "/api/v1/orders", body=items(1), headers=R)
        t.ok(r.status == 200 and r2.status == 201, "a cancelled order makes room for another",
             (r, r2))
    finally:
        C.close()
    # Someone else still buys: the hoarders hold 99 + 5 units of 1000.
    O = new_user("abuse.other.%s@example.com" % RUN)
    r = pool.request("POST", "/api/v1/orders", body=items(100), headers=O)
    t.ok(r.status == 201, "another account still buys", r)
finally:
    pool.close()
    payments.close()

# Fresh accounts from one address share order_reserved_units_per_ip: the
# order records its client's address (orders.client_ip, written with the
# order), and the next order from there counts it.
pool = FcgiPool("orders", 1, env=dict(DEFAULTS, AGORA_ORDER_RESERVED_UNITS_PER_IP="150"))
try:
    ip = "10.77.%d.%d" % (uuid.uuid4().int % 250, uuid.uuid4().int % 250 + 1)
    held = available()
    r = pool.request("POST", "/api/v1/orders", body=items(99), env={"REMOTE_ADDR": ip},
                     headers=new_user("abuse.ip1.%s@example.com" % RUN))
    t.ok(r.status == 201 and psql("SELECT client_ip FROM orders WHERE id = %s"
                                  % (r.json() or {}).get("id", "0"))[1] == ip,
         "an order records its client's address", r)
    A2 = new_user("abuse.ip2.%s@example.com" % RUN)
    r = pool.request("POST", "/api/v1/orders", body=items(60), env={"REMOTE_ADDR": ip},
                     headers=A2)
    t.ok(r.is_problem(409, "reserved_units_limit") and r.json().get("limit") == 150
         and available() == held - 99,
         "another account from that address, 60 more units (159 in all): 409, nothing reserved",
         r)
    r = pool.request("POST", "/api/v1/orders", body=items(60), headers=A2,
                     env={"REMOTE_ADDR": ip.replace("10.77.", "10.78.")})
    t.ok(r.status == 201, "the same account from another address: placed", r)
finally:
    pool.close()

# --- notification recipients ----------------------------------------------------
# shipping_address.phone took any string, and SMS went wherever it said.
P = new_user("abuse.phone.%s@example.com" % RUN)
ADDR = {"name": "P", "line1": "1 Road", "city": "Town", "country": "DE"}
for phone in ["call me", "+49 30 1234567 ext 5", "030 1234567", "+123456", "+0123456789",
              "+1234567890123456", "mailto:x@example.com"]:
    r = request("POST", "/api/v1/orders", headers=P, body=dict(
        items(1), shipping_address=dict(ADDR, phone=phone)))
    t.ok(r.is_problem(422, "validation_failed") and
         r.json()["errors"][0]["field"] == "shipping_address.phone",
         "a phone number %r: 422 on shipping_address.phone" % phone, r)
r = request("POST", "/api/v1/orders", headers=P, body=dict(
    items(1), shipping_address=dict(ADDR, phone="0049 (30) 123-456.7")))
t.ok(r.status == 201 and r.json()["shipping_address"]["phone"] == "+49301234567",
     "a phone number as people write it is kept in E.164", r)

# --- the login lockout and Unicode case ----------------------------------------
# The lockout key folded ASCII only, while the lookup folds with
# PostgreSQL's lower(): the Kelvin sign (U+212A) and the dotted capital I
# (U+0130) reach the same account under keys of their own.
PWD = "the right password"
for local, spellings in [("kate", ["\u212aate", "KATE", "\u212aATE", "kAtE", "\u212aaTe"]),
                         ("ines", ["\u0130nes", "INES", "\u0130NES", "iNeS", "\u0130nEs"])]:
    email = "%s.%s@example.com" % (local, RUN)
    request("POST", "/api/v1/auth/register", body={"email": email, "password": PWD, "name": "V"})
    codes = [request("POST", "/api/v1/auth/login", body={
        "email": sp + email[len(local):], "password": "wrong %d" % i}).status
        for i, sp in enumerate(spellings)]
    r = request("POST", "/api/v1/auth/login", body={"email": email, "password": PWD})
    t.ok(codes == [401] * 5 and r.is_problem(429, "too_many_failures"),
         "five failures under five spellings of %s lock the account" % email, (codes, r))

# --- long polls that hold every tracking process ----------------------------------
# Six free accounts with four waits each held every tracking process, and
# other customers' reads of their orders waited 30 seconds.  A wait now
# needs a place under three caps (per user, per address, per host: the
# host's cap is order_waiters_max, 6 by default, below the 8 or 16
# tracking processes the shipped configurations run); a request that finds
# none is answered at once.
import threading


def watcher(n):
    h = new_user("abuse.watch%d.%s@example.com" % (n, RUN))
    o = request("POST", "/api/v1/orders", headers=h, body=items(1)).json()
    return h, "/api/v1/orders/%s/events?after=1" % o["id"]


watchers = [watcher(n) for n in range(7)]
times = []


def wait_on(h, path):
    t0 = time.monotonic()
    resp = request("GET", path + "&wait=8", headers=h, timeout=40)
    times.append((time.monotonic() - t0, resp.status))


def slots_held():
    """This stack's wait places held now: flocks on the files of
    run_dir/waiters (tracking.c), as /proc/locks lists them."""
    d = os.path.join(config_value("run_dir"), "waiters")
    inodes = {os.stat(os.path.join(d, n)).st_ino for n in os.listdir(d)} \
        if os.path.isdir(d) else set()
    with open("/proc/locks") as f:
        return sum(1 for line in f if " FLOCK " in line
                   and int(line.split()[5].split(":")[2]) in inodes)


threads = [threading.Thread(target=wait_on, args=w) for w in watchers[:6] for _ in range(4)]
for th in threads:
    th.start()
time.sleep(1.5)
held = max(slots_held() for _ in range(5))
t0 = time.monotonic()
r = request("GET", watchers[6][1], headers=watchers[6][0], timeout=40)
other = time.monotonic() - t0
for th in threads:
    th.join()
t.ok(r.status == 200 and other < 4,
     "24 waits of 6 accounts: another customer's read is answered in %.1f s" % other, r)
t.ok(len(times) == 24 and all(s == 200 for _, s in times) and 1 <= held <= 6,
     "at most 6 (order_waiters_max) of them held a place to wait (%d)" % held,
     sorted(round(x[0], 1) for x in times))

# Per address, with the program's own processes: 2 waits per address.
# These processes run as root, as a separate install: a run_dir of their own.
RUN_DIR = tempfile.mkdtemp(prefix="agora-run-")
pool = FcgiPool("tracking", 6, env={"AGORA_ORDER_WAITS_PER_IP": "2",
                                    "AGORA_ORDER_WAITERS_MAX": "100",
                                    "AGORA_ORDER_WAITS_PER_USER": "100",
                                    "AGORA_RUN_DIR": RUN_DIR})
try:
    h, path = watchers[0]
    res = []

    def pool_wait(ip):
        t0 = time.monotonic()
        resp = pool.request("GET", path + "&wait=5", headers=h, env={"REMOTE_ADDR": ip})
        res.append((ip, time.monotonic() - t0, resp.status))
    threads = [threading.Thread(target=pool_wait, args=("10.9.9.9",)) for _ in range(4)]
    threads.append(threading.Thread(target=pool_wait, args=("10.8.8.8",)))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    a = sorted(round(x[1], 1) for x in res if x[0] == "10.9.9.9")
    b = [x[1] for x in res if x[0] == "10.8.8.8"]
    # A wait takes 5 s; an answer at once, on this busy machine, under 3.
    t.ok(len(a) == 4 and sum(1 for x in a if x >= 4.5) == 2 and sum(1 for x in a if x < 3) == 2
         and len(b) == 1 and b[0] >= 4.5,
         "order_waits_per_ip 2: two of four waits from one address wait, another address too",
         (a, b))
finally:
    pool.close()
pool = FcgiPool("tracking", 6, env={"AGORA_ORDER_WAITERS_MAX": "3",
                                    "AGORA_ORDER_WAITS_PER_IP": "100",
                                    "AGORA_ORDER_WAITS_PER_USER": "100",
                                    "AGORA_RUN_DIR": RUN_DIR})
try:
    res = []
    threads = [threading.Thread(target=pool_wait, args=("10.7.7.%d" % i,)) for i in range(5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    a = sorted(round(x[1], 1) for x in res)
    t.ok(sum(1 for x in a if x >= 4.5) == 3 and sum(1 for x in a if x < 3) == 2,
         "order_waiters_max 3: three of five waits wait, two are answered at once", a)
finally:
    pool.close()

# --- a demoted or disabled account ------------------------------------------------
# An access token stated the role it was issued with, and a demoted or
# disabled admin kept admin rights until it expired.  Now the next request
# is refused, through the web server and in another process alike.
def login(email, pw="integration test password"):
    return request("POST", "/api/v1/auth/login", body={"email": email, "password": pw})


def user_id(h):
    return request("GET", "/api/v1/users/me", headers=h).json()["id"]


demoted = "abuse.demoted.%s@example.com" % RUN
new_user(demoted, role="admin")
pair = login(demoted).json()
D = bearer(pair["access_token"])
t.ok(request("GET", "/api/v1/users?limit=1", headers=D).status == 200, "(an admin lists users)")
r = request("PATCH", "/api/v1/users/" + user_id(D), headers=ADM, body={"role": "customer"})
t.ok(r.status == 200 and r.json()["role"] == "customer" and r.json()["disabled"] is False,
     "an admin demotes another", r)
r = request("GET", "/api/v1/users?limit=1", headers=D)
c = cgi("users", "GET", "/api/v1/users?limit=1", headers={"Authorization": D["Authorization"]})
t.ok(r.is_problem(401, "invalid_token") and c.is_problem(401, "invalid_token"),
     "the demoted admin's token is refused at once, by every process", (r, c))
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": pair["refresh_token"]})
t.ok(r.is_problem(401), "and the refresh token is revoked", r)
D = bearer(login(demoted).json()["access_token"])
t.ok(request("GET", "/api/v1/users?limit=1", headers=D).is_problem(403, "forbidden"),
     "a new login is a customer", D)

victim = "abuse.disabled.%s@example.com" % RUN
V = new_user(victim)
vpair = login(victim).json()
vid = user_id(V)
r = request("PATCH", "/api/v1/users/" + vid, headers=ADM, body={"disabled": True})
t.ok(r.status == 200 and r.json()["disabled"] is True, "PATCH /users/{id} {disabled: true}", r)
t.ok(request("GET", "/api/v1/users/me", headers=V).is_problem(401, "invalid_token"),
     "a disabled account's token is refused at once")
t.ok(login(victim).is_problem(403, "account_disabled"),
     "a disabled account cannot log in with the right password")
t.ok(login(victim, "wrong").is_problem(401, "invalid_credentials"),
     "(a wrong password is still just wrong)")
t.ok(request("POST", "/api/v1/auth/refresh",
             body={"refresh_token": vpair["refresh_token"]}).is_problem(401),
     "a disabled account's refresh token is revoked")
r = request("PATCH", "/api/v1/users/" + vid, headers=ADM, body={"disabled": False})
t.ok(r.status == 200 and r.json()["disabled"] is False and login(victim).status == 200,
     "enabled again, it logs in", r)
for body in [{}, {"disabled": "yes"}, {"role": "root"}, {"disabled": True, "x": 1}]:
    r = request("PATCH", "/api/v1/users/" + vid, headers=ADM, body=body)
    t.ok(r.status in (400, 422), "PATCH /users/{id} %s: %d" % (body, r.status), r)

# An admin cannot take their own rights away: the last admin would leave
# the shop with none.  Two admins who demote each other at once cannot
# both succeed either.
S = new_user("abuse.self.%s@example.com" % RUN, role="admin")
sid = user_id(S)
for body in [{"role": "customer"}, {"disabled": True}, {"role": "admin", "disabled": True}]:
    r = request("PATCH", "/api/v1/users/" + sid, headers=S, body=body)
    t.ok(r.is_problem(409, "own_account"), "an admin's own account, %s: 409 own_account" % body, r)
r = request("PATCH", "/api/v1/users/" + sid, headers=S, body={"role": "admin", "disabled": False})
t.ok(r.status == 200 and r.json()["role"] == "admin"
     and request("GET", "/api/v1/users?limit=1", headers=S).status == 200,
     "a change that keeps the rights is made, and the admin stays one", r)
both = []
for i in range(4):
    P = new_user("abuse.mutual.p%d.%s@example.com" % (i, RUN), role="admin")
    Q = new_user("abuse.mutual.q%d.%s@example.com" % (i, RUN), role="admin")
    pid, qid = user_id(P), user_id(Q)
    res, gate = {}, threading.Barrier(2)

    def demote(k, h, u):
        gate.wait()
        res[k] = request("PATCH", "/api/v1/users/" + u, headers=h, body={"role": "customer"})
    ths = [threading.Thread(target=demote, args=a) for a in (("p", P, qid), ("q", Q, pid))]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    roles = [request("GET", "/api/v1/users/" + u, headers=ADM).json()["role"] for u in (pid, qid)]
    both.append(([res["p"].status, res["q"].status], roles))
t.ok(all(st.count(200) <= 1 and roles.count("admin") >= 1 for st, roles in both),
     "two admins demote each other at once, four times: one of them stays an admin", both)

# agoractl changes count as well, and memcached down is no way around it:
# the programs then read the generation from the database.
V = bearer(login(victim).json()["access_token"])
rc, _, err = ctl("user", "set-role", victim, "admin")
W = bearer(login(victim).json()["access_token"])
t.ok(rc == 0 and request("GET", "/api/v1/users/me", headers=V).is_problem(401, "invalid_token")
     and request("GET", "/api/v1/users?limit=1", headers=W).status == 200,
     "agoractl user set-role: the old token is refused, a new one is an admin's", err)
svc("mc", "stop")
try:
    rc, _, err = ctl("user", "disable", victim)
    r = request("GET", "/api/v1/users/me", headers=W)
    t.ok(rc == 0 and r.is_problem(401, "invalid_token"),
         "memcached down: agoractl user disable still ends the token at once", (err, r))
finally:
    svc("mc", "start")
    # The programs retry memcached a moment after it failed: wait, so that
    # the tests after this one find the cache as they expect.
    wait_for(lambda: all(request("GET", "/api/v1/health").json()["checks"]["cache"] == "ok"
                         for _ in range(8)), 30)
r = request("GET", "/api/v1/users/me", headers=W)
t.ok(r.is_problem(401, "invalid_token"), "and memcached back (empty): still refused", r)
rc, out, _ = ctl("user", "enable", victim)
t.ok(rc == 0 and login(victim).status == 200, "agoractl user enable", out)

# --- analytics that grows without bound -----------------------------------------
# One anonymous request stored a megabyte of free-form properties, and no
# event ever went away.
EV = "/api/v1/analytics/events"


def event(props):
    return {"type": "view", "session_id": "s-" + RUN, "properties": props}


for props, what in [({"k%d" % i: i for i in range(21)}, "21 members"),
                    ({"blob": "x" * 3000}, "3,000 bytes"),
                    ({"a": [[[["x" * 500] * 4]] * 2]}, "nested, 4,000 bytes")]:
    r = request("POST", EV, body=event(props))
    t.ok(r.is_problem(422, "validation_failed") and r.json()["errors"][0]["field"] == "properties",
         "properties of %s: 422" % what, r)
r = request("POST", EV, body=[event({"k%d" % i: "v" * 90 for i in range(20)})] * 100)
t.ok(r.status == 202 and r.json() == {"accepted": 100},
     "100 events of 20 properties near the size cap: 202", r)
SID = "retention-" + RUN
psql("INSERT INTO analytics_events (type, session_id, occurred_at) SELECT 'view', '%s', "
     "now() - make_interval(days => d) FROM unnest(ARRAY[100, 91, 89, 1]) AS d" % SID)
rc = run_worker("--once", env={"AGORA_ANALYTICS_RETENTION_DAYS": "90"})
_, left, _ = psql("SELECT string_agg(extract(day FROM now() - occurred_at)::int::text, ',' "
                  "ORDER BY occurred_at) FROM analytics_events WHERE session_id = '%s'" % SID)
t.ok(rc == 0 and left == "89,1",
     "agora-worker deletes the events older than analytics_retention_days (90)", left)
psql("INSERT INTO analytics_events (type, session_id, occurred_at) VALUES "
     "('view', '%s', '1999-06-01'), ('view', '%s', '1999-12-31 23:00Z')" % (SID, SID))
rc, out, err = ctl("analytics", "prune", "--before", "2000-01-01")
_, n, _ = psql("SELECT count(*) FROM analytics_events WHERE session_id = '%s'" % SID)
t.ok(rc == 0 and "events from before 2000-01-01 deleted" in out and n == "2",
     "agoractl analytics prune --before deletes those, and only those", (out, err, n))
rc, _, err = psql("DELETE FROM analytics_events WHERE session_id = '%s'" % SID, admin=False,
                  check=False)
t.ok(rc != 0 and "permission denied" in err,
     "the programs' role still cannot delete events but through the prune", err)
psql("INSERT INTO analytics_events (type, session_id, occurred_at) VALUES "
     "('view', '%s', now() - interval '10 days')" % SID)
rc, out, _ = psql("SELECT analytics_prune(0, 1000000)", admin=False)
_, left, _ = psql("SELECT string_agg(extract(day FROM now() - occurred_at)::int::text, ',' "
                  "ORDER BY occurred_at) FROM analytics_events WHERE session_id = '%s'" % SID)
rc2, _, err = psql("SELECT analytics_prune_before(now(), 10)", admin=False, check=False)
t.ok(left == "10,1" and rc2 != 0 and "permission denied" in err,
     "the programs' prune deletes nothing newer than 30 days; newer is the owner's",
     (out, left, err))

# --- the web server's own answers ---------------------------------------------------
# Static files had no security headers, Apache named its version and
# echoed TRACE.
CSP_NEEDS = ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
             "object-src 'none'", "base-uri 'none'"]
for path in ["/", "/robots.txt", "/no-such-file.html"]:
    r = request("GET", path)
    csp = r.header("Content-Security-Policy") or ""
    t.ok(r.header("X-Content-Type-Options") == "nosniff" and r.header("X-Frame-Options") == "DENY"
         and all(x in csp for x in CSP_NEEDS) and "unsafe" not in csp,
         "GET %s (%d): nosniff, DENY and a strict CSP" % (path, r.status), r)
# The web UI's own paths are answered by index.html (the UI routes them);
# the programs' URLs and missing files with an extension are not.
index = request("GET", "/")
for path in ["/products/123", "/admin/orders", "/orders/45?tab=items", "/account/"]:
    r = request("GET", path)
    csp = r.header("Content-Security-Policy") or ""
    t.ok(r.status == 200 and r.body == index.body and index.status == 200 and
         (r.header("Content-Type") or "").startswith("text/html") and
         all(x in csp for x in CSP_NEEDS),
         "GET %s: index.html, with its CSP" % path, r)
for path in ["/app/missing.js", "/no-such-style.css", "/.well-known/acme-challenge/x"]:
    r = request("GET", path)
    t.ok(r.status == 404 and r.body != index.body, "GET %s: 404, not index.html" % path, r)
for path in ["/api/v1/nope", "/api/v2/products", "/api/"]:
    r = request("GET", path)
    t.ok(r.is_problem(404), "GET %s: the programs' 404 problem, not index.html" % path, r)
r = request("GET", "/metrics")
t.ok(r.status == 200 and r.body != index.body, "GET /metrics: the metrics, not index.html", r.status)
r = request("GET", "/api/v1/health")
t.ok([k.lower() for k, _ in r.headers].count("x-content-type-options") == 1
     and r.header("Content-Security-Policy") == "default-src 'none'; frame-ancestors 'none'",
     "API answers keep their own headers, once", r)
server = r.header("Server") or ""
t.ok(not any(ch.isdigit() for ch in server) and "Debian" not in server and "mod_" not in server,
     "the Server header names no version or module (%r)" % server, r)
for path in ["/", "/api/v1/health"]:
    r = request("TRACE", path, headers={"X-Trace-Probe": "probe-%s" % RUN})
    t.ok(r.status in (403, 405, 501) and ("probe-" + RUN).encode() not in r.body,
         "TRACE %s is refused, nothing echoed (%d)" % (path, r.status), r)

# --- secrets ---------------------------------------------------------------------------
# Every secret was in agora.conf, readable by the web server's user, and
# every program held every secret.
conf = os.environ["AGORA_CONFIG"]
with open(conf) as f:
    inline = [line.split("=")[0].strip() for line in f if "=" in line and not line.startswith("#")]
SECRETS = ["database_admin_url", "webhook_secret", "payment_gateway_key", "s3_access_key",
           "s3_secret_key", "smtp_password", "sms_token"]
t.ok(not set(SECRETS) & set(inline),
     "the stack's agora.conf holds no secret, only the files they are in", inline)
if os.geteuid() == 0:
    def as_web(path):
        return subprocess.run(["runuser", "-u", "www-data", "--", "cat", path],
                              capture_output=True).returncode
    admin_file = [line.split("=", 1)[1].strip() for line in open(conf)
                  if line.startswith("database_admin_url_file")][0]
    t.ok(as_web(admin_file) != 0 and as_web(conf) == 0,
         "the web server's user reads agora.conf but not the owner's database URL")
else:
    t.ok(os.stat(conf).st_mode & 0o077 == 0, "agora.conf is its owner's alone")


def memory_has(pid, needle):
    """Whether the process's readable memory holds needle anywhere."""
    found = False
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(lo)
                found = found or needle in mem.read(hi - lo)
            except OSError:
                pass
    return found


SMTP_SECRET = ("smtp-%s-hunter2" % RUN).encode()
hook_file = [line.split("=", 1)[1].strip() for line in open(conf)
             if line.startswith("webhook_secret_file")][0]
HOOK_SECRET = open(hook_file, "rb").read().strip()
with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
    # First: the provider sections run to the end of the file.
    f.write("smtp_password = %s\n" % SMTP_SECRET.decode() + open(conf).read())
    tmpconf = f.name
try:
    seen = {}
    for prog, path in [("products", "/api/v1/products?limit=1"),
                       ("payments", "/api/v1/payments/1")]:
        p = FcgiPool(prog, 1, env={"AGORA_CONFIG": tmpconf})
        try:
            r = p.request("GET", path)
            pid = p.procs[0].pid
            seen[prog] = (r.status, memory_has(pid, SMTP_SECRET), memory_has(pid, HOOK_SECRET))
        finally:
            p.close()
    t.ok(seen["payments"][2] and not seen["payments"][1],
         "payments holds the webhook secret it needs, not the SMTP password", seen)
    t.ok(seen["products"][0] == 200 and not seen["products"][1] and not seen["products"][2],
         "products holds neither, though both were in its configuration", seen)
finally:
    os.unlink(tmpconf)

t.done()
