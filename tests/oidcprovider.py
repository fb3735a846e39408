"""A sign-in provider for the tests, on loopback: an OpenID Connect
provider under /oidc and an OAuth2 one of the GitHub kind under /hub, each
as the specifications say (OpenID Connect Core 1.0 and Discovery 1.0,
RFC 6749, RFC 7636), built on PyJWT and cryptography (Debian's
python3-jwt, python3-cryptography).  It stands in for the providers
agora's users sign in with (Google, GitHub...): third parties.

  python3 oidcprovider.py PORT CLIENT_ID CLIENT_SECRET

/oidc: /.well-known/openid-configuration, /jwks, /authorize (it signs in
whoever the tests set, at once), /token (client_secret_basic; the code
works once, for a minute, with its redirect_uri and PKCE S256 verifier),
/userinfo.  /hub: /login/oauth/authorize, /login/oauth/access_token
(client_secret_post; a bad code is a 200 with "error", as GitHub does),
/user, /user/emails.  The tests steer it through

  POST /_control {"user": {...claims}, "hub_user": {...}, "hub_emails": [...],
                  "fault": NAME, "rotate": true, "down": bool, "deny": bool}
  GET  /_state -> {"token_calls": n, "jwks_fetches": n, "codes": [issued]}

A fault applies to every ID token until another is set ("" for none):
wrong_nonce, no_nonce, wrong_aud, multi_aud (another audience beside
ours, no azp), wrong_azp, wrong_iss, expired, old_iat (issued 15 minutes
ago), unknown_kid, bad_signature, alg_hs256 (signed with HMAC under the
public key's text), alg_none, no_id_token.  rotate makes a new key, publishes it alone, and signs with
it.  down answers 503 everywhere.
"""
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PORT, CLIENT_ID, CLIENT_SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BASE = "http://127.0.0.1:%d" % PORT
ISSUER = BASE + "/oidc"
lock = threading.Lock()


def new_key():
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"kid": "k" + secrets.token_hex(4), "private": k}


state = {"keys": [new_key()], "fault": "", "down": False, "deny": False,
         "user": {"sub": "u1", "email": "person@example.com", "email_verified": True,
                  "name": "Pat Person"},
         "hub_user": {"id": 4242, "login": "octo", "name": "Octo Cat", "email": None},
         "hub_emails": [{"email": "octo@example.com", "primary": True, "verified": True}],
         "codes": {}, "tokens": {}, "token_calls": 0, "jwks_fetches": 0, "issued": []}


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwk_of(key):
    j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key["private"].public_key()))
    j.update({"kid": key["kid"], "use": "sig", "alg": "RS256"})
    return j


