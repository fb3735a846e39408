"""GET /analytics/summary and summary.csv (admin): the figures of a range
of UTC days, read from the daily rows the tables' triggers keep and
agora-worker folds (sql/0021, 0022).  Random events and orders in days of
their own are summed again here, in Python, and must give the same
document, before and after the worker's fold; events posted by many
clients at once, and orders paid by the worker, must leave the daily rows
equal to a count of the rows themselves."""
import csv
import datetime
import io
import json
import random
import threading
import uuid
from decimal import ROUND_HALF_UP, Decimal

from agoratest import SERVER, Gateway, Tap, need_stack, new_user, psql, request, run_worker

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
P = "/api/v1/analytics/summary"
ADM = new_user("sum.admin.%s@example.com" % RUN, role="admin")
CUS = new_user("sum.c.%s@example.com" % RUN)
rng = random.Random(RUN)


def summary(query="", headers=None):
    return request("GET", P + query, headers=dict(ADM, **(headers or {})))


# --- who may ask, and what ---------------------------------------------------------
r = request("GET", P)
t.ok(r.is_problem(401), "anonymous: 401", r)
r = request("GET", P, headers=CUS)
t.ok(r.is_problem(403, "forbidden"), "a customer: 403", r)
r = request("GET", P + ".csv", headers=CUS)
t.ok(r.is_problem(403, "forbidden"), "a customer asking for the CSV: 403", r)
for q, code in [("?from=2026-02-30", "bad_date"), ("?to=2026-13-01", "bad_date"),
                ("?from=2026-1-01", "bad_date"), ("?from=yesterday", "bad_date"),
                ("?from=1969-12-31", "bad_date"), ("?to=2025-02-29", "bad_date"),
                ("?from=2026-01-01x", "bad_date"), ("?from=", "bad_date"),
                ("?from=+026-01-01", "bad_date"),
                ("?from=2026-03-02&to=2026-03-01", "bad_range"),
                ("?from=2024-01-01&to=2025-01-01", "bad_range"),
                ("?currency=usd", "bad_currency"), ("?currency=US", "bad_currency"),
                ("?currency=USDX", "bad_currency"), ("?from=2026-01-5-", "bad_date"),
                ("?from=2026-0a-01", "bad_date"), ("?to=2026-01-0%20", "bad_date")]:
    r = summary(q)
    t.ok(r.is_problem(400, code), "%s: 400 %s" % (q, code), r)
# lighttpd refuses a NUL in the query itself (an HTML 400, before agora),
# and passes a malformed escape on as the literal text "%zz": agora then
# reads a date that is not one.
r = summary("?currency=U%00D")
t.ok(r.status == 400 and (SERVER == "lighttpd" or r.is_problem(400, "bad_request")),
     "?currency=U%00D: 400", r)
r = summary("?from=%zz")
t.ok(r.is_problem(400) and r.json().get("code") in ("bad_request", "bad_date"),
     "?from=%zz: 400 problem+json", r)
r = summary("?from=2024-01-01&to=2024-12-31")
t.ok(r.status == 200 and len(r.json()["daily"]) == 366, "a leap year's 366 days: the longest range",
     r.status)
r = summary("?from=2024-02-29&to=2024-02-29")
t.ok(r.status == 200 and [d["date"] for d in r.json()["daily"]] == ["2024-02-29"],
     "one day, a leap day", r)
today = datetime.datetime.now(datetime.timezone.utc).date()
r = summary()
j = r.json() if r.status == 200 else {}
days = [d["date"] for d in j.get("daily", [])]
t.ok(r.status == 200 and len(days) == 30 and days[-1] in (str(today), str(today +
     datetime.timedelta(days=1))) and j["to"] == days[-1] and j["from"] == days[0],
     "no range: the 30 days to today (UTC)", (r.status, days[:1], days[-1:]))
t.ok("Accept" in (r.header("Vary") or "") and "no-store" in (r.header("Cache-Control") or ""),
     "the answer varies with Accept, and is not stored", r.headers)

# --- random days of their own, summed again here ------------------------------------
# March 2001: no other test writes there.  Everything is written and read
# in one transaction that is rolled back, so that nothing of it stays (the
# paid orders' invoices and notifications included).
FROM, TO = datetime.date(2001, 3, 1), datetime.date(2001, 3, 10)
TYPES = ["product_view", "add_to_cart", "checkout", "page_view", "search", "x-%s" % RUN]
CURS = ["XAA", "XBB", "XCC"]
_, uid, _ = psql("SELECT id FROM users WHERE email = 'sum.c.%s@example.com'" % RUN)


