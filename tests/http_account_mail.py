"""Verified email and password reset (fcgi/auth.c, worker/account.c,
sql/0024) against the real stack: the mails go through agora-worker to an
SMTP server (aiosmtpd) and are read back from it; their links' tokens
verify an address and set a password once, for the address they were
sent to, until they expire; the database never holds a token; a
forgotten password answers the same for an unknown email; mails to one
address are limited; a reset ends every session; and an unverified
account gets no order mail."""
import hashlib
import re
import uuid

from agoratest import (Tap, bearer, config_value, need_stack, new_user, psql, request,
                       run_worker, svc, wait_for)

need_stack()
from smtpinbox import Inbox, Smtp  # noqa: E402  (after the skip: aiosmtpd is the stack's)
t = Tap()
RUN = uuid.uuid4().hex[:10]
PW = "integration test password"
ENV = {"AGORA_NOTIFY_CHANNELS": "log,email", "AGORA_SELLER_NAME": "Agora Test Shop",
       "AGORA_OUTBOX_BACKOFF_MS": "50", "AGORA_OUTBOX_BACKOFF_MAX_MS": "300",
       "AGORA_NOTIFY_TIMEOUT_MS": "2000"}


inbox = Inbox()
smtp = Smtp(inbox)
smtp.start()


def work():
    """Run the worker over the account mails until none is due: the
    forgotten passwords first, which queue the reset mails."""
    rc = run_worker("--once", "--topics", "account.forgot,account.mail", env=ENV)
    return rc or run_worker("--once", "--topics", "account.forgot,account.mail", env=ENV)


def parts(m):
    text = m.get_body(("plain",)).get_content()
    html = m.get_body(("html",)).get_content()
    return text, html


def token_of(m):
    text, _ = parts(m)
    found = re.search(r"#token=([A-Za-z0-9_-]+)", text)
    return found.group(1) if found else ""


def one_mail(addr, subject):
    wait_for(lambda: inbox.to(addr, subject), 10)
    got = inbox.to(addr, subject)
    return got[-1] if got else None


def register(addr):
    return request("POST", "/api/v1/auth/register",
                   body={"email": addr, "password": PW, "name": "Ana <Tester>"})


def login(addr, pw=PW):
    return request("POST", "/api/v1/auth/login", body={"email": addr, "password": pw})


def verified(addr):
    return psql("SELECT email_verified_at IS NOT NULL FROM users WHERE email = '%s'" % addr)[1]


VERIFY, RESET = "Confirm your email address", "Reset your password"
ANA = "am.ana.%s@example.com" % RUN

# --- registration mails a verification link ----------------------------------------
r = register(ANA)
t.ok(r.status == 201, "register: 201", r)
t.ok(verified(ANA) == "f", "a new account's email is not verified", verified(ANA))
t.ok(work() == 0, "the worker sends the account mails")
m = one_mail(ANA, VERIFY)
tok = token_of(m) if m else ""
t.ok(m is not None and len(tok) == 43, "the verification mail arrives, with a 256-bit token", m)
text, html = parts(m) if m else ("", "")
base = config_value("public_url") or ""
t.ok(("%s/verify-email#token=%s" % (base, tok)) in text and
     ('href="%s/verify-email#token=%s"' % (base, tok)) in html and
     "Ana <Tester>" in text and "Ana &lt;Tester&gt;" in html and "Agora Test Shop" in text,
     "its text and HTML parts carry the link; the name is escaped in the HTML", (text, html))
_, rows, _ = psql("SELECT count(*) FROM account_tokens WHERE token_sha256 = '%s'"
                  % hashlib.sha256(tok.encode()).hexdigest())
_, leak, _ = psql("SELECT count(*) FROM outbox WHERE payload::text LIKE '%%%s%%'" % tok)
t.ok(rows == "1" and leak == "0", "the database holds the token's SHA-256 only", (rows, leak))

