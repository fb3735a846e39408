"""The catalog (fcgi/openapi.json: products, categories) against the real stack: products,
categories, search with filters, sorts and cursors, inventory with
reservations, the cache that must never serve a stale write, and bad
input of every kind."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

from agoratest import (FcgiPool, Tap, across_processes, cgi, in_minute, log_mark, mc, mc_get,
                       live, need_stack, psql, request, reset_ok, served_by, wait_for)

need_stack()
t = Tap()
# A word no other product has, letters only, so full-text search finds it.
RUN = "".join("abcdefghijklmnop"[int(c, 16)] for c in uuid.uuid4().hex[:10])
PW = "catalog admin password"


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


admin_email = "cat.%s@example.com" % RUN
ctl = os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agoractl")
subprocess.run([ctl, "user", "add", "--email", admin_email, "--name", "Cat", "--role", "admin",
                "--password-stdin"], input=PW + "\n", capture_output=True, text=True, check=True)
ADM = bearer(request("POST", "/api/v1/auth/login",
                     body={"email": admin_email, "password": PW}).json()["access_token"])
request("POST", "/api/v1/auth/register", body={"email": "shopper.%s@example.com" % RUN,
                                               "password": PW, "name": "Shopper"})
CUS = bearer(request("POST", "/api/v1/auth/login", body={"email": "shopper.%s@example.com" % RUN,
                                                         "password": PW}).json()["access_token"])

# --- categories -------------------------------------------------------------
r = request("POST", "/api/v1/categories", body={"name": "Outdoor", "slug": "outdoor-" + RUN},
            headers=ADM)
top = r.json() or {}
t.ok(r.status == 201 and top.get("slug") == "outdoor-" + RUN and top.get("parent_id") is None
     and r.header("Location") == "/api/v1/categories/" + str(top.get("id")),
     "POST /categories: 201 with Location", r)
r = request("POST", "/api/v1/categories", body={"name": "Tents", "slug": "tents-" + RUN,
                                                "parent_id": top.get("id")}, headers=ADM)
leaf = r.json() or {}
t.ok(r.status == 201 and leaf.get("parent_id") == top.get("id"), "a child category", r)
r = request("POST", "/api/v1/categories", body={"name": "Again", "slug": "tents-" + RUN},
            headers=ADM)
t.ok(r.is_problem(409, "slug_taken"), "a taken slug: 409", r)
for slug in ["Upper", "a--b", "-a", "a b", "ä"]:
    r = request("POST", "/api/v1/categories", body={"name": "x", "slug": slug}, headers=ADM)
    t.ok(r.is_problem(422), "a bad slug %r: 422" % slug, r)
r = request("POST", "/api/v1/categories", body={"name": "x", "slug": "orphan-" + RUN,
                                                "parent_id": "999999999"}, headers=ADM)
t.ok(r.is_problem(422), "an unknown parent: 422", r)
r = request("POST", "/api/v1/categories", body={"name": "x", "slug": "c-" + RUN}, headers=CUS)
t.ok(r.is_problem(403), "a customer cannot add categories: 403", r)
r = request("GET", "/api/v1/categories")
ids = [c["id"] for c in (r.json() or {}).get("data", [])]
t.ok(r.status == 200 and top.get("id") in ids and leaf.get("id") in ids,
     "GET /categories lists the tree", r)
r = request("GET", "/api/v1/categories/" + str(leaf.get("id")))
t.ok(r.status == 200 and (r.json() or {}).get("slug") == "tents-" + RUN, "GET /categories/{id}", r)

# --- products: create and read ---------------------------------------------
def create(name, price, color="red", stock=5, category=None, sku=None, desc="A fine thing."):
    body = {"sku": sku or "T-%s-%s" % (RUN, uuid.uuid4().hex[:8]), "name": name,
            "description": desc, "price_cents": price,
            "attributes": {"color": color, "size": "M"}, "stock": stock}
    if category:
        body["category_id"] = category
    return request("POST", "/api/v1/products", body=body, headers=ADM)


r = create("%s Mountain Tent" % RUN.capitalize(), 19999, category=leaf.get("id"),
           sku="TENT-" + RUN, desc="A %s tent for Grüße from Žluťoučký kůň." % RUN)
tent = r.json() or {}
t.ok(r.status == 201 and tent.get("sku") == "TENT-" + RUN and tent.get("price_cents") == 19999
     and tent.get("currency") == "USD" and tent.get("stock_available") == 5
     and tent.get("attributes") == {"color": "red", "size": "M"}
     and tent.get("category_id") == leaf.get("id") and isinstance(tent.get("id"), str)
     and r.header("Location") == "/api/v1/products/" + str(tent.get("id")),
     "POST /products: 201 with the product and Location", r)
TID = str(tent.get("id"))
r = request("GET", "/api/v1/products/" + TID)
t.ok(r.status == 200
     and (r.json() or {}).get("description") == "A %s tent for Grüße from Žluťoučký kůň." % RUN,
     "GET /products/{id}: UTF-8 round trip", r)
t.ok(r.header("Cache-Control") == "public, max-age=30" and r.header("ETag"),
     "anonymous reads: public Cache-Control and an ETag", r)
t.ok("Authorization" in [v.strip() for v in (r.header("Vary") or "").split(",")],
     "and Vary: Authorization, so a shared cache keeps them apart from signed-in ones", r)
r2 = request("GET", "/api/v1/products/" + TID, headers={"If-None-Match": r.header("ETag") or "x"})
t.ok(r2.status == 304 and r2.body == b"", "If-None-Match: 304", r2)
r = request("GET", "/api/v1/products/" + TID, headers=CUS)
t.ok(r.status == 200 and "private" in (r.header("Cache-Control") or "")
     and "Authorization" in (r.header("Vary") or ""),
     "signed-in reads are private, with Vary: Authorization", r)

r = create("Dup", 100, sku="TENT-" + RUN)
t.ok(r.is_problem(409, "sku_taken"), "a taken sku: 409 sku_taken", r)
bad_bodies = [
    ({"sku": "b1-" + RUN, "name": "x", "price_cents": -1}, 422, "a negative price"),
    ({"sku": "b2-" + RUN, "name": "x", "price_cents": 1.5}, 400, "a fractional price"),
    ({"sku": "b3-" + RUN, "name": "x", "price_cents": "100"}, 400, "a price as a string"),
    ({"sku": "b4-" + RUN, "name": "x", "price_cents": 10**13}, 422, "a price over the cap"),
    ({"sku": "b5-" + RUN, "name": "x", "price_cents": 1, "category_id": "999999999"}, 422,
     "an unknown category"),
    ({"sku": "b6-" + RUN, "name": "x", "price_cents": 1, "category_id": "abc"}, 422,
     "a malformed category id"),
    ({"sku": "b7-" + RUN, "name": "x", "price_cents": 1, "currency": "usd"}, 422,
     "a lower-case currency"),
    ({"sku": "b8-" + RUN, "name": "", "price_cents": 1}, 422, "an empty name"),
    ({"sku": "b9-" + RUN, "price_cents": 1}, 422, "no name"),
    ({"sku": "b10-" + RUN, "name": "x", "price_cents": 1, "attributes": [1]}, 400,
     "attributes not an object"),
    ({"sku": "b11-" + RUN, "name": "x", "price_cents": 1, "stock": -5}, 422, "negative stock"),
]
for body, status, what in bad_bodies:
    r = request("POST", "/api/v1/products", body=body, headers=ADM)
    t.ok(r.is_problem(status), "%s: %d" % (what, status), r)
n = psql("SELECT count(*) FROM products WHERE sku LIKE 'b%%-%s'" % RUN)[1]
t.ok(n == "0", "no rejected product was written", n)
r = request("POST", "/api/v1/products", body={"sku": "c-" + RUN, "name": "x", "price_cents": 1},
            headers=CUS)
t.ok(r.is_problem(403), "a customer cannot create products: 403", r)
r = request("POST", "/api/v1/products", body={"sku": "c-" + RUN, "name": "x", "price_cents": 1})
t.ok(r.is_problem(401), "anonymous writes: 401", r)
for bad in ["abc", "0", "-3", "99999999999999999999", "999999999"]:
    r = request("GET", "/api/v1/products/" + bad)
    t.ok(r.is_problem(404), "GET /products/%s: 404" % bad, r)

# --- writes are visible at once, whatever process cached the old one -------
def read_tent(rid):
    return request("GET", "/api/v1/products/" + TID, headers={"X-Request-Id": rid})


old, READERS = across_processes(read_tent, None, rounds=3)
t.ok(len(READERS) >= 2 and {(x.json() or {}).get("price_cents") for x in old} == {19999},
     "concurrent reads of the product were served by %d processes" % len(READERS), READERS)
r = request("PATCH", "/api/v1/products/" + TID, body={"name": "%s Storm Tent" % RUN.capitalize(),
                                                      "price_cents": 24999}, headers=ADM)
t.ok(r.status == 200 and (r.json() or {}).get("price_cents") == 24999, "PATCH /products/{id}", r)
got, pids = across_processes(read_tent, READERS)
seen = set((x.json() or {}).get("price_cents") for x in got)
# mod_fcgid may stop sending to a live process (one it means to retire),
# so not every reader is sure to answer again: at least one must, and no
# answer from any process may be the old price.
t.ok(seen == {24999} and pids & READERS,
     "every later read sees the write, %d of them from processes that had read it"
     % len(pids & READERS), (seen, live(READERS) - pids))
r = request("PATCH", "/api/v1/products/" + TID, body={"price_cents": -5}, headers=ADM)
t.ok(r.is_problem(422), "PATCH with a negative price: 422", r)
r = request("PATCH", "/api/v1/products/999999999", body={"name": "x"}, headers=ADM)
t.ok(r.is_problem(404), "PATCH an unknown product: 404", r)

# --- search, filters, sorts ------------------------------------------------
made = [create("%s Lantern %d" % (RUN.capitalize(), i), 1000 + 100 * i,
               color=["blue", "green"][i % 2], stock=i % 3, category=top.get("id")).json()
        for i in range(6)]
q = urllib.parse.quote


def search(qs):
    return request("GET", "/api/v1/products?" + qs)


r = search("q=" + RUN)
names = [p["name"] for p in (r.json() or {}).get("data", [])]
t.ok(r.status == 200 and len(names) == 7, "full-text search finds all 7 of this run", names)
t.ok(names and "Tent" in names[0], "ranked by relevance: the word in the name and the description first",
     names)
r2 = search("q=" + RUN)
r3 = request("GET", "/api/v1/products?q=" + RUN, headers={"If-None-Match": r2.header("ETag") or "x"})
t.ok(r2.header("ETag") and "Authorization" in (r2.header("Vary") or "")
     and r3.status == 304 and r3.body == b"" and r3.header("ETag") == r2.header("ETag"),
     "a list carries an ETag and Vary: Authorization; If-None-Match with it: 304", (r2, r3))
r = search("q=" + RUN[:5])
t.ok(len((r.json() or {}).get("data", [])) == 7, "a partial word finds them too (prefix)", r)
r = search("q=%s+lantern&sort=price" % RUN)
prices = [p["price_cents"] for p in (r.json() or {}).get("data", [])]
t.ok(prices == sorted(prices) and len(prices) == 6, "sort=price ascends", prices)
r = search("q=%s&sort=-price" % RUN)
prices = [p["price_cents"] for p in (r.json() or {}).get("data", [])]
t.ok(prices == sorted(prices, reverse=True) and prices[0] == 24999, "sort=-price descends", prices)
r2 = search("q=%s&sort=-price&sort=price" % RUN)
t.ok([p["price_cents"] for p in (r2.json() or {}).get("data", [])] == prices,
     "a repeated parameter: the first counts", r2)
r2 = search("q=%s&sort=-price&sort=cheapest" % RUN)
t.ok(r2.is_problem(400, "bad_parameter"), "and a bad repeat is still 400", r2)
r = search("q=%s&min_price=1100&max_price=1300" % RUN)
prices = sorted(p["price_cents"] for p in (r.json() or {}).get("data", []))
t.ok(prices == [1100, 1200, 1300], "price range", prices)
r = search("q=%s&attr.color=blue" % RUN)
colors = {p["attributes"]["color"] for p in (r.json() or {}).get("data", [])}
t.ok(r.status == 200 and colors == {"blue"} and len(r.json()["data"]) == 3, "attr.color=blue", r)
r = search("q=%s&attr.color=blue&attr.size=M" % RUN)
t.ok(len((r.json() or {}).get("data", [])) == 3, "two attributes combine", r)
r = search("q=%s&attr.color=%s" % (RUN, q("blue' OR '1'='1")))
t.ok(r.status == 200 and r.json()["data"] == [], "an injection-shaped attribute is plain data", r)
r = search("q=%s&in_stock=true" % RUN)
stock = [p["stock_available"] for p in (r.json() or {}).get("data", [])]
t.ok(stock and min(stock) > 0 and len(stock) == 5, "in_stock=true leaves out what is sold out", stock)
r = search("q=%s&category=%s" % (RUN, top.get("id")))
t.ok(len((r.json() or {}).get("data", [])) == 7,
     "a category includes its descendants (the tent sits in a child)", r)
r = search("q=%s&category=%s" % (RUN, leaf.get("id")))
t.ok(len((r.json() or {}).get("data", [])) == 1, "the child alone", r)
r = search("category=999999999")
t.ok(r.is_problem(422, "unknown_category"), "an unknown category: 422", r)
n_products = psql("SELECT count(*) FROM products")[1]
for qs, what in [("q=" + q("'; DROP TABLE products; --"), "SQL-shaped"),
                 ("q=" + q('" OR 1=1 | !! & <->'), "tsquery operators"),
                 ("q=" + q("\u00e9t\u00e9 \u2603"), "non-ASCII")]:
    r = search(qs)
    t.ok(r.status == 200 and isinstance((r.json() or {}).get("data"), list),
         "a %s query is plain data: 200" % what, r)
t.ok(psql("SELECT count(*) FROM products")[1] == n_products and int(n_products) >= 7
     and len(search("q=" + RUN).json()["data"]) == 7,
     "and the products are still there, every one", n_products)
r = search("q=" + "a" * 201)
t.ok(r.is_problem(400, "bad_parameter"), "a 201-character query: 400", r)
r = search("q=" + "a" * 10000)
t.ok(r.status in (400, 414, 431), "a 10,000-character query: refused with 4xx", r)
for qs in ["limit=0", "limit=101", "limit=x", "cursor=forged", "sort=cheapest", "in_stock=yes",
           "min_price=-1", "max_price=1.5", "category=abc", "colour=red", "attr.=x"]:
    r = search(qs)
    t.ok(r.is_problem(400), "GET /products?%s: 400" % qs, r)

# --- keyset pages stay stable while products are added ----------------------
def walk(qs, limit=2):
    """Page through qs, adding a product after the first page.  Returns the
    ids seen, the last page, and the whole list in one page before and
    after the walk."""
    def whole():
        return [p["id"] for p in search(qs + "&limit=100").json()["data"]]
    before, seen, cursor, pages = whole(), [], None, 0
    while pages < 20:
        r = search(qs + "&limit=%d" % limit + ("&cursor=" + cursor if cursor else ""))
        if r.status != 200:
            # Not a page: say what came instead (a 503 under load is not
            # a gap in the paging).
            return seen, {"status": r.status, "answer": r.json()}, before, whole()
        j = r.json() or {}
        seen += [p["id"] for p in j.get("data", [])]
        pages += 1
        if pages == 1:
            create("%s Lantern late" % RUN.capitalize(), 1, stock=1, category=top.get("id"))
        if not j.get("has_more"):
            return seen, j, before, whole()
        cursor = j.get("next_cursor")
    return seen, None, before, whole()


for sort in ["newest", "price", "-price", "rating", "relevance"]:
    ids, last, before, after = walk("q=%s+lantern&sort=%s" % (RUN, sort))
    # No repeat; no gap: every product there before the walk is seen; and
    # the order across pages is the order of one whole page (the product
    # added meanwhile shows where it sorts after the cursor, or not at all).
    t.ok(last is not None and "status" not in last and len(ids) == len(set(ids))
         and len(before) >= 6
         and set(before) <= set(ids) and len(after) == len(before) + 1
         and ids == [x for x in after if x in set(ids)],
         "sort=%s: pages in order, without repeats or gaps, while products are added" % sort,
         (ids, before, after, last))

# --- every search the same as the plain statement --------------------------
# The search statements are tuned (fcgi/products.c): the category as an
# array, the stock looked up after the ranking.  Each search of a fixed
# list, paged 3 at a time, must give what one plain statement gives: rank
# or key every match, filter, sort by key and id.  The kettles tie (one
# name, one rank; some prices twice) so that the id decides.
for i in range(8):
    create("%s Kettle" % RUN.capitalize(), 2000 + 100 * (i % 3), color=["blue", "green"][i % 2],
           stock=3 * (i % 2), category=[top.get("id"), leaf.get("id")][i // 4],
           desc="A %s kettle." % RUN)
KEYS = {"relevance": ("ts_rank(p.search, catalog_query(%(q)s, %(rest)s, %(prefix)s))::float8",
                      "DESC"),
        "price": ("p.price_cents", ""), "-price": ("p.price_cents", "DESC"),
        "newest": ("p.created_at", "DESC"), "rating": ("p.rating_avg", "DESC")}


def plain(params):
    """The ids the search params (a dict) should give, by the plain statement."""
    lit = {"q": "NULL", "rest": "NULL", "prefix": "NULL"}
    where = ["p.archived_at IS NULL"]
    if "q" in params:
        words = params["q"].split(" ")
        lit = {"q": "'%s'" % params["q"], "prefix": "'%s'" % words[-1].lower(),
               "rest": "'%s'" % " ".join(words[:-1] + [""])}
        where.append("p.search @@ catalog_query(%(q)s, %(rest)s, %(prefix)s)" % lit)
    if "category" in params:
        where.append("p.category_id IN (WITH RECURSIVE sub(id) AS (SELECT %s::bigint UNION ALL "
                     "SELECT c.id FROM categories c JOIN sub ON c.parent_id = sub.id) "
                     "SELECT id FROM sub)" % params["category"])
    if params.get("in_stock") == "true":
        where.append("(SELECT on_hand > reserved FROM inventory WHERE product_id = p.id)")
    for k, v in params.items():
        if k.startswith("attr."):
            where.append("p.attributes ->> '%s' = '%s'" % (k[5:], v))
    if "min_price" in params:
        where.append("p.price_cents >= %s" % params["min_price"])
    key, way = KEYS[params.get("sort", "relevance" if "q" in params else "newest")]
    sql = "SELECT p.id FROM products p WHERE %s ORDER BY %s %s, p.id %s" % (
        " AND ".join(where), key % lit, way, way)
    return psql(sql)[1].split()


def paged(params):
    """The ids the API gives for params, 3 a page, cursor after cursor."""
    seen, cursor = [], None
    for _ in range(30):
        qs = urllib.parse.urlencode(dict(params, limit=3, **({"cursor": cursor} if cursor else {})))
        j = search(qs).json() or {}
        seen += [p["id"] for p in j.get("data", [])]
        cursor = j.get("next_cursor")
        if not j.get("has_more"):
            break
    return seen


K = RUN.capitalize() + " kettle"
for params in [{"q": RUN}, {"q": K}, {"q": K, "in_stock": "true"}, {"q": RUN[:6]},
               {"q": RUN, "in_stock": "true"}, {"q": K, "category": leaf.get("id")},
               {"q": RUN, "category": top.get("id"), "in_stock": "true"},
               {"q": RUN, "attr.color": "blue"}, {"q": RUN, "min_price": "2100"},
               {"q": K, "sort": "price"}, {"q": K, "sort": "-price", "in_stock": "true"},
               {"q": RUN, "sort": "newest"}, {"q": RUN, "sort": "rating"},
               {"category": top.get("id"), "sort": "price", "in_stock": "true"},
               {"category": leaf.get("id")}]:
    want, got = plain(params), paged(params)
    t.ok(len(want) >= 2 and got == want,
         "search %s: the plain statement's products, in its order" % urllib.parse.urlencode(params),
         (got, want))

r = search("q=%s&sort=price&limit=1" % RUN)
cur = (r.json() or {}).get("next_cursor") or ""
r = search("q=%s&sort=newest&cursor=%s" % (RUN, cur))
t.ok(r.is_problem(400, "bad_cursor"), "a cursor of another sort: 400", r)

# --- archive -----------------------------------------------------------------
victim = made[0].get("id")
r = request("DELETE", "/api/v1/products/" + victim, headers=ADM)
t.ok(r.status == 204, "DELETE archives: 204", r)
r = request("GET", "/api/v1/products/" + victim)
t.ok(r.is_problem(404), "an archived product is gone from the catalog", r)
t.ok(victim not in [p["id"] for p in search("q=" + RUN).json()["data"]], "and from search")
t.ok(psql("SELECT archived_at IS NOT NULL FROM products WHERE id = %s" % victim)[1] == "t",
     "but its row is kept for the orders that hold it")
r = request("DELETE", "/api/v1/products/" + victim, headers=ADM)
t.ok(r.is_problem(404), "archiving twice: 404", r)
for path, body in [("", {"on_hand": 3}), ("/reserve", {"order_id": "a-" + RUN, "quantity": 1}),
                   ("/release", {"order_id": "a-" + RUN})]:
    r = request("PUT", "/api/v1/inventory/%s%s" % (victim, path), body=body, headers=ADM)
    t.ok(r.is_problem(404, "not_found"), "inventory%s of an archived product: 404" % path, r)
t.ok(psql("SELECT count(*) FROM reservations WHERE product_id = %s" % victim)[1] == "0",
     "and nothing was reserved for it")
for alias in ["0" + TID, "+" + TID, TID + " "]:
    r = request("GET", "/api/v1/products/" + urllib.parse.quote(alias))
    t.ok(r.is_problem(404), "another spelling of an id (%r) is not the product" % alias, r)
r = search("q=" + q("%s lantern -late" % RUN))
t.ok(r.status == 200 and len(r.json()["data"]) == 5
     and all("late" not in p["name"] for p in r.json()["data"]),
     "a negated last word stays negated: the 5 lanterns left, none late", r)

# --- inventory -----------------------------------------------------------------
r = request("GET", "/api/v1/inventory/" + TID)
t.ok(r.status == 200 and r.json() == {"product_id": TID, "on_hand": 5, "reserved": 0, "available": 5},
     "GET /inventory/{id}", r)
r = request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 10}, headers=ADM)
t.ok(r.status == 200 and (r.json() or {}).get("on_hand") == 10, "PUT on_hand", r)
# A count made against an older figure (units shipped since) is refused.
r = request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 12, "expected_on_hand": 7},
            headers=ADM)
inv = request("GET", "/api/v1/inventory/" + TID).json() or {}
t.ok(r.is_problem(409, "on_hand_changed") and inv.get("on_hand") == 10,
     "PUT on_hand with an expected_on_hand that is not the count: 409, nothing changed", (r, inv))
r = request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 10, "expected_on_hand": 10},
            headers=ADM)
t.ok(r.status == 200 and (r.json() or {}).get("on_hand") == 10,
     "with the count it has: 200", r)
r = request("PUT", "/api/v1/inventory/999999999", body={"on_hand": 1, "expected_on_hand": 1},
            headers=ADM)
t.ok(r.is_problem(404), "an unknown product with expected_on_hand: still 404", r)
r = request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 10, "expected_on_hand": -1},
            headers=ADM)
t.ok(r.is_problem(422) and r.json()["errors"][0]["field"] == "expected_on_hand",
     "expected_on_hand below 0: 422", r)
order = "ord-" + RUN
r = request("PUT", "/api/v1/inventory/%s/reserve" % TID, body={"order_id": order, "quantity": 4},
            headers=ADM)
t.ok(r.status == 200 and (r.json() or {}).get("reserved") == 4, "reserve 4", r)
r = request("PUT", "/api/v1/inventory/%s/reserve" % TID, body={"order_id": order, "quantity": 4},
            headers=ADM)
t.ok(r.status == 200 and (r.json() or {}).get("reserved") == 4, "the same reservation again: no change", r)
t.ok((request("GET", "/api/v1/products/" + TID).json() or {}).get("stock_available") == 6,
     "the product shows the new availability at once")
r = request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 3}, headers=ADM)
t.ok(r.is_problem(409, "stock_below_reserved"), "on_hand under reserved: 409", r)
r = request("PUT", "/api/v1/inventory/%s/reserve" % TID, body={"order_id": order + "-2", "quantity": 7},
            headers=ADM)
t.ok(r.is_problem(409, "insufficient_stock"), "reserving more than available: 409", r)
for body, status, what in [({"order_id": order, "quantity": 0}, 422, "quantity 0"),
                           ({"order_id": order, "quantity": 1001}, 422, "quantity 1001"),
                           ({"order_id": order, "quantity": "1"}, 400, "quantity as a string"),
                           ({"order_id": "", "quantity": 1}, 422, "an empty order id"),
                           ({"quantity": 1}, 422, "no order id")]:
    r = request("PUT", "/api/v1/inventory/%s/reserve" % TID, body=body, headers=ADM)
    t.ok(r.is_problem(status), "reserve with %s: %d" % (what, status), r)
results = []


def release():
    results.append(request("PUT", "/api/v1/inventory/%s/release" % TID, body={"order_id": order},
                           headers=ADM).status)


threads = [threading.Thread(target=release) for _ in range(6)]
for th in threads:
    th.start()
for th in threads:
    th.join()
inv = request("GET", "/api/v1/inventory/" + TID).json() or {}
t.ok(results == [200] * 6 and inv.get("reserved") == 0 and inv.get("on_hand") == 10,
     "six concurrent releases release once", (results, inv))
r = request("PUT", "/api/v1/inventory/%s/release" % TID, body={"order_id": "never-" + RUN}, headers=ADM)
t.ok(r.is_problem(404, "no_reservation"), "releasing what was never reserved: 404", r)
# The shop's own orders hold their stock themselves: a bare number, which
# is or may become an order's id, is no manual reservation's.
r = request("PUT", "/api/v1/inventory/%s/reserve" % TID, body={"order_id": "4711", "quantity": 1},
            headers=ADM)
t.ok(r.is_problem(422, "validation_failed") and r.json()["errors"][0]["field"] == "order_id",
     "reserving by hand under a bare number, an order's id to be: 422 on order_id", r)
r = request("POST", "/api/v1/orders", headers=CUS,
            body={"items": [{"product_id": TID, "quantity": 1}]})
OWN = str((r.json() or {}).get("id"))
t.ok(r.status == 201, "an order of the shop holds one", r)
r = request("PUT", "/api/v1/inventory/%s/release" % TID, body={"order_id": OWN}, headers=ADM)
inv = request("GET", "/api/v1/inventory/" + TID).json() or {}
t.ok(r.is_problem(409, "order_managed") and inv.get("reserved") == 1,
     "releasing by hand what an order holds: 409 order_managed, the stock still held", (r, inv))
r = request("PUT", "/api/v1/orders/%s/cancel" % OWN, headers=CUS)
inv = request("GET", "/api/v1/inventory/" + TID).json() or {}
t.ok(r.status == 200 and inv.get("reserved") == 0, "cancelling the order releases it", (r, inv))
r = request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 10}, headers=CUS)
t.ok(r.is_problem(403), "a customer cannot set stock: 403", r)
r = request("GET", "/api/v1/inventory/999999999")
t.ok(r.is_problem(404), "inventory of an unknown product: 404", r)

# Twenty orders race for five units, on several processes at once (the
# reads first make the web server start them where it starts them on
# demand).
request("PUT", "/api/v1/inventory/" + TID, body={"on_hand": 5}, headers=ADM)
across_processes(lambda rid: request("GET", "/api/v1/inventory/" + TID,
                                     headers={"X-Request-Id": rid}), None, rounds=2)
codes, rids = [], ["race-%s-%d" % (RUN, i) for i in range(20)]
mark = log_mark()


def grab(i):
    codes.append(request("PUT", "/api/v1/inventory/%s/reserve" % TID,
                         body={"order_id": rids[i], "quantity": 1},
                         headers=dict(ADM, **{"X-Request-Id": rids[i]})).status)


threads = [threading.Thread(target=grab, args=(i,)) for i in range(20)]
for th in threads:
    th.start()
for th in threads:
    th.join()
inv = request("GET", "/api/v1/inventory/" + TID).json() or {}
t.ok(sorted(codes) == [200] * 5 + [409] * 15 and inv.get("reserved") == 5 and inv.get("available") == 0,
     "20 concurrent reservations of 5 units: exactly 5 succeed", (sorted(codes), inv))
wait_for(lambda: len(served_by(mark, rids)) == 20, 2)
racers = set(served_by(mark, rids).values())
t.ok(len(racers) >= 3, "and they raced on %d processes" % len(racers), racers)
rc, out, err = psql("UPDATE inventory SET reserved = on_hand + 1 WHERE product_id = %s" % TID,
                    check=False)
t.ok(rc != 0 and "inventory_reserved_le_on_hand" in err,
     "the database itself refuses reserved > on_hand", err)
rc, out, err = psql("UPDATE inventory SET on_hand = -1 WHERE product_id = %s" % TID, check=False)
t.ok(rc != 0 and "check constraint" in err, "and negative stock", err)

# --- the API limit on cached reads (counted within their cache round trip) ---
def timed_cgi(*args, **kw):
    """cgi(), with the clock before and after: (Resp, t0, t1)."""
    t0 = time.time()
    resp = cgi(*args, **kw)
    return resp, t0, time.time()


def refused_ok(g):
    """A 429 whose Retry-After and RateLimit-Reset both give the seconds
    left in the minute's window."""
    resp, t0, t1 = g
    return (resp.is_problem(429, "rate_limited") and reset_ok(resp, t0, t1)
            and resp.header("Retry-After") == resp.header("RateLimit-Reset"))


