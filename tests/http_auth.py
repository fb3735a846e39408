"""Accounts and access (fcgi/openapi.json: auth, users) against the real stack: register,
login, tokens that must not be forgeable, roles, ownership, refresh
rotation with reuse detection, logout, and limits shared through
memcached.  RS256 and ES256 run the programs as CGI with other keys, and
an independent JWT library (PyJWT) verifies our tokens from the JWKS."""
import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid

from agoratest import Tap, cgi, config_value, in_minute, need_stack, psql, request, reset_ok

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
PW = "correct horse battery"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header, claims, key=None):
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(claims).encode())
    sig = b"" if key is None else hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64(sig)


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def register(email, name="Ana", pw=PW):
    return request("POST", "/api/v1/auth/register", body={"email": email, "password": pw,
                                                          "name": name})


def login(email, pw=PW):
    return request("POST", "/api/v1/auth/login", body={"email": email, "password": pw})


# --- registration ----------------------------------------------------------
email_a = "ana.%s@example.com" % RUN
r = register(email_a)
ua = r.json() or {}
t.ok(r.status == 201 and set(ua) == {"id", "email", "name", "role", "created_at", "disabled",
                                          "email_verified"}
     and ua.get("disabled") is False
     and isinstance(ua.get("id"), str) and ua.get("role") == "customer"
     and r.header("Location") == "/api/v1/users/" + ua.get("id", ""),
     "register: 201 with the user and a Location", r)
t.ok(ua.get("created_at", "").endswith("Z") and "T" in ua.get("created_at", ""),
     "created_at is RFC 3339 UTC", ua)
r = register(email_a.upper())
t.ok(r.is_problem(409, "email_taken"), "the same email in other letters: 409 email_taken", r)
r = register("short.%s@example.com" % RUN, pw="123456789")
t.ok(r.is_problem(422) and r.json()["errors"][0]["field"] == "password",
     "a 9-character password: 422", r)
for bad in ["no-at-sign", "a@b", "two@@example.com", "sp ace@example.com", "@example.com"]:
    r = register(bad)
    t.ok(r.is_problem(422), "a bad email %r: 422" % bad, r)
r = request("POST", "/api/v1/auth/register", body={"email": email_a, "password": PW})
t.ok(r.is_problem(422), "a missing name: 422", r)

# --- login and the profile ------------------------------------------------
r = login(email_a.title())
tok = r.json() or {}
t.ok(r.status == 200 and tok.get("token_type") == "Bearer" and tok.get("expires_in") == 900
     and tok.get("access_token") and tok.get("refresh_token"),
     "login (any letter case): 200 with both tokens", r)
A = tok.get("access_token", "")
RA = tok.get("refresh_token", "")
r = request("GET", "/api/v1/users/me", headers=bearer(A))
t.ok(r.status == 200 and (r.json() or {}).get("email") == email_a
     and r.header("Cache-Control") == "private, no-store", "GET /users/me with the token", r)
parts = A.split(".")
claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=="))
t.ok({"sub", "role", "iat", "exp", "iss", "jti"} <= set(claims) and claims["exp"] - claims["iat"] == 900,
     "the access token carries sub, role, iat, exp, iss, jti", claims)

# --- forged and broken tokens --------------------------------------------
secret = open(config_value("jwt_secret_file"), "rb").read()
now = int(time.time())
good = {"sub": ua.get("id"), "role": "customer", "iat": now, "exp": now + 600, "iss": "agora"}
t.ok(request("GET", "/api/v1/users/me",
             headers=bearer(forge({"alg": "HS256", "typ": "JWT"}, good, secret))).status == 200,
     "a token signed with the real secret works (the forgeries below are fair)")
