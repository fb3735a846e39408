"""agoractl seed: the demo catalog the README offers, and orders and
analytics events of the last days, made in a database of its own (migrated
by agoractl migrate), so that the shared test database keeps only what the
other tests made.

Runs under one web server setup only: agoractl does not use the web server."""
import os
import subprocess
import sys
import uuid

from agoratest import MODE, SERVER, Tap, need_stack, sbin

need_stack()
if SERVER != "apache" or MODE != "managed":
    print("1..0 # SKIP runs once, under Apache managed: agoractl does not use the web server")
    sys.exit(0)
t = Tap()
DB = "agora_seed_" + uuid.uuid4().hex[:10]
ADMIN = os.environ["AGORA_TEST_ADMIN_URL"]
# The cluster's superuser makes and drops the database; agoractl works in
# it as the owner, as on an install.
SUPER = ADMIN.replace("user=agora", "user=postgres").replace("dbname=agora", "dbname=postgres")
MINE = ADMIN.replace("dbname=agora", "dbname=" + DB)


def sql(url, q):
    p = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", q],
                       capture_output=True, text=True, check=True)
    return p.stdout.strip()


def ctl(*args):
    env = dict(os.environ, AGORA_DATABASE_ADMIN_URL=MINE)
    p = subprocess.run([sbin("agoractl")] + list(args), capture_output=True, text=True,
                       env=env, timeout=240)
    return p.returncode, p.stdout, p.stderr