pid = request("GET", "/api/v1/products?limit=1").json()["data"][0]["id"]
for prog, uri in (("products", "/api/v1/products/" + pid), ("products", "/api/v1/products?limit=2"),
                  ("categories", "/api/v1/categories")):
    env = {"AGORA_RATE_LIMIT_API": "3", "REMOTE_ADDR": "10.77.%d.%d" % (
        uuid.uuid4().int % 250, uuid.uuid4().int % 250)}
    in_minute(10)
    timed = [timed_cgi(prog, "GET", uri, env=env) for _ in range(5)]
    got = [g[0] for g in timed]
    t.ok([g.status for g in got] == [200, 200, 200, 429, 429]
         and [g.header("RateLimit-Remaining") for g in got[:3]] == ["2", "1", "0"]
         and all(reset_ok(*g) for g in timed) and refused_ok(timed[3]),
         "GET %s: rate_limit_api applies to cached reads, with its headers and their values"
         % uri, [(g.status, g.header("RateLimit-Remaining"), g.header("RateLimit-Reset"),
                  g.header("Retry-After")) for g in got])
# Reads refused before they reach the cache count too, and over the limit
# their answer gives way to the 429.
for uri, first in (("/api/v1/products/not-an-id", 404), ("/api/v1/products?limit=0", 400)):
    env = {"AGORA_RATE_LIMIT_API": "3", "REMOTE_ADDR": "10.79.%d.%d" % (
        uuid.uuid4().int % 250, uuid.uuid4().int % 250)}
    in_minute(10)
    timed = [timed_cgi("products", "GET", uri, env=env) for _ in range(5)]
    got = [g[0] for g in timed]
    t.ok([g.status for g in got] == [first] * 3 + [429, 429]
         and [g.header("RateLimit-Remaining") for g in got[:3]] == ["2", "1", "0"]
         and refused_ok(timed[4]),
         "GET %s: bad reads are counted and limited as well" % uri,
         [(g.status, g.header("RateLimit-Remaining")) for g in got])

