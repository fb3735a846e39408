"""The web UI (static/) in Debian's chromium, driven by playwright-core:
tests/ui_journeys.mjs walks a shopper, a staff member and an intruder
through the pages against the real stack, with agora-worker running so
that orders are paid and invoiced as they would be.  This file makes the
catalog the journeys need through the API, runs them, and reports each of
their checks as a TAP line.  Screenshots of every page, at 375 px and at
1280 px, go under AGORA_TEST_SHOTS for a person to look at."""
import hashlib
import json
import os
import secrets
import subprocess
import sys
import urllib.parse
import uuid

from agoratest import (MODE, SERVER, URL, Tap, config_value, need_stack, new_user, psql,
                       request, start_worker, svc, wait_for)

need_stack()
MODULES = os.environ.get("AGORA_TEST_NODE_MODULES")
if not MODULES:
    print("1..0 # SKIP AGORA_TEST_NODE_MODULES names no playwright-core (./dev check sets it)")
    sys.exit(0)
# A browser run takes a few minutes: two of the four setups cover both
# servers, both process models, and plain HTTP beside HTTPS (the pool
# setups serve TLS).  The routing of UI paths is checked in all four by
# tests/http_abuse.py.
if (SERVER, MODE) in (("apache", "pool"), ("lighttpd", "managed")):
    print("1..0 # SKIP the browser runs on apache/managed and lighttpd/pool")
    sys.exit(0)
t = Tap()
RUN = uuid.uuid4().hex[:10]
# One word no other product has: the run's hex digits as letters.
WORD = "".join(chr(ord("k") + int(c, 16)) for c in RUN)
PASSWORD = "integration test password"
ADMIN_EMAIL = "ui.admin.%s@example.com" % RUN
ADM = new_user(ADMIN_EMAIL, role="admin", password=PASSWORD)


def make(path, body):
    r = request("POST", "/api/v1" + path, body=body, headers=ADM)
    if r.status != 201:
        raise RuntimeError("POST %s: %s" % (path, r))
    return r.json()


cat = make("/categories", {"name": "Camping %s" % WORD, "slug": "camping-%s" % RUN})
products = {
    "tent": make("/products", {"sku": "UI-TENT-" + RUN, "name": "Storm Tent %s" % WORD,
                               "description": "A tent for two.", "price_cents": 19999,
                               "currency": "USD", "category_id": cat["id"], "stock": 40,
                               "attributes": {"color": "green", "season": "3"}}),
    "lamp": make("/products", {"sku": "UI-LAMP-" + RUN, "name": "Trail Lamp %s" % WORD,
                               "price_cents": 2450, "currency": "USD", "category_id": cat["id"],
                               "stock": 40, "attributes": {"color": "red"}}),
    "kettle": make("/products", {"sku": "UI-KETTLE-" + RUN, "name": "Rare Kettle %s" % WORD,
                                 "price_cents": 3900, "currency": "USD", "stock": 1}),
    "gone": make("/products", {"sku": "UI-GONE-" + RUN, "name": "Sold Out Stove %s" % WORD,
                               "price_cents": 5000, "currency": "USD", "stock": 0}),
}
# The links agora-worker would mail (tests/http_account_mail.py reads
# them from a real mail): tokens made here, their hashes stored as the
# worker stores them.
RESETTER = "ui.reset.%s@example.com" % RUN
request("POST", "/api/v1/auth/register", body={"email": RESETTER, "password": PASSWORD,
                                              "name": "Forgetful"})
LINKS = {p: secrets.token_urlsafe(32) for p in ("verify", "reset")}
for purpose, tok in LINKS.items():
    psql("INSERT INTO account_tokens (user_id, purpose, email, token_sha256, expires_at) "
         "SELECT id, '%s', email, '%s', now() + interval '1 hour' FROM users WHERE email = '%s'"
         % (purpose, hashlib.sha256(tok.encode()).hexdigest(), RESETTER))
# The sign-in provider of the stack's agora.conf (tests/oidcprovider.py).
here = os.path.dirname(os.path.abspath(__file__))
PROV_PORT = urllib.parse.urlsplit(config_value("issuer")).port
PROV = subprocess.Popen([sys.executable, os.path.join(here, "oidcprovider.py"), str(PROV_PORT),
                         "agora-test", open(config_value("client_secret_file")).read().strip()],
                        stdout=subprocess.PIPE, text=True)
PROV.stdout.readline()  # "ready"
setup = {
    "base": URL, "provider": "http://127.0.0.1:%d" % PROV_PORT, "resetter": RESETTER, "links": LINKS, "run": RUN, "word": WORD, "password": PASSWORD,
    "admin_email": ADMIN_EMAIL, "category": cat,
    "products": {k: {"id": v["id"], "name": v["name"]} for k, v in products.items()},
    "shots": os.path.join(os.environ.get("AGORA_TEST_SHOTS") or "/tmp",
                          "%s-%s" % (SERVER, MODE)),
    "modules": MODULES,
}

# For the shop on a real gateway, run last: a shopper with a line in the
# cart and an order the simulated provider declines while the journeys
# run.
LIVE_EMAIL = "ui.live.%s@example.com" % RUN
LIVE = new_user(LIVE_EMAIL, password=PASSWORD)
request("PUT", "/api/v1/cart/items/" + products["lamp"]["id"], body={"quantity": 1}, headers=LIVE)
DECLINED = request("POST", "/api/v1/orders", headers=LIVE, body={
    "items": [{"product_id": products["tent"]["id"], "quantity": 1}],
    "payment": {"method": "card", "token": "tok_chargeDeclined"}}).json()["id"]


def run_journeys(setup):
    p = subprocess.Popen(["node", os.path.join(here, "ui_journeys.mjs")], stdout=subprocess.PIPE,
                         env=dict(os.environ, UI_SETUP=json.dumps(setup)), text=True)
    for line in p.stdout:
        if not line.startswith("CHECK "):
            sys.stdout.write("# " + line)
            continue
        c = json.loads(line[6:])
        t.ok(c["ok"], c["what"], c.get("diag"))
    return p.wait()


# The worker pays, invoices and notifies while the journeys run, as the
# cron entry's loop would; the simulated provider takes the test cards.
worker = start_worker("--loop", "--deadline", "600",
                      env={"AGORA_PAYMENT_PROVIDER": "simulated"})
try:
    rc = run_journeys(setup)
    t.ok(rc == 0, "the journeys ran to their end (node's exit status)", rc)
    t.ok(wait_for(lambda: request("GET", "/api/v1/orders/" + DECLINED, headers=LIVE)
                  .json()["status"] == "payment_failed", 90) is not None,
         "the order paid with tok_chargeDeclined was declined")
finally:
    worker.terminate()
    worker.wait(timeout=60)
    PROV.kill()
    PROV.wait()

# The same pages with the programs started on payment_provider = http
# (no charge is made: nothing is paid in this run).
CONF = os.environ["AGORA_CONFIG"]
with open(CONF) as f:
    ORIGINAL = f.read()
try:
    with open(CONF, "w") as f:
        # First: the provider sections run to the end of the file.
        f.write("payment_provider = http\npayment_gateway_url = http://127.0.0.1:9/gateway\n"
                + ORIGINAL)
    svc("web", "restart")
    rc = run_journeys(dict(setup, live={"email": LIVE_EMAIL, "declined": DECLINED}))
    t.ok(rc == 0, "the real-gateway step ran to its end (node's exit status)", rc)
finally:
    with open(CONF, "w") as f:
        f.write(ORIGINAL)
    svc("web", "restart")
t.done()
