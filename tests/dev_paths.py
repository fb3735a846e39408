"""./dev in a clone whose path configure refuses (a space, or one of
\\ " # $ & ' `): it must stop first, in one sentence that says what to do,
before it installs, builds or starts anything; in any other path it goes
on (here: to its usage, asked for an unknown command)."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from agoratest import Tap  # noqa: E402

t = Tap()
base = tempfile.mkdtemp(prefix="agora-dev-paths-")


def dev_copy(name):
    d = os.path.join(base, name, "agora")
    os.makedirs(os.path.join(d, "tests"))
    shutil.copy(os.path.join(SRC, "dev"), d)
    shutil.copy(os.path.join(SRC, "tests", "stack.sh"), os.path.join(d, "tests"))
    return d


def run_dev(name):
    d = dev_copy(name)
    p = subprocess.run([os.path.join(d, "dev"), "check"], capture_output=True, text=True,
                       timeout=30)
    return p, d


try:
    for name in ("my shop", "tab\there", "shop$1", "shop#1", "o'shop", 'say"hi"', "back\\slash",
                 "tick`x", "a&b"):
        p, d = run_dev(name)
        lines = p.stderr.strip().splitlines()
        t.ok(p.returncode == 1 and len(lines) == 1 and "configure cannot build" in lines[0]
             and "clone it where" in lines[0] and not os.path.exists(os.path.join(d, ".dev")),
             "./dev check in %r stops at once, in one line, and makes nothing" % name,
             (p.returncode, p.stderr[-500:], os.listdir(d)))
    # Only the usage: check in a path it accepts would go on to install
    # packages and build.
    p = subprocess.run([os.path.join(dev_copy("plain-path.x_y-z"), "dev"), "nosuchcommand"],
                       capture_output=True, text=True, timeout=30)
    t.ok("configure cannot build" not in p.stderr and "./dev up" in p.stdout + p.stderr,
         "in a path with none of them it goes on (its usage, for an unknown command)",
         p.stdout[-300:] + p.stderr[-300:])
finally:
    shutil.rmtree(base, ignore_errors=True)
t.done()
