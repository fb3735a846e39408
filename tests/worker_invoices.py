"""Invoices and notifications from agora-worker, with real peers started
here: an SMTP server (aiosmtpd) that receives the mails, an S3-compatible
server (s3rver) that holds invoices, read back with boto3, and a small
HTTP endpoint standing in for the SMS gateway (a third party).  The
invoice PDF is read with pdftotext; our SigV4 signature is checked
against botocore's signer, since s3rver checks none.  Faults: SMTP down
(payment and invoice go on, the mail comes once the server is back), S3
down (the invoice step is retried, nothing lost, no second invoice).

Runs under one web server setup only: the worker does not use it."""
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

from agoratest import (MODE, SERVER, Tap, config_value, need_stack, new_user, port_open, psql,
                       request, start_worker, wait_for)

need_stack()
if SERVER != "lighttpd" or MODE != "managed":
    print("1..0 # SKIP runs once, under lighttpd managed: the worker does not use the web server")
    sys.exit(0)

import boto3  # noqa: E402  (after the skip: only this setup needs them)
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.config  # noqa: E402
import botocore.credentials  # noqa: E402
from smtpinbox import Inbox, Smtp  # noqa: E402

t = Tap()
RUN = uuid.uuid4().hex[:10]
LOG = os.path.join(os.environ.get("AGORA_BUILDDIR", "."), "tests", "worker_invoices.worker.log")
# Markup in the name must reach the HTML part escaped, and the plain part as it is.
NAME = "Grüße Žluťoučký <b>&\"O'Neil\""
NAME_HTML = (NAME.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
             .replace('"', "&quot;").replace("'", "&#39;"))
S3_URL = config_value("s3_endpoint")
S3_PORT = urllib.parse.urlsplit(S3_URL).port


