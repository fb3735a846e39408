"""agoractl check: the stack as ./dev makes it passes, every check "ok";
then, one at a time, in a copy of its configuration (or an AGORA_*
variable), one thing is broken the way an admin breaks it, and the check
exits 1 with one FAIL line that names the problem and what to do, and no
other FAIL.

As root the files are checked as www-data, as the programs read them;
the copies are made as ./dev makes the originals (root:www-data 0640 in
a directory everyone may cross), so that only the intended thing is
wrong."""
import grp
import os
import re
import shutil
import subprocess
import tempfile

from agoratest import Tap, need_stack, psql, sbin

need_stack()
t = Tap()
ROOT = os.geteuid() == 0
CONF = os.environ["AGORA_CONFIG"]
SQL = os.path.join(os.environ["AGORA_TEST_PREFIX"], "share", "agora", "sql")
TMP = tempfile.mkdtemp(prefix="agora-check-")
os.chmod(TMP, 0o755)


def check(env=None, conf=CONF, args=()):
    """agoractl check with conf and AGORA_* overrides; (rc, out, FAIL lines)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    e.update(env or {}, AGORA_CONFIG=conf)
    p = subprocess.run([sbin("agoractl"), "check"] + list(args), capture_output=True,
                       text=True, env=e, timeout=60)
    fails = [x for x in p.stdout.splitlines() if x.startswith("FAIL")]
    return p.returncode, p.stdout + p.stderr, fails


def web_file(path, mode=0o640):
    """path as ./dev makes a file the programs read: root:www-data 0640."""
    os.chmod(path, mode)
    if ROOT:
        shutil.chown(path, "root", "www-data")
    return path


def conf_with(name, **keys):
    """A copy of the stack's agora.conf with keys set (None drops the key)."""
    # First: the provider sections run to the end of the file.
    lines = ["%s = %s" % (k, v) for k, v in keys.items() if v is not None]
    lines += [x for x in open(CONF).read().splitlines()
              if x.partition("=")[0].strip() not in keys]
    path = os.path.join(TMP, name + ".conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return web_file(path)


def value(key):
    for line in open(CONF):
        k, _, v = line.partition("=")
        if k.strip() == key:
            return v.strip()
    return None


def broken(what, fail_has, env=None, conf=CONF, args=()):
    """Exit 1, and one FAIL line, which has each of fail_has."""
    rc, out, fails = check(env, conf, args)
    t.ok(rc == 1 and len(fails) == 1 and all(s in fails[0] for s in fail_has),
         "%s: exit 1, one FAIL line naming it" % what, "rc %d\n%s" % (rc, out))
    return fails[0] if fails else ""


try:
    # --- healthy ---------------------------------------------------------
    rc, out, fails = check()
    t.ok(rc == 0 and not fails and out.rstrip().endswith(" 0 failed"),
         "the stack as ./dev makes it: exit 0, nothing failed", out)
    lines = out.splitlines()

    def has(prefix, *parts):
        return any(x.startswith(prefix) and all(p in x for p in parts) for x in lines)
    t.ok(has("ok   config: ", CONF, "parsed"), "config: names the file it parsed", out)
    t.ok(has("ok   keys: ", CONF, "mode 0640"), "keys: agora.conf's mode", out)
    t.ok(has("ok   keys: ", value("jwt_secret_file"), "(jwt_secret_file)", "mode 0640"),
         "keys: the JWT secret file", out)
    t.ok(has("ok   keys: ", "(database_admin_url_file)", "mode 0600"),
         "keys: the owner's URL file, root's alone", out)
    t.ok(has("ok   keys: ", "(webhook_secret_file)") and has("ok   keys: ", "(s3_secret_key_file)"),
         "keys: every other *_file the configuration names", out)
    t.ok(has("ok   keys: ", "(provider testid client_secret_file)", "mode 0640"),
         "keys: each sign-in provider's client secret file", out)
    t.ok(has("ok   database: connected as the programs (database_url): role agora_app")
         and has("ok   database: connected as the owner (database_admin_url): role agora"),
         "database: connects as the programs' role and as the owner", out)
    n = len([f for f in os.listdir(SQL) if f.endswith(".sql")])
    t.ok(has("ok   migrations: all %d of %s applied" % (n, SQL)),
         "migrations: all %d of the installed directory applied" % n, out)
    nf = len([f for f in os.listdir(os.path.join(SQL, "functions")) if f.endswith(".sql")])
    t.ok(nf > 0 and has("ok   functions: all %d files of %s/functions applied" % (nf, SQL)),
         "functions: every functions file installed and applied", out)
    t.ok(has("ok   rights: agora_app has what the programs need on ", "nothing sql/ revokes"),
         "rights: the programs' role has what sql/ grants, no more", out)
    t.ok(has("ok   rights: agora_app owns no table, is no superuser, makes no role"),
         "rights: the programs' role owns nothing, makes no role", out)
    t.ok(has("ok   database: max_connections 300, ", "the defaults need 123"),
         "database: max_connections, with the numbers", out)
    t.ok(has("ok   memcached: %s answers" % value("memcached_servers")),
         "memcached: the configured server answers", out)
    t.ok(has("ok   storage: %s (storage_dir) is writable by %s"
             % (value("storage_dir"), "www-data" if ROOT else "")),
         "storage: storage_dir is writable by the worker's user, named", out)
    t.ok(has("ok   storage: ", "(run_dir) is writable") and has("ok   storage: ", "log/agora"),
         "storage: the run and log directories are writable", out)
    t.ok(any(x.startswith(("ok   outbox: ", "warn outbox: ")) and ("due now" in x or "empty" in x)
             for x in lines), "outbox: what the worker would claim now, per topic", out)
    t.ok(has("ok   payments: provider simulated") and has("ok   notify: channels log"),
         "payments and notifications: what the worker would use, nothing sent", out)

    # --- usage and help --------------------------------------------------
    p = subprocess.run([sbin("agoractl"), "check", "--bogus"], capture_output=True, text=True)
    t.ok(p.returncode == 2 and "usage:" in p.stderr and "agoractl check" in p.stderr
         and p.stdout == "", "check --bogus: usage on stderr, exit 2", p.stderr)
    p = subprocess.run([sbin("agoractl"), "--help"], capture_output=True, text=True)
    t.ok(p.returncode == 0 and "  check " in p.stdout, "--help lists check", p.stdout)

    # --- one thing broken at a time ---------------------------------------
    broken("an unknown key", ["FAIL config: ", "unknown key 'bogus_key'"],
           conf=conf_with("unknown", bogus_key="1"))
    broken("a value out of range", ["FAIL config: ", "worker_batch", "out of range"],
           conf=conf_with("range", worker_batch="0"))

    app = value("database_url")
    broken("a wrong database role", ["FAIL database: cannot connect as the programs",
                                     "agora_nobody"],
           conf=conf_with("role", database_url=app.replace("user=agora_app",
                                                           "user=agora_nobody")))
    # The cluster trusts its socket, so a wrong password would pass: a
    # wrong port is the owner's URL that cannot connect.
    admin = os.path.join(TMP, "admin.url")
    with open(admin, "w") as f:
        f.write(re.sub(r"port=\d+", "port=1", open(value("database_admin_url_file")).read()))
    os.chmod(admin, 0o600)
    broken("the owner's URL on a wrong port", ["FAIL database: cannot connect as the owner"],
           conf=conf_with("adminport", database_admin_url_file=admin))
    owner_url = open(value("database_admin_url_file")).read().strip()
    # The owner also holds every right sql/ revokes: more than one line.
    rc, out, fails = check(conf=conf_with("owner", database_url=owner_url))
    t.ok(rc == 1 and any(x.startswith("FAIL rights: ") and " owns " in x for x in fails),
         "the owner as the programs' role: exit 1, it owns the tables", out)
    # A right on one column that sql/0022 keeps from the programs.
    psql("GRANT INSERT (occurred_at) ON analytics_events TO agora_app")
    try:
        broken("the programs may date analytics events",
               ["FAIL rights: agora_app may set occurred_at on analytics_events", "REVOKE"])
    finally:
        psql("REVOKE INSERT (occurred_at) ON analytics_events FROM agora_app")
    rc, out, fails = check(conf=conf_with("nocache", memcached_servers=""))
    t.ok(rc == 0 and not fails and "warn " in out,
         "memcached off: a warning, and still exit 0", out)

    broken("an unreachable memcached port", ["FAIL memcached: 127.0.0.1:1 does not answer"],
           conf=conf_with("mc", memcached_servers="127.0.0.1:1"))
    mc = value("memcached_servers")
    broken("one of two memcached servers down", ["FAIL memcached: 127.0.0.1:2 does not answer"],
           conf=conf_with("mc2", memcached_servers="%s, 127.0.0.1:2" % mc))

    store = os.path.join(TMP, "storage")
    os.mkdir(store)
    os.chmod(store, 0o755 if ROOT else 0o555)  # root's: www-data may not write
    broken("a storage directory the worker may not write",
           ["FAIL storage: %s (storage_dir) is not writable by " % store, "chown "],
           conf=conf_with("store", storage_dir=store))
    broken("a missing storage directory",
           ["FAIL storage: %s/nope (storage_dir) is not a directory: mkdir -p" % TMP],
           conf=conf_with("nostore", storage_dir=TMP + "/nope"))

    secret = os.path.join(TMP, "jwt.secret")
    shutil.copy(value("jwt_secret_file"), secret)
    web_file(secret, 0o644)
    line = broken("a secret file of mode 0644",
                  ["FAIL keys: %s (jwt_secret_file) is readable by everyone (mode 0644)" % secret,
                   "chmod 0640 %s" % secret],
                  conf=conf_with("secret", jwt_secret_file=secret))
    broken("a missing secret file", ["FAIL keys: %s/none (jwt_secret_file)" % TMP,
                                     "No such file"],
           conf=conf_with("nosecret", jwt_secret_file=TMP + "/none"))
    if ROOT:
        os.chmod(secret, 0o600)
        broken("a secret file www-data cannot read",
               ["(jwt_secret_file) is not readable by www-data", "chgrp www-data"],
               conf=conf_with("secret", jwt_secret_file=secret))
        web_file(admin, 0o640)
        with open(admin, "w") as f:
            f.write(open(value("database_admin_url_file")).read())
        broken("the owner's URL readable by www-data",
               ["(database_admin_url_file) is readable by www-data", "chmod 0600"],
               conf=conf_with("adminread", database_admin_url_file=admin))
    else:
        t.ok(True, "a secret file www-data cannot read # SKIP not root")
        t.ok(True, "the owner's URL readable by www-data # SKIP not root")
    public = conf_with("public", database_url=app + " password=s3cret")
    os.chmod(public, 0o644)
    broken("agora.conf with a password, readable by everyone",
           ["FAIL keys: %s holds a password and everyone may read it" % public, "chmod 0640"],
           conf=public)

    newer = os.path.join(TMP, "sql")
    shutil.copytree(SQL, newer)
    with open(os.path.join(newer, "9999_future.sql"), "w") as f:
        f.write("SELECT 1;\n")
    broken("a migration not applied yet",
           ["FAIL migrations: 1 of %d pending, from 9999_future: run agoractl migrate" % (n + 1)],
           args=("--dir", newer))
    broken("email on, no sender", ["FAIL notify: channel email needs smtp_from"],
           env={"AGORA_NOTIFY_CHANNELS": "log,email", "AGORA_SMTP_FROM": ""})
    broken("the http gateway without its key",
           ["FAIL payments: provider http at http://127.0.0.1:9/", "payment_gateway_key"],
           env={"AGORA_PAYMENT_PROVIDER": "http",
                "AGORA_PAYMENT_GATEWAY_URL": "http://127.0.0.1:9/"})
finally:
    shutil.rmtree(TMP, ignore_errors=True)
t.done()
