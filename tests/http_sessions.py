"""Sessions a user can see and end (fcgi/users.c, sql/0023) against the
real stack: one per login, with its client's user agent and address and
the last refresh; ending one stops its refresh token and leaves the
others; ending all (log out everywhere) also ends every access token at
once; admins see and end anyone's; nobody else can see or end them, or
learn that they exist."""
import base64
import json
import threading
import uuid

from agoratest import Tap, bearer, ctl, need_stack, new_user, psql, request, run_worker

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
PW = "integration test password"
P = "/api/v1/users/me/sessions"


def login(email, agent, cookie=False):
    body = {"email": email, "password": PW}
    if cookie:
        body["refresh_token_cookie"] = True
    return request("POST", "/api/v1/auth/login", body=body, headers={"User-Agent": agent})


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def refresh(token, agent="agora-test"):
    return request("POST", "/api/v1/auth/refresh", body={"refresh_token": token},
                   headers={"User-Agent": agent})


ADM = new_user("se.admin.%s@example.com" % RUN, role="admin")
EMAIL = "se.ana.%s@example.com" % RUN
new_user(EMAIL)  # one session already: new_user logs in
OTHER = new_user("se.bo.%s@example.com" % RUN)
ANA_ID = request("GET", "/api/v1/users/me",
                 headers=bearer(login(EMAIL, "probe").json()["access_token"])).json()["id"]

# --- two logins, two sessions ----------------------------------------------------------
# A User-Agent of odd bytes and far too long: kept to 256 bytes of
# printable ASCII, never an error.
odd = "Phone\tBrowser/1.0 \xe9t\xe9 " + "x" * 5000
a = login(EMAIL, "Laptop/1.0 (test)").json()
b = login(EMAIL, odd).json()
A, B = bearer(a["access_token"]), bearer(b["access_token"])
t.ok(claims(a["access_token"]).get("sid") and
     claims(a["access_token"])["sid"] != claims(b["access_token"])["sid"],
     "each login's access token names its own session (claim sid)", (claims(a["access_token"]),))

r = request("GET", P, headers=A)
data = (r.json() or {}).get("data", [])
by_id = {s["id"]: s for s in data}
sa = by_id.get(claims(a["access_token"])["sid"], {})
sb = by_id.get(claims(b["access_token"])["sid"], {})
t.ok(r.status == 200 and len(data) == 4 and r.json()["has_more"] is False,
     "GET /users/me/sessions: the four live logins of the account", r)
t.ok([s["id"] for s in data] == sorted((s["id"] for s in data), key=int, reverse=True),
     "newest first", [s["id"] for s in data])
t.ok(sa.get("user_agent") == "Laptop/1.0 (test)" and sa.get("ip") not in (None, "", "-"),
     "a session shows its client's user agent and address", sa)
t.ok(len(sb.get("user_agent", "")) == 256 and sb["user_agent"].startswith("Phone?Browser/1.0 ?t? x")
     and all(" " <= c <= "~" for c in sb["user_agent"]),
     "an odd User-Agent is kept as 256 bytes of printable ASCII", sb.get("user_agent", "")[:40])
t.ok(sa.get("current") is True and sb.get("current") is False and
     sum(1 for s in data if s["current"]) == 1,
     "the session of the request's token, and only it, is current", data)
r = request("GET", P, headers=B)
t.ok([s["id"] for s in r.json()["data"] if s["current"]] == [sb.get("id")],
     "asked with the other token, the other one is current", r)

# --- paging ------------------------------------------------------------------------------
r1 = request("GET", P + "?limit=3", headers=A)
r2 = request("GET", P + "?limit=3&cursor=" + (r1.json() or {}).get("next_cursor", ""), headers=A)
t.ok(r1.json()["has_more"] is True and len(r1.json()["data"]) == 3 and
     [s["id"] for s in r1.json()["data"] + r2.json()["data"]] == [s["id"] for s in data],
     "pages of 3 walk the whole list once", (r1, r2))
for q in ["?limit=0", "?limit=101", "?limit=x", "?cursor=bm9wZQ"]:
    r = request("GET", P + q, headers=A)
    t.ok(r.status == 400 and r.is_problem(400), "GET %s%s: 400" % (P, q), r)