def at(day, rng):
    t0 = datetime.datetime.combine(day, datetime.time(), datetime.timezone.utc)
    return t0 + datetime.timedelta(seconds=rng.randrange(86400))


def q(s):
    return "'" + s.replace("'", "''") + "'"


def random_events(rng):
    """Events of 40 sessions, each over one to three days (one reaches past
    the range), in statements of 1 to 60 rows."""
    rows = []
    for s in range(40):
        sid = "s-%s-%d" % (RUN, s)
        first = FROM + datetime.timedelta(days=rng.randrange(-1, 11))
        for _ in range(rng.randrange(1, 25)):
            day = first + datetime.timedelta(days=rng.randrange(3))
            rows.append((rng.choice(TYPES), sid, at(day, rng)))
    rng.shuffle(rows)
    stmts, i = [], 0
    while i < len(rows):
        n = rng.randrange(1, 61)
        stmts.append("INSERT INTO analytics_events (type, session_id, occurred_at) VALUES " +
                     ", ".join("(%s, %s, '%s')" % (q(a), q(b), c.isoformat()) for a, b, c in
                               rows[i:i + n]))
        i += n
    return rows, stmts


def random_orders(rng, pids):
    """60 orders in the three currencies: placed in the range or the day
    before, paid (some a day or more later, some past the range), failed
    or left pending; events in statements of one or several orders."""
    orders, stmts, evs = [], [], []
    for k in range(60):
        cur = rng.choice(CURS)
        lines = [(p, rng.randrange(1, 4), rng.randrange(100, 5000))
                 for p in rng.sample(pids[cur], rng.randrange(1, 3))]
        total = sum(n * c for _, n, c in lines)
        placed = at(FROM + datetime.timedelta(days=rng.randrange(-1, 10)), rng)
        fate = rng.choice(["paid", "paid", "paid", "paid", "payment_failed", "pending"])
        paid = placed + datetime.timedelta(seconds=rng.randrange(3 * 86400)) \
            if fate == "paid" else None
        orders.append((cur, lines, total, placed, fate, paid))
        tag = "sum-%s-%d" % (RUN, k)
        stmts.append(
            "WITH o AS (INSERT INTO orders (user_id, status, payment_status, currency, "
            "subtotal_cents, total_cents, expires_at, created_at, last_seq, tracking_number) "
            "VALUES (%s, %s, 'unpaid', %s, %d, %d, now(), '%s', %d, %s) RETURNING id) "
            "INSERT INTO order_items (order_id, product_id, sku, name, unit_price_cents, quantity) "
            "SELECT o.id, v.p, 'sku', 'n', v.c, v.n FROM o, (VALUES %s) AS v(p, n, c)"
            % (uid, q(fate), q(cur), total, total, placed.isoformat(),
               1 if fate == "pending" else 2, q(tag),
               ", ".join("(%s::bigint, %d, %d)" % (p, n, c) for p, n, c in lines)))
        # By the run's user first: tracking_number has no index, and the
        # check's database holds every test's orders.
        evs.append("SELECT id, 1, 'pending', '%s'::timestamptz FROM orders "
                   "WHERE user_id = %s AND tracking_number = %s" % (placed.isoformat(), uid, q(tag)))
        if fate != "pending":
            done = paid or placed + datetime.timedelta(minutes=5)
            evs.append("SELECT id, 2, %s, '%s'::timestamptz FROM orders "
                       "WHERE user_id = %s AND tracking_number = %s"
                       % (q(fate), done.isoformat(), uid, q(tag)))
    rng.shuffle(evs)
    i = 0
    while i < len(evs):
        n = rng.randrange(1, 8)
        stmts.append("INSERT INTO order_events (order_id, seq, status, at) " +
                     " UNION ALL ".join(evs[i:i + n]))
        i += n
    return orders, stmts


