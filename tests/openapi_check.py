"""The check of answers against the OpenAPI document (openapicheck) finds
what it must: answers that break the document, each in its own way, fail;
answers that keep it pass; and a failed check fails the test that got the
answer.  Also: the document is valid JSON Schema 2020-12, every $ref
resolves, every format it uses is checked, and it stays strict."""
import json
import os
import subprocess
import sys
import tempfile

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import openapicheck  # noqa: E402

src = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
with open(os.path.join(src, "fcgi", "openapi.json")) as f:
    doc = json.load(f)
n = failed = 0


def ok(cond, what, diag=None):
    global n, failed
    n += 1
    failed += 0 if cond else 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, what))
    if not cond and diag is not None:
        for line in str(diag).splitlines()[:20]:
            print("# " + line)


# --- the document ---------------------------------------------------------------

def nodes(obj, path="#"):
    """Every dict in obj, with its JSON pointer."""
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from nodes(v, path + "/" + k.replace("~", "~0").replace("/", "~1"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from nodes(v, "%s/%d" % (path, i))


checker = openapicheck.Checker(doc)
bad_refs = []
for where, node in nodes(doc):
    ref = node.get("$ref")
    if isinstance(ref, str):
        try:
            checker.resolve(ref)
        except KeyError as e:
            bad_refs.append("%s: %s" % (where, e))
ok(not bad_refs, "every $ref of the document resolves", "\n".join(bad_refs))

bad_schemas = []
for name, schema in doc["components"]["schemas"].items():
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        bad_schemas.append("%s: %s" % (name, e.message))
ok(not bad_schemas, "every schema is valid JSON Schema 2020-12", "\n".join(bad_schemas))

known = set(openapicheck.format_checker().checkers)
used = {node["format"] for _, node in nodes(doc) if isinstance(node.get("format"), str)
        and ("type" in node or "pattern" in node)}
ok(used <= known, "every format the document uses is checked (%s)" % ", ".join(sorted(used)),
   sorted(used - known))

# Every schema of the document, with its JSON pointer: the roots are
# components/schemas and each `schema` of a media type, parameter or
# header; examples are not schemas, and neither are the conditions of
# `if` and `not` (they test a shape, they do not make one).
SUBSCHEMA = ("items", "additionalProperties", "unevaluatedProperties", "then", "else",
             "contains", "propertyNames")
SUBSCHEMAS = ("allOf", "anyOf", "oneOf", "prefixItems")
SUBMAPS = ("properties", "patternProperties", "$defs")


def schemas(schema, where):
    if not isinstance(schema, dict):
        return
    yield where, schema
    for k in SUBSCHEMA:
        yield from schemas(schema.get(k), where + "/" + k)
    for k in SUBSCHEMAS:
        for i, sub in enumerate(schema.get(k, [])):
            yield from schemas(sub, "%s/%s/%d" % (where, k, i))
    for k in SUBMAPS:
        for name, sub in schema.get(k, {}).items():
            yield from schemas(sub, "%s/%s/%s" % (where, k, name))


def all_schemas():
    for name, schema in doc["components"]["schemas"].items():
        yield from schemas(schema, "#/components/schemas/" + name)
    for where, node in nodes(doc):
        if "/components/schemas" not in where and "/examples/" not in where \
                and isinstance(node.get("schema"), dict):
            yield from schemas(node["schema"], where + "/schema")


# Schemas that list properties are closed: additionalProperties: false, or
# unevaluatedProperties: false on the schema or on the allOf around it.
# Open on purpose, none of them an answer of agora: a JWT's claims (tokens
# may carry more), the gateway's event data (members other than these are
# stored and ignored) and the upload form (parts other than `file` are
# ignored).
OPEN = {"#/components/schemas/AccessTokenClaims", "#/components/schemas/GatewayEventData",
        "#/paths/~1files/post/requestBody/content/multipart~1form-data/schema"}
closed_by_allof = {"%s/allOf/%d" % (where, i) for where, s in all_schemas()
                   if s.get("unevaluatedProperties") is False
                   for i, _ in enumerate(s.get("allOf", []))}
open_schemas = [where for where, s in all_schemas()
                if "properties" in s and s.get("additionalProperties") is not False
                and s.get("unevaluatedProperties") is not False
                and where not in OPEN | closed_by_allof]
# ProblemMembers is open itself: every schema that uses it closes it.
users = [where for where, s in all_schemas()
         if s.get("$ref") == "#/components/schemas/ProblemMembers"]
ok(users and all(u in closed_by_allof for u in users),
   "ProblemMembers is used only in an allOf with unevaluatedProperties: false", users)
open_schemas.remove("#/components/schemas/ProblemMembers")
ok(not open_schemas, "every schema with properties is closed (additionalProperties: false)",
   "\n".join(open_schemas))
loose = [where for where, node in nodes(doc) if node.get("additionalProperties") is True
         or node.get("unevaluatedProperties") is True]
ok(not loose, "no additionalProperties: true anywhere", "\n".join(loose))

# --- answers that break the document are caught -------------------------------------

RID = "3f2c9a7e1b0d4c5a8e6f7a9b0c1d2e3f"
BASE = [("X-Request-Id", RID), ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store")]
JSON = BASE + [("Content-Type", "application/json")]
PROBLEM = BASE + [("Content-Type", "application/problem+json")]
HEALTH = {"status": "ok", "checks": {"database": "ok", "cache": "ok", "storage": "ok"}}


def body(obj):
    return json.dumps(obj).encode()


def problem(status, code, **extra):
    return body(dict({"type": "about:blank", "title": "T", "status": status, "detail": "D",
                      "code": code, "request_id": RID}, **extra))


def without(headers, name):
    return [(k, v) for k, v in headers if k != name]


def replaced(headers, name, value):
    return without(headers, name) + [(name, value)]


def check(method, target, status, headers, data, **kw):
    return checker.check(method, target, status, headers, data, **kw)


def caught(what, errs, needle):
    ok(any(needle in e for e in errs), "caught: %s" % what, errs or "no error reported")


def passes(what, errs):
    ok(errs == [], "passes: %s" % what, "\n".join(errs))


H = "/api/v1/health"
caught("an undocumented status", check("GET", H, 201, JSON, body(HEALTH)),
       "status 201 is not documented")
caught("a required header missing", check("GET", H, 200, without(JSON, "X-Request-Id"),
                                          body(HEALTH)), "header X-Request-Id is missing")
caught("a header against its schema",
       check("GET", H, 200, replaced(JSON, "X-Content-Type-Options", "sniff"), body(HEALTH)),
       "header X-Content-Type-Options")
caught("an integer header that is not one",
       check("GET", H, 503, JSON + [("Retry-After", "soon")],
             body(dict(HEALTH, status="unavailable"))), "header Retry-After")
caught("an extra property where the schema forbids it",
       check("GET", H, 200, JSON, body(dict(HEALTH, uptime=3))), "'uptime' was unexpected")
caught("a value of the wrong type",
       check("GET", H, 200, JSON, body({"status": "ok", "checks": dict(HEALTH["checks"],
                                                                       cache=1)})),
       "1 is not of type 'string'")
caught("a required property missing", check("GET", H, 200, JSON, body({"status": "ok"})),
       "'checks' is a required property")
caught("a body that is not JSON", check("GET", H, 200, JSON, b"{ok"), "does not parse")
caught("NaN in a JSON body", check("GET", H, 200, JSON, b'{"status": NaN}'), "does not parse")
caught("an undocumented media type",
       check("GET", H, 200, replaced(JSON, "Content-Type", "text/html"), b"<p>ok"),
       "Content-Type text/html is not documented")
caught("no Content-Type", check("GET", H, 200, BASE, body(HEALTH)), "no Content-Type")
caught("a body in an answer to HEAD", check("HEAD", H, 200, JSON, body(HEALTH)),
       "a body of")
caught("a body in a 204", check("DELETE", "/api/v1/reviews/3", 204, BASE, b"{}"), "a body of")
caught("a problem whose status is not the answer's",
       check("GET", "/api/v1/nope", 404, PROBLEM, problem(400, "not_found")), "problem status")
caught("a problem whose request_id is not X-Request-Id",
       check("GET", "/api/v1/nope", 404, PROBLEM, problem(404, "not_found", request_id="x")),
       "problem request_id")
caught("an extra member in a problem",
       check("GET", "/api/v1/nope", 404, PROBLEM, problem(404, "not_found", extra=1)),
       "'extra' was unexpected")
caught("200 to an unknown path", check("GET", "/api/v1/nope", 200, JSON, body(HEALTH)),
       "matches no operation")
caught("405 without Allow", check("POST", H, 405, PROBLEM, problem(405, "method_not_allowed")),
       "header Allow is missing")
caught("405 with an Allow that is not the document's",
       check("POST", H, 405, PROBLEM + [("Allow", "GET")], problem(405, "method_not_allowed")),
       "Allow")
caught("a time that is not RFC 3339",
       check("GET", "/api/v1/users/me", 200, JSON,
             body({"id": "7", "email": "a@example.com", "name": "A", "role": "customer",
                   "created_at": "2026-11-21 21:22:57"})), "created_at")
ok(not openapicheck.format_checker().conforms("2026-02-30T10:00:00Z", "date-time")
   and not openapicheck.format_checker().conforms("2026-01-01T25:00:00Z", "date-time")
   and openapicheck.format_checker().conforms("2026-11-21T21:22:57.123456Z", "date-time"),
   "date-time: a day or an hour that does not exist is refused")
ok(not openapicheck.format_checker().conforms("a b", "uri-reference")
   and not openapicheck.format_checker().conforms("%zz", "uri-reference")
   and openapicheck.format_checker().conforms("about:blank", "uri-reference"),
   "uri-reference: spaces and bad escapes are refused")
caught("no answer at all", check("GET", H, 0, [], b""), "no status line")
caught("a server 413 to a body under the server's limit",
       check("POST", "/api/v1/analytics/events", 413, [("Content-Type", "text/html")], b"<p>",
             via_server=True, request_body_len=100), "header X-Request-Id is missing")
caught("the server's own 404 where nothing excuses it",
       check("GET", "/api/v1/nope", 404, [("Content-Type", "text/html")], b"<p>",
             via_server=True), "header X-Request-Id is missing")
caught("an excuse of the web server taken by a program (no server in between)",
       check("POST", "/api/v1/analytics/events", 413, [("Content-Type", "text/html")], b"<p>",
             request_body_len=12 * 1024 * 1024), "header X-Request-Id is missing")
caught("a path outside the API without a static directory",
       check("GET", "/robots.txt", 200, [], b"x", via_server=True), "static")

# --- answers that keep it pass ------------------------------------------------------

passes("GET /health 200", check("GET", H, 200, JSON, body(HEALTH)))
passes("HEAD /health 200 without a body", check("HEAD", H, 200, JSON, b""))
passes("GET /health 503 (Health body, Retry-After)",
       check("GET", H, 503, JSON + [("Retry-After", "2")],
             body({"status": "unavailable", "checks": dict(HEALTH["checks"],
                                                           database="unavailable")})))
passes("404 problem to an unknown path",
       check("GET", "/api/v1/nope?x=1", 404, PROBLEM, problem(404, "not_found")))
passes("405 problem with Allow: GET, HEAD",
       check("POST", H, 405, PROBLEM + [("Allow", "GET, HEAD")],
             problem(405, "method_not_allowed")))
passes("413 problem before routing",
       check("POST", H, 413, PROBLEM, problem(413, "payload_too_large")))
passes("GET /openapi.json 304",
       check("GET", "/api/v1/openapi.json", 304,
             replaced(BASE, "Cache-Control", "public, max-age=300")
             + [("ETag", '"%s"' % RID), ("Access-Control-Allow-Origin", "*")], b""))
passes("GET /.well-known/jwks.json 200 (outside the base path)",
       check("GET", "/.well-known/jwks.json", 200,
             replaced(JSON, "Cache-Control", "public, max-age=300"), body({"keys": []})))
passes("the web server's 413 to a body over its limit",
       check("POST", "/api/v1/analytics/events", 413, [("Content-Type", "text/html")], b"<p>",
             via_server=True, request_body_len=12 * 1024 * 1024))
with tempfile.TemporaryDirectory() as static:
    with open(os.path.join(static, "robots.txt"), "wb") as f:
        f.write(b"User-agent: *\n")
    sc = openapicheck.Checker(doc, static)
    passes("a static file, as it is", sc.check("GET", "/robots.txt", 200, [],
                                               b"User-agent: *\n", via_server=True))
    passes("no such static file: 404", sc.check("GET", "/nothing.txt", 404, [], b"<p>",
                                                via_server=True))
    caught("a static file not as it is",
           sc.check("GET", "/robots.txt", 200, [], b"x", via_server=True), "not served as it is")
    caught("a static file refused", sc.check("GET", "/robots.txt", 403, [], b"",
                                             via_server=True), "status 403")
    passes("TRACE of a static file refused by the server",
           sc.check("TRACE", "/", 405, [("Content-Type", "text/html")], b"<p>",
                    via_server=True))
    caught("a POST to a static file that is answered",
           sc.check("POST", "/robots.txt", 200, [], b"x", via_server=True), "status 200")
passes("TRACE refused by the web server, not by agora",
       check("TRACE", H, 501, [("Content-Type", "text/html")], b"<p>", via_server=True))
caught("TRACE answered 200 by the web server",
       check("TRACE", H, 200, [("Content-Type", "message/http")], b"TRACE", via_server=True),
       "status 200 from the web server to TRACE")

# --- a failed check fails the test that got the answer ----------------------------------

PROG = """
import sys
sys.path.insert(0, %r)
import agoratest
from agoratest import Resp, Tap, check_answer
PROBLEM = %r
%s
t = Tap()
%s
t.ok(True, "the test's own check")
t.done()
"""
BAD = ('check_answer("GET", "/api/v1/health", '
       'Resp(200, PROBLEM, b\'{"status": "ok", "checks": {}}\'))')
GOOD = ('check_answer("GET", "/api/v1/nope", Resp(404, PROBLEM, b\'{"type": "about:blank", '
        '"title": "T", "status": 404, "detail": "D", "code": "not_found", '
        '"request_id": "%s"}\'))' % RID)
env = dict(os.environ)
env.pop("AGORA_TEST_PREFIX", None)
for before, after, rc_want, what in (
        ("", BAD, 1, "a broken answer is a failed test, and the test file fails"),
        (BAD, "", 1, "a broken answer before the Tap exists fails the test all the same"),
        ("", GOOD, 0, "an answer that keeps the document adds no failure")):
    p = subprocess.run([sys.executable, "-c", PROG % (HERE, PROBLEM, before, after)],
                       capture_output=True, text=True, env=env, timeout=60)
    bad = [line for line in p.stdout.splitlines() if line.startswith("not ok")]
    ok(p.returncode == rc_want and len(bad) == rc_want
       and all("matches the OpenAPI document: GET /api/v1/health 200" in b for b in bad)
       and "# 1 answers checked against the OpenAPI document, %d broke it" % rc_want
       in p.stdout, what, p.stdout + p.stderr)

print("1..%d" % n)
sys.exit(1 if failed else 0)