admin_claims = dict(good, role="admin")
forgeries = [
    ("alg none", forge({"alg": "none", "typ": "JWT"}, admin_claims)),
    ("alg None", forge({"alg": "None", "typ": "JWT"}, admin_claims)),
    ("alg NONE", forge({"alg": "NONE", "typ": "JWT"}, admin_claims)),
    ("alg none with a signature", forge({"alg": "none"}, admin_claims, secret)),
    ("no alg", forge({"typ": "JWT"}, admin_claims, secret)),
    ("HS512", forge({"alg": "HS512", "typ": "JWT"}, admin_claims, secret)),
    ("another secret", forge({"alg": "HS256", "typ": "JWT"}, admin_claims, b"x" * 48)),
    ("tampered payload", parts[0] + "." + b64(json.dumps(admin_claims).encode()) + "." + parts[2]),
    ("wrong iss", forge({"alg": "HS256", "typ": "JWT"}, dict(good, iss="evil"), secret)),
    ("no iss", forge({"alg": "HS256", "typ": "JWT"}, {k: v for k, v in good.items() if k != "iss"}, secret)),
    ("expired", forge({"alg": "HS256", "typ": "JWT"}, dict(good, exp=now - 5), secret)),
    ("no exp", forge({"alg": "HS256", "typ": "JWT"}, {k: v for k, v in good.items() if k != "exp"}, secret)),
    ("exp as a float", forge({"alg": "HS256", "typ": "JWT"}, dict(good, exp=1.9e10), secret)),
    ("not yet valid", forge({"alg": "HS256", "typ": "JWT"}, dict(good, nbf=now + 600), secret)),
    ("unknown role", forge({"alg": "HS256", "typ": "JWT"}, dict(good, role="root"), secret)),
    ("no sub", forge({"alg": "HS256", "typ": "JWT"}, {k: v for k, v in good.items() if k != "sub"}, secret)),
    ("garbage", "not.a.token"),
    ("two parts", parts[0] + "." + parts[1]),
    ("empty signature", parts[0] + "." + parts[1] + "."),
]
for what, ftok in forgeries:
    r = request("GET", "/api/v1/users/me", headers=bearer(ftok))
    t.ok(r.is_problem(401) and (r.header("WWW-Authenticate") or "").startswith("Bearer"),
         "forged token (%s): 401 with WWW-Authenticate: Bearer" % what, r)
for what, h in [("no Authorization", {}), ("Basic", {"Authorization": "Basic YTpi"}),
                ("Bearer alone", {"Authorization": "Bearer"}),
                ("Bearer and spaces", {"Authorization": "Bearer    "}),
                ("two tokens", {"Authorization": "Bearer " + A + " " + A})]:
    r = request("GET", "/api/v1/users/me", headers=h)
    t.ok(r.is_problem(401) and (r.header("WWW-Authenticate") or "").startswith("Bearer"),
         "%s: 401" % what, r)
r = request("GET", "/api/v1/health", headers=bearer("garbage"))
t.ok(r.is_problem(401), "a bad token is refused on an anonymous route too", r)

# --- roles and ownership --------------------------------------------------
email_b = "bo.%s@example.com" % RUN
ub = register(email_b, name="Bo").json() or {}
B = (login(email_b).json() or {}).get("access_token", "")
r = request("GET", "/api/v1/users", headers=bearer(A))
t.ok(r.is_problem(403, "forbidden"), "a customer on an admin route: 403", r)
r = request("PATCH", "/api/v1/users/" + ub.get("id", "0"), body={"role": "admin"}, headers=bearer(A))
t.ok(r.is_problem(403), "a customer cannot change roles: 403", r)
r = request("GET", "/api/v1/users/" + ub.get("id", "0"), headers=bearer(A))
t.ok(r.is_problem(404), "customer A on customer B's profile: 404", r)
r = request("GET", "/api/v1/users/" + ua.get("id", "0"), headers=bearer(A))
t.ok(r.status == 200, "customer A on A's own id: 200", r)
for bad_id in ["abc", "-1", "99999999999999999999", "1;DROP%20TABLE%20users"]:
    r = request("GET", "/api/v1/users/" + bad_id, headers=bearer(A))
    t.ok(r.is_problem(404), "a malformed id %r: 404" % bad_id, r)

admin_email = "root.%s@example.com" % RUN
ctl = os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agoractl")
p = subprocess.run([ctl, "user", "add", "--email", admin_email, "--name", "Root", "--role", "admin",
                    "--password-stdin"], input=PW + "\n", capture_output=True, text=True)
t.ok(p.returncode == 0 and admin_email in p.stdout, "agoractl user add makes an admin", p.stdout + p.stderr)
p = subprocess.run([ctl, "user", "add", "--email", admin_email, "--name", "Root",
                    "--password-stdin"], input=PW + "\n", capture_output=True, text=True)
