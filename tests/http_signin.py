"""Signing in with a provider (fcgi/signin.c, fcgi/oidc.c, sql/0025),
against tests/oidcprovider.py on loopback: the stack's agora.conf
(tests/stack.sh) configures it as an OpenID Connect provider, testid,
and as one of the GitHub kind, testhub.

The flow as a browser follows it (the start route's redirect and cookie,
the provider, the callback), and every way it must fail: a state that is
not the browser's, used or expired; a replayed code; an ID token with the
wrong nonce, audience or issuer, expired, signed with an unknown key, a
bad signature, HMAC or no algorithm; the provider down or refusing; an
unverified email.  Each is refused with its problem, and nothing is
created.  Then linking and unlinking, and a key rotation."""
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

from agoratest import Tap, bearer, config_value, need_stack, new_user, psql, request

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
PORT = urllib.parse.urlsplit(config_value("issuer")).port
SECRET = open(config_value("client_secret_file")).read().strip()
here = os.path.dirname(os.path.abspath(__file__))
PROV = subprocess.Popen([sys.executable, os.path.join(here, "oidcprovider.py"), str(PORT),
                         "agora-test", SECRET], stdout=subprocess.PIPE, text=True)
PROV.stdout.readline()  # "ready"


def provider(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    out = (r.status, r.getheader("Location"), r.read())
    c.close()
    return out


def control(**kw):
    provider("POST", "/_control", kw)


def cookie_of(resp, name):
    for k, v in resp.headers:
        if k.lower() == "set-cookie" and v.startswith(name + "="):
            return v.split(";")[0].split("=", 1)[1], v
    return None, None


def local(url):
    """Our own URL as a path and query (public_url is the stack's URL)."""
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def start(name="testid", query="response=json", headers=None):
    return request("GET", "/api/v1/auth/providers/%s/start?%s" % (name, query),
                   headers=headers)


def at_provider(location):
    """The provider's authorization endpoint, as a browser follows it:
    where it sends the browser back."""
    u = urllib.parse.urlsplit(location)
    status, back, _ = provider("GET", u.path + "?" + u.query)
    return back if status == 302 else None


def sign_in(name="testid", query="response=json", cookie=None, headers=None):
    """Start, the provider, the callback; the callback's answer."""
    s = start(name, query, headers)
    state, _ = cookie_of(s, "__Host-agora_signin")
    back = at_provider(s.header("Location") or "")
    if back is None:
        raise RuntimeError("the provider did not send the browser back: %r" % s)
    jar = "__Host-agora_signin=%s" % (state if cookie is None else cookie)
    return request("GET", local(back), headers={"Cookie": jar})


def person(tag, verified=True, **kw):
    p = {"sub": "sub-%s-%s" % (tag, RUN), "email": "si.%s.%s@example.com" % (tag, RUN),
         "email_verified": verified, "name": "Pat %s" % tag}
    p.update(kw)
    control(user=p)
    return p


def created(p):
    _, n, _ = psql("SELECT (SELECT count(*) FROM users WHERE email = '%s') + "
                   "(SELECT count(*) FROM user_identities WHERE subject = '%s')"
                   % (p["email"], p["sub"]))
    return n != "0"


def me(r):
    return request("GET", "/api/v1/users/me", headers=bearer(r.json()["access_token"])).json()


try:
    # --- the providers, and the start ----------------------------------------------
    r = request("GET", "/api/v1/auth/providers")
    got = [(p["name"], p["display_name"], p["type"]) for p in (r.json() or {}).get("data", [])]
    t.ok(r.status == 200 and got == [("testid", "Test ID", "oidc"), ("testhub", "TestHub", "oauth2")],
         "GET /auth/providers lists the configured providers", r)
    r = start("nosuch")
    t.ok(r.is_problem(404), "an unknown provider: 404", r)
    r = start(query="")
    loc = urllib.parse.urlsplit(r.header("Location") or "")
    q = dict(urllib.parse.parse_qsl(loc.query))
    state, line = cookie_of(r, "__Host-agora_signin")
    t.ok(r.status == 302 and loc.path == "/oidc/authorize" and q.get("client_id") == "agora-test"
         and q.get("response_type") == "code" and q.get("code_challenge_method") == "S256"
         and len(q.get("code_challenge", "")) == 43 and q.get("nonce") and q.get("state") == state
         and q.get("redirect_uri", "").endswith("/api/v1/auth/providers/testid/callback")
         and "openid" in q.get("scope", "").split(),
         "start: 302 to the provider with PKCE (S256), state and nonce", r)
    t.ok(line and "HttpOnly" in line and "Secure" in line and "SameSite=Lax" in line
         and "; Path=/;" in line and "Domain" not in line,
         "and the state in an HttpOnly, Secure, SameSite=Lax __Host- cookie", line)
    for bad in ("//evil.example/x", "/\\evil.example", "https://evil.example/", "x", "/a b"):
        r = start(query="return_to=" + urllib.parse.quote(bad))
        t.ok(r.is_problem(400, "bad_request"), "return_to %r: 400" % bad, r)

    # --- a new person signs in -----------------------------------------------------
    ana = person("ana")
    r = sign_in()
    u = me(r) if r.status == 200 else {}
    t.ok(r.status == 200 and r.json().get("refresh_token") and r.header("Agora-Account-Created") == "true"
         and u.get("email") == ana["email"] and u.get("email_verified") is True
         and u.get("name") == "Pat ana",
         "a new person: an account is made, verified, and the token pair answered", (r, u))
    ANA_ID = u.get("id")
    # Hashed only for a new account (fcgi/signin.c), but then for real: a
    # login with a guess takes a password check's time, as any other.
    _, h, _ = psql("SELECT password_hash FROM users WHERE id = %d" % int(ANA_ID or 0))
    r = request("POST", "/api/v1/auth/login", body={"email": ana["email"], "password": "a guess"})
    t.ok(h.startswith("$argon2id$") and r.status == 401,
         "its password is one nobody knows, Argon2-hashed: a login with a guess answers 401",
         (h[:12], r))
    # The program asks first without a hash: for a new account the answer
    # is needs_hash, and nothing is made until it asks again with one.
    nh = "si.nh.%s@example.com" % RUN
    _, out, _ = psql("SELECT outcome || '|' || COALESCE(user_id, '-') FROM oauth_sign_in("
                     "'testid', 'https://nh.example', 'nh-%s', '%s', true, 'N', NULL, NULL, NULL)"
                     % (RUN, nh))
    _, made, _ = psql("SELECT (SELECT count(*) FROM users WHERE email = '%s') + (SELECT count(*) "
                      "FROM user_identities WHERE subject = 'nh-%s')" % (nh, RUN))
    t.ok(out == "needs_hash|-" and made == "0",
         "asked without a hash for a new account: needs_hash, and nothing made", (out, made))
    r = sign_in()
    t.ok(r.status == 200 and r.header("Agora-Account-Created") is None and me(r).get("id") == ANA_ID,
         "the same identity again signs in to the same account", r)
    ANA = bearer(r.json()["access_token"])
    r = request("GET", "/api/v1/auth/identities", headers=ANA)
    ids = (r.json() or {}).get("data", [])
    t.ok(r.status == 200 and [i["provider"] for i in ids] == ["testid"] and ids[0]["email"] == ana["email"]
         and ids[0]["last_login_at"], "GET /auth/identities lists it", r)
    r = sign_in(query="return_to=%2Forders%3Fpage%3D2")
    refresh, line = cookie_of(r, "agora_refresh")
    t.ok(r.status == 303 and r.header("Location") == "/orders?page=2" and refresh
         and "HttpOnly" in (line or ""), "a browser's sign-in: 303 to return_to, the refresh cookie set", r)
    r = request("POST", "/api/v1/auth/refresh", body={},
                headers={"Cookie": "agora_refresh=" + (refresh or "")})
    t.ok(r.status == 200 and r.json().get("access_token"), "and the cookie refreshes", r)

    # --- the state -----------------------------------------------------------------
    bob = person("bob")
    r = sign_in(cookie="not-the-state")
    t.ok(r.is_problem(400, "invalid_state") and not created(bob),
         "a callback whose state is not the browser's (login CSRF): 400 invalid_state", r)
    s = start()
    st, _ = cookie_of(s, "__Host-agora_signin")
    back = at_provider(s.header("Location"))
    r = request("GET", local(back))
    t.ok(r.is_problem(400, "invalid_state"), "a callback without the cookie: 400", r)
    r1 = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
    r2 = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
    t.ok(r1.status == 200 and r2.is_problem(400, "invalid_state"),
         "a state works once: the same callback again is 400", (r1, r2))
    carl = person("carl")
    s = start()
    st, _ = cookie_of(s, "__Host-agora_signin")
    back = at_provider(s.header("Location"))
    psql("UPDATE oauth_flows SET expires_at = now() - interval '1 second' "
         "WHERE created_at > now() - interval '1 minute' AND provider = 'testid'")
    r = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
    t.ok(r.is_problem(400, "invalid_state") and not created(carl), "an expired flow: 400", r)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))["code"]
    s = start("testhub")
    st, _ = cookie_of(s, "__Host-agora_signin")
    r = request("GET", "/api/v1/auth/providers/testid/callback?state=%s&code=x" % st,
                headers={"Cookie": "__Host-agora_signin=" + st})
    t.ok(r.is_problem(400, "invalid_state"), "a flow of another provider: 400", r)

    # --- the code ------------------------------------------------------------------
    dan = person("dan")
    s = start()
    st, _ = cookie_of(s, "__Host-agora_signin")
    back = at_provider(s.header("Location"))
    used = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))["code"]
    r1 = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
    s = start()
    st, _ = cookie_of(s, "__Host-agora_signin")
    r = request("GET", "/api/v1/auth/providers/testid/callback?state=%s&code=%s" % (st, used),
                headers={"Cookie": "__Host-agora_signin=" + st})
    t.ok(r1.status == 200 and r.is_problem(400, "provider_refused"),
         "a code used before, in a new flow: the provider refuses it, 400 provider_refused", (r1, r))

    # --- the ID token --------------------------------------------------------------
    # Each refused by its own check: the detail says which.
    for fault, what, why in [
            ("wrong_nonce", "another sign-in's nonce", "nonce"),
            ("no_nonce", "no nonce", "nonce"),
            ("multi_aud", "a second audience and no azp", "another client"),
            ("wrong_azp", "another client as azp", "another client"),
            ("old_iat", "an issue time 15 minutes ago", "issue time"),
            ("wrong_aud", "another audience", "another client"),
            ("wrong_iss", "another issuer", "another issuer"),
            ("expired", "an expired token", "expired"),
            ("unknown_kid", "a key the provider does not publish", "does not publish"),
            ("bad_signature", "a changed payload (bad signature)", "signature is wrong"),
            ("alg_hs256", "HS256 keyed with the public key", "provider's algorithm"),
            ("alg_none", "alg none", "provider's algorithm"),
            ("no_id_token", "no ID token", "no ID token")]:
        p = person("f" + fault.replace("_", ""))
        control(fault=fault)
        r = sign_in()
        t.ok(r.is_problem(401, "invalid_id_token") and why in r.json()["detail"] and not created(p),
             "an ID token with %s: 401 invalid_id_token, nothing made" % what, r)
    control(fault="")
    fetches = json.loads(provider("GET", "/_state")[2])["jwks_fetches"]
    control(rotate=True)
    time.sleep(2.2)  # the keys are fetched again at most every 2 s (oidc.c)
    r = sign_in()
    after = json.loads(provider("GET", "/_state")[2])["jwks_fetches"]
    t.ok(r.status == 200 and after > fetches,
         "the provider rotates its key: the new one is fetched, and the sign-in works", r)

    # --- the provider down or refusing ----------------------------------------------
    eve = person("eve")
    s = start()
    st, _ = cookie_of(s, "__Host-agora_signin")
    back = at_provider(s.header("Location"))
    control(down=True)
    r = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
    control(down=False)
    t.ok(r.is_problem(503, "provider_unavailable") and r.header("Retry-After") and not created(eve),
         "the provider down (503): 503 provider_unavailable, nothing made", r)
    control(deny=True)
    r = sign_in()
    r2 = sign_in(query="")
    control(deny=False)
    t.ok(r.is_problem(403, "provider_denied") and r2.status == 303
         and r2.header("Location") == "/login?sign_in_error=provider_denied",
         "the person refuses at the provider: 403, or a browser back to the login page", (r, r2))

    # --- emails --------------------------------------------------------------------
    fay = person("fay", verified=False)
    r = sign_in()
    t.ok(r.is_problem(403, "email_unverified") and not created(fay),
         "a new person whose email the provider did not verify: 403, nothing made", r)
    gus_email = "si.gus.%s@example.com" % RUN
    request("POST", "/api/v1/auth/register",
            body={"email": gus_email, "password": "integration test password", "name": "Gus"})
    gus = person("gus", email=gus_email.upper())
    r = sign_in()
    t.ok(r.is_problem(409, "account_exists"),
         "a verified email of an account not verified: 409, sign in and link instead", r)
    psql("UPDATE users SET email_verified_at = now() WHERE email = '%s'" % gus_email)
    person("gus", verified=False, email=gus_email)
    r = sign_in()
    t.ok(r.is_problem(409, "account_exists"),
         "an unverified email of a verified account: 409, never trusted", r)
    person("gus", email=gus_email)
    r = sign_in()
    _, gid, _ = psql("SELECT id FROM users WHERE email = '%s'" % gus_email)
    t.ok(r.status == 200 and me(r).get("id") == gid and r.header("Agora-Account-Created") is None,
         "verified on both sides: the identity links to the account and signs in", r)
    psql("UPDATE users SET disabled_at = now() WHERE email = '%s'" % gus_email)
    r = sign_in()
    t.ok(r.is_problem(403, "account_disabled"), "a disabled account: 403", r)
    person("ana2", email=ana["email"])
    r = sign_in()
    t.ok(r.is_problem(409, "provider_linked"),
         "another identity of the same provider, with the email of an account linked to it: 409", r)
    adm_email = "si.adm.%s@example.com" % RUN
    new_user(adm_email, role="admin")
    psql("UPDATE users SET email_verified_at = now() WHERE email = '%s'" % adm_email)
    person("adm", email=adm_email)
    r = sign_in()
    t.ok(r.is_problem(409, "account_exists"),
         "a verified email of a verified admin account: never linked on its own, 409", r)

    # --- the GitHub kind -----------------------------------------------------------
    control(hub_user={"id": int(RUN[:6], 16), "login": "hub" + RUN, "name": None, "email": None},
            hub_emails=[{"email": "other.%s@example.com" % RUN, "primary": False, "verified": True},
                        {"email": "si.hub.%s@example.com" % RUN, "primary": True, "verified": True}])
    r = sign_in("testhub")
    u = me(r) if r.status == 200 else {}
    t.ok(r.status == 200 and u.get("email") == "si.hub.%s@example.com" % RUN
         and u.get("name") == "hub" + RUN,
         "an OAuth2 provider: the primary verified email, the login as the name", (r, u))
    control(hub_user={"id": int(RUN[:6], 16) + 1, "login": "nov" + RUN, "email": "si.nov.%s@example.com" % RUN},
            hub_emails=[{"email": "si.nov.%s@example.com" % RUN, "primary": True, "verified": False}])
    r = sign_in("testhub")
    t.ok(r.is_problem(403, "email_unverified"),
         "its user's email, not verified by its emails endpoint: 403", r)

    # --- link and unlink -----------------------------------------------------------
    unv = new_user("si.unv.%s@example.com" % RUN)
    control(hub_user={"id": 888000 + int(RUN[:4], 16), "login": "unv" + RUN, "email": None},
            hub_emails=[])
    r = request("POST", "/api/v1/auth/identities/testhub", headers=unv)
    st, _ = cookie_of(r, "__Host-agora_signin")
    r = request("GET", local(at_provider(r.json()["authorization_url"])),
                headers={"Cookie": "__Host-agora_signin=" + st})
    t.ok(r.status == 303 and r.header("Location") == "/account?sign_in_error=account_unverified",
         "an account whose email is not verified cannot link a provider", r)
    control(hub_user={"id": 777000 + int(RUN[:4], 16), "login": "ana" + RUN, "email": None},
            hub_emails=[{"email": "elsewhere.%s@example.com" % RUN, "primary": True, "verified": True}])
    r = request("POST", "/api/v1/auth/identities/testhub", headers=ANA)
    url = (r.json() or {}).get("authorization_url", "")
    st, _ = cookie_of(r, "__Host-agora_signin")
    t.ok(r.status == 200 and "/hub/login/oauth/authorize" in url and st,
         "POST /auth/identities/{provider}: the provider's URL, and the state's cookie", r)
    back = at_provider(url)
    r = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
    r2 = request("GET", "/api/v1/auth/identities", headers=ANA)
    t.ok(r.status == 303 and r.header("Location") == "/account"
         and sorted(i["provider"] for i in r2.json()["data"]) == ["testhub", "testid"],
         "the provider's identity is linked to the signed-in account", (r, r2))
    r = sign_in("testhub")
    t.ok(r.status == 200 and me(r).get("id") == ANA_ID, "and signs in to it", r)
    other = new_user("si.other.%s@example.com" % RUN)
    r = request("POST", "/api/v1/auth/identities/testhub", headers=other)
    st, _ = cookie_of(r, "__Host-agora_signin")
    r = request("GET", local(at_provider(r.json()["authorization_url"])),
                headers={"Cookie": "__Host-agora_signin=" + st})
    t.ok(r.status == 303 and r.header("Location") == "/account?sign_in_error=identity_taken",
         "an identity linked to another account is not linked again", r)
    r = request("POST", "/api/v1/auth/identities/testhub", headers=ANA,
                body={"return_to": "//evil.example"})
    t.ok(r.is_problem(422), "a link's return_to elsewhere: 422", r)
    r = request("POST", "/api/v1/auth/identities/testhub")
    t.ok(r.is_problem(401), "linking needs a token: 401", r)
    r = request("DELETE", "/api/v1/auth/identities/testhub", headers=ANA)
    r2 = request("DELETE", "/api/v1/auth/identities/testhub", headers=ANA)
    t.ok(r.status == 204 and r2.is_problem(404), "DELETE /auth/identities/{provider}: 204, then 404",
         (r, r2))
    r = sign_in("testhub")
    t.ok(r.status == 200 and me(r).get("id") != ANA_ID,
         "an unlinked identity no longer signs in to the account (its email makes its own)", r)

    # A link whose account's tokens end while it is at the provider.
    kim_email = "si.kim.%s@example.com" % RUN
    KIM = new_user(kim_email)
    control(hub_user={"id": 999000 + int(RUN[:4], 16), "login": "kim" + RUN, "email": None},
            hub_emails=[])
    psql("UPDATE users SET email_verified_at = now() WHERE email = '%s'" % kim_email)
    for end, want in [
            (lambda: request("PATCH", "/api/v1/users/me", headers=KIM, body={
                "current_password": "integration test password",
                "password": "another long password"}), "303 link_expired"),
            (lambda: request("DELETE", "/api/v1/users/me/sessions", headers=KIM), "400")]:
        KIM = bearer(request("POST", "/api/v1/auth/login", body={
            "email": kim_email, "password": "integration test password"}).json()["access_token"])
        r = request("POST", "/api/v1/auth/identities/testhub", headers=KIM)
        st, _ = cookie_of(r, "__Host-agora_signin")
        back = at_provider(r.json()["authorization_url"])
        e = end()
        if e.status == 200:  # the password went back for the next round
            request("PATCH", "/api/v1/users/me", headers=bearer(request(
                "POST", "/api/v1/auth/login", body={"email": kim_email,
                                                    "password": "another long password"}
            ).json()["access_token"]), body={"current_password": "another long password",
                                             "password": "integration test password"})
        r = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
        got = ("303 " + (r.header("Location") or "").partition("=")[2] if r.status == 303
               else str(r.status))
        t.ok(got == want and r.status in (303, 400),
             "a link whose tokens ended meanwhile (%s) is refused: %s" % (
                 "password changed" if want.startswith("303") else "log out everywhere", want),
             (got, r))

    tok = "reset-" + RUN
    psql("INSERT INTO account_tokens (user_id, purpose, email, token_sha256, expires_at) "
         "SELECT id, 'reset', email, encode(sha256('%s'::bytea), 'hex'), now() + interval '1 hour' "
         "FROM users WHERE id = %s" % (tok, ANA_ID))
    r = request("POST", "/api/v1/auth/password/reset",
                body={"token": tok, "password": "a password after a reset"})
    _, left, _ = psql("SELECT count(*) FROM user_identities WHERE user_id = %s" % ANA_ID)
    t.ok(r.status == 204 and left == "0",
         "a password reset takes the account back: its providers are unlinked", (r, left))

    # --- housekeeping, and the provider gone ----------------------------------------
    start()
    psql("UPDATE oauth_flows SET expires_at = now() - interval '1 second'")
    rc = subprocess.run([os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agora-worker"),
                         "--once", "--topics", "account.mail"], capture_output=True).returncode
    _, left, _ = psql("SELECT count(*) FROM oauth_flows WHERE expires_at < now()")
    t.ok(rc == 0 and left == "0", "agora-worker removes the sign-ins never finished", left)
    hal = person("hal")
    s = start()
    st, _ = cookie_of(s, "__Host-agora_signin")
    back = at_provider(s.header("Location"))
finally:
    PROV.kill()
    PROV.wait()
r = request("GET", local(back), headers={"Cookie": "__Host-agora_signin=" + st})
t.ok(r.is_problem(503, "provider_unavailable") and not created(hal),
     "the provider unreachable: 503 provider_unavailable, nothing made", r)
t.done()
