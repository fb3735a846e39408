"""Each program, run once as CGI under valgrind's memcheck against the real
database and cache, over its main request paths: no invalid read or write,
no leak.  It runs in one configuration only (Apache, managed), since the
web server plays no part."""
import json
import os
import shutil
import subprocess
import sys

from agoratest import Tap, cgi_output, need_stack, SERVER, MODE

need_stack()
if SERVER != "apache" or MODE != "managed" or not shutil.which("valgrind"):
    print("1..0 # SKIP runs once, under Apache managed, where valgrind is installed")
    sys.exit(0)
t = Tap()
cgidir = os.environ["AGORA_TEST_CGIDIR"]


def vg(prog, method, uri, body=b"", ctype=None, headers=None):
    env = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "REMOTE_ADDR": "127.0.0.77",
           "AGORA_CONFIG": os.environ["AGORA_CONFIG"], "CONTENT_LENGTH": str(len(body))}
    if "?" in uri:
        env["QUERY_STRING"] = uri.split("?", 1)[1]
    if ctype:
        env["CONTENT_TYPE"] = ctype
    env.update(headers or {})
    p = subprocess.run(["valgrind", "--quiet", "--leak-check=full", "--error-exitcode=9",
                        "--errors-for-leak-kinds=definite,indirect",
                        os.path.join(cgidir, prog)], input=body, env=env, capture_output=True,
                       timeout=120)
    cgi_output(method, uri, p.stdout)
    status = p.stdout.split(b"\r\n", 1)[0].decode(errors="replace")
    report = [line for line in p.stderr.decode(errors="replace").splitlines()
              if line.startswith("==")]
    t.ok(p.returncode == 0 and not report and status.startswith("Status: "),
         "%s %s %s: %s, memcheck clean" % (prog, method, uri[:50], status[8:]), "\n".join(report))


J = "application/json"
vg("health", "GET", "/api/v1/health")
vg("health", "GET", "/api/v1/nowhere")
vg("openapi", "GET", "/api/v1/openapi.json")
vg("analytics", "POST", "/api/v1/analytics/events",
   json.dumps([{"type": "vg", "session_id": "vg", "properties": {"a": [1, 2]}}]).encode(), J)
vg("analytics", "POST", "/api/v1/analytics/events", b'{"type": 1, "x": [', J)
vg("analytics", "POST", "/api/v1/analytics/events", b'{"type": 1}', J)
vg("auth", "POST", "/api/v1/auth/register",
   json.dumps({"email": "vg-%d@example.com" % os.getpid(), "password": "valgrind pw 1",
               "name": "V"}).encode(), J)
vg("auth", "POST", "/api/v1/auth/login",
   json.dumps({"email": "vg-%d@example.com" % os.getpid(), "password": "valgrind pw 1"}).encode(), J)
vg("auth", "POST", "/api/v1/auth/refresh", b'{"refresh_token": "nope"}', J)
vg("users", "GET", "/api/v1/users/me", headers={"HTTP_AUTHORIZATION": "Bearer a.b.c"})
vg("products", "GET", "/api/v1/products?q=lapt&attr.color=red&sort=price&limit=3")
vg("products", "GET", "/api/v1/products?cursor=forged")
vg("products", "GET", "/api/v1/products/1")
vg("categories", "GET", "/api/v1/categories")
vg("inventory", "GET", "/api/v1/inventory/1")
t.done()
