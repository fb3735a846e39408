"""The README's "Installing on a server", followed as an admin would: from
the release tarball, every command block marked <!-- install-guide --> is
run, in order, as root; then cron's lines run the worker as the cron file
says, and an order placed through the installed Apache is paid and its
invoice stored.

What it changes on the way, and only that (the table SUBST below):
everything is installed under ROOT, a directory of its own, instead of
/, /usr/local, /etc, /var and /run; PostgreSQL, memcached and Apache are
its own, on ports of its own (the PostgreSQL cluster authenticates as
Debian's does: peer on its socket, a password over TCP); Apache's
configuration is a copy of this machine's /etc/apache2, which a2enmod,
a2enconf and a2ensite change (APACHE_CONFDIR); `systemctl` becomes what
it would do to those; apt-get becomes a check that each package it
names is installed; $EDITOR appends the keys the README lists under it.

Run by ./dev check (the install stage), which makes the tarball; it
needs root, as the README does."""
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
TARBALL = os.environ.get("AGORA_GUIDE_TARBALL")
if not TARBALL or not os.environ.get("AGORA_TEST_URL"):
    print("1..0 # SKIP the install guide runs in ./dev check's install stage")
    sys.exit(0)
if os.geteuid() != 0:
    print("1..0 # SKIP the install guide needs root, as the README does")
    sys.exit(0)

import agoratest  # noqa: E402  (reads AGORA_TEST_URL)
from agoratest import Tap, port_open, request, wait_for  # noqa: E402
from guidetest import cron_lines, marked_blocks, order_paid, owner_mode  # noqa: E402

t = Tap()
DIR = os.environ["AGORA_GUIDE_DIR"]
HTTP_PORT = int(os.environ["AGORA_GUIDE_HTTP_PORT"])
PG_PORT = int(os.environ["AGORA_GUIDE_PG_PORT"])
MC_PORT = int(os.environ["AGORA_GUIDE_MC_PORT"])
PGBIN = os.environ["AGORA_GUIDE_PGBIN"]
ROOT = os.path.join(DIR, "root")
PGDATA = os.path.join(DIR, "pg")
PGSOCK = os.path.join(DIR, "pgsock")
APACHE = os.path.join(ROOT, "etc/apache2")
USER = "www-data"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, **kw)


def as_postgres(argv):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + argv,
                          capture_output=True, text=True)


# --- the README's blocks ---------------------------------------------------

def guide_blocks():
    text = open(os.path.join(SRC, "README.md")).read()
    start = text.index("\n## Installing on a server")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else None]
    return marked_blocks(section, "install-guide")


# Where the README says /usr/local, /etc, /var or /run, ROOT's; localhost
# and 127.0.0.1 on the ports of this test's services.
PATH_RE = re.compile(r"(?<![\w./~-])/(usr/local|etc|var|run)(?=[/\s]|$)", re.M)
SUBST = [
    ("systemctl restart postgresql",
     "runuser -u postgres -- %s/pg_ctl -D %s -l %s/server.log -m fast -w restart >/dev/null"
     % (PGBIN, PGDATA, PGDATA)),
    ("systemctl reload apache2", "apache2ctl graceful"),
    ("http://localhost/", "http://127.0.0.1:%d/" % HTTP_PORT),
    ("host=127.0.0.1 ", "host=127.0.0.1 port=%d " % PG_PORT),
]


def editor_lines(block):
    """The $EDITOR line becomes an append of the keys listed under it."""
    out, keys, editing = [], [], None
    for line in block.splitlines():
        if line.startswith("$EDITOR "):
            editing = line.split()[1]
            continue
        m = re.match(r"#\s+([a-z_]+ = .*)$", line)
        if editing and m:
            keys.append(m.group(1))
            continue
        if editing:
            out.append("cat >> %s <<'KEYS'" % editing)
            out += [k for k in keys if not k.startswith("public_url")]
            out += ["public_url = http://127.0.0.1:%d" % HTTP_PORT,
                    "memcached_servers = 127.0.0.1:%d" % MC_PORT, "KEYS"]
            editing = None
        out.append(line)
    return "\n".join(out) + "\n", keys