def expect(events, orders, names, cur_asked, lo=FROM, hi=TO):
    """The document analytics_summary() must give for lo..hi."""
    rng_days = [lo + datetime.timedelta(days=i) for i in range((hi - lo).days + 1)]
    inside = [e for e in events if lo <= e[2].date() <= hi]
    by_type, sess = {}, {}
    for typ, sid, when in inside:
        by_type[typ] = by_type.get(typ, 0) + 1
        sess.setdefault(typ, set()).add((when.date(), sid))
        sess.setdefault("", set()).add((when.date(), sid))
    paid = [o for o in orders if o[5] is not None and lo <= o[5].date() <= hi]
    per_cur = {}
    for o in paid:
        n, rev = per_cur.get(o[0], (0, 0))
        per_cur[o[0]] = (n + 1, rev + o[2])
    cur = cur_asked or (min(per_cur, key=lambda c: (-per_cur[c][0], c)) if per_cur else None)

    def avg(rev, n):
        return int((Decimal(rev) / n).quantize(Decimal(1), ROUND_HALF_UP)) if n else None

    prod = {}
    for o in paid:
        for p, n, c in o[1]:
            u, rev = prod.get((p, o[0]), (0, 0))
            prod[(p, o[0])] = (u + n, rev + n * c)
    top = sorted(prod.items(), key=lambda kv: (-kv[1][0], -kv[1][1], int(kv[0][0]), kv[0][1]))[:10]
    types = sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    visits = len(sess.get("", ()))
    norders = len(paid)
    cn, crev = per_cur.get(cur, (0, 0))
    return {
        "from": str(lo), "to": str(hi), "currency": cur, "orders": norders,
        "revenue_cents": crev, "average_order_cents": avg(crev, cn),
        "visits": visits, "events": len(inside),
        "conversion_rate": (Decimal(norders) / visits).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        if visits else None,
        "revenue_by_currency": [{"currency": c, "orders": n, "revenue_cents": rev,
                                 "average_order_cents": avg(rev, n)}
                                for c, (n, rev) in sorted(per_cur.items())],
        "top_products": [{"product_id": str(p), "name": names[str(p)], "currency": c, "units": u,
                          "revenue_cents": rev} for (p, c), (u, rev) in top],
        "events_by_type": dict(types),
        "funnel": {k: len(sess.get(k, ())) for k in ("product_view", "add_to_cart", "checkout")}
        | {"paid": norders},
        "daily": [{"date": str(d), "visits": len({s for s in sess.get("", ()) if s[0] == d}),
                   "events": sum(1 for e in inside if e[2].date() == d),
                   "orders": sum(1 for o in paid if o[5].date() == d),
                   "revenue_cents": sum(o[2] for o in paid if o[5].date() == d and o[0] == cur)}
                  for d in rng_days]}