t.ok(p.returncode != 0 and "exists" in p.stderr, "agoractl user add: a taken email is refused", p.stderr)
p = subprocess.run([ctl, "user", "add", "--email", "x" + admin_email, "--name", "Root",
                    "--password-stdin"], input="short\n", capture_output=True, text=True)
t.ok(p.returncode != 0, "agoractl user add: a short password is refused", p.stderr)
ADM = (login(admin_email).json() or {}).get("access_token", "")
r = request("GET", "/api/v1/users?limit=2", headers=bearer(ADM))
page = r.json() or {}
t.ok(r.status == 200 and len(page.get("data", [])) == 2 and page.get("has_more") is True
     and page.get("next_cursor"), "an admin lists users, two at a time", r)
r2 = request("GET", "/api/v1/users?limit=2&cursor=" + str(page.get("next_cursor")), headers=bearer(ADM))
ids1 = [u["id"] for u in page.get("data", [])]
ids2 = [u["id"] for u in (r2.json() or {}).get("data", [])]
t.ok(r2.status == 200 and ids2 and not set(ids1) & set(ids2) and int(ids2[0]) < int(ids1[-1]),
     "the next page continues after the first", (ids1, ids2))
everyone, cursor = [], None
for _ in range(1000):
    rr = request("GET", "/api/v1/users?limit=100" + ("&cursor=" + cursor if cursor else ""),
                 headers=bearer(ADM))
    page = rr.json() or {}
    everyone += [int(u["id"]) for u in page.get("data", [])]
    cursor = page.get("next_cursor")
    if not page.get("has_more"):
        break
total = int(psql("SELECT count(*) FROM users")[1])
t.ok(everyone == sorted(everyone, reverse=True) and len(everyone) == total,
     "walking every page lists each user once, newest first, across digit counts",
     (everyone[:12], total))
for q in ["limit=0", "limit=101", "limit=abc", "cursor=forged", "cursor=" + b64(b"k:1 OR 1=1")]:
    r = request("GET", "/api/v1/users?" + q, headers=bearer(ADM))
    t.ok(r.is_problem(400), "GET /users?%s: 400" % q, r)
r = request("GET", "/api/v1/users/" + ub.get("id", "0"), headers=bearer(ADM))
t.ok(r.status == 200, "an admin reads any profile", r)
r = request("PATCH", "/api/v1/users/" + ub.get("id", "0"), body={"role": "admin"}, headers=bearer(ADM))
t.ok(r.status == 200 and (r.json() or {}).get("role") == "admin", "an admin changes a role", r)
r = request("PATCH", "/api/v1/users/" + ub.get("id", "0"), body={"role": "root"}, headers=bearer(ADM))
t.ok(r.is_problem(422), "an unknown role: 422", r)
r = request("PATCH", "/api/v1/users/999999999", body={"role": "admin"}, headers=bearer(ADM))
t.ok(r.is_problem(404), "an unknown user: 404", r)
p = subprocess.run([ctl, "user", "set-role", email_b, "customer"], capture_output=True, text=True)
t.ok(p.returncode == 0, "agoractl user set-role", p.stderr)
# Both role changes ended Bo's tokens (http_abuse.py tests that): anew.
B = (login(email_b).json() or {}).get("access_token", "")
p = subprocess.run([ctl, "user", "list"], capture_output=True, text=True)
t.ok(p.returncode == 0 and email_b in p.stdout, "agoractl user list", p.stderr)

# --- refresh rotation, reuse, logout --------------------------------------
def age(token):
    """Move the token's rotation back past refresh_reuse_grace."""
    psql("UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 hour' "
         "WHERE token_sha256 = encode(sha256('%s'::bytea), 'hex')" % token)


def refresh(token):
    return request("POST", "/api/v1/auth/refresh", body={"refresh_token": token})


r = refresh(RA)
pair = r.json() or {}
t.ok(r.status == 200 and pair.get("refresh_token") not in (None, RA) and pair.get("access_token"),
     "refresh: a new pair", r)
r = refresh(RA)
twin = r.json() or {}
t.ok(r.status == 200 and twin.get("refresh_token") not in (None, RA, pair.get("refresh_token")),
     "the rotated token again at once (a reload that lost the answer): within "
     "refresh_reuse_grace, a new pair of the same session", r)
