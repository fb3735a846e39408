"""The database: migrations recorded once, and the programs' role holding
only the rights it needs."""
import os
import subprocess
from agoratest import Tap, need_stack, psql

need_stack()
t = Tap()
ctl = os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agoractl")

n = int(psql("SELECT count(*) FROM schema_migrations")[1])
files = sorted(f for f in os.listdir(os.path.join(os.environ["AGORA_SRCDIR"], "sql"))
               if f.endswith(".sql"))
t.ok(n == len(files), "every migration is recorded (%d)" % n)
p = subprocess.run([ctl, "migrate"], capture_output=True, text=True)
t.ok(p.returncode == 0 and "0 applied" in p.stdout, "migrate again applies nothing", p.stdout + p.stderr)
p = subprocess.run([ctl, "migrations"], capture_output=True, text=True)
t.ok(p.returncode == 0 and p.stdout.count("applied") == len(files), "agoractl migrations lists them",
     p.stdout)
p = subprocess.run([ctl, "frobnicate"], capture_output=True, text=True)
t.ok(p.returncode == 2 and "usage" in p.stderr, "an unknown command prints the usage", p.stderr)

rc, out, err = psql("SELECT current_user", admin=False)
t.ok(out == "agora_app", "the programs connect as agora_app", out)
for sql, what in [("CREATE TABLE x (i int)", "create a table"),
                  ("DROP TABLE analytics_events", "drop a table"),
                  ("ALTER TABLE analytics_events ADD COLUMN x int", "alter a table"),
                  ("DELETE FROM analytics_events", "delete analytics events"),
                  ("UPDATE analytics_events SET type = 'x'", "rewrite analytics events"),
                  ("SELECT * FROM schema_migrations", "read the migrations"),
                  ("DELETE FROM schema_migrations", "delete migrations")]:
    rc, out, err = psql(sql, admin=False, check=False)
    t.ok(rc != 0 and ("permission denied" in err or "must be owner" in err),
         "agora_app may not %s" % what, err)
rc, out, err = psql("SELECT count(*) FROM analytics_events", admin=False, check=False)
t.ok(rc == 0, "agora_app may read analytics events", err)
rc, out, err = psql("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                    "WHERE rolname = 'agora_app'")
t.ok(out == "f", "agora_app has no superuser, role or database rights", out)

t.done()
