"""The Debian package, built and installed as a Debian admin would get it.

From the release tarball, `dpkg-buildpackage -us -uc` builds the source
and binary packages, and lintian must find nothing at its default level.
debootstrap makes a fresh Debian 12 root, where `apt-get install
./agora_*.deb` installs the package with what it depends on and
recommends (Apache with mod_fcgid, PostgreSQL, memcached, cron,
logrotate), from Debian's archive.  In that root nothing may run yet:
the maintainer scripts made the directories, www-data's, and the JWT
secret, and left the cron lines and systemd units off.

Then, in a network and process namespace of its own (its loopback, so
Apache on port 80 and PostgreSQL on 5432 as on a real host), the root is
booted the way it matters here: an empty /run that systemd-tmpfiles
fills, PostgreSQL, memcached and cron started by their init scripts.
Every command block of README.Debian marked for it runs, word for word,
in the root (`systemctl A B` becomes `service B A`: no systemd runs
there).  The health check answers through the installed Apache, and an
order placed there is charged and its invoice stored by the workers that
the real cron starts from /etc/cron.d/agora.  Then the package is
installed over itself (postinst's upgrade: migrations applied, secret and
ownership kept), removed (Apache's site disabled and still valid, the
cron lines left behind idle) and installed again (the site back), and
last `apt-get purge` removes what the package made.

Run by ./dev check (the deb stage), which makes the tarball; it needs
root, network access to Debian's archive, debootstrap and the build
dependencies."""
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
TARBALL = os.environ.get("AGORA_DEB_TARBALL")
if not TARBALL:
    print("1..0 # SKIP the Debian package is tested in ./dev check's deb stage")
    sys.exit(0)
if os.geteuid() != 0:
    print("1..0 # SKIP the Debian package test needs root (debootstrap, chroot)")
    sys.exit(0)
os.environ["AGORA_TEST_URL"] = "http://127.0.0.1:80"

from agoratest import Tap, request, wait_for  # noqa: E402
from guidetest import cron_lines, marked_blocks, order_paid, owner_mode  # noqa: E402

t = Tap()
DIR = os.environ["AGORA_DEB_DIR"]
CACHE = os.environ.get("AGORA_DEB_CACHE", os.path.join(DIR, "cache"))


def host_mirror():
    """The Debian archive this host's apt uses (deb822 sources), so that
    a host behind its own mirror builds the root from it too."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(r"(?m)^(?:URIs:|deb)\s+(\S+/debian)/?(?:\s|$)", text)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def host_suite():
    """The root is the host's release: the package is built with its
    libraries, and depends on their versions."""
    m = re.search(r"(?m)^VERSION_CODENAME=(\w+)", open("/etc/os-release").read())
    return m.group(1) if m else "bookworm"


MIRROR = os.environ.get("AGORA_DEB_MIRROR") or host_mirror()
SUITE = host_suite()
APT = "apt-get -y -qq -o Dpkg::Use-Pty=0 -o Acquire::Retries=3"
ROOT = os.path.join(DIR, "root")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEB = os.environ.get("AGORA_DEB_FILE", "")


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def in_root(cmd, user=None):
    """cmd (a shell command) in the root, with a login's clean environment."""
    env = ["/usr/bin/env", "-i", "PATH=" + PATH, "HOME=/root", "LANG=C.UTF-8",
           "DEBIAN_FRONTEND=noninteractive"]
    spec = ["--userspec=%s:%s" % (user, user)] if user else []
    return sh(["chroot"] + spec + [ROOT] + env + ["/bin/bash", "-e", "-o", "pipefail",
                                                  "-c", cmd])


def rootpath(path):
    return os.path.join(ROOT, path.lstrip("/"))


def tail(p, n=3000):
    return (p.stdout + p.stderr)[-n:]


# --- outside: build, lint, debootstrap, install --------------------------------

def build():
    """dpkg-buildpackage in the unpacked release tarball; the .deb's path."""
    p = sh(["tar", "-xzf", TARBALL, "-C", DIR])
    src = os.path.join(DIR, re.sub(r"\.tar\.gz$", "", os.path.basename(TARBALL)))
    if not t.ok(p.returncode == 0, "the release tarball unpacks", p.stderr):
        return None
    # nocheck: ./dev check ran the same tests on the same tree before.
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 2))
    env = {k: v for k, v in env.items() if not k.startswith(("AGORA_", "MAKEFLAGS", "MFLAGS"))}
    t0 = time.monotonic()
    p = sh(["dpkg-buildpackage", "-us", "-uc"], cwd=src, env=env)
    debs = [f for f in os.listdir(DIR) if re.match(r"agora_.*_[a-z0-9]+\.deb$", f)]
    t.ok(p.returncode == 0 and len(debs) == 1,
         "dpkg-buildpackage -us -uc builds the source and the binary package (%.0f s)"
         % (time.monotonic() - t0), tail(p))
    if not debs:
        return None
    changes = [f for f in os.listdir(DIR) if f.endswith(".changes")]
    p = sh(["lintian", "--fail-on", "error,warning"] + [os.path.join(DIR, c) for c in changes])
    tags = [ln for ln in p.stdout.splitlines() if re.match(r"^[EW]: ", ln)]
    t.ok(p.returncode == 0 and not tags, "lintian finds no error or warning", tail(p))
    return os.path.join(DIR, debs[0])