r = refresh(twin.get("refresh_token", ""))
twin = r.json() or {}
t.ok(r.status == 200, "and the new one refreshes on", r)
r = refresh(pair.get("refresh_token", ""))
t.ok(r.is_problem(401, "invalid_refresh_token"),
     "the first use's token was replaced: presented later, it is a reuse (401)", r)
r = refresh(twin.get("refresh_token", ""))
t.ok(r.is_problem(401), "and that reuse revoked the whole family: the newest is dead too", r)
RA = (login(email_a).json() or {}).get("refresh_token", "")
pair = refresh(RA).json() or {}
age(RA)
r = refresh(RA)
t.ok(r.is_problem(401, "invalid_refresh_token"), "the rotated token again past the grace: 401", r)
r = refresh(pair.get("refresh_token", ""))
t.ok(r.is_problem(401), "and that reuse revoked the whole family: the newest is dead too", r)
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": "x" * 43})
t.ok(r.is_problem(401), "an unknown refresh token: 401", r)
fresh = login(email_a).json() or {}
r = request("POST", "/api/v1/auth/logout", body={"refresh_token": fresh.get("refresh_token", "")},
            headers=bearer(fresh.get("access_token", "")))
t.ok(r.status == 204 and r.body == b"", "logout: 204", r)
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": fresh.get("refresh_token", "")})
t.ok(r.is_problem(401), "the logged-out refresh token is dead", r)
r = request("POST", "/api/v1/auth/logout", body={"refresh_token": "x"})
t.ok(r.is_problem(401), "logout needs an access token", r)

# --- the refresh token as a cookie (the web UI's form) -----------------------
PATHS = ["/api/v1/auth/refresh", "/api/v1/auth/logout"]


def cookies(r):
    """{path: (value, attributes)} of the answer's Set-Cookie headers."""
    out = {}
    for k, v in r.headers:
        if k.lower() == "set-cookie":
            first, *attrs = [a.strip() for a in v.split(";")]
            name, _, value = first.partition("=")
            a = dict((x.partition("=")[0].lower(), x.partition("=")[2]) for x in attrs)
            if name == "agora_refresh":
                out[a.get("path")] = (value, a, attrs)
    return out


def jar(value):
    return {"Cookie": "theme=dark; agora_refresh=%s; other=1" % value}


r = request("POST", "/api/v1/auth/login",
            body={"email": email_a, "password": PW, "refresh_token_cookie": True})
c = cookies(r)
tok = r.json() or {}
C1 = c.get(PATHS[0], ("",))[0]
t.ok(r.status == 200 and "refresh_token" not in tok and tok.get("access_token") and
     sorted(c) == sorted(PATHS) and len(C1) == 43 and c[PATHS[1]][0] == C1,
     "login with refresh_token_cookie: the refresh token in two cookies, one for refresh "
     "and one for logout, and not in the body", (r.status, tok.keys(), c))
t.ok(all(set(a) >= {"httponly", "secure", "samesite", "max-age", "path"} and
         a["samesite"] == "Strict" and a["max-age"] == (config_value("refresh_token_ttl") or "2592000")
         for _, a, _ in c.values()),
     "HttpOnly, Secure, SameSite=Strict, for refresh_token_ttl seconds", c)
r = request("POST", "/api/v1/auth/refresh", body={}, headers=jar(C1))
c = cookies(r)
C2 = c.get(PATHS[0], ("",))[0]
t.ok(r.status == 200 and "refresh_token" not in (r.json() or {}) and
     (r.json() or {}).get("access_token") and len(C2) == 43 and C2 != C1 and
     c[PATHS[1]][0] == C2,
     "refresh with the cookie and an empty body: a new access token, the cookies rotated", r)
age(C1)
r = request("POST", "/api/v1/auth/refresh", body={}, headers=jar(C1))
c = cookies(r)
t.ok(r.is_problem(401, "invalid_refresh_token") and sorted(c) == sorted(PATHS) and
     all(v == "" and a["max-age"] == "0" for v, a, _ in c.values()),
     "the rotated cookie again: 401, and the cookies are cleared", (r, c))
