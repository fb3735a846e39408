"""agoractl seed --products N: the demo catalog the README offers, made in
a database of its own (migrated by agoractl migrate), so that the shared
test database keeps only what the other tests made.

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
                ["seed", "--products", "10000001"], ["seed", "--items", "5"]):
        rc, out, err = ctl(*bad)
        t.ok(rc == 2 and "usage" in err and out == "",
             "agoractl %s: usage on stderr, exit 2" % " ".join(bad), (rc, err[-300:]))
    t.ok(sql(MINE, "SELECT count(*) FROM products") == "0", "(a bad seed stored nothing)")

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
finally:
    sql(SUPER, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
        % DB)
    sql(SUPER, "DROP DATABASE IF EXISTS %s" % DB)
t.done()