def norm(doc):
    """Decimals as Decimal, compared as numbers (0.0750 is 0.075)."""
    if isinstance(doc, dict):
        return {k: norm(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [norm(v) for v in doc]
    return doc.normalize() if isinstance(doc, Decimal) else doc


def random_check(seed, cur_asked=None):
    rng = random.Random("%s-%d" % (RUN, seed))
    made = ["INSERT INTO products (sku, name, price_cents, currency, archived_at) VALUES "
            "('SUM-%s-%d-%s-%d', 'Sum %s %d %d', 100, '%s', now())" % (RUN, seed, c, k, c, k, seed, c)
            for c in CURS for k in range(4)]
    # Committed (archived: the catalog does not show them), so that their
    # ids are known; only the orders and events are rolled back.
    psql(made)
    _, out, _ = psql("SELECT string_agg(id || ' ' || currency || ' ' || name, ',' ORDER BY id) "
                     "FROM products WHERE sku LIKE 'SUM-%s-%d-%%'" % (RUN, seed))
    pids, names = {}, {}
    for row in out.split(","):
        pid, c, name = row.split(" ", 2)
        pids.setdefault(c, []).append(pid)
        names[pid] = name
    events, ev_stmts = random_events(rng)
    orders, ord_stmts = random_orders(rng, pids)
    stmts = ev_stmts + ord_stmts
    rng.shuffle(stmts)
    # Orders before their events: an order's events name it.
    stmts = [s for s in stmts if s.startswith("WITH o AS")] + \
        [s for s in stmts if not s.startswith("WITH o AS")]
    cur = "'%s'" % cur_asked if cur_asked else "NULL"
    doc = "analytics_summary('%s', '%s', %s, 10, 50)::text" % (FROM, TO, cur)
    # Once folded, ranges of their own over the days written: each is read
    # as a different set of the products' blocks (2001-03-11 starts a
    # block of 128 days).
    span = [FROM + datetime.timedelta(days=k) for k in range(-1, 14)]
    subs = [tuple(sorted(rng.sample(span, 2))) for _ in range(4)] + \
        [(datetime.date(2000, 10, 1), datetime.date(2001, 6, 30))]
    # The same summary again after the worker's fold has moved the paid
    # orders into the daily rows: the advisory lock, taken first, makes
    # sure no worker's fold holds it (the fold takes it again, the same
    # session's).
    rc, out, err = psql(["BEGIN"] + stmts + [
        "SELECT chr(3) || %s || chr(1) || analytics_summary_csv('%s', '%s', %s) || chr(2)"
        % (doc, FROM, TO, cur),
        "SELECT pg_advisory_xact_lock(7259000021)"] +
        ["DO $$ BEGIN WHILE analytics_fold(10000) = 10000 LOOP END LOOP; END $$"] + [
        "SELECT chr(4) || %s || chr(5) || (SELECT count(*) FROM analytics_paid "
        "WHERE day BETWEEN '%s' AND '%s') || chr(6)"
        % (doc, FROM - datetime.timedelta(days=1), TO + datetime.timedelta(days=3))] +
        ["SELECT chr(7) || analytics_summary('%s', '%s', %s, 10, 50)::text || chr(8)"
         % (lo, hi, cur) for lo, hi in subs] + [
        "ROLLBACK"], check=False)
    if rc != 0:
        return None, None, None, None, err
    doc, text = out.split("\x03", 1)[1].split("\x02")[0].split("\x01")
    folded, left = out.split("\x04", 1)[1].split("\x06")[0].split("\x05")
    parts = [json.loads(x.split("\x08")[0], parse_float=Decimal) for x in out.split("\x07")[1:]]
    return json.loads(doc, parse_float=Decimal), expect(events, orders, names, cur_asked), \
        text, (json.loads(folded, parse_float=Decimal), int(left),
               [(a, expect(events, orders, names, cur_asked, lo, hi))
                for a, (lo, hi) in zip(parts, subs)]), None


for seed, cur in [(1, None), (2, "XBB"), (3, "XZZ")]:
    got, want, text, folded, err = random_check(seed, cur)
    t.ok(err is None and norm(got) == norm(want),
         "random days %d (currency %s): the daily rows give what the rows sum to" % (seed, cur),
         err or [(k, got.get(k), want[k]) for k in want if norm(got.get(k)) != norm(want[k])])
    t.ok(err is None and folded[1] == 0 and norm(folded[0]) == norm(got),
         "and the same once the worker's fold has moved the paid orders into them",
         err or (folded[1], [k for k in want if norm(got.get(k)) != norm(folded[0].get(k))]))
    bad = [(w["from"], w["to"], k) for g, w in (folded[2] if folded else [])
           for k in w if norm(g.get(k)) != norm(w[k])]
    t.ok(err is None and len(folded[2]) == 5 and not bad,
         "then five ranges of their own, %s: each is what its rows sum to"
         % ", ".join("%s..%s" % (g["from"], g["to"]) for g, _ in (folded[2] if folded else [])),
         err or bad)
    text = text or ""
    rows = list(csv.reader(io.StringIO(text.replace("\r\n", "\n"))))
    wrows = [["date", "visits", "events", "orders", "currency", "revenue_cents"]] + \
        [[d["date"], str(d["visits"]), str(d["events"]), str(d["orders"]),
          want["currency"] or "", str(d["revenue_cents"])] for d in want["daily"]]
    # (Python reads psql's output with universal newlines: the CRLF is
    # checked on the HTTP answer below.)
    t.ok(rows == wrows and text.count("\n") == len(wrows),
         "and the CSV's lines are the daily figures",
         ([(a, b) for a, b in zip(rows, wrows) if a != b], len(rows), repr(text[-40:])))

# --- the products' blocks of a range -------------------------------------------------
# Products are kept per aligned block of 2^L days (sql/0021); a range is
# read as the largest blocks that fit.  For 300 ranges of 1 to 366 days,
# before and after 1970: each block is aligned (counted here, in Python),
# they cover the range exactly once, and none could be merged into its
# parent block.
EPOCH = datetime.date(1970, 1, 1)
brng = random.Random(RUN + "-blocks")
ranges = [(EPOCH, EPOCH), (datetime.date(2024, 1, 1), datetime.date(2024, 12, 31)),
          (datetime.date(1969, 12, 1), datetime.date(1970, 2, 1))]
while len(ranges) < 300:
    f = EPOCH + datetime.timedelta(days=brng.randrange(-400, 23000))
    ranges.append((f, f + datetime.timedelta(days=brng.randrange(366))))
_, out, _ = psql("SELECT r.k || ' ' || b.level || ' ' || b.start_day FROM (VALUES %s) AS r(k, f, t), "
                 "analytics_blocks(r.f, r.t) b"
                 % ", ".join("(%d, '%s'::date, '%s'::date)" % (k, f, to)
                             for k, (f, to) in enumerate(ranges)))
got = {}
for line in out.splitlines():
    k, lvl, start = line.split()
    got.setdefault(int(k), []).append((int(lvl), datetime.date.fromisoformat(start)))
bad = []
for k, (f, to) in enumerate(ranges):
    blocks = got.get(k, [])
    days = sorted(b + datetime.timedelta(days=i) for lvl, b in blocks for i in range(2 ** lvl))
    want = [f + datetime.timedelta(days=i) for i in range((to - f).days + 1)]
    aligned = all((b - EPOCH).days % 2 ** lvl == 0 for lvl, b in blocks)
    maximal = all(lvl == 7 or not (f <= p <= p + datetime.timedelta(days=2 ** (lvl + 1) - 1) <= to)
                  for lvl, b in blocks
                  for p in [b - datetime.timedelta(days=(b - EPOCH).days % 2 ** (lvl + 1))])
    if days != want or not aligned or not maximal or len(blocks) > 14:
        bad.append((str(f), str(to), blocks))
t.ok(len(got) == 300 and not bad,
     "300 ranges: each read as aligned, disjoint, largest blocks that cover it (at most %d)"
     % max((len(v) for v in got.values()), default=0), bad[:3])

# --- the types a day keeps -----------------------------------------------------------
# Anyone may post events of any type: past 200 types in a day, a new one
# is counted as '(other)', while the funnel's keep their names.  (April
# 2001, in a transaction rolled back.)
DAY = "2001-04-02"
many = ", ".join("('t%03d-%s', 's', '%s 12:00Z')" % (k, RUN, DAY) for k in range(210))
rc, out, err = psql([
    "BEGIN",
    "INSERT INTO analytics_events (type, session_id, occurred_at) VALUES %s, "
    "('product_view', 's', '%s 12:00Z')" % (many, DAY),
    "INSERT INTO analytics_events (type, session_id, occurred_at) VALUES "
    "('late-%s', 's2', '%s 13:00Z'), ('checkout', 's2', '%s 13:00Z')" % (RUN, DAY, DAY),
    "SELECT count(DISTINCT type) || ' ' || "
    "(SELECT sum(events) FROM analytics_daily WHERE day = '%s' AND type = '(other)') || ' ' || "
    "(analytics_summary('%s', '%s', NULL, 0, 1000)->'events_by_type'->>'(other)') || ' ' || "
    "(analytics_summary('%s', '%s', NULL, 0, 1000)->'funnel')::text "
    "FROM analytics_daily WHERE day = '%s'" % (DAY, DAY, DAY, DAY, DAY, DAY),
    "ROLLBACK"], check=False)
t.ok(rc == 0 and out.split(" ", 3)[:3] == ["204", "11", "11"] and
     json.loads(out.split(" ", 3)[3]) == {"product_view": 1, "add_to_cart": 0, "checkout": 1,
                                          "paid": 0},
     "211 new types in a day: 200 keep their names, the rest are '(other)'; the funnel's stay",
     err or out[:200])
# Two posts of 150 new types each to one day at once: the second waits for
# the first and takes what room is left, so the day still keeps about 200
# names.  (A day of its own in 1995-2003, committed, then deleted.)
DAY2 = datetime.date(1995, 1, 1) + datetime.timedelta(days=rng.randrange(3000))


def post_types(k, out):
    vals = ", ".join("('c%d-%03d-%s', 's', '%s 12:00Z')" % (k, i, RUN, DAY2) for i in range(150))
    out[k] = psql(["BEGIN", "INSERT INTO analytics_events (type, session_id, occurred_at) "
                   "VALUES " + vals, "SELECT pg_sleep(0.5)", "COMMIT"], check=False)


res = {}
ths = [threading.Thread(target=post_types, args=(k, res)) for k in range(2)]
for th in ths:
    th.start()
for th in ths:
    th.join()
_, out, _ = psql("SELECT count(DISTINCT type) || ' ' || sum(events) FILTER (WHERE type = '') "
                 "FROM analytics_daily WHERE day = '%s'" % DAY2)
psql(["DELETE FROM analytics_events WHERE occurred_at >= '%s' AND occurred_at < '%s'"
      % (DAY2, DAY2 + datetime.timedelta(days=1)),
      "DELETE FROM analytics_daily WHERE day = '%s'" % DAY2,
      "DELETE FROM analytics_session_days WHERE day = '%s'" % DAY2])
t.ok(all(r[0] == 0 for r in res.values()) and out.split() and int(out.split()[0]) <= 202 and
     out.split()[1] == "300",
     "two posts of 150 new types to one day at once: the day keeps about 200 (%s)" % out,
     (out, [r[2] for r in res.values()]))
rc, _, err = psql("INSERT INTO analytics_events (type, session_id, occurred_at) "
                  "VALUES ('x', 's', now() - interval '5 days')", admin=False, check=False)
rc2, _, err2 = psql(["BEGIN", "INSERT INTO analytics_events (type, session_id) VALUES ('x', 's')",
                     "ROLLBACK"], admin=False, check=False)
t.ok(rc != 0 and "permission denied" in err and rc2 == 0,
     "the programs' role may post events, but not date them", (err, err2))

# --- many clients at once ---------------------------------------------------------
# Eight clients post batches of events for the same few sessions at once,
# so that the same (day, type, session) arrives from several processes in
# the same moment; then the rollups of today and yesterday must equal a
# count of the events themselves, read in the same snapshot.
SESS = ["c-%s-%d" % (RUN, i) for i in range(6)]
errors = []


def poster(k):
    r2 = random.Random("%s-p%d" % (RUN, k))
    for _ in range(25):
        batch = [{"type": r2.choice(TYPES[:5]), "session_id": r2.choice(SESS)}
                 for _ in range(r2.randrange(1, 40))]
        resp = request("POST", "/api/v1/analytics/events", body=batch, headers=ADM)
        if resp.status != 202:
            errors.append(resp.status)


threads = [threading.Thread(target=poster, args=(k,)) for k in range(8)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.ok(not errors, "200 batches of events from 8 clients at once: all accepted", errors[:5])
# (The funnel's types and '' (every event): other tests may have posted
# enough types for some of theirs to be counted as '(other)'.)
RECOUNT = """
WITH r AS (SELECT day, type, sum(events) AS events, sum(sessions) AS sessions
           FROM analytics_daily WHERE day >= %(d)s AND type IN (%(t)s) GROUP BY 1, 2),
     e AS (SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, k.type,
                  count(*) AS events, count(DISTINCT session_id) AS sessions
           FROM analytics_events, LATERAL (VALUES (type), ('')) AS k(type)
           WHERE occurred_at >= (%(d)s)::timestamp AT TIME ZONE 'UTC' AND k.type IN (%(t)s)
           GROUP BY 1, 2)
SELECT count(*) FILTER (WHERE r.events IS DISTINCT FROM e.events
                          OR r.sessions IS DISTINCT FROM e.sessions),
       count(*), COALESCE(sum(e.events) FILTER (WHERE e.type = ''), 0)
FROM r FULL JOIN e USING (day, type)"""
d0 = "(now() AT TIME ZONE 'UTC')::date - 1"
_, out, _ = psql(RECOUNT % {"d": d0, "t": "'', 'product_view', 'add_to_cart', 'checkout'"})
bad, n, total = out.split("|")
t.ok(bad == "0" and int(n) >= 4 and int(total) >= 200,
     "today's and yesterday's rollups equal a recount of the events (%s types and days, %s events)"
     % (n, total), out)
# Other tests may post product views meanwhile: the API's figure must lie
# between two counts read around it.
PV = ("SELECT COALESCE(sum(sessions), 0) FROM analytics_daily WHERE day = '%s' "
      "AND type = 'product_view'" % today)
_, lo, _ = psql(PV)
j = summary("?from=%s&to=%s" % (today, today)).json()
_, hi, _ = psql(PV)
t.ok(int(lo) <= j["funnel"]["product_view"] <= int(hi) and int(lo) > 0,
     "the API's funnel is the daily rows' (%s session-days with a product view today)" % lo,
     (j["funnel"], lo, hi))

# --- an order paid by the worker, in a currency of its own -------------------------
while True:
    CUR = "Q" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(2))
    _, used, _ = psql("SELECT count(*) FROM products WHERE currency = '%s'" % CUR)
    if used == "0":
        break
# A session counted five days ago, which no event can reach any more:
# the worker's housekeeping deletes it.
OLD = "old-" + RUN
psql("INSERT INTO analytics_session_days (day, type, session_id) "
     "VALUES ((now() AT TIME ZONE 'UTC')::date - 5, '', '%s')" % OLD)
r = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "SUMP-" + RUN, "name": "Summed thing", "price_cents": 1234, "currency": CUR,
    "stock": 10})