r = request("POST", "/api/v1/auth/refresh", body={}, headers=jar(C2))
t.ok(r.is_problem(401), "that reuse revoked the family: the newest cookie is dead too", r)
r = request("POST", "/api/v1/auth/login",
            body={"email": email_a, "password": PW, "refresh_token_cookie": True})
C3 = cookies(r).get(PATHS[0], ("",))[0]
A3 = (r.json() or {}).get("access_token", "")
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": C3}, headers=jar("x" * 43))
t.ok(r.status == 200 and (r.json() or {}).get("refresh_token") and not cookies(r),
     "a token in the body wins over the cookie, and comes back in the body", r)
C3 = (r.json() or {}).get("refresh_token", "")
r = request("POST", "/api/v1/auth/refresh", body={})
t.ok(r.is_problem(422, "validation_failed") and
     r.json()["errors"][0]["field"] == "refresh_token",
     "no token in the body and no cookie: 422 on refresh_token", r)
r = request("POST", "/api/v1/auth/refresh", body={},
            headers={"Cookie": 'agora_refresh="%s"' % C3})
t.ok(r.is_problem(422), "a cookie value with characters RFC 6265 refuses is no cookie", r)
r = request("POST", "/api/v1/auth/refresh", body={}, headers={"Cookie": "xagora_refresh=" + C3})
t.ok(r.is_problem(422), "nor is a cookie of another name that ends like it", r)
# A sibling subdomain can set agora_refresh for the parent domain; the
# browser then sends both, in an order the server cannot trust.
r = request("POST", "/api/v1/auth/refresh", body={},
            headers={"Cookie": "agora_refresh=%s; agora_refresh=%s" % (C3, "y" * 43)})
t.ok(r.is_problem(422), "two cookies of that name are none: neither is taken", r)
r = request("POST", "/api/v1/auth/login",
            body={"email": email_a, "password": PW, "refresh_token_cookie": "yes"})
t.ok(r.is_problem(400, "invalid_type"), "refresh_token_cookie must be a boolean", r)
r = request("POST", "/api/v1/auth/logout", body={}, headers=dict(jar(C3), **bearer(A3)))
c = cookies(r)
t.ok(r.status == 204 and sorted(c) == sorted(PATHS) and all(a["max-age"] == "0" for _, a, _ in c.values()),
     "logout with the cookie: 204, and the cookies are cleared", (r, c))
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": C3})
t.ok(r.is_problem(401), "the logged-out session is over", r)
# With a second agora_refresh planted beside the shopper's (which refresh
# therefore refuses), a logout still ends the shopper's session: it
# revokes each cookie that is the caller's, and clears them.
r = request("POST", "/api/v1/auth/login",
            body={"email": email_a, "password": PW, "refresh_token_cookie": True})
C4 = cookies(r).get(PATHS[0], ("",))[0]
A4 = (r.json() or {}).get("access_token", "")
r = request("POST", "/api/v1/auth/logout", body={}, headers=dict(
    {"Cookie": "agora_refresh=%s; agora_refresh=%s" % ("p" * 43, C4)}, **bearer(A4)))
c = cookies(r)
r2 = request("POST", "/api/v1/auth/refresh", body={"refresh_token": C4})
t.ok(r.status == 204 and all(a["max-age"] == "0" for _, a, _ in c.values())
     and r2.is_problem(401),
     "logout with two refresh cookies: 204, the caller's session ended, the cookies cleared",
     (r, c, r2))

# --- profile changes --------------------------------------------------------
session = login(email_a).json() or {}
AT = session.get("access_token", "")
r = request("PATCH", "/api/v1/users/me", body={"name": "Ana María"}, headers=bearer(AT))
t.ok(r.status == 200 and (r.json() or {}).get("name") == "Ana María", "PATCH /users/me name", r)
r = request("PATCH", "/api/v1/users/me", body={"password": "new password 123"}, headers=bearer(AT))
t.ok(r.is_problem(422), "a new password without the current one: 422", r)
r = request("PATCH", "/api/v1/users/me", body={"password": "new password 123",
                                               "current_password": "wrong password"},
            headers=bearer(AT))
t.ok(r.is_problem(422) and r.json()["errors"][0]["field"] == "current_password",
     "a wrong current password: 422", r)
