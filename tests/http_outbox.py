"""The outbox for admins (fcgi/users.c, /api/v1/outbox): counts per topic
and state, the rows themselves (dead ones with their last error, never
the payload), and a dead row made due again, against the real stack.  The
rows are of a topic of the test's own, which no worker claims."""
import uuid

from agoratest import Tap, need_stack, new_user, psql, request

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
ADM = new_user("ob.admin.%s@example.com" % RUN, role="admin")
CUS = new_user("ob.c.%s@example.com" % RUN)
# Topics are [a-z_]+.[a-z_]+: the run's hex digits as letters.
TOPIC = "zz_outbox.t_" + "".join(chr(ord("a") + int(c, 16)) for c in RUN)
P = "/api/v1/outbox"

_, ids, _ = psql(
    "INSERT INTO outbox (topic, aggregate_id, payload, state, attempts, last_error, "
    "next_attempt_at) VALUES "
    "('%(t)s', 'order:1', '{\"phone\": \"+15550100\"}', 'dead', 10, 'SMTP: 451 later', now()), "
    "('%(t)s', 'order:2', '{}', 'dead', 3, 'refused for good', now()), "
    "('%(t)s', 'order:3', '{}', 'pending', 0, NULL, now() + interval '1 day') "
    "RETURNING id" % {"t": TOPIC})
DEAD1, DEAD2, PENDING = ids.split()

# --- who may ask ---------------------------------------------------------------------
for method, path in [("GET", P), ("GET", P + "/stats"), ("POST", P + "/%s/retry" % DEAD1)]:
    r = request(method, path)
    t.ok(r.is_problem(401), "%s %s anonymous: 401" % (method, path), r)
    r = request(method, path, headers=CUS)
    t.ok(r.is_problem(403, "forbidden"), "%s %s as a customer: 403" % (method, path), r)
_, state, _ = psql("SELECT state FROM outbox WHERE id = %s" % DEAD1)
t.ok(state == "dead", "the customer's retry changed nothing", state)

# --- stats ------------------------------------------------------------------------------
r = request("GET", P + "/stats", headers=ADM)
mine = [x for x in (r.json() or {}).get("data", []) if x["topic"] == TOPIC]
t.ok(r.status == 200 and mine == [{"topic": TOPIC, "pending": 1, "running": 0, "dead": 2,
                                   "oldest_due_age_seconds": 0}]
     and r.json()["counted_up_to"] == 100000,
     "stats: the topic's 1 pending (not due) and 2 dead", r)
topics = [x["topic"] for x in r.json()["data"]]
t.ok(topics == sorted(topics), "stats: one entry a topic, by topic", topics)

# --- list ---------------------------------------------------------------------------------
r = request("GET", P + "?state=dead&topic=" + TOPIC, headers=ADM)
rows = (r.json() or {}).get("data", [])
t.ok(r.status == 200 and [x["id"] for x in rows] == [DEAD2, DEAD1] and not r.json()["has_more"],
     "state=dead: the topic's dead rows, newest first", r)
t.ok(rows and rows[1]["last_error"] == "SMTP: 451 later" and rows[1]["attempts"] == 10
     and rows[1]["aggregate_id"] == "order:1" and "payload" not in rows[1],
     "each with its last error and attempts, and never its payload", rows)
r = request("GET", P + "?topic=%s&limit=2" % TOPIC, headers=ADM)
page1 = r.json() or {}
r2 = request("GET", P + "?topic=%s&limit=2&cursor=%s" % (TOPIC, page1.get("next_cursor")),
             headers=ADM)
page2 = r2.json() or {}
t.ok(r.status == 200 and r2.status == 200 and page1.get("has_more") and
     [x["id"] for x in page1["data"] + page2.get("data", [])] == [PENDING, DEAD2, DEAD1]
     and not page2.get("has_more") and page2.get("next_cursor") is None,
     "every state, two a page: three rows once each, newest first", (page1, page2))
r = request("GET", P + "?state=pending&topic=" + TOPIC, headers=ADM)
t.ok(r.status == 200 and [x["id"] for x in r.json()["data"]] == [PENDING]
     and r.json()["data"][0]["last_error"] is None,
     "state=pending: the pending one, no error yet", r)
for q, code in [("?state=done", "bad_state"), ("?topic=" + "x" * 65, "bad_topic"),
                ("?limit=0", "bad_limit"), ("?limit=101", "bad_limit"),
                ("?cursor=nonsense", "bad_cursor"), ("?state=%zz", None)]:
    r = request("GET", P + q, headers=ADM)
    t.ok(r.is_problem(400, code) if code else r.is_problem(400), "%s: 400 %s" % (q[:20], code), r)

# --- retry --------------------------------------------------------------------------------
r = request("POST", P + "/%s/retry" % DEAD1, headers=ADM)
row = r.json() or {}
_, db, _ = psql("SELECT state || ' ' || attempts || ' ' || (next_attempt_at <= now()) "
                "FROM outbox WHERE id = %s" % DEAD1)
t.ok(r.status == 200 and row.get("state") == "pending" and row.get("attempts") == 0 and
     row.get("id") == DEAD1 and db == "pending 0 true",
     "retry a dead row: pending, due now, its attempts anew", (r, db))
r = request("POST", P + "/%s/retry" % DEAD1, headers=ADM)
t.ok(r.is_problem(409, "not_dead") and "pending" in r.json()["detail"],
     "retry it again: 409 not_dead, naming its state", r)
r = request("POST", P + "/%s/retry" % PENDING, headers=ADM)
t.ok(r.is_problem(409, "not_dead"), "retry a pending row: 409", r)
for bad in ["999999999999", "abc", "0"]:
    r = request("POST", P + "/%s/retry" % bad, headers=ADM)
    t.ok(r.is_problem(404) and r.json()["detail"] == "No such outbox row.",
         "retry %s: 404 No such outbox row." % bad, r)
r = request("GET", P + "/stats", headers=ADM)
mine = [x for x in r.json()["data"] if x["topic"] == TOPIC]
t.ok(mine and mine[0]["pending"] == 2 and mine[0]["dead"] == 1,
     "stats after the retry: 2 pending, 1 dead", mine)

psql("DELETE FROM outbox WHERE topic = '%s'" % TOPIC)
t.done()