PID = r.json()["id"]
before = summary("?currency=%s&from=%s&to=%s" % (CUR, today, today)).json()
r = request("POST", "/api/v1/orders", headers=CUS,
            body={"items": [{"product_id": PID, "quantity": 3}],
                  "payment": {"method": "card", "token": "tok_visa"}})
OID = (r.json() or {}).get("id")
t.ok(r.status == 201, "an order of 3 placed", r)
gw = Gateway()
try:
    psql("UPDATE outbox SET next_attempt_at = now() - interval '1 day' "
         "WHERE aggregate_id = 'order:%s' AND state <> 'dead'" % OID)
    run_worker("--once", "--topics", "payment.charge", env=gw.env())
finally:
    gw.stop()
_, status, _ = psql("SELECT status FROM orders WHERE id = %s" % OID)
# The day it was paid on (UTC midnight may have passed since today was read).
_, PAID, _ = psql("SELECT (at AT TIME ZONE 'UTC')::date FROM order_events "
                  "WHERE order_id = %s AND status = 'paid'" % OID)
_, kept, _ = psql("SELECT count(*) FROM analytics_session_days WHERE session_id = '%s'" % OLD)
t.ok(kept == "0", "the worker deletes the sessions counted before yesterday", kept)
r = summary("?currency=%s&from=%s&to=%s" % (CUR, PAID, PAID))
after = r.json()
mine = [c for c in after["revenue_by_currency"] if c["currency"] == CUR]
t.ok(status == "paid" and mine == [{"currency": CUR, "orders": 1, "revenue_cents": 3702,
                                    "average_order_cents": 3702}],
     "paid by the worker: its currency shows one order of 37.02", (status, mine))
