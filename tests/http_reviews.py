"""Reviews (fcgi/openapi.json: reviews) against the real stack: only buyers, one per
user and product, the product's rating kept right under concurrency, and
bad input."""
import threading
import uuid

from agoratest import Tap, need_stack, new_user, psql, request

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
ADM = new_user("reviews.admin.%s@example.com" % RUN, role="admin")


def product(stock=100):
    r = request("POST", "/api/v1/products", headers=ADM, body={
        "sku": "R-%s-%s" % (RUN, uuid.uuid4().hex[:8]), "name": "Reviewed thing",
        "price_cents": 990, "stock": stock})
    assert r.status == 201, r
    return r.json()["id"]


def buyer(tag, pid, to="completed"):
    """A user whose order of pid has reached status to."""
    h = new_user("reviews.%s.%s@example.com" % (tag, RUN))
    o = request("POST", "/api/v1/orders", headers=h,
                body={"items": [{"product_id": pid, "quantity": 1}]}).json()
    steps = {"pending": [], "paid": ["paid"], "completed": ["paid", "completed"],
             "delivered": ["paid", "completed", "shipped", "delivered"]}[to]
    for s in steps:
        psql("SELECT order_transition(%s, '%s', NULL, NULL)" % (o["id"], s))
    return h


def review(h, pid, rating=5, title="Good", **extra):
    body = {"rating": rating, "title": title}
    body.update(extra)
    return request("POST", "/api/v1/products/%s/reviews" % pid, body=body, headers=h)


P = product()
A = buyer("a", P)
r = review(A, P, 4, "Solid", body="Works as it should.")
rv = r.json() or {}
t.ok(r.status == 201 and rv.get("rating") == 4 and rv.get("title") == "Solid"
     and rv.get("body") == "Works as it should." and rv.get("product_id") == P
     and r.header("Location") == "/api/v1/reviews/%s" % rv.get("id"),
     "a buyer with a completed order reviews: 201 with Location", r)
doc = request("GET", "/api/v1/products/" + P).json() or {}
t.ok(doc.get("rating_count") == 1 and float(doc.get("rating_avg", 0)) == 4.0,
     "the product's rating follows at once (cache included)", doc)
r = review(A, P, 1, "Changed my mind")
t.ok(r.is_problem(409, "already_reviewed"), "a second review by the same user: 409", r)
r = request("GET", "/api/v1/reviews/" + str(rv.get("id")))
t.ok(r.status == 200 and r.json() == rv and r.header("ETag"), "GET /reviews/{id}, with an ETag", r)
r2 = request("GET", "/api/v1/reviews/" + str(rv.get("id")),
             headers={"If-None-Match": r.header("ETag") or "x"})
t.ok(r2.status == 304 and r2.body == b"" and r2.header("ETag") == r.header("ETag"),
     "If-None-Match with it: 304", r2)

for tag, state in [("pending", "pending"), ("paid", "paid")]:
    h = buyer(tag, P, state)
    r = review(h, P)
    t.ok(r.is_problem(403, "not_a_buyer"), "a %s order is not a purchase: 403 not_a_buyer" % state, r)
STRANGER = new_user("reviews.stranger.%s@example.com" % RUN)
r = review(STRANGER, P)
t.ok(r.is_problem(403, "not_a_buyer"), "no order at all: 403 not_a_buyer", r)
D = buyer("delivered", P, "delivered")
r = review(D, P, 2, "Meh")
t.ok(r.status == 201, "a delivered order counts as a purchase", r)
other = product()
r = review(A, other)
t.ok(r.is_problem(403, "not_a_buyer"), "buying one product does not allow reviewing another", r)

# Bad input, each a problem and nothing written.
for body, want in [({"rating": 0, "title": "x"}, 422), ({"rating": 6, "title": "x"}, 422),
                   ({"rating": 4.5, "title": "x"}, 400), ({"rating": "5", "title": "x"}, 400),
                   ({"rating": 5}, 422), ({"rating": 5, "title": ""}, 422),
                   ({"rating": 5, "title": "x" * 201}, 422),
                   ({"rating": 5, "title": "x", "body": "y" * 5001}, 422),
                   ({"rating": 5, "title": "x", "user_id": "1"}, 422), ([], 400)]:
    r = request("POST", "/api/v1/products/%s/reviews" % P, body=body, headers=STRANGER)
    t.ok(r.is_problem(want), "review %.50s: %d" % (body, want), r)
for pid in ["999999999", "x", "0"]:
    r = review(A, pid)
    t.ok(r.is_problem(404), "a review of product %s: 404" % pid, r)
r = request("POST", "/api/v1/products/%s/reviews" % P, body={"rating": 5, "title": "x"})
t.ok(r.is_problem(401), "no token: 401", r)

# Concurrent reviews of one product: the count and the average stay exact.
Q = product()
buyers = [buyer("c%d" % i, Q) for i in range(10)]
out = [None] * 10


def post(i):
    out[i] = review(buyers[i], Q, 1 + i % 5, "Review %d" % i)


threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.ok([x.status for x in out] == [201] * 10, "10 concurrent reviews: all 201", [x.status for x in out])
_, row, _ = psql("SELECT rating_count || ' ' || rating_avg FROM products WHERE id = %s" % Q)
t.ok(row == "10 3.00", "rating_count 10 and rating_avg 3.00, as the reviews say", row)

# Listing: anyone, newest first, paged.
seen, cursor = [], None
for _ in range(10):
    r = request("GET", "/api/v1/products/%s/reviews?limit=3%s" % (Q, "&cursor=" + cursor if cursor else ""))
    page = r.json() or {}
    seen += [x["id"] for x in page.get("data", [])]
    if not page.get("has_more"):
        break
    cursor = page["next_cursor"]
ids = [x.json()["id"] for x in out]
t.ok(seen == sorted(ids, key=int, reverse=True), "GET /products/{id}/reviews pages newest first", seen)
r = request("GET", "/api/v1/products/999999999/reviews")
t.ok(r.is_problem(404), "reviews of an unknown product: 404", r)
r = request("GET", "/api/v1/products/%s/reviews?cursor=bad" % Q)
t.ok(r.is_problem(400), "a forged cursor: 400", r)
r = request("GET", "/api/v1/products/%s/reviews" % other)
t.ok(r.status == 200 and r.json()["data"] == [], "a product with no reviews: an empty page", r)

# Deleting: the owner or an admin; the rating follows.
r = request("DELETE", "/api/v1/reviews/%s" % rv["id"], headers=STRANGER)
t.ok(r.is_problem(404), "another user's review: 404", r)
r = request("DELETE", "/api/v1/reviews/%s" % rv["id"], headers=A)
t.ok(r.status == 204, "the owner deletes: 204", r)
doc = request("GET", "/api/v1/products/" + P).json() or {}
t.ok(doc.get("rating_count") == 1 and float(doc.get("rating_avg", 0)) == 2.0,
     "the rating is recounted", doc)
r = request("DELETE", "/api/v1/reviews/%s" % rv["id"], headers=A)
t.ok(r.is_problem(404), "deleting it again: 404", r)
r = request("DELETE", "/api/v1/reviews/%s" % out[0].json()["id"], headers=ADM)
_, row, _ = psql("SELECT rating_count || ' ' || rating_avg FROM products WHERE id = %s" % Q)
t.ok(r.status == 204 and row == "9 3.22", "an admin deletes any review", (r, row))
r = review(A, P, 5, "Second thoughts")
t.ok(r.status == 201, "after deleting, the buyer may review again", r)
t.done()