def packages(block):
    """The apt-get lines, checked instead of run; the rest of the block."""
    joined = block.replace("\\\n", " ")
    names, rest = [], []
    for line in joined.splitlines():
        if line.startswith("apt-get install "):
            names += line.split()[2:]
        else:
            rest.append(line)
    return names, "\n".join(rest) + "\n"


def localize(block):
    block = PATH_RE.sub(lambda m: ROOT + "/" + m.group(1), block)
    for old, new in SUBST:
        block = block.replace(old, new)
    return block


def guide_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGORA_", "PG"))}
    env.update(PATH="%s/usr/local/sbin:%s/usr/local/bin:%s" % (ROOT, ROOT, env["PATH"]),
               PGHOST=PGSOCK, PGPORT=str(PG_PORT), APACHE_CONFDIR=APACHE,
               MAKEFLAGS="-j%d" % (os.cpu_count() or 2), EDITOR="false")
    return env


# --- this test's PostgreSQL, memcached and Apache ----------------------------

def pg_start():
    for d in (PGDATA, PGSOCK):
        os.makedirs(d)
        shutil.chown(d, "postgres")
    p = as_postgres(["%s/initdb" % PGBIN, "-D", PGDATA, "-U", "postgres", "--auth-local=peer",
                     "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
    if p.returncode:
        return p.stdout + p.stderr
    p = as_postgres(["%s/pg_ctl" % PGBIN, "-D", PGDATA, "-w", "-t", "30", "-l",
                     os.path.join(PGDATA, "server.log"), "-o",
                     "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                     % (PG_PORT, PGSOCK), "start"])
    return None if p.returncode == 0 else p.stdout + p.stderr


def mc_start():
    # In the foreground, in a session of its own, its pid written here:
    # with -d, memcached writes its pid file as nobody, after it drops
    # root, through a temporary file beside it that nobody may not make
    # in DIR, so the stop at the end found no pid and it outlived the run.
    p = subprocess.Popen(["memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", str(MC_PORT)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    with open(os.path.join(DIR, "memcached.pid"), "w") as f:
        f.write(str(p.pid))

    wait_for(lambda: port_open(MC_PORT, 1) or p.poll() is not None, 10)
    return None if p.poll() is None else p.stderr.read()


def apache_prepare():
    """A copy of this machine's Apache configuration that listens on this
    test's port and keeps its pid, locks and logs under ROOT."""
    # The directories of /etc a Debian system has, that the README fills.
    for d in ("tmpfiles.d", "logrotate.d", "cron.d", "systemd/system"):
        os.makedirs(os.path.join(ROOT, "etc", d))
    shutil.copytree("/etc/apache2", APACHE, symlinks=True)
    with open(os.path.join(APACHE, "ports.conf"), "w") as f:
        f.write("Listen 127.0.0.1:%d\n" % HTTP_PORT)
    run = os.path.join(ROOT, "var/run/apache2")
    logs = os.path.join(ROOT, "var/log/apache2")
    lock = os.path.join(ROOT, "var/lock/apache2")
    for d in (run, logs, lock):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(APACHE, "envvars"), "a") as f:
        f.write("export APACHE_PID_FILE=%s/apache2.pid\nexport APACHE_RUN_DIR=%s\n"
                "export APACHE_LOCK_DIR=%s\nexport APACHE_LOG_DIR=%s\n" % (run, run, lock, logs))
    # What a shop would set for its own name and port (the site file's
    # comment says how); here the port.
    with open(os.path.join(APACHE, "conf-available/agora-port.conf"), "w") as f:
        f.write("Define AGORA_HTTP_PORT %d\nServerName 127.0.0.1\n" % HTTP_PORT)
    os.symlink("../conf-available/agora-port.conf",
               os.path.join(APACHE, "conf-enabled/agora-port.conf"))


def stop_all(workers):
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGTERM)
    for w in workers:
        try:
            w.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
    # apache2ctl stop returns before Apache has let go of its port.
    pidfile = os.path.join(ROOT, "var/run/apache2/apache2.pid")
    pid = open(pidfile).read().strip() if os.path.exists(pidfile) else None
    subprocess.run(["apache2ctl", "stop"], env=guide_env(), capture_output=True)
    wait_for(lambda: not pid or not os.path.exists("/proc/" + pid), 20)
    as_postgres(["%s/pg_ctl" % PGBIN, "-D", PGDATA, "-m", "fast", "-w", "stop"])
    try:
        with open(os.path.join(DIR, "memcached.pid")) as f:
            os.kill(int(f.read()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


# --- cron ------------------------------------------------------------------

def cron_run(user, command):
    """What cron does with a line: the command, by /bin/sh, as the user,
    in the user's home, with cron's few variables."""
    pw = pwd.getpwnam(user)
    env = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": pw.pw_dir, "LOGNAME": user}
    return subprocess.Popen([RUNUSER, "-u", user, "--", "/bin/sh", "-c", command], env=env,
                            cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


# --- the run ---------------------------------------------------------------

def apache_log():
    path = os.path.join(ROOT, "var/log/apache2/error.log")
    return "\n--- Apache's error.log:\n" + open(path).read()[-1500:] if os.path.exists(path) else ""


def follow(blocks, srcdir):
    env = guide_env()
    for i, block in enumerate(blocks, 1):
        names, block = packages(block)
        if names:
            missing = [n for n in names if sh(["dpkg-query", "-W", "-f=${Status}", n]).stdout
                       != "install ok installed"]
            t.ok(not missing, "README block %d: the %d packages it installs are Debian's and "
                 "installed" % (i, len(names)), missing)
        block, keys = editor_lines(localize(block))
        # A path that escaped localize() would change this machine.
        stray = PATH_RE.findall(block.replace(DIR, ""))
        if not t.ok(not stray, "README block %d names no path outside ROOT once rewritten" % i,
                    stray):
            return False
        if keys:
            t.ok(len(keys) >= 2, "README block %d: $EDITOR names the keys to set" % i, keys)
        if not re.sub(r"(?m)^\s*#.*$", "", block).strip():
            continue
        cwd = srcdir if block.lstrip().startswith("./configure") else DIR
        t0 = time.monotonic()
        p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=cwd, env=env,
                           capture_output=True, text=True)
        first = block.strip().splitlines()[0][:60]
        if not t.ok(p.returncode == 0, "README block %d (%s) runs: exit %d, %.0f s"
                    % (i, first, p.returncode, time.monotonic() - t0),
                    block + "\n" + (p.stdout + p.stderr)[-3000:] + apache_log()):
            return False
    return True


def main():
    blocks = guide_blocks()
    t.ok(len(blocks) >= 8, "the README's install section marks its command blocks (%d)"
         % len(blocks))
    for step, err in (("PostgreSQL", pg_start()), ("memcached", mc_start())):
        t.ok(err is None, "this test's %s starts" % step, err)
    apache_prepare()
    p = sh(["tar", "-xzf", TARBALL, "-C", DIR])
    t.ok(p.returncode == 0, "the release tarball unpacks", p.stderr)
    srcdir = os.path.join(DIR, re.sub(r"\.tar\.gz$", "", os.path.basename(TARBALL)))
    workers = []
    try:
        if follow(blocks, srcdir):
            installed(workers)
    finally:
        stop_all(workers)
    t.done()


def installed(workers):
    etc = os.path.join(ROOT, "etc/agora")
    modes = {n: owner_mode(os.path.join(etc, n)) for n in
             ("agora.conf", "database.url", "admin.url", "jwt.secret")}
    t.ok(modes == {"agora.conf": "root:www-data 0640", "database.url": "root:www-data 0640",
                   "admin.url": "root:root 0600", "jwt.secret": "root:www-data 0640"},
         "the configuration is the web group's to read, the owner's URL root's alone", modes)
    p = sh(["runuser", "-u", USER, "--", "cat", os.path.join(etc, "admin.url")])
    t.ok(p.returncode != 0 and "Permission denied" in p.stderr,
         "www-data cannot read the database owner's URL", p.stdout + p.stderr)
    p = sh(["runuser", "-u", USER, "--", "cat", os.path.join(etc, "database.url")])
    t.ok(p.returncode == 0, "www-data reads the programs' database URL", p.stderr)

    r = request("GET", "/api/v1/health")
    body = r.json() if r.status == 200 else {}
    t.ok(r.status == 200 and "unavailable" not in str(body),
         "the installed Apache answers /health, every part available", r)
    # /run is emptied at boot; tmpfiles.d makes agora's directory again.
    run = os.path.join(ROOT, "run/agora")
    shutil.rmtree(run)
    p = sh(["systemd-tmpfiles", "--create", os.path.join(ROOT, "etc/tmpfiles.d/agora.conf")])
    t.ok(p.returncode == 0 and owner_mode(run) == "www-data:www-data 0750",
         "after a reboot's empty /run, systemd-tmpfiles makes /run/agora www-data's again",
         p.stderr + (owner_mode(run) if os.path.isdir(run) else "missing"))
    units()

    lines = cron_lines(os.path.join(ROOT, "etc/cron.d/agora-worker"))
    t.ok(len(lines) == 2 and all(u == USER for u, _ in lines),
         "the cron file runs two workers as www-data", lines)
    workers += [cron_run(u, c) for u, c in lines]
    time.sleep(1)
    again = cron_run(*lines[0])
    try:
        rc = again.wait(10)
    except subprocess.TimeoutExpired:
        again.kill()
        rc = None
    t.ok(rc == 1 and all(w.poll() is None for w in workers),
         "the next minute's run finds the lock taken and leaves (flock -n), the first runs on",
         (rc, [w.poll() for w in workers], again.stderr.read()))
    order_paid(t, 30, "the cron file's workers")
    invoice_stored()
    logs(workers)


def units():
    """The systemd units load: the worker's service and timer, the pool's."""
    if not shutil.which("systemd-analyze"):
        t.ok(True, "systemd-analyze verify # SKIP systemd-analyze is not installed")
        return
    share = os.path.join(ROOT, "usr/local/share/agora")
    units = [os.path.join(share, "worker/agora-worker.service"),
             os.path.join(share, "worker/agora-worker.timer"),
             os.path.join(share, "system/agora-fcgi-pool.service")]
    # verify runs man(1) for each Documentation= page: the installed ones.
    env = dict(os.environ, MANPATH=os.path.join(ROOT, "usr/local/share/man"))
    p = sh(["systemd-analyze", "verify"] + units, env=env)
    t.ok(p.returncode == 0 and "agora" not in p.stderr,
         "systemd-analyze verify: the worker's service and timer, the pool's unit",
         p.stdout + p.stderr)


def invoice_stored():
    store = os.path.join(ROOT, "var/lib/agora/storage")
    files = [os.path.join(d, f) for d, _, fs in os.walk(store) for f in fs]
    t.ok(files and all(owner_mode(f).startswith("www-data:") for f in files),
         "the stored invoice is in /var/lib/agora/storage, www-data's", files)


def logs(workers):
    log = os.path.join(ROOT, "var/log/agora/worker.log")
    text = open(log).read() if os.path.exists(log) else ""
    t.ok(os.path.exists(log) and owner_mode(log).startswith("www-data:")
         and "denied" not in text, "the workers log to /var/log/agora/worker.log, "
         "www-data's, with no permission refused", text[-2000:])
    if not shutil.which("logrotate"):
        t.ok(False, "logrotate is installed (the README's packages)")
        return
    state = os.path.join(DIR, "logrotate.state")
    p = sh(["logrotate", "--force", "--state", state,
            os.path.join(ROOT, "etc/logrotate.d/agora")])
    rotated = log + ".1"
    t.ok(p.returncode == 0 and os.path.exists(rotated) and os.path.getsize(log) == 0,
         "logrotate rotates the worker's log as www-data (copytruncate)",
         p.stdout + p.stderr + str(os.listdir(os.path.dirname(log))))


main()