t.ok(after["currency"] == CUR and after["revenue_cents"] == 3702 and
     after["average_order_cents"] == 3702 and after["daily"][0]["revenue_cents"] == 3702,
     "asked for its currency: the revenue is that order's alone, never another currency's",
     {k: after[k] for k in ("currency", "revenue_cents", "average_order_cents")})
t.ok(not [c for c in before["revenue_by_currency"] if c["currency"] == CUR] and
     before["currency"] == CUR and
     before["revenue_cents"] == 0 and before["average_order_cents"] is None,
     "before it, nothing in that currency: 0 and no average", before)
# Other tests sell on the same day: every product of the day, not the
# top ten, must hold this one.
_, out, _ = psql("SELECT analytics_summary('%s', '%s', NULL, 100000, 0)->'top_products'"
                 % (PAID, PAID))
t.ok([p for p in json.loads(out) if p["product_id"] == PID] ==
     [{"product_id": PID, "name": "Summed thing", "currency": CUR, "units": 3,
       "revenue_cents": 3702}],
     "the product's day: 3 units, 37.02, in its currency", out[:300])
# Folded or not yet: the daily rows plus the worker's unfolded ones.
_, out, _ = psql("""
WITH r AS (SELECT day, currency, sum(n) AS n, sum(rev) AS rev
           FROM (SELECT day, currency, orders AS n, revenue_cents AS rev
                 FROM analytics_sales_daily
                 UNION ALL
                 SELECT day, currency, 1, total_cents FROM analytics_paid) x
           GROUP BY 1, 2),
     e AS (SELECT (e.at AT TIME ZONE 'UTC')::date AS day, o.currency, count(*) AS n,
                  sum(o.total_cents) AS rev
           FROM order_events e JOIN orders o ON o.id = e.order_id WHERE e.status = 'paid'
           GROUP BY 1, 2),
     rp AS (SELECT day, product_id, currency, sum(units) AS units,
                   sum(revenue_cents) AS revenue_cents
            FROM (SELECT start_day AS day, product_id, currency, units, revenue_cents
                  FROM analytics_product_blocks WHERE level = 0
                  UNION ALL
                  SELECT p.day, i.product_id, p.currency, i.quantity,
                         i.quantity * i.unit_price_cents
                  FROM analytics_paid p JOIN order_items i ON i.order_id = p.order_id) x
            GROUP BY 1, 2, 3),
     ep AS (SELECT (e.at AT TIME ZONE 'UTC')::date AS day, i.product_id, o.currency,
                   sum(i.quantity) AS units, sum(i.quantity * i.unit_price_cents) AS revenue_cents
            FROM order_events e JOIN orders o ON o.id = e.order_id
            JOIN order_items i ON i.order_id = o.id WHERE e.status = 'paid' GROUP BY 1, 2, 3)
SELECT (SELECT count(*) FROM r FULL JOIN e USING (day, currency)
        WHERE r.n IS DISTINCT FROM e.n OR r.rev IS DISTINCT FROM e.rev),
       (SELECT count(*) FROM rp FULL JOIN ep USING (day, product_id, currency)
        WHERE rp.units IS DISTINCT FROM ep.units
           OR rp.revenue_cents IS DISTINCT FROM ep.revenue_cents),
       (SELECT count(*) FROM e)""")