# --- a refresh moves last use; the token stays in its session ---------------------------
before = sb["last_used_at"]
b2 = refresh(b["refresh_token"], "Phone/2.0").json()
t.ok(claims(b2["access_token"])["sid"] == sb["id"],
     "a refresh keeps the session: the new access token names the same one", claims(b2["access_token"]))
now = {s["id"]: s for s in request("GET", P, headers=A).json()["data"]}[sb["id"]]
t.ok(now["last_used_at"] > before and now["user_agent"] == "Phone/2.0" and
     now["created_at"] == sb["created_at"],
     "the refresh is recorded: last use and user agent move, the start stays", (sb, now))
# The rotated token once more, at once (refresh_reuse_grace): its new
# token replaces the one the first use made, in the same session.
r = refresh(b["refresh_token"], "Phone/2.0")
ids = [s["id"] for s in request("GET", P, headers=A).json()["data"]]
t.ok(r.status == 200 and claims(r.json()["access_token"])["sid"] == sb["id"] and
     len(ids) == 4 and ids.count(sb["id"]) == 1,
     "a second refresh of one token within the grace: the same session, listed once", (r, ids))
b2 = r.json() if r.status == 200 else b2
_, n, _ = psql("SELECT count(*) FROM refresh_tokens WHERE family = (SELECT family FROM sessions "
               "WHERE id = %s) AND rotated_at IS NULL AND revoked_at IS NULL" % sb["id"])
t.ok(n == "1", "one live token per session, after a use within the grace too", n)

# --- who may see or end them -----------------------------------------------------------
r = request("GET", P)
t.ok(r.is_problem(401), "GET /users/me/sessions anonymous: 401", r)
for method, path in [("GET", "/api/v1/users/%s/sessions" % ANA_ID),
                     ("DELETE", "/api/v1/users/%s/sessions" % ANA_ID),
                     ("DELETE", "/api/v1/users/%s/sessions/%s" % (ANA_ID, sa["id"])),
                     ("GET", "/api/v1/users/99999999999/sessions"),
                     ("GET", "/api/v1/users/abc/sessions")]:
    r = request(method, path, headers=OTHER)
    t.ok(r.is_problem(404, "not_found"), "%s %s as another customer: 404" % (method, path), r)
r = request("DELETE", P + "/" + sa["id"], headers=OTHER)
t.ok(r.is_problem(404, "not_found"),
     "another customer's DELETE /users/me/sessions/{id} of it: 404, as for none", r)
for sid in ["0", "x1", "99999999999999999999", "-1"]:
    r = request("DELETE", P + "/" + sid, headers=A)
    t.ok(r.is_problem(404), "DELETE /users/me/sessions/%s: 404" % sid, r)
r = refresh(a["refresh_token"])
ok_a = r.status == 200
a = r.json() if ok_a else a
A = bearer(a["access_token"])
t.ok(ok_a, "after all that, both sessions still refresh", r)
r = request("GET", "/api/v1/users/%s/sessions" % ANA_ID, headers=A)
t.ok(r.status == 200 and len(r.json()["data"]) == 4, "the owner may use the id form too", r)
r = request("GET", "/api/v1/users/%s/sessions" % ANA_ID, headers=ADM)
t.ok(r.status == 200 and len(r.json()["data"]) == 4 and
     not any(s["current"] for s in r.json()["data"]),
     "an admin lists them (none is the admin's current one)", r)

# --- ending one ---------------------------------------------------------------------------
b3 = refresh(b2["refresh_token"]).json()  # b2 is rotated a moment before the end
r = request("DELETE", P + "/" + sb["id"], headers=A)
t.ok(r.status == 204 and r.body == b"", "DELETE /users/me/sessions/{id}: 204", r)
r = refresh(b3["refresh_token"])
t.ok(r.is_problem(401, "invalid_refresh_token"), "the ended session's refresh token is refused", r)
r = refresh(b2["refresh_token"])
t.ok(r.is_problem(401, "invalid_refresh_token"),
     "and its token rotated a moment ago, within refresh_reuse_grace, too", r)
r = request("DELETE", P + "/" + sb["id"], headers=A)
t.ok(r.is_problem(404), "ending it again: 404 (no such live session)", r)
ids = [s["id"] for s in request("GET", P, headers=A).json()["data"]]
t.ok(sb["id"] not in ids and sa["id"] in ids and len(ids) == 3,
     "it is gone from the list; the others stay", ids)
