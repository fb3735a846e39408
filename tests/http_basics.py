"""The common rules of README's "Behaviour every endpoint shares" through the real web server:
routing, problems, headers, request ids, limits, static files, OpenAPI."""
import json
from agoratest import Tap, need_stack, request, SERVER, MODE

need_stack()
t = Tap()

r = request("GET", "/api/v1/health")
j = r.json() or {}
t.ok(r.status == 200 and j.get("status") == "ok"
     and j.get("checks") == {"database": "ok", "cache": "ok", "storage": "ok"},
     "GET /health: 200 with every check ok", r)
# mod_proxy_fcgi re-frames what the program sent as chunked; everywhere
# else the program's Content-Length reaches the client.
cl_ok = (r.header("Content-Length") == str(len(r.body))
         or (SERVER == "apache" and MODE == "pool" and r.header("Transfer-Encoding") == "chunked"))
t.ok((r.header("Content-Type") or "") == "application/json" and cl_ok,
     "JSON with an exact Content-Length", r)
t.ok(r.header("X-Content-Type-Options") == "nosniff"
     and r.header("Cache-Control") == "no-store"
     and r.header("X-Frame-Options") == "DENY", "security headers", r)
rid = r.header("X-Request-Id") or ""
t.ok(len(rid) == 32 and all(c in "0123456789abcdef" for c in rid),
     "a request id is made when the client sends none", rid)

r = request("HEAD", "/api/v1/health")
t.ok(r.status == 200 and r.body == b"", "HEAD /health: 200 without a body", r)
t.ok(isinstance(j.get("worker"), dict) and isinstance(j.get("outbox"), dict)
     and isinstance(j["outbox"].get("due"), int)
     and isinstance(j["outbox"].get("oldest_due_seconds"), int),
     "and the workers' heartbeat and the outbox's lag, beside the checks", j)
r = request("GET", "/api/v1/health/live")
t.ok(r.status == 200 and r.json() == {"status": "ok"}, "GET /health/live: 200", r)
r = request("GET", "/api/v1/health/ready")
t.ok(r.status == 200 and r.json() == {"status": "ok"}, "GET /health/ready: 200", r)

r = request("GET", "/api/v1/health", headers={"X-Request-Id": "trace-42.a_b"})
t.ok(r.header("X-Request-Id") == "trace-42.a_b", "a sane client request id is echoed", r)
r = request("GET", "/api/v1/health", headers={"X-Request-Id": "x" * 129})
t.ok(r.header("X-Request-Id") not in (None, "x" * 129), "a 129-character request id is replaced", r)
r = request("GET", "/api/v1/health", headers={"X-Request-Id": "a b;c"})
t.ok(r.header("X-Request-Id") not in (None, "a b;c"), "a request id with odd characters is replaced", r)

for path in ["/api/v1/nope", "/api/v1/healthz", "/api/v1/health/extra", "/api/v2/health",
             "/api/v1/orders/%2e%2e/x", "/api/v1/analytics/nothing"]:
    r = request("GET", path)
    t.ok(r.is_problem(404, "not_found"), "GET %s: 404 problem+json" % path, r)

r = request("POST", "/api/v1/health", body={})
t.ok(r.is_problem(405, "method_not_allowed") and r.header("Allow") == "GET, HEAD",
     "POST /health: 405 with Allow", r)
r = request("GET", "/api/v1/analytics/events")
t.ok(r.is_problem(405) and r.header("Allow") == "POST", "GET on a POST route: 405 with Allow: POST", r)
r = request("DELETE", "/api/v1/openapi.json")
t.ok(r.is_problem(405) and "GET" in (r.header("Allow") or ""), "DELETE /openapi.json: 405", r)

r = request("GET", "/api/v1/health/%00")
t.ok(r.status in (400, 404), "an encoded NUL in the path is refused", r)

big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
r = request("POST", "/api/v1/analytics/events", body=big,
            headers={"Content-Type": "application/json"})
t.ok(r.is_problem(413, "payload_too_large"), "a body over 1 MiB: 413 problem+json", r)
r = request("POST", "/api/v1/health", body=big, headers={"Content-Type": "application/json"})
t.ok(r.is_problem(413), "the body limit applies before routing", r)
huge = b"x" * (12 * 1024 * 1024)
r = request("POST", "/api/v1/analytics/events", body=huge,
            headers={"Content-Type": "application/json"})
t.ok(r.status == 413, "a body over the web server's limit: 413", r)
r = request("GET", "/api/v1/health", headers={"X-Big": "a" * 7000, "X-Big2": "b" * 7000,
                                              "X-Big3": "c" * 7000, "X-Big4": "d" * 7000,
                                              "X-Big5": "e" * 7000})
t.ok(r.status in (400, 413, 431), "35 KB of headers: refused", r)

r = request("GET", "/")
t.ok(r.status == 200 and b"<" in r.body and "text/html" in (r.header("Content-Type") or ""),
     "static/ is served at /", r)
r = request("GET", "/robots.txt")
t.ok(r.status == 200 and b"Disallow: /api/" in r.body, "static files", r)

r = request("GET", "/api/v1/openapi.json")
doc = r.json() or {}
t.ok(r.status == 200 and str(doc.get("openapi", "")).startswith("3.1"),
     "GET /openapi.json: an OpenAPI 3.1 document", r)
t.ok("/health" in doc.get("paths", {}) and "/analytics/events" in doc.get("paths", {}),
     "it documents the routes", list(doc.get("paths", {})))
etag = r.header("ETag")
r2 = request("GET", "/api/v1/openapi.json", headers={"If-None-Match": etag or "x"})
t.ok(etag and r2.status == 304 and r2.body == b"", "If-None-Match gives 304", r2)

t.done()