def debootstrap():
    """A fresh root of the host's release; the minimal system is kept in
    CACHE.  debootstrap mounts /proc and /sys in the root: in a mount
    namespace of its own, they go when it ends, however it ends."""
    base = os.path.join(CACHE, "%s-minbase.tar" % SUITE)
    os.makedirs(ROOT)
    t0 = time.monotonic()
    if os.path.exists(base):
        p = sh(["tar", "-xpf", base, "-C", ROOT])
        how = "from the cached debootstrap"
    else:
        p = sh(["unshare", "--mount", "--fork", "debootstrap", "--variant=minbase", SUITE, ROOT,
                MIRROR])
        how = "debootstrap --variant=minbase"
        if p.returncode == 0:
            os.makedirs(CACHE, exist_ok=True)
            if sh(["tar", "-cpf", base + ".tmp", "-C", ROOT, "."]).returncode == 0:
                os.replace(base + ".tmp", base)
    t.ok(p.returncode == 0, "a fresh Debian %s root: %s (%.0f s)"
         % (SUITE, how, time.monotonic() - t0), tail(p))
    # As in Debian's build chroots: packages do not start their services
    # (there is no init here to start them; the test does, later).
    with open(rootpath("/usr/sbin/policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(rootpath("/usr/sbin/policy-rc.d"), 0o755)
    shutil.copy("/etc/resolv.conf", rootpath("/etc/resolv.conf"))
    return p.returncode == 0


def apt_install(deb):
    """apt-get install ./agora_*.deb in the root, with Debian's archive;
    its downloads are kept in CACHE."""
    archives = os.path.join(CACHE, "archives")
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    shutil.copy(deb, rootpath("/tmp"))
    script = ("mount -t proc proc {r}/proc && mount --bind {a} {r}/var/cache/apt/archives && "
              "chroot {r} /usr/bin/env -i PATH={p} DEBIAN_FRONTEND=noninteractive /bin/sh -ec "
              "'{apt} update && {apt} install ./tmp/{d} systemd curl'").format(
                  r=ROOT, a=archives, p=PATH, d=os.path.basename(deb), apt=APT)
    t0 = time.monotonic()
    p = sh(["unshare", "--mount", "--fork", "/bin/sh", "-c", script])
    t.ok(p.returncode == 0, "apt-get install ./%s: the package, what it depends on and what it "
         "recommends (%.0f s)" % (os.path.basename(deb), time.monotonic() - t0), tail(p))
    return p.returncode == 0


def installed():
    """What the maintainer scripts made, and that nothing started."""
    p = in_root("dpkg-query -W -f='${Status}' agora apache2 libapache2-mod-fcgid postgresql "
                "memcached cron logrotate")
    t.ok(p.stdout.count("install ok installed") == 7,
         "agora is installed, with Apache, mod_fcgid, PostgreSQL, memcached, cron and logrotate",
         tail(p))
    p = in_root("dpkg-query -W -f='${Conffiles}' agora")
    conf = sorted(ln.split()[0] for ln in p.stdout.splitlines() if ln.strip())
    t.ok(conf == ["/etc/agora/agora.conf", "/etc/apache2/conf-available/agora.conf",
                  "/etc/apache2/sites-available/agora.conf", "/etc/cron.d/agora",
                  "/etc/logrotate.d/agora"], "the files in /etc are conffiles", conf)
    modes = {path: owner_mode(rootpath(path)) if os.path.exists(rootpath(path)) else "missing"
             for path in ("/etc/agora", "/etc/agora/agora.conf", "/etc/agora/jwt.secret",
                          "/var/lib/agora/storage", "/var/log/agora", "/run/agora")}
    t.ok(modes == {"/etc/agora": "root:www-data 0750",
                   "/etc/agora/agora.conf": "root:www-data 0640",
                   "/etc/agora/jwt.secret": "root:www-data 0640",
                   "/var/lib/agora/storage": "www-data:www-data 0750",
                   "/var/log/agora": "www-data:www-data 0750",
                   "/run/agora": "www-data:www-data 0750"},
         "postinst gives www-data what it writes and its group what it reads", modes)
    secret = open(rootpath("/etc/agora/jwt.secret")).read()
    t.ok(re.fullmatch(r"[A-Za-z0-9+/]{64}", secret) is not None,
         "postinst made a JWT secret of 48 random bytes", len(secret))
    t.ok(cron_lines(rootpath("/etc/cron.d/agora")) == [],
         "the cron file runs nothing until its lines are uncommented")
    wants = [os.path.join(d, f) for d, _, fs in os.walk(rootpath("/etc/systemd/system"))
             for f in fs if f.startswith("agora")]
    units = sorted(os.listdir(rootpath("/lib/systemd/system")))
    t.ok(not wants and {"agora-worker.service", "agora-worker.timer",
                        "agora-fcgi-pool.service"} <= set(units),
         "the systemd units are installed and not enabled", wants)


# --- inside a namespace of its own: boot, the guide, an order, purge --------------

def boot():
    """An empty /run filled by systemd-tmpfiles, as at boot; then the
    services an installed Debian runs."""
    for cmd in ("ip link set lo up", "mount -t proc proc %s/proc" % ROOT,
                "mount -t tmpfs -o mode=0755 tmpfs %s/run" % ROOT,
                "mount -t tmpfs -o mode=1777 tmpfs %s/dev/shm" % ROOT):
        p = sh(["/bin/sh", "-c", cmd])
        if not t.ok(p.returncode == 0, "namespace: %s" % cmd.replace(ROOT, "ROOT"), tail(p)):
            return False
    p = in_root("systemd-tmpfiles --create --boot")
    run = rootpath("/run/agora")
    t.ok(os.path.isdir(run) and owner_mode(run) == "www-data:www-data 0750",
         "after boot, systemd-tmpfiles made /run/agora, www-data's",
         tail(p) + (owner_mode(run) if os.path.isdir(run) else " missing"))
    # The real cron, so that /etc/cron.d/agora runs as cron runs it.
    p = in_root("service postgresql start && service memcached start && service cron start")
    return t.ok(p.returncode == 0, "PostgreSQL, memcached and cron start", tail(p))


def guide():
    text = open(os.path.join(SRC, "debian/README.Debian")).read()
    blocks = marked_blocks(text, "deb-guide")
    t.ok(len(blocks) >= 4, "README.Debian marks its command blocks (%d)" % len(blocks))
    for i, block in enumerate(blocks, 1):
        block = re.sub(r"(?m)^systemctl (\w+) (\S+)$", r"service \2 \1", block)
        t0 = time.monotonic()
        p = in_root(block)
        first = block.strip().splitlines()[0][:60]
        if not t.ok(p.returncode == 0, "README.Debian block %d (%s) runs: exit %d, %.0f s"
                    % (i, first, p.returncode, time.monotonic() - t0),
                    block + "\n" + tail(p) + apache_log()):
            return False
    return True


def apache_log():
    path = rootpath("/var/log/apache2/error.log")
    return "\n--- Apache's error.log:\n" + open(path).read()[-1500:] if os.path.exists(path) else ""


def serving():
    r = request("GET", "/api/v1/health")
    body = r.json() if r.status == 200 else {}
    t.ok(r.status == 200 and "unavailable" not in str(body),
         "the installed Apache answers /health on port 80, every part available", r)
    lines = cron_lines(rootpath("/etc/cron.d/agora"))
    t.ok(len(lines) == 2 and all(u == "www-data" for u, _ in lines),
         "uncommented, the cron file runs two workers as www-data", lines)
    # cron starts them at the next minute: up to 60 s, then the work.
    order_paid(t, 90, "the workers cron started from /etc/cron.d/agora")
    store = rootpath("/var/lib/agora/storage")
    files = [os.path.join(d, f) for d, _, fs in os.walk(store) for f in fs]
    t.ok(files and all(owner_mode(f).startswith("www-data:") for f in files),
         "the invoice is stored in /var/lib/agora/storage, www-data's", files)
    log = rootpath("/var/log/agora/worker.log")
    text = open(log).read() if os.path.exists(log) else ""
    t.ok(os.path.exists(log) and owner_mode(log).startswith("www-data:")
         and "denied" not in text, "the workers log to /var/log/agora/worker.log, www-data's",
         text[-2000:])
    p = in_root("logrotate --force /etc/logrotate.d/agora")
    t.ok(p.returncode == 0 and os.path.exists(log + ".1"),
         "logrotate rotates the workers' log", tail(p))


def health(what):
    in_root("service apache2 reload")
    r = wait_for(lambda: request("GET", "/api/v1/health").status == 200, 10)
    t.ok(r is not None, what, request("GET", "/api/v1/health"))


def enabled():
    """a2query's answers for the site and the configuration agora."""
    return (in_root("a2query -q -s agora").returncode, in_root("a2query -q -c agora").returncode)


def upgrade():
    """The same package again over itself: postinst's upgrade path."""
    before = {f: open(rootpath(f)).read() for f in ("/etc/agora/jwt.secret",)}
    overrides = in_root("dpkg-statoverride --list").stdout
    p = in_root("dpkg -i /tmp/" + DEB)
    t.ok(p.returncode == 0 and re.search(r"0 applied, \d+ already up to date", p.stdout)
         and "agoractl migrate failed" not in p.stderr,
         "dpkg -i over the installed package: postinst's upgrade runs agoractl migrate", tail(p))
    after = {f: open(rootpath(f)).read() for f in before}
    t.ok(after == before and in_root("dpkg-statoverride --list").stdout == overrides
         and enabled() == (0, 0), "and keeps the JWT secret, the ownership and the site",
         (enabled(), in_root("dpkg-statoverride --list").stdout))
    health("the upgraded programs answer after Apache's reload")
    # An upgrade while the database is down must not fail: it says what to run.
    in_root("service postgresql stop")
    p = in_root("dpkg -i /tmp/" + DEB)
    in_root("service postgresql start")
    t.ok(p.returncode == 0 and "agoractl migrate failed; run it" in p.stderr,
         "with PostgreSQL down the upgrade still succeeds, and says to run agoractl migrate",
         tail(p))
    health("and once PostgreSQL is back the programs answer")


def remove_and_back():
    """apt-get remove, then the package again: Apache must stay valid in
    between, the cron lines idle, and the site come back."""
    p = in_root(APT + " remove agora")
    t.ok(p.returncode == 0 and enabled() == (33, 33),
         "apt-get remove disables the site and the configuration (a2query: by the maintainer)",
         (tail(p), enabled()))
    p = in_root("apache2ctl configtest")
    t.ok(p.returncode == 0, "Apache's configuration stays valid without the programs", tail(p))
    log = rootpath("/var/log/agora/worker.log")
    size = os.path.getsize(log)
    runs = [in_root("cd / && " + c, user=u) for u, c in cron_lines(rootpath("/etc/cron.d/agora"))]
    t.ok(runs and all(r.stdout + r.stderr == "" for r in runs) and os.path.getsize(log) == size,
         "the cron lines left behind do nothing, quietly", [tail(r) for r in runs])
    p = in_root("dpkg -i /tmp/" + DEB)
    t.ok(p.returncode == 0 and enabled() == (0, 0),
         "installed again, the site and the configuration are enabled again", (tail(p), enabled()))
    health("and the programs answer")


def purge():
    in_root("service cron stop; service apache2 stop; service memcached stop; "
            "service postgresql stop; true")
    p = in_root(APT + " purge agora")
    t.ok(p.returncode == 0, "apt-get purge agora", tail(p))
    gone = [path for path in ("/var/lib/agora", "/var/log/agora", "/run/agora",
                              "/etc/agora/jwt.secret", "/etc/agora/agora.conf",
                              "/etc/cron.d/agora", "/etc/apache2/sites-enabled/agora.conf",
                              "/etc/apache2/conf-enabled/agora.conf")
            if os.path.lexists(rootpath(path))]
    t.ok(not gone, "the purge removed what the package made and enabled", gone)
    left = sorted(os.listdir(rootpath("/etc/agora")))
    t.ok(left == ["admin.url", "database.url"],
         "what the admin wrote into /etc/agora stays", left)
    p = in_root("dpkg-statoverride --list")
    t.ok("agora" not in p.stdout, "and the ownership postinst set is forgotten", p.stdout)
    p = in_root("apache2ctl configtest")
    t.ok(p.returncode == 0, "Apache's configuration is still valid without agora", tail(p))


def inside():
    """The namespace's half; its checks go on from the outside's number."""
    t.n = int(os.environ["AGORA_DEB_TAP_N"])
    if boot() and guide():
        serving()
        upgrade()
        remove_and_back()
    purge()
    sys.stdout.flush()
    os._exit(1 if t.failed else 0)


def outside():
    deb = build()
    if deb and debootstrap() and apt_install(deb):
        installed()
        env = dict(os.environ, AGORA_DEB_TAP_N=str(t.n), AGORA_DEB_FILE=os.path.basename(deb))
        p = subprocess.Popen(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
                              sys.executable, os.path.abspath(__file__), "--inside"],
                             env=env, stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            m = re.match(r"^(not )?ok (\d+)", line)
            if m:
                t.n = int(m.group(2))
                t.failed += 1 if m.group(1) else 0
            sys.stdout.write(line)
            sys.stdout.flush()
        p.wait()
        t.ok(p.returncode == 0 or t.failed, "the namespace's half ran to its end",
             p.returncode)
    t.done()


if "--inside" in sys.argv:
    inside()
else:
    outside()
