"""The alert rules shipped for Prometheus (prometheus/agora-alerts.yml)
are valid (promtool check rules) and pass their unit tests
(prometheus/agora-alerts.test.yml, promtool test rules): each alert
fires where it must and stays quiet where it must not."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from agoratest import Tap  # noqa: E402

t = Tap()
DIR = os.path.join(SRC, "prometheus")
if shutil.which("promtool") is None:
    t.ok(False, "promtool is installed (Debian's prometheus package)")
    t.done()
p = subprocess.run(["promtool", "check", "rules", "agora-alerts.yml"], cwd=DIR,
                   capture_output=True, text=True)
t.ok(p.returncode == 0 and "SUCCESS: 8 rules found" in p.stdout,
     "promtool check rules: the eight rules are valid", p.stdout + p.stderr)
p = subprocess.run(["promtool", "test", "rules", "agora-alerts.test.yml"], cwd=DIR,
                   capture_output=True, text=True)
t.ok(p.returncode == 0 and "SUCCESS" in p.stdout,
     "promtool test rules: every alert fires and stays quiet as its tests say",
     p.stdout + p.stderr)
with open(os.path.join(DIR, "agora-alerts.yml")) as f:
    rules = {line.split(":", 1)[1].strip() for line in f if line.strip().startswith("- alert:")}
with open(os.path.join(DIR, "agora-alerts.test.yml")) as f:
    tested = {line.split(":", 1)[1].strip() for line in f if line.strip().startswith("alertname:")}
t.ok(rules and rules == tested, "each of the %d alerts has a test" % len(rules),
     (sorted(rules - tested), sorted(tested - rules)))
t.done()
