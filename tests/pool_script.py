"""agora-fcgi-pool: how many processes of each program it starts, and the
arguments it refuses.  Starts a pool of its own in a temporary directory.

Runs under one web server setup only: it starts no web server."""
import os
import shutil
import subprocess
import sys
import tempfile

from agoratest import MODE, SERVER, Tap, need_stack, sbin

need_stack()
if SERVER != "lighttpd" or MODE != "pool":
    print("1..0 # SKIP runs once, under lighttpd with a pool: it starts a pool of its own")
    sys.exit(0)
t = Tap()
POOL = sbin("agora-fcgi-pool")
CGIDIR = os.path.join(os.environ["AGORA_TEST_PREFIX"], "libexec", "agora", "cgi-bin")
PROGRAMS = sorted(p for p in os.listdir(CGIDIR) if os.access(os.path.join(CGIDIR, p), os.X_OK))
run = tempfile.mkdtemp(prefix="agora-pool-")
os.chmod(run, 0o755)
user = ["-u", "www-data"] if os.geteuid() == 0 else []


def pool(*args):
    p = subprocess.run([POOL] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def counts():
    """Running processes per program, from agora-fcgi-pool status."""
    _, out = pool("status", "-d", run)
    return {name: int(n.split()[0]) for name, _, n in
            (line.partition(": ") for line in out.splitlines()) if n}


try:
    for args, what in ((["-n", "0"], "-n 0"), (["-n", "health=x"], "a count that is not a number"),
                       (["-n", "nosuch=2"], "a program that does not exist"),
                       (["-n", "he*=2"], "a name with a wildcard")):
        rc, out = pool("start", *args, "-d", run, "-l", run, *user)
        t.ok(rc == 2 and not any(f.endswith(".pids") for f in os.listdir(run)),
             "agora-fcgi-pool refuses %s and starts nothing" % what, (rc, out))
    rc, out = pool("start", "-n", "1", "-n", "health=2", "-n", "health=3", "-n", "tracking=1",
                   "-d", run, "-l", run, *user)
    got = counts()
    want = {p: 3 if p == "health" else 1 for p in PROGRAMS}
    t.ok(rc == 0 and got == want,
         "-n 1 -n health=2 -n health=3 -n tracking=1: one of each, three of health "
         "(the last -n for a program counts), one of tracking", (rc, out[-300:], got))
    pool("stop", "-d", run)
    rc, out = pool("start", "-n", "2", "-d", run, "-l", run, *user)
    got = counts()
    t.ok(rc == 0 and got.get("tracking") == 16 and got.get("orders") == 2,
         "-n 2: two of each program, and 16 of tracking, whose requests wait",
         (rc, out[-300:], got))
    pool("stop", "-d", run)
    rc, out = pool("start", "-d", run, "-l", run, *user)
    got = counts()
    cores = os.sysconf("SC_NPROCESSORS_ONLN")
    _, said = pool("procs", "orders")
    t.ok(rc == 0 and got.get("orders") == min(2 * cores, 8) and said.strip() == str(got["orders"]),
         "by default two processes per core, at most 8 (%d cores); procs says so" % cores,
         (rc, out[-300:], got, said))
    _, said = pool("procs", "-n", "3", "-n", "orders=5", "tracking")
    t.ok(said.strip() == "16", "procs -n 3 tracking: 16", said)
finally:
    pool("stop", "-d", run)
    shutil.rmtree(run, ignore_errors=True)
t.done()