# --- the peers ------------------------------------------------------------------
class S3:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="agora-s3-")
        self.p = None

    def start(self):
        # Another server on the port (one a killed run left) would answer
        # for this one, and "S3 down" would not be.
        if port_open(S3_PORT):
            raise RuntimeError("port %d is taken: is an s3rver of an earlier run left?"
                               % S3_PORT)
        self.p = subprocess.Popen([os.environ["AGORA_TEST_S3RVER"], "-d", self.dir,
                                   "-a", "127.0.0.1", "-p", str(S3_PORT), "-s",
                                   "--configure-bucket", "agora"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(S3_PORT), 20)

    def stop(self):
        self.p.terminate()
        self.p.wait(10)
        wait_for(lambda: not port_open(S3_PORT), 10)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request: the SMS gateway, or a capture of an S3 PUT."""
    seen = None

    def log_message(self, *a):
        pass

    def record(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, dict(self.headers.items()), self.rfile.read(n)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT = record


def serve():
    seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Recorder,), {"seen": seen}))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % srv.server_address[1], seen


inbox = Inbox()
smtp = Smtp(inbox)
smtp.start()
s3 = S3()
s3.start()
SMS_URL, sms = serve()
S3C = boto3.client("s3", endpoint_url=S3_URL, aws_access_key_id="S3RVER",
                   aws_secret_access_key="S3RVER", region_name="us-east-1",
                   config=botocore.config.Config(s3={"addressing_style": "path"}))

# Earlier tests ran payment-only workers; their orders' follow-up work is
# not this test's to do.
psql("DELETE FROM outbox WHERE topic IN ('invoice.create', 'order.created', 'notify.order', "
     "'notify.send')")
ENV = {"AGORA_NOTIFY_CHANNELS": "log,email,sms", "AGORA_SMS_URL": SMS_URL + "/sms",
       "AGORA_SMS_TOKEN": "sms-" + RUN, "AGORA_OUTBOX_BACKOFF_MS": "50",
       "AGORA_OUTBOX_BACKOFF_MAX_MS": "300", "AGORA_NOTIFY_TIMEOUT_MS": "2000",
       "AGORA_STORAGE_TIMEOUT_MS": "2000", "AGORA_SELLER_NAME": "Agora Händler GmbH"}
ADM = new_user("wi.admin.%s@example.com" % RUN, role="admin")
A = new_user("wi.a.%s@example.com" % RUN)
B = new_user("wi.b.%s@example.com" % RUN)
psql("UPDATE users SET name = '%s' WHERE email = 'wi.a.%s@example.com'"
     % (NAME.replace("'", "''"), RUN))
# Mail and SMS go only to verified addresses (notify_unverified): these
# customers verified theirs (tests/http_account_mail.py does it by mail).
psql("UPDATE users SET email_verified_at = now() WHERE email LIKE 'wi.%%.%s@example.com'" % RUN)
P = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "WI-" + RUN, "name": "Kaffeetasse – Ελληνικά", "price_cents": 1234,
    "stock": 1000}).json()["id"]
ADDRESS = {"name": NAME, "line1": "Hauptstraße 1", "city": "Zürich", "postal_code": "8001",
           "country": "CH", "phone": "+41791234567"}


def order(h, token="tok_visa", qty=2, address=ADDRESS):
    body = {"items": [{"product_id": P, "quantity": qty}], "shipping_address": address}
    if token:
        body["payment"] = {"method": "card", "token": token}
    r = request("POST", "/api/v1/orders", body=body, headers=h)
    assert r.status == 201, r
    return r.json()["id"]


def status(h, oid):
    return request("GET", "/api/v1/orders/" + oid, headers=h).json().get("status")


def mails(oid, template_words):
    """The mails about order oid whose subject has template_words."""
    return [m for m in inbox.parsed()
            if re.search(r"\bOrder %s\b" % oid, str(m[2]["Subject"]))
            and template_words in str(m[2]["Subject"])]


def notifications(h):
    return request("GET", "/api/v1/notifications?limit=100", headers=h).json().get("data", [])


def one(sql):
    return psql(sql)[1]


def settled(oid):
    """Whether the outbox holds nothing more for order oid and its
    notifications: no work is left that could send another mail or make
    another invoice (a row leaves the outbox after its work is done)."""
    return one("SELECT count(*) FROM outbox WHERE aggregate_id = 'order:%s' OR aggregate_id IN "
               "(SELECT 'notification:' || id FROM notifications WHERE order_id = %s)"
               % (oid, oid)) == "0"


def pdf_text(data):
    p = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True)
    return p.stdout.decode("utf-8", "replace")


# --- local storage: the whole path, with mails and SMS --------------------------------
w = start_worker("--loop", "--deadline", "600", env=ENV, log=LOG)
time.sleep(0.3)
t0 = time.monotonic()
o1 = order(A)
took = wait_for(lambda: status(A, o1) == "completed", 10)
t.ok(took is not None and time.monotonic() - t0 < 2.0,
     "an order paid with tok_visa is completed with its invoice within two seconds (%.0f ms)"
     % ((time.monotonic() - t0) * 1000), took)
r = request("GET", "/api/v1/orders/%s/invoice" % o1, headers=A)
text = pdf_text(r.body)
t.ok(r.status == 200 and r.header("Content-Type") == "application/pdf" and r.body[:5] == b"%PDF-"
     and r.header("ETag") == '"%s"' % hashlib.sha256(r.body).hexdigest()
     and (r.header("Content-Disposition") or "").startswith('inline; filename="invoice-INV-'),
     "GET /orders/{id}/invoice: application/pdf with an ETag", r.headers)
r304 = request("GET", "/api/v1/orders/%s/invoice" % o1,
               headers=dict(A, **{"If-None-Match": r.header("ETag") or "x"}))
t.ok(r304.status == 304 and r304.body == b"" and r304.header("ETag") == r.header("ETag"),
     "If-None-Match with the invoice's ETag: 304", r304)
inv_no = "INV-%08d" % int(o1)
for what in (inv_no, "Order %s" % o1, "24.68 USD", "12.34 USD", NAME, "Kaffeetasse – Ελληνικά",
             "Hauptstraße 1", "8001 Zürich", "Agora Händler GmbH", "wi.a.%s@example.com" % RUN):
    t.ok(what in text, "the invoice PDF reads %r" % what, text[:600])
row = one("SELECT f.storage || ' ' || f.sha256 || ' ' || f.size || ' ' || i.number FROM invoices i "
          "JOIN files f ON f.id = i.file_id WHERE i.order_id = %s" % o1).split()
t.ok(row == ["local", hashlib.sha256(r.body).hexdigest(), str(len(r.body)), inv_no],
     "the invoice's row: local storage, its sha256, size and number", row)
fid = one("SELECT file_id FROM invoices WHERE order_id = %s" % o1)
r2 = request("GET", "/api/v1/files/%s/download" % fid, headers=A)
t.ok(r2.status == 200 and r2.body == r.body, "the invoice is the owner's file too", r2)
t.ok(request("GET", "/api/v1/orders/%s/invoice" % o1, headers=B).is_problem(404)
     and request("GET", "/api/v1/orders/%s/invoice" % o1, headers=ADM).status == 200,
     "another user's invoice: 404; an admin's: 200")
ev = one("SELECT string_agg(status || ':' || coalesce(detail, ''), ',' ORDER BY seq) "
         "FROM order_events WHERE order_id = %s" % o1)
t.ok(ev.startswith("pending:") and ev.endswith("completed:" + inv_no), "events end with "
     "completed, the invoice number as detail", ev)

wait_for(lambda: len(mails(o1, "received")) and len(mails(o1, "paid")) and len(sms) >= 2
         and settled(o1), 10)
got = mails(o1, "paid")
t.ok(len(got) == 1 and len(mails(o1, "received")) == 1, "one mail for received, one for paid",
     [str(m[2]["Subject"]) for m in inbox.parsed()])
if got:
    to, raw, msg = got[0]
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    t.ok(to == ["wi.a.%s@example.com" % RUN] and msg["To"] == "wi.a.%s@example.com" % RUN,
         "sent to the customer", (to, msg["To"]))
    t.ok(str(msg["Subject"]) == "Order %s is paid — your invoice" % o1 and "=?UTF-8?B?" in head,
         "the subject is UTF-8, RFC 2047 encoded", head)
    t.ok(msg["Date"] is not None and msg["Date"].datetime is not None
         and msg["Message-ID"] is not None and msg["Message-ID"].startswith("<notification-")
         and msg["From"].addresses[0].display_name == "Agora Händler GmbH"
         and msg["From"].addresses[0].addr_spec == config_value("smtp_from"),
         "Date, Message-ID and an encoded From", head)
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    link = "/api/v1/orders/%s/invoice" % o1
    t.ok(plain is not None and html is not None
         and any(p.get_content_type() == "multipart/alternative" for p in msg.walk())
         and NAME in plain.get_content() and link in plain.get_content()
         and ('href="%s%s"' % (config_value("public_url"), link)) in html.get_content()
         and NAME_HTML in html.get_content() and "<b>" not in html.get_content(),
         "plain text and HTML parts, both with the name (escaped in HTML) and the invoice link",
         raw[:2000])
rec = mails(o1, "received")
if rec:
    t.ok("2 x Kaffeetasse – Ελληνικά" in rec[0][2].get_body(preferencelist=("plain",)).get_content(),
         "the received mail lists the items", rec[0][1][:1500])
# (Older orders of a reused stack may expire meanwhile and send theirs.)
sm = [json.loads(b) for (_, _, h, b) in sms if h.get("Authorization") == "Bearer sms-" + RUN
      and re.search(rb"\bOrder %s\b" % o1.encode(), b)]
t.ok(len(sm) == 2 and all(s["to"] == "+41791234567" for s in sm)
     and any(("/api/v1/orders/%s/invoice" % o1) in s["body"] for s in sm)
     and all(h.get("Idempotency-Key", "").startswith("notification-") for (_, _, h, _) in sms),
     "two SMS to the order's phone, with the token and an Idempotency-Key", sms)
ns = [n for n in notifications(A) if n["order_id"] == o1]
t.ok(len(ns) == 6 and all(n["status"] == "sent" and n["attempts"] == 1 and n["sent_at"] for n in ns)
     and sorted({n["channel"] for n in ns}) == ["email", "log", "sms"]
     and sorted({n["template"] for n in ns}) == ["order_received", "payment_succeeded"],
     "GET /notifications: 2 events x 3 channels, each sent on its first attempt", ns)
t.ok(not any(n["order_id"] == o1 for n in notifications(B)), "another user sees none of them")
t.ok(one("SELECT count(*) FROM notification_attempts a JOIN notifications n ON "
         "n.id = a.notification_id WHERE n.order_id = %s AND a.ok" % o1) == "6",
     "every attempt is recorded")

# The invoice step and the fan-out run again: nothing new.
psql("SELECT outbox_add('invoice.create', 'order:%s', jsonb_build_object('order_id', '%s'))" % (o1, o1))
psql("SELECT outbox_add('notify.order', 'order:%s', jsonb_build_object('order_id', '%s', "
     "'template', 'payment_succeeded'))" % (o1, o1))
done = wait_for(lambda: settled(o1), 10)
t.ok(done is not None and one("SELECT count(*) FROM invoices WHERE order_id = %s" % o1) == "1"
     and one("SELECT count(*) FROM files f JOIN invoices i ON i.file_id = f.id WHERE i.order_id = %s"
             % o1) == "1"
     and request("GET", "/api/v1/orders/%s/invoice" % o1, headers=A).body == r.body
     and len(mails(o1, "paid")) == 1 and len([n for n in notifications(A) if n["order_id"] == o1]) == 6,
     "running the invoice step and the fan-out again: one invoice, no second mail")

# Other events: payment failed, cancelled, shipped.
o2 = order(A, "tok_chargeDeclined", address=dict(ADDRESS, phone=""))
o3 = order(A, token=None, qty=1)
request("PUT", "/api/v1/orders/%s/cancel" % o3, headers=A)
o4 = order(A, qty=1)
wait_for(lambda: status(A, o4) == "completed", 10)
request("PUT", "/api/v1/orders/%s/status" % o4, headers=ADM,
        body={"status": "shipped", "tracking_number": "TRK-" + RUN})
wait_for(lambda: mails(o2, "failed") and mails(o3, "cancelled") and mails(o4, "on its way")
         and settled(o2) and settled(o3) and settled(o4), 10)
t.ok(len(mails(o2, "failed")) == 1 and len(mails(o3, "cancelled")) == 1
     and len(mails(o4, "on its way")) == 1
     and ("TRK-" + RUN) in mails(o4, "on its way")[0][2].get_body(("plain",)).get_content(),
     "mails for payment failed, cancelled and shipped (with the tracking number)",
     ([str(m[2]["Subject"]) for m in inbox.parsed()], status(A, o4)))
skipped = [n for n in notifications(A) if n["order_id"] == o2 and n["channel"] == "sms"]
t.ok(len(skipped) == 2 and all(n["status"] == "skipped" for n in skipped),
     "no phone: the SMS notifications are skipped, not retried", skipped)
t.ok(one("SELECT count(*) FROM invoices WHERE order_id IN (%s, %s)" % (o2, o3)) == "0",
     "no invoice for a failed or cancelled order")

# --- SMTP down -------------------------------------------------------------------------
smtp.stop()
o5 = order(A, qty=1)
wait_for(lambda: status(A, o5) == "completed", 10)
pend = lambda: [n for n in notifications(A) if n["order_id"] == o5 and n["channel"] == "email"]  # noqa: E731
wait_for(lambda: all(n["attempts"] >= 2 for n in pend()) and len(pend()) == 2, 10)
others = [n for n in notifications(A) if n["order_id"] == o5 and n["channel"] != "email"]
t.ok(status(A, o5) == "completed" and request("GET", "/api/v1/orders/%s/invoice" % o5,
                                              headers=A).status == 200,
     "SMTP down: the order is paid and completed with its invoice all the same")
t.ok(len(pend()) == 2 and all(n["status"] == "pending" and n["attempts"] >= 2 for n in pend())
     and len(others) == 4 and all(n["status"] == "sent" for n in others),
     "SMTP down: the mails wait and are retried; log and SMS went out", (pend(), others))
err = one("SELECT string_agg(DISTINCT last_error, ';') FROM notifications WHERE order_id = %s "
          "AND channel = 'email'" % o5)
t.ok("smtp" in err.lower(), "the failed attempts say why", err)
smtp.start()
done = wait_for(lambda: len(mails(o5, "paid")) >= 1 and settled(o5), 15)
t.ok(done is not None and len(mails(o5, "paid")) == 1 and len(mails(o5, "received")) == 1
     and all(n["status"] == "sent" for n in pend()),
     "SMTP back: each mail is delivered once", (pend(), [str(m[2]["Subject"]) for m in inbox.parsed()]))
w.terminate()
w.wait(10)

# --- S3 ------------------------------------------------------------------------------
# Backoff up to 2 s: ten attempts then span the seconds s3rver may take to
# start again on a busy machine, as a real outage needs longer ones.
S3ENV = dict(ENV, AGORA_STORAGE="s3", AGORA_NOTIFY_CHANNELS="log",
             AGORA_OUTBOX_BACKOFF_MAX_MS="2000")
w = start_worker("--loop", "--deadline", "600", env=S3ENV, log=LOG)
o6 = order(A, qty=1)
wait_for(lambda: status(A, o6) == "completed", 10)
r = request("GET", "/api/v1/orders/%s/invoice" % o6, headers=A)
key = one("SELECT f.storage || ' ' || f.storage_key FROM invoices i JOIN files f ON "
          "f.id = i.file_id WHERE i.order_id = %s" % o6).split()
obj = S3C.get_object(Bucket="agora", Key=key[1])["Body"].read() if len(key) == 2 else b""
t.ok(key[:1] == ["s3"] and r.status == 200 and obj == r.body and obj[:5] == b"%PDF-"
     and ("Order %s" % o6) in pdf_text(obj),
     "storage s3: the invoice is in the bucket (read by boto3) and served by the API", key)

s3.stop()
o7 = order(A, qty=1)
wait_for(lambda: int(one("SELECT coalesce(max(attempts), 0) FROM outbox WHERE topic = "
                         "'invoice.create' AND aggregate_id = 'order:%s'" % o7)) >= 3, 10)
row = one("SELECT attempts || ' ' || state || ' ' || last_error FROM outbox WHERE topic = "
          "'invoice.create' AND aggregate_id = 'order:%s'" % o7)
# (pending between attempts, running during one; never dead)
t.ok(status(A, o7) == "paid" and row.split()[1:2] in (["pending"], ["running"]) and "s3" in row,
     "S3 down: the order stays paid and the invoice step is retried", row)
s3.start()
wait_for(lambda: status(A, o7) == "completed", 15)
k7 = one("SELECT f.storage_key FROM invoices i JOIN files f ON f.id = i.file_id "
         "WHERE i.order_id = %s" % o7)
t.ok(status(A, o7) == "completed" and one("SELECT count(*) FROM invoices WHERE order_id = %s" % o7) == "1"
     and S3C.get_object(Bucket="agora", Key=k7)["Body"].read()
     == request("GET", "/api/v1/orders/%s/invoice" % o7, headers=A).body,
     "S3 back: the order completes with one invoice, stored and served", k7)
w.terminate()
w.wait(10)

# --- our SigV4 against botocore's ------------------------------------------------------
CAP_URL, cap = serve()
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY" + RUN
# The keys in files of their own: a *_file key of the stack's
# configuration wins over the plain one, so the override names files too.
KEYS = tempfile.mkdtemp(prefix="agora-s3keys-")
os.chmod(KEYS, 0o755)
for name, value in (("access", "AKIDAGORA" + RUN.upper()), ("secret", SECRET)):
    with open(os.path.join(KEYS, name), "w") as f:
        f.write(value + "\n")
    os.chmod(os.path.join(KEYS, name), 0o644)
w = start_worker("--loop", "--deadline", "600", log=LOG, env=dict(
    S3ENV, AGORA_S3_ENDPOINT=CAP_URL, AGORA_S3_ACCESS_KEY_FILE=os.path.join(KEYS, "access"),
    AGORA_S3_SECRET_KEY_FILE=os.path.join(KEYS, "secret"), AGORA_S3_REGION="eu-central-1",
    AGORA_S3_BUCKET="invoices"))
o8 = order(A, qty=1)
wait_for(lambda: len(cap) > 0, 10)
w.terminate()
w.wait(10)
shutil.rmtree(KEYS)
if cap:
    method, path, headers, body = cap[0]
    h = {k.lower(): v for k, v in headers.items()}
    auth = h.get("authorization", "")
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";") if "SignedHeaders=" in auth else []
    req = botocore.awsrequest.AWSRequest(method=method, url=CAP_URL + path, data=body,
                                         headers={k: h[k] for k in signed if k in h})
    signer = botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(
        "AKIDAGORA" + RUN.upper(), SECRET), "s3", "eu-central-1")
    req.context["timestamp"] = h.get("x-amz-date", "")
    want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    t.ok(method == "PUT" and path == "/invoices/invoices/%s.pdf" % o8
         and h.get("x-amz-content-sha256") == hashlib.sha256(body).hexdigest()
         and "x-amz-content-sha256" in signed and "host" in signed
         and auth.endswith("Signature=" + want)
         and "/eu-central-1/s3/aws4_request" in auth,
         "the S3 PUT is path-style, hashes its body and signs as botocore does", (auth, want))
else:
    t.ok(False, "the S3 PUT reached the capture server")
s3.stop()
smtp.stop()
t.done()