r = request("PATCH", "/api/v1/users/me", body={"role": "admin"}, headers=bearer(AT))
t.ok(r.is_problem(422), "a customer cannot set their own role", r)
r = request("PATCH", "/api/v1/users/me", body={"password": "new password 123",
                                               "current_password": PW}, headers=bearer(AT))
t.ok(r.status == 200, "a password change with the current one: 200", r)
r = request("POST", "/api/v1/auth/refresh", body={"refresh_token": session.get("refresh_token", "")})
t.ok(r.is_problem(401), "a password change revokes the refresh tokens", r)
t.ok(login(email_a).status == 401 and login(email_a, "new password 123").status == 200,
     "the old password stops working, the new one works")
AT2 = (login(email_a, "new password 123").json() or {}).get("access_token", "")
codes = [request("PATCH", "/api/v1/users/me", body={"password": "another password",
                                                     "current_password": "guess %d" % i},
                 headers=bearer(AT2)).status for i in range(4)]
r = request("PATCH", "/api/v1/users/me", body={"password": "another password",
                                               "current_password": "new password 123"},
            headers=bearer(AT2))
# One wrong current password came before: with these four, five failures.
t.ok(codes == [422] * 4 and r.is_problem(429, "too_many_failures"),
     "wrong current passwords count like failed logins: 429 after five", (codes, r))

# --- what the database holds --------------------------------------------
rc, out, err = psql("SELECT password_hash FROM users WHERE email = '%s'" % email_a)
t.ok(out.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and "new password" not in out,
     "passwords are stored as Argon2id hashes only", out)
# A hash made with older, cheaper parameters (libsodium's own Argon2id,
# through ctypes) is replaced by one with today's at the next login, and
# only after the password was right.
sodium = ctypes.CDLL(ctypes.util.find_library("sodium"))
sodium.sodium_init()
old_hash = ctypes.create_string_buffer(128)  # crypto_pwhash_STRBYTES
pw = PW.encode()
made = sodium.crypto_pwhash_argon2id_str(old_hash, pw, ctypes.c_ulonglong(len(pw)),
                                         ctypes.c_ulonglong(1), ctypes.c_size_t(8 << 20))
old_hash = old_hash.value.decode()
email_r = "rehash.%s@example.com" % RUN
register(email_r)
psql("UPDATE users SET password_hash = '%s' WHERE email = '%s'" % (old_hash, email_r))
r1 = login(email_r, "not the password")
after_wrong = psql("SELECT password_hash FROM users WHERE email = '%s'" % email_r)[1]
r2 = login(email_r)
after_right = psql("SELECT password_hash FROM users WHERE email = '%s'" % email_r)[1]
t.ok(made == 0 and old_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
     and r1.status == 401 and after_wrong == old_hash,
     "a hash of older parameters is kept through a failed login", (made, old_hash, r1))
t.ok(r2.status == 200 and after_right.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
     and login(email_r).status == 200,
     "the next good login rehashes it with today's parameters", (r2, after_right))
rt = (login(email_a, "new password 123").json() or {}).get("refresh_token", "")
rc, out, err = psql("SELECT count(*) FROM refresh_tokens WHERE token_sha256 = '%s'"
                    % hashlib.sha256(rt.encode()).hexdigest())
rc2, out2, err = psql("SELECT count(*) FROM refresh_tokens WHERE token_sha256 = '%s'" % rt)
t.ok(out == "1" and out2 == "0", "refresh tokens are stored as SHA-256 digests only", (out, out2))

# --- brute force, shared across processes ---------------------------------
victim = "victim.%s@example.com" % RUN
register(victim)
codes = [login(victim, "wrong password %d" % i).status for i in range(3)]
codes += [cgi("auth", "POST", "/api/v1/auth/login",
              body={"email": victim.upper(), "password": "wrong again %d" % i}).status for i in range(2)]
t.ok(codes == [401] * 5, "five wrong passwords, through the server and as CGI: 401 each", codes)
t0 = time.time()
r = login(victim)
t.ok(r.is_problem(429, "too_many_failures")
     and reset_ok(r, t0, time.time(), window=int(config_value("login_failure_window") or 900),
                  header="Retry-After"),
     "the sixth attempt, even with the right password: 429 with Retry-After, the seconds "
     "left in the failure window", r)
