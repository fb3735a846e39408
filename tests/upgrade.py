"""An upgrade under traffic, as the README's "Upgrading" section says to do
it: the previous release (tests/upgrade.from) serves, with its schema and
its worker; this tree's agoractl migrates while customers keep ordering;
then this tree's programs and worker take over.  No request may fail
but in the moment the processes are swapped (and those are retried with
their Idempotency-Key), and no order may be lost or made twice.

Run by ./dev check (its upgrade stage), which builds the previous release
and starts its stack; skipped elsewhere."""
import base64
import json
import os
import subprocess
import threading
import time
import uuid

import agoratest
from agoratest import Tap, need_stack, psql, request

need_stack()
if not os.environ.get("AGORA_TEST_PREV_PREFIX"):
    print("1..0 # SKIP the upgrade stack is started by ./dev check")
    raise SystemExit(0)
t = Tap()
# The previous release answers by its own OpenAPI document, not this one.
agoratest.CHECK_OPENAPI = False
RUN = uuid.uuid4().hex[:10]
PREV = os.environ["AGORA_TEST_PREV_PREFIX"]
NEW = os.environ["AGORA_TEST_PREFIX"]
RUNDIR = os.environ["AGORA_TEST_RUNDIR"]
LOGS = os.environ["AGORA_TEST_LOGS"]
PW = "upgrade test password"
as_web = ["-u", "www-data"] if os.geteuid() == 0 else []


def sbin(prefix, name):
    return os.path.join(prefix, "sbin", name)


def login(email):
    r = request("POST", "/api/v1/auth/login", body={"email": email, "password": PW})
    return {"Authorization": "Bearer " + r.json()["access_token"]}


subprocess.run([sbin(PREV, "agoractl"), "user", "add", "--email", "admin.%s@example.com" % RUN,
                "--name", "Admin", "--role", "admin", "--password-stdin"],
               input=PW + "\n", text=True, check=True, capture_output=True)
ADM = login("admin.%s@example.com" % RUN)
r = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "UPG-" + RUN, "name": "Upgrade", "price_cents": 100, "stock": 100000})
t.ok(r.status == 201, "the previous release serves: a product is made", r)
PID = r.json()["id"]
CUSTOMERS = []
for i in range(4):
    email = "c%d.%s@example.com" % (i, RUN)
    request("POST", "/api/v1/auth/register", body={"email": email, "password": PW, "name": "C"})
    CUSTOMERS.append(login(email))


def worker(prefix):
    log = open(os.path.join(LOGS, "upgrade-worker.log"), "ab")
    return subprocess.Popen(["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups",
                             sbin(prefix, "agora-worker"), "--loop", "--deadline", "600"]
                            if as_web else [sbin(prefix, "agora-worker"), "--loop", "--deadline",
                                            "600"], stderr=log, stdout=subprocess.DEVNULL)


stop = threading.Event()
placed = {}          # idempotency key -> order id
failures = []        # (phase, what) of requests that failed for good
retried = []         # requests retried once during the swap
phase = ["before"]


def retryable(r):
    """What a client retries with the same Idempotency-Key: any 5xx (a
    failed request stored nothing), or the first try still running (409
    idempotency_key_in_use)."""
    return isinstance(r, OSError) or r.status >= 500 or \
        r.is_problem(409, "idempotency_key_in_use")


def shop(h):
    while not stop.is_set():
        key = uuid.uuid4().hex
        body = {"items": [{"product_id": PID, "quantity": 1}],
                "payment": {"method": "card", "token": "tok_visa"}}
        hh = dict(h, **{"Idempotency-Key": key})
        started = phase[0]
        for attempt in range(40):
            try:
                r = request("POST", "/api/v1/orders", headers=hh, body=body, timeout=20)
            except OSError as e:
                r = e
            if getattr(r, "status", None) in (200, 201):
                placed[key] = r.json()["id"]
                break
            if not retryable(r) or "swap" not in (started, phase[0]):
                failures.append((phase[0], repr(r)[:300]))
                break
            retried.append(key)
            time.sleep(0.5)
        else:
            failures.append((phase[0], "gave up: " + repr(r)[:300]))
        g = request("GET", "/api/v1/products/" + PID)
        if g.status != 200 and phase[0] != "swap":
            failures.append((phase[0], "GET product %d" % g.status))


