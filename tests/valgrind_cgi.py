"""Each of the 14 programs, run as CGI under valgrind's memcheck against the
real database and cache, over its main request paths, the ones that
answer 2xx: no invalid read or write, no leak, and the status each path
must give (a 500 fails).  Accounts, products and orders are made through
the web server first; the programs run as the web server's user, as they
do under it.  It runs in one configuration only (Apache, managed), since
the web server plays no part."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid

from agoratest import (MODE, SERVER, Tap, cgi_output, config_value, need_stack, new_user, psql,
                       request, run_worker, sign)

need_stack()
if SERVER != "apache" or MODE != "managed" or not shutil.which("valgrind"):
    print("1..0 # SKIP runs once, under Apache managed, where valgrind is installed")
    sys.exit(0)
t = Tap()
cgidir = os.environ["AGORA_TEST_CGIDIR"]
RUN = uuid.uuid4().hex[:10]
J = "application/json"
AS = {"user": "www-data", "group": "www-data", "extra_groups": []} if os.geteuid() == 0 else {}
SEEN = set()
LAST = [None]  # the last answer vg() got, headers and all


def vg(prog, method, uri, want, body=b"", ctype=None, token=None, headers=None):
    """Run prog once as CGI under memcheck; its answer's body as JSON."""
    if isinstance(body, (dict, list)):
        body, ctype = json.dumps(body).encode(), J
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.77",
           "AGORA_CONFIG": os.environ["AGORA_CONFIG"], "CONTENT_LENGTH": str(len(body)),
           "PATH": "/usr/bin:/bin"}
    if "?" in uri:
        env["QUERY_STRING"] = uri.split("?", 1)[1]
    if ctype:
        env["CONTENT_TYPE"] = ctype
    if token:
        env["HTTP_AUTHORIZATION"] = token["Authorization"]
    env.update(headers or {})
    p = subprocess.run(["valgrind", "--quiet", "--leak-check=full", "--error-exitcode=9",
                        "--errors-for-leak-kinds=definite,indirect",
                        os.path.join(cgidir, prog)], input=body, env=env, capture_output=True,
                       timeout=300, **AS)
    LAST[0] = cgi_output(method, uri, p.stdout)
    head, _, payload = p.stdout.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    report = [line for line in p.stderr.decode(errors="replace").splitlines()
              if line.startswith("==")]
    SEEN.add(prog)
    t.ok(p.returncode == 0 and not report and status.startswith("Status: %d" % want),
         "%s %s %s: %s, memcheck clean" % (prog, method, uri[:50], status[8:] or "no status"),
         "\n".join(report) or payload[:300])
    try:
        return json.loads(payload)
    except ValueError:
        return {}


# --- what the paths need, made through the web server ---------------------------
PW = "valgrind password 1"
ADM = new_user("vg.admin.%s@example.com" % RUN, role="admin")
U = new_user("vg.u.%s@example.com" % RUN)
U_ID = request("GET", "/api/v1/users/me", headers=U).json()["id"]
session = request("POST", "/api/v1/auth/login", body={"email": "vg.u.%s@example.com" % RUN,
                                                      "password": "integration test password"}).json()
P = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "VG-" + RUN, "name": "Valgrind thing", "price_cents": 500, "stock": 100,
    "attributes": {"color": "red"}}).json()["id"]


def placed(payment=True):
    body = {"items": [{"product_id": P, "quantity": 1}]}
    if payment:
        body["payment"] = {"method": "card", "token": "tok_visa"}
    return request("POST", "/api/v1/orders", headers=U, body=body).json()["id"]


def paid(oid):
    """Record the order's charge as agora-worker would; its payment id."""
    pay = psql("SELECT id FROM payments WHERE order_id = %s" % oid)[1]
    psql("SELECT payment_charge_end(%s, true, 'ch_vg', NULL)" % pay)
    return pay


# Paid orders, completed with their invoices by agora-worker: one bought
# (reviews), one to refund, one to ship.
BOUGHT, SHIP, REFUND_ORDER = placed(), placed(), placed()
paid(BOUGHT)
paid(SHIP)
REFUND = paid(REFUND_ORDER)
# Other tests' paid orders queued invoices too: not this test's to make.
psql("DELETE FROM outbox WHERE topic = 'invoice.create' AND aggregate_id NOT IN "
     "('order:%s', 'order:%s', 'order:%s')" % (BOUGHT, SHIP, REFUND_ORDER))
rc = run_worker("--once", "--topics", "invoice.create")
_, done, _ = psql("SELECT count(*) FROM orders WHERE status = 'completed' AND id IN (%s, %s, %s)"
                  % (BOUGHT, SHIP, REFUND_ORDER))
