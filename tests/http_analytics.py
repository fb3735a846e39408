"""POST /analytics/events: the first body-taking route, through the web
server: strict JSON, Content-Type, validation, batches, and nothing
written by a rejected request."""
import uuid
from agoratest import Tap, need_stack, psql, request

need_stack()
t = Tap()
P = "/api/v1/analytics/events"
JSON = {"Content-Type": "application/json"}
session = "s-" + uuid.uuid4().hex


def count():
    return int(psql("SELECT count(*) FROM analytics_events WHERE session_id LIKE '%s%%'"
                    % session)[1])


before = count()
r = request("POST", P, body={"type": "page_view", "session_id": session})
t.ok(r.status == 202 and (r.json() or {}).get("accepted") == 1, "one event: 202", r)
batch = [{"type": "view", "session_id": session + "-b", "product_id": str(i),
          "properties": {"i": i, "tags": ["a", "b"]}} for i in range(100)]
r = request("POST", P, body=batch)
t.ok(r.status == 202 and (r.json() or {}).get("accepted") == 100, "100 events: 202", r)
t.ok(count() == before + 101, "all 101 rows are stored")

evil = "x'); DROP TABLE analytics_events; --"
r = request("POST", P, body={"type": "search", "session_id": session + "-e",
                             "properties": {"q": evil}})
t.ok(r.status == 202, "an injection-shaped value: 202", r)
t.ok(psql("SELECT properties->>'q' FROM analytics_events WHERE session_id = '%s-e'"
          % session)[1] == evil, "and it is stored as plain data")

after_good = count()
bad_json = [
    ('{"type":"a","session_id":"b"', "truncated"),
    ('{"type":"a","session_id":"b"} x', "trailing garbage"),
    ('{"type":"a","session_id":"b"}{}', "two values"),
    ("{'type':'a','session_id':'b'}", "single quotes"),
    ('{"type":"a","session_id":"b","properties":{"n":NaN}}', "NaN"),
    ('{"type":"a","session_id":"b","properties":{"n":1e309}}', "1e309"),
    ('[' * 40 + ']' * 40, "nested 40 deep"),
    ('{"type":"a","session_id":"\xff"}', "invalid UTF-8"),
    ('{"type":"a","session_id":"\xc0\xaf"}', "overlong UTF-8"),
    ('"just a string"', "a top-level string"),
    ('{"type":"a",}', "a trailing comma"),
]
for body, what in bad_json:
    r = request("POST", P, body=body.encode("latin-1"), headers=JSON)
    t.ok(r.is_problem(400, "malformed_json"), "%s: 400 malformed_json" % what, r)

many = b"[" + b",".join([b"1"] * 30000) + b"]"
r = request("POST", P, body=many, headers=JSON)
t.ok(r.is_problem(400, "malformed_json") and b"too many values" in r.body,
     "30,000 values in one body: 400 before json-c builds them", r)
# Objects and arrays, nested to pass a count of commas: each costs json-c
# hundreds of bytes, and a megabyte of them cost a process 140 MB.
for what, body in [("30,000 empty objects", b"[" + b",".join([b"{}"] * 30000) + b"]"),
                   ("a megabyte of nested arrays",
                    b"[" + b",".join([b"[" * 15 + b"]" * 15] * 19000) + b"]")]:
    r = request("POST", P, body=body, headers=JSON)
    t.ok(r.is_problem(400, "malformed_json") and b"too many objects and arrays" in r.body,
         "%s: 400 before json-c builds them" % what, r)
r = request("POST", P, body=b"", headers=JSON)
t.ok(r.is_problem(400, "body_required"), "an empty body: 400", r)
for ct in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx",
           "application/json; charset=latin-1"]:
    r = request("POST", P, body=b'{"type":"a","session_id":"b"}', headers={"Content-Type": ct})
    t.ok(r.is_problem(415, "unsupported_media_type"), "Content-Type %s: 415" % ct, r)
r = request("POST", P, body=b'{"type":"a","session_id":"b"}', headers={"Content-Type": ""})
t.ok(r.is_problem(415), "no Content-Type: 415", r)

r = request("POST", P, body={"session_id": "x"})
j = r.json() or {}
t.ok(r.is_problem(422, "validation_failed")
     and {"field": "type", "message": "is required"} in j.get("errors", []),
     "a missing field: 422 naming it", r)
r = request("POST", P, body={"type": "", "session_id": "x", "extra": 1})
fields = sorted(e.get("field") for e in (r.json() or {}).get("errors", []))
t.ok(r.is_problem(422) and fields == ["extra", "type"],
     "an empty string and an unknown field: 422 naming both", r)
r = request("POST", P, body={"type": 5, "session_id": "x"})
t.ok(r.is_problem(400, "invalid_type") and (r.json() or {}).get("errors", [{}])[0].get("field") == "type",
     "a number for a string: 400 invalid_type", r)
r = request("POST", P, body={"type": "a", "session_id": "x", "properties": []})
t.ok(r.is_problem(400, "invalid_type"), "an array for an object: 400", r)
r = request("POST", P, body={"type": "t" * 65, "session_id": "x"})
t.ok(r.is_problem(422), "a 65-character type: 422", r)
r = request("POST", P, body={"type": "\u00e9" * 64, "session_id": session + "-u"})
t.ok(r.status == 202, "64 two-byte characters are 64 characters: 202", r)
after_good += 1
r = request("POST", P, body={"type": "a\u0000b", "session_id": "x"})
t.ok(r.is_problem(422), "a NUL inside a string: 422", r)
r = request("POST", P, body=[{"type": "a", "session_id": "x"}, {"type": "a"}])
t.ok(r.is_problem(422) and (r.json() or {}).get("errors", [{}])[0].get("field") == "[1].session_id",
     "a batch names the bad event", r)
r = request("POST", P, body=[])
t.ok(r.is_problem(422, "batch_size"), "an empty batch: 422", r)
r = request("POST", P, body=[{"type": "a", "session_id": "x"}] * 101)
t.ok(r.is_problem(422, "batch_size"), "101 events: 422", r)
r = request("POST", P, body=[1, 2])
t.ok(r.is_problem(400, "invalid_type"), "a batch of numbers: 400", r)
t.ok(count() == after_good, "no rejected request wrote anything")

t.done()