bad_sales, bad_products, n = out.split("|")
t.ok(bad_sales == "0" and bad_products == "0" and int(n) > 0,
     "every day's sales and product rollups equal a recount of the paid orders (%s days and "
     "currencies), whatever earlier tests did" % n, out)
# Each larger block of a product holds what its days hold, once the
# order above is folded (as the worker's next pass would).
psql(["BEGIN", "SELECT pg_advisory_xact_lock(7259000021)", "SELECT analytics_fold(10000)",
      "COMMIT"])
_, out, _ = psql("""
WITH z AS (SELECT start_day AS day, product_id, currency, units, revenue_cents
           FROM analytics_product_blocks WHERE level = 0),
     up AS (SELECT l AS level, z.day - ((z.day - DATE '1970-01-01') & ((1 << l) - 1)) AS start_day,
                   product_id, currency, sum(units) AS units, sum(revenue_cents) AS rev
            FROM z, generate_series(1, 7) AS l GROUP BY 1, 2, 3, 4),
     b AS (SELECT * FROM analytics_product_blocks WHERE level > 0)
SELECT count(*) FILTER (WHERE up.units IS DISTINCT FROM b.units
                          OR up.rev IS DISTINCT FROM b.revenue_cents), count(*)
FROM up FULL JOIN b USING (level, start_day, product_id, currency)""")
bad, n = out.split("|")
t.ok(bad == "0" and int(n) > 0,
     "each product's blocks of 2 to 128 days hold the sum of their days (%s blocks)" % n, out)