r = cgi("auth", "POST", "/api/v1/auth/login", body={"email": victim, "password": PW})
t.ok(r.status == 429, "and another process agrees (the count is in memcached)", r)

# --- identical answers for unknown email and wrong password ---------------
probe = "probe.%s@example.com" % RUN
register(probe)


def timed_login(email, pw):
    t0 = time.monotonic()
    resp = login(email, pw)
    return time.monotonic() - t0, resp


unknown = [timed_login("nobody.%s.%d@example.com" % (RUN, i), "whatever pw") for i in range(4)]
wrong = [timed_login(probe, "whatever pw")]
r1, r2 = unknown[0][1], wrong[0][1]
j1, j2 = r1.json() or {}, r2.json() or {}
j1.pop("request_id", None)
j2.pop("request_id", None)
t.ok(r1.status == r2.status == 401 and j1 == j2 and j1.get("code") == "invalid_credentials",
     "an unknown email and a wrong password get the same answer", (r1, r2))
wrong += [timed_login(probe, "whatever pw %d" % i) for i in range(3)]
mu = statistics.median(x[0] for x in unknown)
mw = statistics.median(x[0] for x in wrong)
t.ok(mu > 0.4 * mw, "an unknown email also pays for a hash (%.1f ms vs %.1f ms)"
     % (mu * 1e3, mw * 1e3))

# --- per-IP and per-user limits, with their headers ------------------------
in_minute(15)
ip = "10.%d.%d.%d" % tuple(int(RUN[i:i + 2], 16) for i in (0, 2, 4))
lim = {"AGORA_RATE_LIMIT_AUTH": "3", "REMOTE_ADDR": ip}
t0 = time.time()
codes = [cgi("auth", "POST", "/api/v1/auth/login", body={"email": "x@example.com", "password": "y"},
             env=lim) for _ in range(4)]
t1 = time.time()
t.ok([c.status for c in codes] == [401, 401, 401, 429], "auth routes: 3 per minute per IP, then 429",
     [c.status for c in codes])
last = codes[-1]
t.ok(last.is_problem(429, "rate_limited") and reset_ok(last, t0, t1)
     and last.header("Retry-After") == last.header("RateLimit-Reset")
     and last.header("RateLimit-Limit") == "3" and last.header("RateLimit-Remaining") == "0",
     "429 carries Retry-After and RateLimit-Reset (both the seconds left in the minute), "
     "RateLimit-Limit and RateLimit-Remaining 0", last)
t.ok([c.header("RateLimit-Remaining") for c in codes[:3]] == ["2", "1", "0"]
     and all(reset_ok(c, t0, t1) for c in codes[:3]), "RateLimit-Remaining counts down", codes[0])
# Register and refresh count against the same per-IP limit as login.
ip2 = "10.%d.%d.%d" % tuple(int(RUN[i:i + 2], 16) for i in (4, 6, 8))
lim = {"AGORA_RATE_LIMIT_AUTH": "3", "REMOTE_ADDR": ip2}
rl_email = "limited.%s@example.com" % RUN
in_minute(15)
calls = [("register", {"email": rl_email, "password": PW, "name": "Lim"}),
         ("refresh", {"refresh_token": "x" * 43}),
         ("login", {"email": rl_email, "password": PW})]
t0 = time.time()
got = [cgi("auth", "POST", "/api/v1/auth/" + path, body=body, env=lim) for path, body in calls]
t.ok([g.status for g in got] == [201, 401, 200]
     and [g.header("RateLimit-Remaining") for g in got] == ["2", "1", "0"],
     "register, refresh and login count against one rate_limit_auth per IP",
     [(g.status, g.header("RateLimit-Remaining")) for g in got])
calls[0] = ("register", {"email": "2" + rl_email, "password": PW, "name": "Lim"})
got = [cgi("auth", "POST", "/api/v1/auth/" + path, body=body, env=lim) for path, body in calls]
t1 = time.time()
t.ok(all(g.is_problem(429, "rate_limited") and reset_ok(g, t0, t1)
         and g.header("Retry-After") == g.header("RateLimit-Reset") for g in got)
     and psql("SELECT count(*) FROM users WHERE email = '2%s'" % rl_email)[1] == "0",
     "then register, refresh and login each get 429, and the refused register wrote nothing",
     [(g.status, g.header("Retry-After")) for g in got])