r = request("GET", "/api/v1/users/me", headers=A)
t.ok(r.status == 200, "the other session's access token still works", r)

# An admin ends one of the user's sessions.
victim = sorted(set(ids) - {sa["id"]}, key=int)[0]
r = request("DELETE", "/api/v1/users/%s/sessions/%s" % (ANA_ID, victim), headers=ADM)
t.ok(r.status == 204, "an admin ends one of a user's sessions: 204", r)
ids = [s["id"] for s in request("GET", P, headers=A).json()["data"]]
t.ok(victim not in ids and len(ids) == 2, "and it is gone", ids)

# --- log out everywhere ---------------------------------------------------------------------
c = login(EMAIL, "Browser/9", cookie=True)
cookie = [v.split(";")[0] for k, v in c.headers if k.lower() == "set-cookie"][0]
C = bearer(c.json()["access_token"])
r = request("DELETE", P, headers=A)
t.ok(r.status == 204, "DELETE /users/me/sessions (log out everywhere): 204", r)
for name, h in [("its own", A), ("another session's", C)]:
    r = request("GET", "/api/v1/users/me", headers=h)
    t.ok(r.is_problem(401, "invalid_token"), "%s access token is refused at once" % name, r)
r = refresh(a["refresh_token"])
t.ok(r.is_problem(401), "its refresh token is refused", r)
r = request("POST", "/api/v1/auth/refresh", body={}, headers={"Cookie": cookie})
t.ok(r.is_problem(401), "a browser session's refresh cookie is refused too", r)
d = login(EMAIL, "Laptop/2.0").json()
D = bearer(d["access_token"])
r = request("GET", P, headers=D)
t.ok(r.status == 200 and [s["user_agent"] for s in r.json()["data"]] == ["Laptop/2.0"],
     "a new login works, and is the only live session", r)
_, n, _ = psql("SELECT count(*) FROM refresh_tokens rt JOIN users u ON u.id = rt.user_id "
               "WHERE u.email = '%s' AND rt.revoked_at IS NULL AND rt.rotated_at IS NULL" % EMAIL)
t.ok(n == "1", "in the database: one live refresh token for the account", n)

# An admin ends all of a user's sessions.
r = request("DELETE", "/api/v1/users/%s/sessions" % ANA_ID, headers=ADM)
t.ok(r.status == 204, "an admin ends all of a user's sessions: 204", r)
r = request("GET", "/api/v1/users/me", headers=D)
t.ok(r.is_problem(401, "invalid_token"), "the user's access token is refused at once", r)
r = refresh(d["refresh_token"])
t.ok(r.is_problem(401), "and the refresh token", r)
r = request("GET", "/api/v1/users/me", headers=ADM)
t.ok(r.status == 200, "the admin's own token is untouched", r)
r = request("DELETE", "/api/v1/users/99999999999/sessions", headers=ADM)
t.ok(r.is_problem(404), "an admin naming no user: 404", r)

# A demoted admin's token is refused before it can end anyone's sessions.
ADM2_EMAIL = "se.admin2.%s@example.com" % RUN
ADM2 = new_user(ADM2_EMAIL, role="admin")
e = login(EMAIL, "Laptop/3.0").json()
psql("UPDATE users SET role = 'customer' WHERE email = '%s'" % ADM2_EMAIL)
r = request("DELETE", "/api/v1/users/%s/sessions" % ANA_ID, headers=ADM2)
t.ok(r.status in (401, 403, 404), "a demoted admin cannot end another user's sessions", r)
r = refresh(e["refresh_token"])
t.ok(r.status == 200, "and the user's session lives on", r)

# --- a token the previous release stored, during a rolling upgrade ------------------------
# It knows nothing of sessions: the database gives its token one.
OLD = "previous-release-token-" + RUN
psql("INSERT INTO refresh_tokens (user_id, family, token_sha256, expires_at) VALUES "
     "(%s, 'prev%s', encode(sha256('%s'::bytea), 'hex'), now() + interval '1 day')"
     % (ANA_ID, RUN, OLD))
r = refresh(OLD, "Old/1.0")
sid = claims(r.json()["access_token"]).get("sid") if r.status == 200 else None
mine = request("GET", P, headers=bearer(r.json()["access_token"])).json()["data"] if sid else []
t.ok(sid is not None and [s["user_agent"] for s in mine if s["id"] == sid] == ["Old/1.0"],
     "a token stored without a session (the previous release) gets one, and refreshes into it",
     (r, mine))

