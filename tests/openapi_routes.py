"""Every route of every program is in the OpenAPI document, with its
method, and the document lists no path that no program serves."""
import glob
import json
import os
import subprocess
import sys

build = os.environ.get("AGORA_BUILDDIR", ".")
src = os.environ.get("AGORA_SRCDIR", ".")
n = failed = 0


def ok(cond, what):
    global n, failed
    n += 1
    failed += 0 if cond else 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, what))


with open(os.path.join(src, "fcgi", "openapi.json")) as f:
    doc = json.load(f)
ok(doc.get("openapi", "").startswith("3.1"), "the document is OpenAPI 3.1")
# Path parameters are matched by name: the programs name each for its row
# ({order_id}: lib/route.c), and so does the document.
paths = doc.get("paths", {})
served = set()
progs = sorted(p for p in glob.glob(os.path.join(build, "cgi-bin", "*")) if os.access(p, os.X_OK))
ok(len(progs) >= 3, "the programs are built (%d)" % len(progs))
for prog in progs:
    out = subprocess.run([prog, "--routes"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        method, pattern = line.split(" ", 1)
        rel = pattern[len("/api/v1"):] if pattern.startswith("/api/v1") else pattern
        served.add((method.lower(), rel))
        ok(method.lower() in paths.get(rel, {}),
           "%s %s (%s) is documented" % (method, pattern, os.path.basename(prog)))
for rel, ops in paths.items():
    for method in ops:
        if method in ("get", "post", "put", "patch", "delete"):
            ok((method, rel) in served, "documented %s %s is served" % (method.upper(), rel))
print("1..%d" % n)
sys.exit(1 if failed else 0)