# Cached reads are counted through real FastCGI processes (FcgiPool).
# The window is the clock's minute: start early in one, so that each run
# and the checks after it fall in the same window.
def window_start():
    if time.time() % 60 > 30:
        time.sleep(60.5 - time.time() % 60)


def mc_count(addr):
    """The API counter of client addr in this minute, read from memcached."""
    v = mc_get("rl:api:ip%s:%d" % (addr, int(time.time()) // 60))
    return int(v) if v is not None else 0


# A cached product is stored with its version, its ETag and when it
# expires: 60 s after it was made, plus up to half as much again at random.
mc("delete agora:p2:" + pid, b"\r\n")
made = time.time() * 1000
r = request("GET", "/api/v1/products/" + pid)
# The fill is sent without waiting for memcached's answer (a quiet set):
# it may land just after the answer to the client.
wait_for(lambda: mc_get("agora:p2:" + pid), 3)
entry = mc_get("agora:p2:" + pid) or b""
ver, tag, times, body = (entry.split(b"\n", 3) + [b"", b"", b"", b""])[:4]
expires = int(times.split()[0]) if times.split() else 0
t.ok(ver == mc_get("agora:pv:" + pid) and tag.decode() == r.header("ETag")
     and body == r.body and made + 59000 <= expires <= time.time() * 1000 + 90000,
     "the cached entry holds its version, the ETag sent and an expiry 60 to 90 s away",
     (entry[:120], r.header("ETag")))

# A change of stock alone (an order) leaves the lists to expire, 20 to 30 s
# after they were made, while the product's own read is current; a write
# to the inventory makes them stale at once (fcgi/openapi.json, GET
# /products, "Caching").
lamp = create("%s Desk Lamp" % RUN.capitalize(), 700, stock=5).json() or {}
LQ = "q=%s+desk" % RUN
lkey = "agora:l2:" + hashlib.sha256(LQ.encode()).hexdigest()[:40]
made = time.time() * 1000
search(LQ)
wait_for(lambda: mc_get(lkey), 3)
times = ((mc_get(lkey) or b"").split(b"\n", 3) + [b"", b"", b""])[2].split()
expires = int(times[0]) if times else 0
t.ok(made + 19000 <= expires <= time.time() * 1000 + 30000,
     "a list page is cached 20 to 30 s", (expires - made) / 1000)
cv = mc_get("agora:cv")
r = request("POST", "/api/v1/orders", headers=CUS,
            body={"items": [{"product_id": lamp.get("id"), "quantity": 2}]})
listed = [p["stock_available"] for p in (search(LQ).json() or {}).get("data", [])]
t.ok(r.status == 201 and cv is not None and mc_get("agora:cv") == cv and listed == [5]
     and request("GET", "/api/v1/products/" + str(lamp.get("id"))).json()["stock_available"] == 3,
     "an order leaves the lists' version: the list may still say 5, the product says 3",
     (r, listed))
r = request("PUT", "/api/v1/inventory/%s" % lamp.get("id"), body={"on_hand": 9}, headers=ADM)
listed = [p["stock_available"] for p in (search(LQ).json() or {}).get("data", [])]
t.ok(r.status == 200 and mc_get("agora:cv") != cv and listed == [7],
     "a write to the inventory makes the lists stale at once: 9 on hand, 2 reserved", (r, listed))


# With plenty of room (a limit of a million) one process holds a busy
# client's counts and sends them 32 at a time; what it held for a second
# goes with its next counted read.  The batch shows only when the reads
# come within that second: on a machine too busy for it the run is tried
# again with another client, up to three times.
def held_counts():
    pool = FcgiPool("products", 1, env={"AGORA_RATE_LIMIT_API": "1000000"})
    addr = "10.81.%d.%d" % (uuid.uuid4().int % 250, uuid.uuid4().int % 250)

    def read():
        pool.request("GET", "/api/v1/products/" + pid, env={"REMOTE_ADDR": addr})
    try:
        seen = []
        t0 = time.monotonic()
        for _ in range(31):
            read()
        time.sleep(0.1)  # a count is sent without waiting for an answer
        seen.append(mc_count(addr))
        read()
        fast = time.monotonic() - t0 < 0.8
        time.sleep(0.1)
        seen.append(mc_count(addr))
        read()
        time.sleep(0.1)
        seen.append(mc_count(addr))
        time.sleep(1.1)
        read()
        time.sleep(0.2)
        seen.append(mc_count(addr))
    finally:
        pool.close()
    return fast, seen


window_start()
for _ in range(3):
    fast, seen = held_counts()
    if fast:
        break
t.ok(fast and seen == [0, 32, 32, 33],
     "counts are held and sent 32 at a time, and after a second with the next read",
     (fast, seen))

# Near the limit every read is counted at once: two processes, a limit of
# 640, 760 reads from 8 threads.  Reads in flight together may pass at the
# edge.
window_start()
pool = FcgiPool("products", 2, env={"AGORA_RATE_LIMIT_API": "640"})
addr = "10.78.%d.%d" % (uuid.uuid4().int % 250, uuid.uuid4().int % 250)
codes = []


def reads(n):
    for _ in range(n):
        t0 = time.time()
        g = pool.request("GET", "/api/v1/products/" + pid, env={"REMOTE_ADDR": addr})
        codes.append((g.status, reset_ok(g, t0, time.time(), header="Retry-After")
                      and g.header("Retry-After") == g.header("RateLimit-Reset")))


try:
    threads = [threading.Thread(target=reads, args=(95,)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
finally:
    pool.close()
ok = sum(1 for c, _ in codes if c == 200)
limited = [ra for c, ra in codes if c == 429]
t.ok(len(codes) == 760 and 640 <= ok <= 640 + 8 and len(limited) == 760 - ok
     and all(limited),
     "760 cached reads of one client through 2 processes, limit 640: "
     "640 to 648 pass, the rest get 429 with Retry-After (the seconds left in the window)",
     (ok, len(limited), limited.count(False)))
# The counts go with NOREPLY on a connection of their own: memcached may
# read the last one just after the test's own read, so give it a moment.
wait_for(lambda: mc_count(addr) == ok, 5)
t.ok(mc_count(addr) == ok,
     "every read that passed was counted in memcached", (mc_count(addr), ok))

# The stored documents follow their rows whoever writes them: after this
# test's creates, updates and archives none differs from a fresh build, and
# an admin's own UPDATE in psql is in the document at once.
_, stale, _ = psql("SELECT count(*) FROM products WHERE doc <> product_body(products)")
psql("UPDATE products SET name = 'Renamed in psql', price_cents = 4321 WHERE id = %s" % pid)
_, doc, _ = psql("SELECT product_doc(doc, 7) FROM products WHERE id = %s" % pid)
mc("incr agora:pv:%s 1" % pid, b"\r\n")  # what a program would do after its write
doc = json.loads(doc)
t.ok(stale == "0" and doc["name"] == "Renamed in psql" and doc["price_cents"] == 4321
     and doc["stock_available"] == 7 and doc["id"] == pid,
     "products.doc is rebuilt by every write, a psql UPDATE too", (stale, doc))

# memcached_servers may name a unix socket, as on a single-host install: a
# memcached of this test's own on one (named with spaces around it) counts
# the limit and holds the entries.
mcdir = tempfile.mkdtemp(prefix="agora-mc-")
os.chmod(mcdir, 0o777)
sock = os.path.join(mcdir, "mc.sock")
mc = subprocess.Popen(["memcached", "-s", sock, "-a", "0666"]
                      + (["-u", "memcache"] if os.geteuid() == 0 else []),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    wait_for(lambda: os.path.exists(sock), 10)
    env = {"AGORA_MEMCACHED_SERVERS": " %s , " % sock, "AGORA_RATE_LIMIT_API": "3",
           "REMOTE_ADDR": "10.80.%d.%d" % (uuid.uuid4().int % 250, uuid.uuid4().int % 250)}
    got = [cgi("products", "GET", "/api/v1/products/" + pid, env=env) for _ in range(4)]
    health = cgi("health", "GET", "/api/v1/health", env=env)
finally:
    mc.terminate()
    mc.wait(timeout=10)
    shutil.rmtree(mcdir)
t.ok([g.status for g in got] == [200, 200, 200, 429]
     and got[0].header("ETag") == got[2].header("ETag")
     and (health.json() or {}).get("checks", {}).get("cache") == "ok",
     "memcached over a unix socket: the limit is counted there, health says ok",
     ([g.status for g in got], health.body[:200]))
t.done()