# --- verify ---------------------------------------------------------------------
for body, what in [({}, "no token"), ({"token": ""}, "an empty token"),
                   ({"token": "x" * 201}, "a token over 200 characters"),
                   ({"token": tok, "extra": 1}, "an unknown field"),
                   ({"token": tok[:-1] + ("A" if tok[-1] != "A" else "B")}, "a wrong token")]:
    r = request("POST", "/api/v1/auth/verify", body=body)
    t.ok(r.is_problem(422, "validation_failed"), "verify with %s: 422" % what, r)
r = request("POST", "/api/v1/auth/password/reset",
            body={"token": tok, "password": "another long password"})
t.ok(r.is_problem(422), "a verification token cannot reset the password", r)
r = request("POST", "/api/v1/auth/verify", body={"token": tok})
t.ok(r.status == 204 and r.body == b"", "verify: 204", r)
t.ok(verified(ANA) == "t", "the email is verified", verified(ANA))
r = request("POST", "/api/v1/auth/verify", body={"token": tok})
t.ok(r.is_problem(422), "the token works once", r)
A = bearer(login(ANA).json()["access_token"])
r = request("POST", "/api/v1/auth/verify/resend", headers=A)
t.ok(r.is_problem(409, "already_verified"), "resend when verified: 409", r)
r = request("POST", "/api/v1/auth/verify/resend")
t.ok(r.is_problem(401), "resend needs an access token", r)

# --- a token is bound to its address, and expires ----------------------------------
BO = "am.bo.%s@example.com" % RUN
register(BO)
work()
first = token_of(one_mail(BO, VERIFY))
B = bearer(login(BO).json()["access_token"])
r = request("POST", "/api/v1/auth/verify/resend", headers=B)
t.ok(r.status == 202, "resend: 202", r)
work()
got = inbox.to(BO, VERIFY)
second = token_of(got[-1]) if len(got) == 2 else ""
t.ok(len(got) == 2 and second not in ("", first), "a second mail, with a token of its own", got)
psql("UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE token_sha256 = '%s'"
     % hashlib.sha256(second.encode()).hexdigest())
r = request("POST", "/api/v1/auth/verify", body={"token": second})
t.ok(r.is_problem(422), "an expired token: 422", r)
psql("UPDATE users SET email = 'am.bo2.%s@example.com' WHERE email = '%s'" % (RUN, BO))
r = request("POST", "/api/v1/auth/verify", body={"token": first})
t.ok(r.is_problem(422), "a token for an address the account no longer has: 422", r)
t.ok(verified("am.bo2.%s@example.com" % RUN) == "f", "and nothing was verified")
for i in range(3):
    r = request("POST", "/api/v1/auth/verify/resend", headers=B)
t.ok(r.is_problem(429) and r.header("Retry-After"),
     "resend is limited per account (password_reset_max per hour): 429", r)

# --- forgot: the same answer for every email ---------------------------------------------
NOBODY = "am.nobody.%s@example.com" % RUN
answers = [request("POST", "/api/v1/auth/password/forgot", body={"email": e})
           for e in (ANA.upper(), NOBODY)]
shape = [(r.status, r.body, sorted(k.lower() for k, _ in r.headers
                                   if k.lower() not in ("date", "x-request-id", "ratelimit-remaining",
                                                        "ratelimit-reset")))
         for r in answers]
t.ok(answers[0].status == 202 and shape[0] == shape[1],
     "forgot: 202, the same for an account (in other letters) and for no account", shape)
for body, what in [({"email": "not-an-email"}, "not an email"), ({}, "no email"),
                   ({"email": "a@b.c", "x": 1}, "an unknown field")]:
    r = request("POST", "/api/v1/auth/password/forgot", body=body)
    t.ok(r.is_problem(422), "forgot with %s: 422" % what, r)
work()
m = one_mail(ANA, RESET)
reset_tok = token_of(m) if m else ""
t.ok(m is not None and ("%s/reset-password#token=%s" % (base, reset_tok)) in parts(m)[0],
     "the reset mail arrives with its link", m)
t.ok(inbox.to(NOBODY, RESET) == [], "no mail for an email without an account")
for i in range(3):
    r = request("POST", "/api/v1/auth/password/forgot", body={"email": NOBODY.title()})
