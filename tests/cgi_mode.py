"""The same binary serves plain CGI (run here with a CGI environment and the
body on stdin) and FastCGI (under the web server, where its processes stay
alive between requests)."""
import json
import os
import subprocess
from agoratest import Tap, cgi_output, need_stack, request, MODE

need_stack()
t = Tap()
cgidir = os.environ["AGORA_TEST_CGIDIR"]


def cgi(prog, method, uri, body=b"", ctype=None):
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
           "SERVER_PROTOCOL": "HTTP/1.1", "AGORA_CONFIG": os.environ["AGORA_CONFIG"],
           "CONTENT_LENGTH": str(len(body))}
    if ctype:
        env["CONTENT_TYPE"] = ctype
    p = subprocess.run([os.path.join(cgidir, prog)], input=body, env=env,
                       capture_output=True, timeout=30)
    cgi_output(method, uri, p.stdout)
    head, _, payload = p.stdout.partition(b"\r\n\r\n")
    return p.returncode, head.decode(), payload, p.stderr.decode()


rc, head, body, err = cgi("health", "GET", "/api/v1/health")
t.ok(rc == 0 and head.startswith("Status: 200 OK") and json.loads(body)["status"] == "ok",
     "health as CGI: 200", head + err)
t.ok("Content-Length: %d" % len(body) in head, "CGI: exact Content-Length", head)
t.ok('"status":200' in err and '"path":"/api/v1/health"' in err,
     "CGI: one JSON log line on stderr", err)
ev = json.dumps({"type": "cgi", "session_id": "cgi-mode"}).encode()
rc, head, body, err = cgi("analytics", "POST", "/api/v1/analytics/events", ev, "application/json")
t.ok(rc == 0 and head.startswith("Status: 202"), "analytics as CGI reads its body from stdin",
     head + err)
rc, head, body, err = cgi("analytics", "POST", "/api/v1/analytics/events", b"{", "application/json")
t.ok(head.startswith("Status: 400") and b"malformed_json" in body, "CGI: bad JSON is 400", head)
rc, head, body, err = cgi("health", "GET", "/api/v1/nothing")
t.ok(head.startswith("Status: 404"), "CGI: unknown path is 404", head)

r = request("GET", "/api/v1/health")
t.ok(r.status == 200, "the same binary under the web server", r)
pids = subprocess.run(["pgrep", "-f", "^" + os.path.join(cgidir, "health")],
                      capture_output=True, text=True).stdout.split()
t.ok(len(pids) >= 1, "served by FastCGI: health processes outlive the request (%s)" % MODE, pids)
before = set(pids)
for _ in range(20):
    request("GET", "/api/v1/health")
after = set(subprocess.run(["pgrep", "-f", "^" + os.path.join(cgidir, "health")],
                           capture_output=True, text=True).stdout.split())
t.ok(before & after, "and the same processes serve the next requests", (before, after))

t.done()