t.ok(rc == 0 and done == "3", "agora-worker completed the paid orders with their invoices",
     (rc, done))
UNPAID = placed(payment=False)
CANCEL = placed(payment=False)

# --- every program --------------------------------------------------------------
vg("health", "GET", "/api/v1/health", 200)
vg("openapi", "GET", "/api/v1/openapi.json", 200)
vg("analytics", "POST", "/api/v1/analytics/events", 202,
   [{"type": "vg", "session_id": "vg", "properties": {"a": [1, 2]}}])

email = "vg-%s@example.com" % RUN
vg("auth", "POST", "/api/v1/auth/register", 201, {"email": email, "password": PW, "name": "V"})
tok = vg("auth", "POST", "/api/v1/auth/login", 200, {"email": email, "password": PW})
vg("auth", "POST", "/api/v1/auth/refresh", 200, {"refresh_token": tok.get("refresh_token", "")})
vg("auth", "POST", "/api/v1/auth/logout", 204, {"refresh_token": session["refresh_token"]}, token=U)
vg("auth", "GET", "/.well-known/jwks.json", 200)

# A sign-in with the stack's provider (tests/oidcprovider.py): discovery,
# keys, the code exchange and the ID token's checks (libcurl, libcjose).
PROV = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "oidcprovider.py"),
                         str(urllib.parse.urlsplit(config_value("issuer")).port), "agora-test",
                         open(config_value("client_secret_file")).read().strip()],
                        stdout=subprocess.PIPE, text=True)
try:
    PROV.stdout.readline()
    base = "http://127.0.0.1:%d" % urllib.parse.urlsplit(config_value("issuer")).port
    urllib.request.urlopen(urllib.request.Request(base + "/_control", method="POST", data=json.dumps(
        {"user": {"sub": "vg-" + RUN, "email": "vg.oidc.%s@example.com" % RUN,
                  "email_verified": True, "name": "V"}}).encode()), timeout=30).read()
    vg("auth", "GET", "/api/v1/auth/providers", 200)
    vg("auth", "GET", "/api/v1/auth/providers/testid/start?response=json", 302)
    state = (LAST[0].header("Set-Cookie") or "").split(";")[0].split("=", 1)[-1]
    where = urllib.parse.urlsplit(LAST[0].header("Location") or "")
    c = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    c.request("GET", where.path + "?" + where.query)
    back = urllib.parse.urlsplit(c.getresponse().getheader("Location") or "")
    c.close()
    vg("auth", "GET", back.path + "?" + back.query, 200,
       headers={"HTTP_COOKIE": "__Host-agora_signin=" + state})
finally:
    PROV.kill()
    PROV.wait()

vg("users", "GET", "/api/v1/users/me", 200, token=U)
vg("users", "PATCH", "/api/v1/users/me", 200, {"name": "Val Grind"}, token=U)
vg("users", "GET", "/api/v1/users?limit=3", 200, token=ADM)
vg("users", "GET", "/api/v1/users/" + U_ID, 200, token=ADM)

vg("products", "GET", "/api/v1/products?q=valgrind&attr.color=red&sort=price&limit=3", 200)
vg("products", "GET", "/api/v1/products/" + P, 200)
vg("products", "GET", "/api/v1/products/" + P, 200, token=U)
made = vg("products", "POST", "/api/v1/products", 201,
          {"sku": "VG2-" + RUN, "name": "Second", "price_cents": 100, "stock": 3}, token=ADM)
vg("products", "PATCH", "/api/v1/products/%s" % made.get("id"), 200, {"price_cents": 150}, token=ADM)
vg("products", "DELETE", "/api/v1/products/%s" % made.get("id"), 204, token=ADM)
review = vg("products", "POST", "/api/v1/products/%s/reviews" % P, 201,
            {"rating": 4, "title": "Checked", "body": "Under memcheck."}, token=U)
vg("products", "GET", "/api/v1/products/%s/reviews" % P, 200)
vg("products", "GET", "/api/v1/reviews/%s" % review.get("id"), 200)
vg("products", "DELETE", "/api/v1/reviews/%s" % review.get("id"), 204, token=U)

vg("categories", "GET", "/api/v1/categories", 200)
cat = vg("categories", "POST", "/api/v1/categories", 201,
         {"name": "Valgrind", "slug": "vg-" + RUN}, token=ADM)
vg("categories", "GET", "/api/v1/categories/%s" % cat.get("id"), 200)

vg("inventory", "GET", "/api/v1/inventory/" + P, 200)
vg("inventory", "PUT", "/api/v1/inventory/" + P, 200, {"on_hand": 200}, token=ADM)
vg("inventory", "PUT", "/api/v1/inventory/%s/reserve" % P, 200,
   {"order_id": "vg-" + RUN, "quantity": 2}, token=ADM)
