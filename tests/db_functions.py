"""The database's functions: each one's current body in one place
(sql/functions/, one file per area), applied by agoractl migrate after the
numbered migrations whenever a file changed, in one transaction, into the
release's schema (tables.sql, the triggers' functions, into public), and
recorded in schema_functions (ctl/migrate.c); prune-functions drops an
earlier release's."""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

from agoratest import Tap, functions_schema, need_stack, psql

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


SCHEMA = functions_schema()
TABLES = [p for p in FILES if os.path.basename(p) == "tables.sql"]
RELEASE = [p for p in FILES if p not in TABLES]


def live(schema, names=None):
    """(name, body) of every function of schema, or of those named."""
    # Separators Python's strip() keeps (it strips chr(28) to chr(31)).
    _, out, _ = psql("SELECT proname || chr(2) || prosrc || chr(3) FROM pg_proc p "
                     "JOIN pg_namespace n ON n.oid = p.pronamespace "
                     "WHERE nspname = '%s' ORDER BY 1" % schema)
    rows = [tuple(r.lstrip("\n").split("\x02", 1)) for r in out.split("\x03") if r.strip()]
    return [r for r in rows if names is None or r[0] in names]


def migrate(*args):
    p = subprocess.run([ctl, "migrate"] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


defs = definitions(RELEASE)
tdefs = definitions(TABLES)
fns = live(SCHEMA)
tfns = live("public", {d[0] for d in tdefs})
t.ok(len(RELEASE) >= 5 and len(TABLES) == 1 and len(defs) == len(fns) and len(fns) > 40,
     "sql/functions defines as many functions as the release's schema %s has (%d)"
     % (SCHEMA, len(fns)), (len(defs), len(fns)))
unmatched = [n for n, b in fns
             if len([d for d in defs if d[0] == n and d[1] == b]) != 1]
t.ok(not unmatched, "each function's current body is in exactly one file", unmatched)
stray = [(d[0], d[3]) for d in defs if (d[0], d[1]) not in set(fns)]
t.ok(not stray, "every function the files define is the release schema's", stray)
t.ok(len(tdefs) >= 5 and sorted((d[0], d[1]) for d in tdefs) == sorted(tfns),
     "tables.sql's functions are public's, as the file has them", [d[0] for d in tdefs])
_, trig, _ = psql("SELECT string_agg(DISTINCT p.proname, ',' ORDER BY p.proname) "
                  "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal")
t.ok(set(trig.split(",")) <= {d[0] for d in tdefs},
     "every trigger's function is in tables.sql", trig)
both = {d[0] for d in tdefs} & {d[0] for d in defs}
t.ok(not both, "no name is both public's and the release's", both)
t.ok(all(d[2] for d in defs + tdefs), "every definition is CREATE OR REPLACE, so that a file applies again",
     [d[0] for d in defs + tdefs if not d[2]])
_, out, _ = psql("SELECT string_agg(schema || ' ' || file || ' ' || sha256, ',' "
                 "ORDER BY file) FROM schema_functions")
want = ",".join("%s %s %s" % ("public" if p in TABLES else SCHEMA, os.path.basename(p)[:-4],
                              hashlib.sha256(open(p, "rb").read()).hexdigest())
                for p in FILES)
t.ok(out == want, "schema_functions records each file, its schema and its checksum", (out, want))
rc, out, _ = psql("SELECT has_table_privilege('agora_app', 'schema_functions', "
                  "'INSERT, UPDATE, DELETE, SELECT')")
t.ok(out == "f", "the programs' role may not touch schema_functions", out)
_, out, _ = psql("SELECT has_schema_privilege('agora_app', '%s', 'USAGE'), "
                 "has_schema_privilege('agora_app', '%s', 'CREATE')" % (SCHEMA, SCHEMA))
t.ok(out == "t|f", "the programs' role uses the release's schema and creates nothing in it", out)

rc, out = migrate()
t.ok(rc == 0 and "applying functions" not in out and "0 applied" in out,
     "migrate again applies no functions file", out)
p = subprocess.run([ctl, "migrations"], capture_output=True, text=True)
t.ok(p.returncode == 0 and p.stdout.count(" up to date") == len(FILES) and
     re.search(r"functions/tables\s+public\s+up to date", p.stdout) and
     re.search(r"functions/orders\s+%s\s+up to date" % SCHEMA, p.stdout),
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
    changed = text.replace("\tSELECT user_gen_of(u) FROM users u",
                           "\t" + marker + "\n\tSELECT user_gen_of(u) FROM users u", 1)
    t.ok(changed != text, "the test finds user_token_gen's body to change")
    with open(acc, "w") as f:
        f.write(changed)
    p = subprocess.run([ctl, "migrations", "--dir", sql], capture_output=True, text=True)
    t.ok("functions/accounts" in p.stdout and
         re.search(r"functions/accounts\s+%s\s+to apply" % SCHEMA, p.stdout) is not None,
         "migrations shows the changed file to apply", p.stdout)
    rc, out = migrate("--dir", sql)
    body = dict(live(SCHEMA))["user_token_gen"]
    t.ok(rc == 0 and "applying functions/accounts into " + SCHEMA in out
         and "1 functions files applied" in out and marker in body,
         "migrate applies the changed file, and only it, into the release's schema", out)
    _, gen, _ = psql("SELECT user_token_gen(0) IS NULL")
    t.ok(gen == "t", "the changed function works", gen)
    # The previous release's programs (0.1's functions are public's, from
    # the migrations) do not see the change: what a rolling upgrade needs.
    _, old, _ = psql(["SET search_path = public",
                      "SELECT prosrc FROM pg_proc WHERE oid = 'user_token_gen(bigint)'::regprocedure"])
    t.ok(old and marker not in old, "a session on public's functions still runs the earlier body")

    # A broken file: nothing of the run is applied, and the run says so.
    with open(acc, "w") as f:
        f.write(text)
    cat = os.path.join(sql, "functions", "catalog.sql")
    with open(cat, "a") as f:
        f.write("\nCREATE OR REPLACE FUNCTION broken( RETURNS int;\n")
    before = psql("SELECT string_agg(file || sha256, ',' ORDER BY file) FROM schema_functions")[1]
    rc, out = migrate("--dir", sql)
    body = dict(live(SCHEMA))["user_token_gen"]
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
body = dict(live(SCHEMA))["user_token_gen"]
t.ok(rc == 0 and "applying functions/accounts" in out and marker not in body,
     "the release's files apply again over a changed database", out)
t.ok(live(SCHEMA) == fns, "and the functions are the release's again")

# An earlier release's schema: listed, kept by migrate, dropped by
# prune-functions with its records, and nothing else with it; a later
# release's (an upgrade rolling out, or rolled back) is kept.
# What a run cut short in this section left (the check's database lives
# on between runs) goes first.
psql(["DROP SCHEMA IF EXISTS agora_0_1, agora_10_0 CASCADE",
      "DELETE FROM schema_functions WHERE schema IN ('agora_0_1', 'agora_10_0')"])
psql(["CREATE SCHEMA agora_0_1", "CREATE SCHEMA agora_10_0",
      "CREATE FUNCTION agora_0_1.agora_time(t timestamptz) RETURNS text LANGUAGE sql "
      "AS $$ SELECT 'old' $$",
      "INSERT INTO schema_functions (schema, file, sha256) VALUES ('agora_0_1', 'accounts', 'x')"])
rc, out = migrate()
t.ok(rc == 0 and "earlier release: agora_0_1" in out and "later release: agora_10_0" in out
     and "0 applied" in out, "migrate names other releases' functions and leaves them", out)
p = subprocess.run([ctl, "prune-functions", "extra"], capture_output=True, text=True)
t.ok(p.returncode == 2, "prune-functions takes no argument: exit 2", p.returncode)
p = subprocess.run([ctl, "prune-functions"], capture_output=True, text=True)
_, left, _ = psql("SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace "
                  "WHERE nspname IN ('agora_0_1', 'agora_10_0')")
_, rec, _ = psql("SELECT string_agg(DISTINCT schema, ',' ORDER BY schema) FROM schema_functions")
t.ok(p.returncode == 0 and "dropped agora_0_1" in p.stdout and left == "agora_10_0"
     and rec == ",".join(sorted(["public", SCHEMA])),
     "prune-functions drops the earlier one and its records, and keeps the later one",
     (p.stdout, left, rec))
t.ok(live(SCHEMA) == fns and live("public", {d[0] for d in tdefs}) == tfns,
     "and leaves this release's functions and public's", p.stderr)
p = subprocess.run([ctl, "prune-functions"], capture_output=True, text=True)
psql("DROP SCHEMA agora_10_0")
t.ok(p.returncode == 0 and "0 earlier releases" in p.stdout, "a second prune finds nothing", p.stdout)

# tables.sql's functions run for any release's session: none may call a
# function that is only in a release's schema.
area = {d[0] for d in defs}
calls = {(d[0], c) for d in tdefs for c in re.findall(r"\b(\w+)\s*\(", d[1]) if c in area}
t.ok(not calls, "tables.sql's functions call none of the area files'", calls)
t.done()