# --- races: ending a session while it refreshes ----------------------------------------------
# Each round refreshes a session at the moment it is ended (one session,
# then all of them).  Whichever comes first, the session must end up
# dead: no refresh token of it may live on.
def race(end):
    fresh = login(EMAIL, "Racer/1.0").json()
    keep = bearer(login(EMAIL, "Keeper/1.0").json()["access_token"])
    sid = claims(fresh["access_token"])["sid"]
    out = {}
    go = threading.Barrier(2)

    def do_refresh():
        go.wait()
        out["refresh"] = refresh(fresh["refresh_token"])

    def do_end():
        go.wait()
        out["end"] = end(sid, keep)
    threads = [threading.Thread(target=f) for f in (do_refresh, do_end)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    _, live, _ = psql("SELECT count(*) FROM refresh_tokens WHERE family = (SELECT family "
                      "FROM sessions WHERE id = %s) AND revoked_at IS NULL "
                      "AND rotated_at IS NULL" % sid)
    return live, out


ROUNDS = 12
bad = []
for i in range(ROUNDS):
    live, out = race(lambda sid, h: request("DELETE", P + "/" + sid, headers=h))
    if live != "0" or out["end"].status != 204:
        bad.append((live, out))
t.ok(not bad, "%d refreshes raced with ending their session: each session ended, "
     "no refresh token of it lives" % ROUNDS, bad[:2])
bad = []
for i in range(ROUNDS):
    live, out = race(lambda sid, h: request("DELETE", P, headers=h))
    if live != "0" or out["end"].status != 204:
        bad.append((live, out))
t.ok(not bad, "%d refreshes raced with log out everywhere: no refresh token lives on"
     % ROUNDS, bad[:2])

# --- agoractl user logout: an operator ends an account's sessions ----------------------------
CLI = "se.cli.%s@example.com" % RUN
new_user(CLI)
a, b = login(CLI, "Phone/1").json(), login(CLI, "Laptop/1").json()
rc, out, err = ctl("user", "logout", CLI.upper())
t.ok(rc == 0 and "(3 sessions ended)" in out,
     "agoractl user logout ends the account's live sessions, and counts them", (rc, out, err))
r1 = refresh(a["refresh_token"])
r2 = request("GET", "/api/v1/users/me", headers=bearer(b["access_token"]))
t.ok(r1.is_problem(401) and r2.is_problem(401, "invalid_token"),
     "their refresh tokens and access tokens are refused", [r1, r2])
t.ok(login(CLI, "Phone/2").status == 200, "and the owner can log in again")
rc, out, err = ctl("user", "logout", "nobody.%s@example.com" % RUN)
t.ok(rc == 1 and "no such user" in err, "agoractl user logout of no account: exit 1", (rc, out, err))

# --- housekeeping: expired tokens go, and the sessions they leave ---------------------------
OLD = "old" + RUN
psql(["INSERT INTO sessions (user_id, family, last_used_at) VALUES (%s, '%s', "
      "now() - interval '40 days')" % (ANA_ID, OLD),
      "INSERT INTO refresh_tokens (user_id, family, token_sha256, expires_at) VALUES "
      "(%s, '%s', encode(sha256('%s'::bytea), 'hex'), now() - interval '2 days')"
      % (ANA_ID, OLD, OLD),
      "INSERT INTO account_tokens (user_id, purpose, email, expires_at) VALUES "
      "(%s, 'reset', '%s', now() - interval '8 days')" % (ANA_ID, EMAIL)])
keep = login(EMAIL, "Keeper/2.0").json()
rc = run_worker("--once", "--topics", "account.mail")
_, gone, _ = psql("SELECT (SELECT count(*) FROM sessions WHERE family = '%s') + "
                  "(SELECT count(*) FROM refresh_tokens WHERE family = '%s') + "
                  "(SELECT count(*) FROM account_tokens WHERE user_id = %s "
                  "AND expires_at < now() - interval '7 days')" % (OLD, OLD, ANA_ID))
t.ok(rc == 0 and gone == "0",
     "agora-worker removes expired tokens, and the session they leave empty", (rc, gone))
r = refresh(keep["refresh_token"])
t.ok(r.status == 200, "a live session stays", r)
t.done()
