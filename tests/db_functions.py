"""The database's functions: each one's current body in one place
(sql/functions/, one file per area), applied by agoractl migrate after the
numbered migrations whenever a file changed, in one transaction, and
recorded in schema_functions (sql/0017)."""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

from agoratest import Tap, need_stack, psql

need_stack()
t = Tap()
SRC = os.environ["AGORA_SRCDIR"]
ctl = os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agoractl")
FILES = sorted(glob.glob(os.path.join(SRC, "sql", "functions", "*.sql")))
DEF = re.compile(r"CREATE (OR REPLACE )?FUNCTION (?:public\.)?(\w+)\((.*?)\)\n"
                 r"(?:.*?\n)*?AS (\$\w*\$)(.*?)\4", re.S)


def definitions(paths):
    """(name, body, or_replace, file) of every function the files define."""
    out = []
    for p in paths:
        with open(p) as f:
            for m in DEF.finditer(f.read()):
                out.append((m.group(2), m.group(5), bool(m.group(1)), os.path.basename(p)))
    return out


def live():
    """(name, body) of every function of schema public."""
    # Separators Python's strip() keeps (it strips chr(28) to chr(31)).
    _, out, _ = psql("SELECT proname || chr(2) || prosrc || chr(3) FROM pg_proc p "
                     "JOIN pg_namespace n ON n.oid = p.pronamespace "
                     "WHERE nspname = 'public' ORDER BY 1")
    return [tuple(r.lstrip("\n").split("\x02", 1)) for r in out.split("\x03") if r.strip()]


def migrate(*args):
    p = subprocess.run([ctl, "migrate"] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


defs = definitions(FILES)
fns = live()
t.ok(len(FILES) >= 5 and len(defs) == len(fns) and len(fns) > 40,
     "sql/functions defines as many functions as the database has (%d)" % len(fns),
     (len(defs), len(fns)))
unmatched = [n for n, b in fns
             if len([d for d in defs if d[0] == n and d[1] == b]) != 1]
t.ok(not unmatched, "each function's current body is in exactly one file", unmatched)
stray = [(d[0], d[3]) for d in defs if (d[0], d[1]) not in set(fns)]
t.ok(not stray, "every function the files define is the database's", stray)
t.ok(all(d[2] for d in defs), "every definition is CREATE OR REPLACE, so that a file applies again",
     [d[0] for d in defs if not d[2]])
_, out, _ = psql("SELECT string_agg(file || ' ' || sha256, ',' ORDER BY file) FROM schema_functions")
want = ",".join("%s %s" % (os.path.basename(p)[:-4], hashlib.sha256(open(p, "rb").read()).hexdigest())
                for p in FILES)
t.ok(out == want, "schema_functions records each file and its checksum", (out, want))
rc, out, _ = psql("SELECT has_table_privilege('agora_app', 'schema_functions', "
                  "'INSERT, UPDATE, DELETE, SELECT')")
t.ok(out == "f", "the programs' role may not touch schema_functions", out)

rc, out = migrate()
t.ok(rc == 0 and "applying functions" not in out and "0 applied" in out,
     "migrate again applies no functions file", out)
p = subprocess.run([ctl, "migrations"], capture_output=True, text=True)
t.ok(p.returncode == 0 and p.stdout.count(" up to date") == len(FILES),
     "agoractl migrations lists each functions file, up to date", p.stdout)

# A changed body is applied by the next migrate, and recorded.
tmp = tempfile.mkdtemp()
try:
    sql = os.path.join(tmp, "sql")
    shutil.copytree(os.path.join(SRC, "sql"), sql)
    acc = os.path.join(sql, "functions", "accounts.sql")
    with open(acc) as f:
        text = f.read()
    marker = "-- changed by tests/db_functions.py"
    changed = text.replace("\tSELECT to_char(t AT TIME ZONE 'UTC'",
                           "\t" + marker + "\n\tSELECT to_char(t AT TIME ZONE 'UTC'", 1)
    t.ok(changed != text, "the test finds agora_time's body to change")
    with open(acc, "w") as f:
        f.write(changed)
    p = subprocess.run([ctl, "migrations", "--dir", sql], capture_output=True, text=True)
    t.ok("functions/accounts" in p.stdout and
         re.search(r"functions/accounts\s+to apply", p.stdout) is not None,
         "migrations shows the changed file to apply", p.stdout)
    rc, out = migrate("--dir", sql)
    _, body, _ = psql("SELECT prosrc FROM pg_proc WHERE proname = 'agora_time'")
    t.ok(rc == 0 and "applying functions/accounts" in out and "1 functions files applied" in out
         and marker in body, "migrate applies the changed file, and only it", out)
    _, ts, _ = psql("SELECT agora_time('2026-01-02 03:04:05+00')")
    t.ok(ts == "2026-01-02T03:04:05.000000Z", "the changed function works", ts)

    # A broken file: nothing of the run is applied, and the run says so.
    with open(acc, "w") as f:
        f.write(text)
    cat = os.path.join(sql, "functions", "catalog.sql")
    with open(cat, "a") as f:
        f.write("\nCREATE OR REPLACE FUNCTION broken( RETURNS int;\n")
    before = psql("SELECT string_agg(file || sha256, ',' ORDER BY file) FROM schema_functions")[1]
    rc, out = migrate("--dir", sql)
    _, body, _ = psql("SELECT prosrc FROM pg_proc WHERE proname = 'agora_time'")
    after = psql("SELECT string_agg(file || sha256, ',' ORDER BY file) FROM schema_functions")[1]
    t.ok(rc == 1 and "syntax error" in out, "a broken functions file: migrate exits 1 and says why", out)
    t.ok(marker in body and before == after,
         "and nothing of its run is applied: the other changed file neither", (before, after))

    # A directory without functions/ is a broken install, not "nothing
    # to apply": the functions would stop following the release.
    shutil.rmtree(os.path.join(sql, "functions"))
    rc, out = migrate("--dir", sql)
    t.ok(rc == 1 and "functions" in out, "a sql directory without functions/: migrate exits 1", out)
finally:
    shutil.rmtree(tmp)
rc, out = migrate()
_, body, _ = psql("SELECT prosrc FROM pg_proc WHERE proname = 'agora_time'")
t.ok(rc == 0 and "applying functions/accounts" in out and marker not in body,
     "the release's files apply again over a changed database", out)
t.ok(live() == fns, "and the functions are the release's again")
t.done()