w = worker(PREV)
threads = [threading.Thread(target=shop, args=(h,)) for h in CUSTOMERS]
for th in threads:
    th.start()
time.sleep(3)
phase[0] = "migrate"
p = subprocess.run([sbin(NEW, "agoractl"), "migrate"], capture_output=True, text=True)
t.ok(p.returncode == 0, "this tree's agoractl migrates the previous release's schema under "
     "traffic", p.stdout + p.stderr)
# The old programs go on logging in over the new schema: a token they
# store gets its session from the database (sql/0023's trigger).
OLD_LOGIN = request("POST", "/api/v1/auth/login",
                    body={"email": "c0.%s@example.com" % RUN, "password": PW}).json() or {}
old_pair = request("POST", "/api/v1/auth/refresh",
                   body={"refresh_token": OLD_LOGIN.get("refresh_token", "")})
t.ok(old_pair.status == 200, "the old programs log in and refresh over the migrated schema",
     old_pair)
time.sleep(3)
n_migrated = len(placed)
phase[0] = "swap"
subprocess.run([sbin(PREV, "agora-fcgi-pool"), "stop", "-d", RUNDIR], check=True,
               capture_output=True)
# The new release limits what one account holds unpaid; these customers
# order hundreds of times a minute (the old programs refuse keys they do
# not know, so the limits come through the pool's environment).
subprocess.run([sbin(NEW, "agora-fcgi-pool"), "start", "-d", RUNDIR, "-l", LOGS] + as_web,
               check=True, capture_output=True,
               env=dict(os.environ, AGORA_ORDER_UNPAID_MAX="100000",
                        AGORA_ORDER_RESERVED_UNITS_MAX="100000000",
                        AGORA_ORDER_RESERVED_UNITS_PER_IP="100000000"))
w.terminate()
w.wait(30)
w = worker(NEW)
time.sleep(2)
phase[0] = "after"
time.sleep(3)
stop.set()
for th in threads:
    th.join()
t.ok(not failures,
     "no request failed before, during or after the migration; none was lost in the swap "
     "(%d orders; %d tries repeated in the swap)" % (len(placed), len(retried)), failures[:5])
t.ok(n_migrated > 0 and len(placed) > n_migrated,
     "orders were placed on the old programs over the new schema, and on the new ones",
     (n_migrated, len(placed)))
ids = ",".join(placed.values()) or "0"
_, n, _ = psql("SELECT count(*) FROM orders WHERE id IN (%s)" % ids)
_, mine, _ = psql("SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id "
                  "WHERE u.email LIKE 'c_.%s@example.com'" % RUN)
t.ok(n == str(len(placed)) and mine == str(len(placed)),
     "every order answered 201 is there, and no other (retries made none twice)",
     (n, mine, len(placed)))
paid = lambda: psql("SELECT count(*) FROM orders WHERE id IN (%s) AND status IN "  # noqa: E731
                    "('paid', 'completed')" % ids)[1]
# Thousands of orders wait for the worker; on a loaded machine it pays
# them slower, so wait for as long as it makes progress, not a fixed time.
last, stalled_since = None, time.time()
while paid() != str(len(placed)) and time.time() - stalled_since < 20:
    if paid() != last:
        last, stalled_since = paid(), time.time()
    time.sleep(0.5)
t.ok(paid() == str(len(placed)), "every order is paid, by the old worker or the new one",
     (paid(), len(placed)))
_, stock, _ = psql("SELECT on_hand - reserved FROM inventory WHERE product_id = %s" % PID)
t.ok(stock == str(100000 - len(placed)), "and the stock is down by exactly those units", stock)
r = request("GET", "/api/v1/users/me", headers=CUSTOMERS[0])
t.ok(r.status == 200 and r.json().get("disabled") is False,
     "the new programs serve: a token of the old release still works, users show disabled", r)
r = request("POST", "/api/v1/auth/refresh",
            body={"refresh_token": (old_pair.json() or {}).get("refresh_token", "")})
pair = r.json() or {}
part = pair.get("access_token", "x.e30.x").split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
mine = request("GET", "/api/v1/users/me/sessions",
               headers={"Authorization": "Bearer " + pair.get("access_token", "")}).json() or {}
t.ok(r.status == 200 and claims.get("sid") in [s["id"] for s in mine.get("data", [])],
     "a session the old programs began refreshes on the new ones, and is listed", (r, mine))
w.terminate()
w.wait(30)
t.done()