sql(SUPER, "CREATE DATABASE %s OWNER agora" % DB)
try:
    rc, out, err = ctl("migrate")
    t.ok(rc == 0, "agoractl migrate makes a new database", err[-500:])

    for bad in (["seed"], ["seed", "--products", "0"], ["seed", "--products", "x"],
                ["seed", "--products", "10000001"], ["seed", "--items", "5"],
                ["seed", "--orders", "0"], ["seed", "--orders", "10000001"],
                ["seed", "--events", "x"], ["seed", "--events", "100000001"],
                ["seed", "--products", "5", "--days", "0"],
                ["seed", "--products", "5", "--days", "3651"],
                ["seed", "--days", "5"], ["seed", "--products", "5", "--products", "5"],
                ["seed", "--orders", "5", "--events", "5", "--orders", "5"],
                ["seed", "--events", "5", "--days", "2", "--days", "3"],
                ["seed", "--products"], ["seed", "--events", "5", "--days"]):
        rc, out, err = ctl(*bad)
        t.ok(rc == 2 and "usage" in err and out == "",
             "agoractl %s: usage on stderr, exit 2" % " ".join(bad), (rc, err[-300:]))
    counts = sql(MINE, """SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM users),
                                 (SELECT count(*) FROM analytics_events)""")
    t.ok(counts == "0|0|0", "(a bad seed stored nothing)", counts)

    # Orders need products to sell; the events asked for with them are not
    # made either: one transaction.
    rc, out, err = ctl("seed", "--orders", "10", "--events", "100")
    counts = sql(MINE, """
        SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders),
               (SELECT count(*) FROM order_events), (SELECT count(*) FROM analytics_events),
               (SELECT tgenabled FROM pg_trigger WHERE tgname = 'order_events_follow')""")
    t.ok(rc == 1 and out == "" and
         "agoractl: seed --orders needs products: seed --products first\n" in err and
         counts == "0|0|0|0|O",
         "seed --orders without products: exit 1, said why, made nothing, "
         "order_events_follow still on", (rc, out, err[-300:], counts))

    rc, out, err = ctl("seed", "--products", "2500")
    t.ok(rc == 0 and out.startswith("2500 products in ") and "products: 2500/2500" in err,
         "seed --products 2500: done, with progress on stderr", (rc, out, err[-300:]))
    counts = sql(MINE, """
        SELECT (SELECT count(*) FROM products WHERE sku LIKE 'SEED-%'),
               (SELECT count(*) FROM inventory i JOIN products p ON p.id = i.product_id
                 WHERE p.sku LIKE 'SEED-%' AND i.on_hand BETWEEN 0 AND 200),
               (SELECT count(*) FROM categories WHERE parent_id IS NULL),
               (SELECT count(*) FROM categories WHERE parent_id IS NOT NULL),
               (SELECT count(*) FROM products p JOIN categories c ON c.id = p.category_id
                 WHERE c.parent_id IS NOT NULL),
               (SELECT count(*) FROM products WHERE price_cents BETWEEN 99 AND 250098
                 AND currency = 'USD' AND attributes ?& array['color', 'size', 'material', 'brand']
                 AND doc IS NOT NULL)""")
    t.ok(counts == "2500|2500|8|24|2500|2500",
         "2500 products with stock, in the 24 leaves of 8 departments, priced, "
         "with attributes and a search document", counts)
    names = sql(MINE, "SELECT count(DISTINCT name) FROM products")
    t.ok(int(names) > 2000, "the names vary (%s distinct of 2500)" % names)

    rc, out, err = ctl("seed", "--products", "1000")
    rc2, _, _ = ctl("seed", "--products", "1")
    counts = sql(MINE, """
        SELECT (SELECT count(*) FROM products), (SELECT count(DISTINCT sku) FROM products),
               (SELECT count(*) FROM categories), (SELECT count(*) FROM inventory)""")
    t.ok(rc == 0 and rc2 == 0 and counts == "3501|3501|32|3501",
         "two more seeds, one right after the other, add theirs under new SKUs, "
         "in the same categories", (rc, rc2, counts))
    hits = sql(MINE, "SELECT count(*) FROM products WHERE search @@ plainto_tsquery('english', "
                     "(SELECT split_part(name, ' ', 1) FROM products LIMIT 1))")
    t.ok(int(hits) > 0, "seeded products are found by a word of their name (%s)" % hits)

    # Statement triggers of the scratch database's own count what each
    # statement wrote, as the analytics rollups do: seeded orders and events
    # must reach such triggers, a statement at a time.
    sql(MINE, """
        CREATE TABLE seed_seen (tab text, n bigint);
        CREATE FUNCTION seed_seen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO seed_seen SELECT TG_TABLE_NAME, count(*) FROM new_rows;
            RETURN NULL;
        END $$;
        CREATE TRIGGER seed_seen AFTER INSERT ON order_events
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION seed_seen();
        CREATE TRIGGER seed_seen AFTER INSERT ON analytics_events
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION seed_seen();""")
    before = sql(MINE, "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM outbox)")
    # The seed's "now" is its transaction's: after this one, before the checks'.
    start = sql(MINE, "SELECT now()")
    rc, out, err = ctl("seed", "--products", "50", "--orders", "2000", "--events", "20000",
                       "--days", "10")
    lines = out.splitlines()
    t.ok(rc == 0 and len(lines) == 3 and lines[0].startswith("50 products in ") and
         lines[1].startswith("2000 orders in ") and lines[2].startswith("20000 events in ") and
         "orders: 2000/2000" in err and "events: 20000/20000" in err,
         "seed --products 50 --orders 2000 --events 20000 --days 10: done, a line "
         "of each, with progress on stderr", (rc, out, err[-300:]))
    counts = sql(MINE, """
        SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders),
               (SELECT count(*) FROM analytics_events), (SELECT count(*) FROM outbox),
               (SELECT count(*) FROM users WHERE role = 'customer'
                  AND email ~ '^seed-[0-9]+-[0-9]+@example[.]invalid$'
                  AND password_hash !~ '^[$]argon2id[$]v=[0-9]+[$]m=[0-9]+,t=[0-9]+,p=[0-9]+[$]'
                  AND disabled_at IS NULL),
               (SELECT count(*) FROM users),
               (SELECT count(DISTINCT user_id) <= 100 FROM orders),
               (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT FROM users u
                  WHERE u.id = o.user_id AND u.email LIKE 'seed-%'))""")
    b = before.split("|")
    t.ok(counts == "%d|2000|20000|%s|100|100|t|0" % (int(b[0]) + 50, b[1]),
         "exactly 50 products, 2000 orders of 100 seed customers who cannot log in "
         "(no real password hash), 20000 events; no outbox row queued",
         (before, counts))
    t.ok(sql(MINE, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'order_events_follow'")
         == "O", "order_events_follow is on again after the seed")
    folded = sql(MINE, """
        SELECT (SELECT count(*) FROM analytics_paid),
               (SELECT count(*) FROM order_events WHERE status = 'paid'),
               (SELECT sum(orders) FROM analytics_sales_daily),
               (SELECT sum(revenue_cents) FROM analytics_sales_daily)
                 = (SELECT sum(o.total_cents) FROM orders o JOIN order_events e
                      ON e.order_id = o.id AND e.status = 'paid')""")
    f = folded.split("|")
    t.ok(f[0] == "0" and int(f[1]) > 0 and f[1] == f[2] and f[3] == "t" and
         "paid orders folded: %s" % f[1] in err,
         "the paid orders are folded into the summary's daily rows (%s orders)" % f[1],
         (folded, err[-200:]))

    bad = sql(MINE, """
        SELECT count(*) FROM orders o
         WHERE o.subtotal_cents <> o.total_cents
            OR o.subtotal_cents <> (SELECT sum(i.unit_price_cents * i.quantity)
                                      FROM order_items i WHERE i.order_id = o.id)
            OR (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) NOT BETWEEN 1 AND 3
            OR EXISTS (SELECT FROM order_items i JOIN products p ON p.id = i.product_id
                        WHERE i.order_id = o.id AND (i.unit_price_cents <> p.price_cents
                          OR i.sku <> p.sku OR i.name <> p.name OR p.currency <> o.currency
                          OR i.quantity NOT BETWEEN 1 AND 3))
            OR o.expires_at <> o.created_at + interval '1 hour'""")
    t.ok(bad == "0", "every order: 1 to 3 items of its products' price, name, SKU and "
                     "currency, their sum its subtotal and total, expiring an hour on", bad)

    bad = sql(MINE, """
        WITH e AS (SELECT e.*, lag(status) OVER w AS prev, lag(at) OVER w AS prev_at
                     FROM order_events e WINDOW w AS (PARTITION BY order_id ORDER BY seq))
        SELECT (SELECT count(*) FROM e WHERE seq = 1 AND status <> 'pending'),
               (SELECT count(*) FROM e WHERE seq > 1 AND (at <= prev_at OR NOT EXISTS (
                    SELECT FROM order_transitions t
                     WHERE t.from_status = e.prev AND t.to_status = e.status))),
               (SELECT count(*) FROM orders o WHERE (SELECT count(*) || ',' || min(seq) || ','
                    || max(seq) FROM order_events v WHERE v.order_id = o.id)
                    <> o.last_seq || ',1,' || o.last_seq),
               (SELECT count(*) FROM orders o JOIN order_events v
                    ON v.order_id = o.id AND v.seq = o.last_seq
                 WHERE v.status <> o.status OR v.at <> o.updated_at
                    OR o.payment_status <> CASE WHEN o.status IN ('paid', 'completed',
                       'shipped', 'delivered') THEN 'paid' WHEN o.status = 'payment_failed'
                       THEN 'failed' ELSE 'unpaid' END)""")
    t.ok(bad == "0|0|0|0",
         "every order's events: 'pending' first, then along order_transitions, later "
         "each, seq 1..last_seq; its status, payment status and updated_at its last "
         "event's", bad)

    mix = sql(MINE, """
        SELECT count(*) FILTER (WHERE status = 'pending'),
               round(100.0 * count(*) FILTER (WHERE payment_status = 'paid') / count(*)),
               round(100.0 * count(*) FILTER (WHERE status = 'payment_failed') / count(*)),
               round(100.0 * count(*) FILTER (WHERE status = 'cancelled') / count(*)),
               count(DISTINCT status)
          FROM orders""").split("|")
    t.ok(mix[0] == "0" and 64 <= int(mix[1]) <= 76 and 6 <= int(mix[2]) <= 14 and
         15 <= int(mix[3]) <= 25 and mix[4] == "6",
         "no order is left pending (holding stock); about 70% paid, 10% failed, "
         "20% cancelled", mix)

    bad = sql(MINE, """
        WITH t AS (SELECT '%s'::timestamptz - interval '10 days' AS since)
        SELECT (SELECT count(*) FROM orders, t WHERE created_at < since
                   OR updated_at > now() OR created_at > updated_at),
               (SELECT count(*) FROM order_events, t WHERE at < since OR at > now()),
               (SELECT count(*) FROM analytics_events, t
                 WHERE occurred_at < since OR occurred_at > now()),
               (SELECT count(*) FROM orders, t WHERE created_at < since + interval '5 days')
                 BETWEEN 700 AND 1300""" % start)
    t.ok(bad == "0|0|0|t", "orders, their events and the analytics events are of the "
                           "last 10 days, spread over them", bad)

    bad = sql(MINE, """
        SELECT (SELECT count(*) FROM analytics_events WHERE type NOT IN ('page_view',
                   'product_view', 'add_to_cart', 'checkout', 'search')
                   OR properties <> '{}'),
               (SELECT count(*) FROM analytics_events a
                 WHERE (type IN ('product_view', 'add_to_cart')) <> (product_id IS NOT NULL)
                    OR (product_id IS NOT NULL AND NOT EXISTS (SELECT FROM products p
                         WHERE p.id::text = a.product_id))),
               (SELECT string_agg(type || '=' || round(100.0 * n / 20000), ',' ORDER BY type)
                  FROM (SELECT type, count(*) AS n FROM analytics_events GROUP BY type) s)""")
    f = bad.split("|")
    share = dict(kv.split("=") for kv in f[2].split(","))
    want = {"page_view": 40, "product_view": 35, "add_to_cart": 12, "checkout": 6, "search": 7}
    t.ok(f[0] == "0" and f[1] == "0" and set(share) == set(want) and
         all(abs(int(share[k]) - v) <= 2 for k, v in want.items()),
         "events: the five types in a shop's mix, product views and carts of existing "
         "products, the others of none", bad)

    bad = sql(MINE, """
        WITH s AS (SELECT session_id, min(occurred_at) AS a, max(occurred_at) AS b
                     FROM analytics_events GROUP BY session_id),
        r AS (SELECT session_id, occurred_at, array_position(ARRAY['page_view', 'search',
                'product_view', 'add_to_cart', 'checkout'], type) AS stage
                FROM analytics_events)
        SELECT (SELECT count(*) BETWEEN 2400 AND 2600 FROM s),
               (SELECT count(*) FROM s WHERE session_id !~ '^s-[0-9]+-[0-9]+$'
                   OR date_trunc('day', a, 'UTC') <> date_trunc('day', b, 'UTC')
                   OR b - a > interval '30 minutes'),
               (SELECT count(*) FROM r x JOIN r y USING (session_id)
                 WHERE x.stage < y.stage AND x.occurred_at > y.occurred_at)""")
    t.ok(bad == "t|0|0", "about 20000/8 sessions, each in half an hour of one UTC day, its "
                         "events in the funnel's order", bad)

    seen = sql(MINE, """SELECT tab, count(*), sum(n), max(n) FROM seed_seen
                         GROUP BY tab ORDER BY tab""")
    total = sql(MINE, "SELECT count(*) FROM order_events")
    t.ok(seen == "analytics_events|1|20000|20000\norder_events|1|%s|%s" % (total, total),
         "the other triggers of order_events and analytics_events saw every row", seen)

    start = sql(MINE, "SELECT now()")
    rc, out, err = ctl("seed", "--orders", "300", "--days", "1")
    counts = sql(MINE, """
        SELECT (SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id
                 WHERE u.created_at > '%s'
                   AND o.created_at >= '%s'::timestamptz - interval '1 day'),
               (SELECT count(*) FROM users), (SELECT count(*) FROM outbox) = %s"""
                 % (start, start, b[1]))
    t.ok(rc == 0 and out.startswith("300 orders in ") and counts == "300|200|t",
         "seed --orders 300 --days 1: of the products there are, by 100 customers "
         "of its own, in the last day", (rc, out, err[-300:], counts))
finally:
    sql(SUPER, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        % DB)
    sql(SUPER, "DROP DATABASE IF EXISTS %s" % DB)
t.done()