vg("inventory", "PUT", "/api/v1/inventory/%s/release" % P, 200, {"order_id": "vg-" + RUN},
   token=ADM)

o = vg("orders", "POST", "/api/v1/orders", 201,
       {"items": [{"product_id": P, "quantity": 2}],
        "shipping_address": {"name": "V", "line1": "1 Main St", "city": "X", "country": "US"}},
       token=U, headers={"HTTP_IDEMPOTENCY_KEY": "vg-" + RUN})
vg("orders", "GET", "/api/v1/orders/%s" % o.get("id"), 200, token=U)
vg("orders", "GET", "/api/v1/orders?limit=5", 200, token=U)
vg("orders", "PUT", "/api/v1/orders/%s/cancel" % CANCEL, 200, token=U)
vg("orders", "PUT", "/api/v1/orders/%s/status" % SHIP, 200,
   {"status": "shipped", "tracking_number": "VG1"}, token=ADM)

vg("tracking", "GET", "/api/v1/orders/%s/events" % BOUGHT, 200, token=U)
vg("tracking", "GET", "/api/v1/orders/%s/events?after=9&wait=1" % BOUGHT, 200, token=U)

vg("cart", "PUT", "/api/v1/cart/items/" + P, 200, {"quantity": 2}, token=U)
vg("cart", "GET", "/api/v1/cart", 200, token=U)
vg("cart", "POST", "/api/v1/cart/checkout", 201,
   {"payment": {"method": "card", "token": "tok_visa"}}, token=U)
vg("cart", "PUT", "/api/v1/cart/items/" + P, 200, {"quantity": 1}, token=U)
vg("cart", "DELETE", "/api/v1/cart/items/" + P, 204, token=U)

pay = vg("payments", "POST", "/api/v1/payments", 202,
         {"order_id": UNPAID, "method": "card", "token": "tok_visa"}, token=U)
vg("payments", "GET", "/api/v1/payments/%s" % pay.get("id"), 200, token=U)
vg("orders", "GET", "/api/v1/orders/%s/payments" % UNPAID, 200, token=U)
vg("payments", "POST", "/api/v1/payments/%s/refund" % REFUND, 202, token=ADM)
event = json.dumps({"id": "evt_vg_" + RUN, "type": "charge.refunded",
                    "data": {"payment_id": REFUND}}).encode()
with open(config_value("webhook_secret_file")) as f:
    secret = f.read().strip()
vg("payments", "POST", "/api/v1/payments/webhook", 200, event, J,
   headers={"HTTP_AGORA_SIGNATURE": sign(secret, event)})

f = vg("files", "POST", "/api/v1/files?filename=vg.bin", 201, b"\x00valgrind\xff" * 100,
       "application/octet-stream", token=U)
multi = (b"--vgb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.txt\"\r\n"
         b"Content-Type: text/plain\r\n\r\nmultipart body\r\n--vgb--\r\n")
vg("files", "POST", "/api/v1/files", 201, multi, "multipart/form-data; boundary=vgb", token=U)
vg("files", "GET", "/api/v1/files/%s" % f.get("id"), 200, token=U)
vg("files", "GET", "/api/v1/files/%s/download" % f.get("id"), 200, token=U)
vg("orders", "GET", "/api/v1/orders/%s/invoice" % BOUGHT, 200, token=U)

vg("notifications", "GET", "/api/v1/notifications", 200, token=U)
vg("metrics", "GET", "/metrics", 200)

# Some error paths too: a problem answer must not leak either.
vg("health", "GET", "/api/v1/nowhere", 404)
vg("analytics", "POST", "/api/v1/analytics/events", 400, b'{"type": 1, "x": [', J)
vg("analytics", "POST", "/api/v1/analytics/events", 400, b'{"type": 1}', J)
vg("auth", "POST", "/api/v1/auth/refresh", 401, {"refresh_token": "nope"})
vg("users", "GET", "/api/v1/users/me", 401, headers={"HTTP_AUTHORIZATION": "Bearer a.b.c"})
vg("products", "GET", "/api/v1/products?cursor=forged", 400)
vg("orders", "POST", "/api/v1/orders", 409, {"items": [{"product_id": P, "quantity": 1000}]},
   token=U)

progs = sorted(p for p in os.listdir(cgidir) if os.access(os.path.join(cgidir, p), os.X_OK))
t.ok(len(progs) == 15 and set(progs) == SEEN, "every program ran under memcheck (%d)" % len(SEEN),
     sorted(set(progs) - SEEN))
t.done()