def pem_public(key):
    return key["private"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def id_token(claims, fault):
    now = int(time.time())
    c = dict(claims)
    c.update({"iss": ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 300})
    key = state["keys"][-1]
    if fault == "wrong_nonce":
        c["nonce"] = "not-the-nonce"
    elif fault == "wrong_aud":
        c["aud"] = "another-client"
    elif fault == "wrong_iss":
        c["iss"] = BASE + "/elsewhere"
    elif fault == "expired":
        c["iat"], c["exp"] = now - 400, now - 200
    elif fault == "old_iat":
        c["iat"] = now - 900
    elif fault == "no_nonce":
        del c["nonce"]
    elif fault == "multi_aud":
        c["aud"] = [CLIENT_ID, "another-client"]
    elif fault == "wrong_azp":
        c["azp"] = "another-client"
    if fault == "unknown_kid":
        return jwt.encode(c, new_key()["private"], algorithm="RS256",
                          headers={"kid": "k-unpublished"})
    if fault == "alg_none":
        head = b64url(json.dumps({"alg": "none", "kid": key["kid"]}).encode())
        return "%s.%s." % (head, b64url(json.dumps(c).encode()))
    if fault == "alg_hs256":
        # The forgery libraries once took: HMAC keyed with the public key.
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key["kid"]}).encode())
        body = b64url(json.dumps(c).encode())
        mac = hmac.new(pem_public(key), ("%s.%s" % (head, body)).encode(), hashlib.sha256)
        return "%s.%s.%s" % (head, body, b64url(mac.digest()))
    tok = jwt.encode(c, key["private"], algorithm="RS256", headers={"kid": key["kid"]})
    if fault == "bad_signature":
        head, body, sig = tok.split(".")
        c["sub"] = "someone-else"
        tok = "%s.%s.%s" % (head, b64url(json.dumps(c).encode()), sig)
    return tok


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, obj=None, location=None):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, uri, **params):
        sep = "&" if "?" in uri else "?"
        self.send(302, location=uri + sep + urllib.parse.urlencode(params))

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        return dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))

    def bearer(self):
        a = self.headers.get("Authorization") or ""
        return state["tokens"].get(a.split(" ", 1)[1]) if " " in a else None

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        with lock:
            if u.path == "/_state":
                return self.send(200, {"token_calls": state["token_calls"],
                                       "jwks_fetches": state["jwks_fetches"],
                                       "codes": state["issued"]})
            if state["down"]:
                return self.send(503, {"error": "temporarily_unavailable"})
            route = {"/oidc/.well-known/openid-configuration": self.discovery,
                     "/oidc/jwks": self.jwks, "/oidc/authorize": self.authorize,
                     "/hub/login/oauth/authorize": self.authorize,
                     "/oidc/userinfo": self.userinfo, "/hub/user": self.hub_user,
                     "/hub/user/emails": self.hub_emails}.get(u.path)
            if route is None:
                return self.send(404, {"error": "not_found"})
            return route(q, u.path.startswith("/hub"))

    def discovery(self, q, hub):
        self.send(200, {
            "issuer": ISSUER, "authorization_endpoint": ISSUER + "/authorize",
            "token_endpoint": ISSUER + "/token", "userinfo_endpoint": ISSUER + "/userinfo",
            "jwks_uri": ISSUER + "/jwks", "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    def jwks(self, q, hub):
        state["jwks_fetches"] += 1
        self.send(200, {"keys": [jwk_of(k) for k in state["keys"]]})

    def authorize(self, q, hub):
        uri = q.get("redirect_uri", "")
        if q.get("client_id") != CLIENT_ID or not uri.startswith(("http://127.0.0.1:",
                                                                   "https://127.0.0.1:")):
            return self.send(400, {"error": "invalid_request"})
        st = q.get("state")
        if state["deny"]:
            return self.redirect(uri, error="access_denied", state=st)
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" \
                or not q.get("code_challenge") or (not hub and "openid" not in q.get("scope", "").split()):
            return self.redirect(uri, error="invalid_request", state=st)
        code = secrets.token_urlsafe(24)
        state["codes"][code] = {"uri": uri, "challenge": q["code_challenge"], "nonce": q.get("nonce"),
                                "at": time.time(), "hub": hub,
                                "user": dict(state["hub_user"] if hub else state["user"])}
        state["issued"].append(code)
        self.redirect(uri, code=code, state=st)

    def client_ok(self, f, hub):
        if hub:
            return f.get("client_id") == CLIENT_ID and f.get("client_secret") == CLIENT_SECRET
        a = self.headers.get("Authorization") or ""
        if not a.startswith("Basic "):
            return False
        ident, _, secret = base64.b64decode(a[6:]).decode().partition(":")
        return (urllib.parse.unquote(ident) == CLIENT_ID
                and urllib.parse.unquote(secret) == CLIENT_SECRET)

    def code_of(self, f, hub):
        c = state["codes"].pop(f.get("code", ""), None)  # a code works once
        if c is None or c["hub"] != hub or time.time() - c["at"] > 60 \
                or c["uri"] != f.get("redirect_uri"):
            return None
        want = b64url(hashlib.sha256(f.get("code_verifier", "").encode()).digest())
        return c if hmac.compare_digest(want, c["challenge"]) else None

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/_control":
            n = int(self.headers.get("Content-Length") or 0)
            ctl = json.loads(self.rfile.read(n) or b"{}")
            with lock:
                for k in ("user", "hub_user", "hub_emails", "fault", "down", "deny"):
                    if k in ctl:
                        state[k] = ctl[k]
                if ctl.get("rotate"):
                    state["keys"] = [new_key()]
            return self.send(200, {"ok": True})
        f = self.form()
        with lock:
            if state["down"]:
                return self.send(503, {"error": "temporarily_unavailable"})
            hub = u.path == "/hub/login/oauth/access_token"
            if u.path != "/oidc/token" and not hub:
                return self.send(404, {"error": "not_found"})
            state["token_calls"] += 1
            if not self.client_ok(f, hub):
                return self.send(401, {"error": "invalid_client"})
            if f.get("grant_type") != "authorization_code":
                return self.send(400, {"error": "unsupported_grant_type"})
            c = self.code_of(f, hub)
            if c is None:
                if hub:
                    return self.send(200, {"error": "bad_verification_code"})
                return self.send(400, {"error": "invalid_grant"})
            access = secrets.token_urlsafe(24)
            state["tokens"][access] = c["user"]
            if hub:
                return self.send(200, {"access_token": access, "token_type": "bearer",
                                       "scope": "read:user,user:email"})
            out = {"access_token": access, "token_type": "Bearer", "expires_in": 300}
            if state["fault"] != "no_id_token":
                claims = dict(c["user"], nonce=c["nonce"])
                out["id_token"] = id_token(claims, state["fault"])
            self.send(200, out)

    def userinfo(self, q, hub):
        user = self.bearer()
        if user is None:
            return self.send(401, {"error": "invalid_token"})
        self.send(200, user)

    def hub_user(self, q, hub):
        user = self.bearer()
        self.send(401, {"message": "Bad credentials"}) if user is None else self.send(200, user)

    def hub_emails(self, q, hub):
        if self.bearer() is None:
            return self.send(401, {"message": "Bad credentials"})
        self.send(200, state["hub_emails"])


ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