t.ok(r.is_problem(429), "mails to one address are limited, in any letter case: 429", r)
r = request("POST", "/api/v1/auth/password/forgot", body={"email": "am.other.%s@example.com" % RUN})
t.ok(r.status == 202, "another address is not held back", r)

# --- reset ------------------------------------------------------------------------------
s1 = login(ANA).json()
s2 = login(ANA).json()
for body, what in [({"token": reset_tok, "password": "short"}, "a short password"),
                   ({"token": "nope", "password": "a new long password"}, "a wrong token"),
                   ({"password": "a new long password"}, "no token")]:
    r = request("POST", "/api/v1/auth/password/reset", body=body)
    t.ok(r.is_problem(422), "reset with %s: 422" % what, r)
r = request("POST", "/api/v1/auth/verify", body={"token": reset_tok})
t.ok(r.is_problem(422), "a reset token does not verify", r)
# Someone guesses at the account until it is locked out, of logins and
# of password changes (login_failures_max, 5 on this stack).
for i in range(6):
    g = login(ANA, "a wrong guess %d" % i)
    p = request("PATCH", "/api/v1/users/me", headers=bearer(s1["access_token"]),
                body={"password": "a guessed new password", "current_password": "guess %d" % i})
t.ok(g.is_problem(429, "too_many_failures") and p.is_problem(429, "too_many_failures"),
     "guesses lock the account out of logins and password changes: 429", [g, p])
r = request("POST", "/api/v1/auth/password/reset",
            body={"token": reset_tok, "password": "a new long password"})
t.ok(r.status == 204, "reset: 204", r)
s3 = login(ANA, "a new long password")
t.ok(login(ANA).is_problem(401) and s3.status == 200,
     "the reset forgets the guesses: the old password is refused, the new one works", s3)
p = request("PATCH", "/api/v1/users/me", headers=bearer(s3.json()["access_token"]),
            body={"password": "a new long password", "current_password": "a new long password"})
t.ok(p.status == 200, "and the password can be changed again", p)
r = request("GET", "/api/v1/users/me", headers=bearer(s1["access_token"]))
t.ok(r.is_problem(401, "invalid_token"), "every access token of the account is refused at once", r)
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": s2["refresh_token"]})
t.ok(r.is_problem(401), "and every session's refresh token", r)
r = request("POST", "/api/v1/auth/password/reset",
            body={"token": reset_tok, "password": "a third long password"})
t.ok(r.is_problem(422), "the reset token works once", r)

# Two links: using one kills the other; a disabled account resets nothing.
request("POST", "/api/v1/auth/password/forgot", body={"email": ANA})
request("POST", "/api/v1/auth/password/forgot", body={"email": ANA})
work()
toks = [token_of(m) for m in inbox.to(ANA, RESET)][-2:]
r = request("POST", "/api/v1/auth/password/reset", body={"token": toks[1], "password": PW})
t.ok(r.status == 204, "the newer of two reset links works", r)
r = request("POST", "/api/v1/auth/password/reset", body={"token": toks[0], "password": PW + "x"})
t.ok(r.is_problem(422), "and the older one is dead", r)
CY = "am.cy.%s@example.com" % RUN
register(CY)
request("POST", "/api/v1/auth/password/forgot", body={"email": CY})
work()
cy_tok = token_of(one_mail(CY, RESET))
psql("UPDATE users SET disabled_at = now() WHERE email = '%s'" % CY)
r = request("POST", "/api/v1/auth/password/reset", body={"token": cy_tok, "password": "x" * 12})
t.ok(cy_tok and r.is_problem(422), "a disabled account's reset token: 422", r)

# --- without the email channel nothing is sent, and nothing is stuck ----------------
DI = "am.di.%s@example.com" % RUN
register(DI)
rc = run_worker("--once", "--topics", "account.forgot,account.mail",
                env=dict(ENV, AGORA_NOTIFY_CHANNELS="log"))
_, left, _ = psql("SELECT count(*) FROM outbox o JOIN account_tokens a "
                  "ON o.aggregate_id = 'account_token:' || a.id JOIN users u ON u.id = a.user_id "
                  "WHERE u.email = '%s' AND o.state <> 'done'" % DI)