codes = [cgi("users", "GET", "/api/v1/users/me", headers=bearer(B),
             env={"AGORA_RATE_LIMIT_API": "2"}).status for _ in range(3)]
t.ok(codes[-1] == 429 and codes[0] == 200, "other routes: per user, 429 past the limit", codes)

# --- memcached unreachable: reads fail open, login as configured ----------
down = {"AGORA_MEMCACHED_SERVERS": "127.0.0.1:1"}
r = cgi("users", "GET", "/api/v1/users/me", headers=bearer(B), env=down)
t.ok(r.status == 200, "memcached unreachable: other routes fail open", r)
r = cgi("auth", "POST", "/api/v1/auth/login", body={"email": email_b, "password": PW}, env=down)
t.ok(r.status == 200, "memcached unreachable: login goes on by default", r)
r = cgi("auth", "POST", "/api/v1/auth/login", body={"email": email_b, "password": PW},
        env=dict(down, AGORA_RATE_LIMIT_LOGIN_CLOSED="1"))
t.ok(r.is_problem(503) and r.header("Retry-After"),
     "with rate_limit_login_closed = 1 it answers 503 instead", r)

# --- RS256 and ES256, checked by PyJWT from the JWKS ----------------------
try:
    import jwt as pyjwt
except ImportError:
    pyjwt = None
t.ok(pyjwt is not None, "python3-jwt is installed for the independent check")
with tempfile.TemporaryDirectory() as d:
    for alg, genkey in [("RS256", ["openssl", "genpkey", "-algorithm", "RSA",
                                   "-pkeyopt", "rsa_keygen_bits:2048"]),
                        ("ES256", ["openssl", "genpkey", "-algorithm", "EC",
                                   "-pkeyopt", "ec_paramgen_curve:P-256"])]:
        priv, pub = os.path.join(d, alg + ".pem"), os.path.join(d, alg + ".pub")
        subprocess.run(genkey + ["-out", priv], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        env = {"AGORA_JWT_ALG": alg, "AGORA_JWT_PRIVATE_KEY_FILE": priv,
               "AGORA_JWT_PUBLIC_KEY_FILE": pub}
        r = cgi("auth", "POST", "/api/v1/auth/login", body={"email": email_b, "password": PW}, env=env)
        tk = (r.json() or {}).get("access_token", "")
        jw = cgi("auth", "GET", "/.well-known/jwks.json", env=env)
        keys = (jw.json() or {}).get("keys", [])
        t.ok(r.status == 200 and jw.status == 200 and len(keys) == 1 and keys[0].get("kid"),
             "%s: login, and the JWKS publishes one key with a kid" % alg, (r, jw))
        try:
            kid = pyjwt.get_unverified_header(tk).get("kid")
            key = pyjwt.PyJWK(keys[0]).key
            got = pyjwt.decode(tk, key=key, algorithms=[alg], issuer="agora")
            ok = kid == keys[0]["kid"] and got.get("sub") == ub.get("id")
        except Exception as e:  # noqa: BLE001 - any failure is the test's
            ok, got = False, repr(e)
        t.ok(ok, "%s: PyJWT verifies our token with the JWKS key" % alg, got)
        r = cgi("users", "GET", "/api/v1/users/me", headers=bearer(tk), env=env)
        t.ok(r.status == 200, "%s: the token opens /users/me" % alg, r)
        confused = forge({"alg": "HS256", "typ": "JWT"}, dict(good, sub=ub.get("id"), role="admin"),
                         open(pub, "rb").read())
        r = cgi("users", "GET", "/api/v1/users", headers=bearer(confused), env=env)
        t.ok(r.is_problem(401), "%s: HS256 signed with the public key is refused" % alg, r)
        r = cgi("users", "GET", "/api/v1/users/me", headers=bearer(A), env=env)
        t.ok(r.is_problem(401), "%s: an HS256 token of the default setup is refused" % alg, r)
jw = request("GET", "/.well-known/jwks.json")
t.ok(jw.status == 200 and (jw.json() or {}).get("keys") == [], "HS256: the JWKS is empty", jw)

t.done()