# --- CSV, by name or by Accept ------------------------------------------------------
PAID_D = datetime.date.fromisoformat(PAID)
Q = "?currency=%s&from=%s&to=%s" % (CUR, PAID_D - datetime.timedelta(days=2), PAID_D)
r = request("GET", P + ".csv" + Q, headers=ADM)
rows = list(csv.reader(io.StringIO(r.body.decode().replace("\r\n", "\n")))) if r.status == 200 else []
# (Other tests may post events and pay orders on that day meanwhile: its
# counts may only have grown.)
last = rows[3] if len(rows) == 4 and len(rows[3]) == 6 else [""] * 6
t.ok(r.status == 200 and (r.header("Content-Type") or "").startswith("text/csv") and
     last[0] == str(PAID_D) and last[4:] == [CUR, "3702"] and
     all(x.isdigit() and int(x) >= after["daily"][0][k]
         for x, k in zip(last[1:4], ["visits", "events", "orders"])),
     "summary.csv: a header and a line per day, the paid day's with the order", (r.status, rows))
t.ok(r.body.count(b"\r\n") == 4 and r.body.count(b"\n") == 4 and r.body.endswith(b"\r\n"),
     "each line ended with CRLF (RFC 4180)", r.body[-60:])
t.ok('filename="agora-summary-%s-%s.csv"' % (PAID_D - datetime.timedelta(days=2), PAID_D)
     in (r.header("Content-Disposition") or ""), "as an attachment named by its range", r.headers)
for accept, kind in [("text/csv", "csv"), ("application/json", "json"), (None, "json"),
                     ("*/*", "json"), ("text/csv;q=0.5, application/json", "json"),
                     ("application/json;q=0.2, text/csv", "csv"), ("text/*", "csv"),
                     ("text/csv;q=0", "json"), ("image/png", "json"),
                     ("text/csv; charset=utf-8 ; q=0.9, */*;q=0.8", "csv")]:
    r = summary(Q, headers={"Accept": accept} if accept else {})
    ct = r.header("Content-Type") or ""
    t.ok(r.status == 200 and ct.startswith("text/csv" if kind == "csv" else "application/json"),
         "Accept: %s gives %s" % (accept, kind), (r.status, ct))
r = request("HEAD", P + ".csv" + Q, headers=ADM)
t.ok(r.status == 200 and r.body == b"", "HEAD summary.csv: the headers alone", r)
t.done()