t.ok(rc == 0 and left == "0" and inbox.to(DI, VERIFY) == [],
     "notify_channels without email: the row is done, no mail", (rc, left))

# --- unverified accounts get no order mail (notify_unverified = 0) ----------------------
ADM = new_user("am.admin.%s@example.com" % RUN, role="admin")
PROD = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "AM-" + RUN, "name": "Mail test mug", "price_cents": 500, "stock": 10}).json()["id"]
ADDRESS = {"name": "Ana", "line1": "Main St 1", "city": "Bern", "postal_code": "3000",
           "country": "CH", "phone": "+41791234567"}


def order_by(h):
    r = request("POST", "/api/v1/orders", headers=h, body={
        "items": [{"product_id": PROD, "quantity": 1}], "shipping_address": ADDRESS})
    return r.json()["id"] if r.status == 201 else None


EV = "am.ev.%s@example.com" % RUN
EV_H = new_user(EV, password=PW)
got = {}
for who, h in [("unverified", EV_H), ("verified", bearer(login(ANA, PW).json()["access_token"]))]:
    oid = order_by(h)
    psql("SELECT notification_fanout(%s, 'order_shipped', '{log,email,sms}', false)" % oid)
    got[who] = psql("SELECT string_agg(channel || ':' || status || ':' || coalesce(last_error, ''), "
                    "',' ORDER BY channel) FROM notifications WHERE order_id = %s "
                    "AND template = 'order_shipped'" % oid)[1]
t.ok(got["unverified"] == "email:skipped:the account's email is not verified,log:pending:,"
     "sms:skipped:the account's email is not verified",
     "an unverified account's order: its email and SMS are skipped (with why), the log line not",
     got)
t.ok(got["verified"] == "email:pending:,log:pending:,sms:pending:",
     "a verified account's order: every channel is sent", got)
oid = order_by(EV_H)
psql("SELECT notification_fanout(%s, 'order_shipped', '{log,email}', true)" % oid)
_, st, _ = psql("SELECT string_agg(status, ',' ORDER BY channel) FROM notifications "
                "WHERE order_id = %s AND template = 'order_shipped'" % oid)
t.ok(st == "pending,pending", "with notify_unverified, the unverified account's mail is sent", st)

# --- memcached down: PostgreSQL still limits the mails ------------------------------------
# The limit above is counted in memcached, which lets requests through
# while it is down; the database counts each account's mails as well.
BEA = "am.bea.%s@example.com" % RUN
register(BEA)
B = bearer(login(BEA).json()["access_token"])
svc("mc", "stop")
try:
    forgot = [request("POST", "/api/v1/auth/password/forgot", body={"email": BEA}).status
              for _ in range(5)]
    resend = [request("POST", "/api/v1/auth/verify/resend", headers=B) for _ in range(4)]
finally:
    svc("mc", "start")
    # The programs retry memcached a moment after it failed: wait, so that
    # the tests after this one find the cache as they expect.
    wait_for(lambda: all(request("GET", "/api/v1/health").json()["checks"]["cache"] == "ok"
                         for _ in range(8)), 30)
work()
wait_for(lambda: len(inbox.to(BEA, RESET)) >= 3 and len(inbox.to(BEA, VERIFY)) >= 3, 10)
t.ok(forgot == [202] * 5 and len(inbox.to(BEA, RESET)) == 3,
     "memcached down: five forgot requests for one account, password_reset_max (3) reset mails",
     (forgot, len(inbox.to(BEA, RESET))))
wait = resend[2].header("Retry-After") or ""
t.ok([r.status for r in resend] == [202, 202, 429, 429] and resend[2].is_problem(429)
     and wait.isdigit() and 3300 < int(wait) <= 3600 and len(inbox.to(BEA, VERIFY)) == 3,
     "memcached down: verification mails stop at 3 an hour, the registration's counted: 429, "
     "Retry-After until the first is an hour old",
     ([r.status for r in resend], wait, len(inbox.to(BEA, VERIFY))))
smtp.stop()
t.done()
