"""The manual pages say what the programs do: each command and option
agoractl, agora-worker and agora-fcgi-pool accept (read from their
sources) is in its page, and the page names none they do not accept;
every key of lib/config.c's table is in agora.conf(5) and the page
documents no other; the FastCGI programs Makefile.am installs are the
ones the README's install table, agora.conf(5) and agora-fcgi-pool(8)
list.  --help prints to stdout and exits 0, an unknown command is named,
and mandoc -Tlint -Wwarning finds nothing in the four pages (where
mandoc is installed)."""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from agoratest import Tap  # noqa: E402

SRC = os.environ.get("AGORA_SRCDIR", os.path.join(HERE, ".."))
BUILD = os.environ.get("AGORA_BUILDDIR", os.path.join(HERE, ".."))
PAGES = ["man/agora.conf.5", "man/agoractl.8", "man/agora-worker.8",
         "man/agora-fcgi-pool.8"]
t = Tap()


def read(path):
    with open(os.path.join(SRC, path)) as f:
        return f.read()


def same(got, want, what):
    """got and want are equal sets; the diagnostic says which side lacks what."""
    t.ok(got == want, what,
         "only in the program: %s\nonly in the page: %s"
         % (sorted(want - got), sorted(got - want)))


def c_block(text, start):
    """The text of the C initializer that follows start, its adjacent
    string literals joined."""
    i = text.index(start)
    block = text[i:text.index("\n};", i)]
    return re.sub(r'"\s*\n\s*"', "", block)


# --- mdoc ------------------------------------------------------------------

MACRO = re.compile(r"^[A-Z][a-z][a-z]?$")


def sections(page):
    """{section name: its lines}."""
    out, name = {}, None
    for line in page.splitlines():
        if line.startswith(".Sh ") or line.startswith(".SH "):
            name = line[4:].strip().strip('"')
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return out


def flags(lines):
    """Every option an mdoc text shows with Fl: "-n", "--help"."""
    out = set()
    for line in lines:
        if not line.startswith("."):
            continue
        words = line[1:].split()
        for i, w in enumerate(words):
            if w != "Fl":
                continue
            for arg in words[i + 1:]:
                if MACRO.match(arg):
                    break
                if re.match(r"^-?[a-z][a-z-]*$", arg):
                    out.add("-" + arg)
    return out


def items(lines):
    """The commands of the .It Cm lines: their words up to the first macro."""
    out = set()
    for line in lines:
        m = re.match(r"^\.It Cm (.*)$", line)
        if m:
            words = []
            for w in m.group(1).split():
                if MACRO.match(w):
                    break
                words.append(w)
            out.add(" ".join(words))
    return out


def synopsis_commands(lines):
    """The commands of the SYNOPSIS: the Cm words after each .Nm line."""
    out, cur = set(), None
    for line in lines + [".Nm"]:
        if line == ".Nm":
            if cur:
                out.add(cur)
            cur = None
        elif line.startswith(".Cm ") and cur is None:
            cur = line[4:].strip()
    return out


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def built(path):
    """A program of the build tree, or None where it is not built."""
    p = os.path.join(BUILD, path)
    return p if os.access(p, os.X_OK) else None


# --- agoractl --------------------------------------------------------------

src = "".join(read(os.path.join("ctl", f)) for f in
              sorted(os.listdir(os.path.join(SRC, "ctl"))) if f.endswith(".c"))
table = re.findall(r'\{\s*"([^"]*)",\s*"([^"]*)",',
                   c_block(read("ctl/main.c"), "} commands[] = {"))
commands = {name for name, _ in table}
options = set(re.findall(r'"(--?[a-z][a-z-]*)"', src))
for _, args in table:
    options |= set(re.findall(r"--[a-z][a-z-]*", args))
t.ok(len(commands) >= 12 and {"--dir", "--email", "--help", "-h"} <= options,
     "agoractl: the command table and options are read from the source",
     (sorted(commands), sorted(options)))
page = sections(read("man/agoractl.8"))
same(items(page["DESCRIPTION"]), commands,
     "agoractl(8) describes each command of agoractl's table, and no other")
same(synopsis_commands(page["SYNOPSIS"]), commands,
     "agoractl(8)'s synopsis shows each command, and no other")
same(flags(page["SYNOPSIS"] + page["DESCRIPTION"]), options,
     "agoractl(8) shows each option agoractl accepts, and no other")

ctl = built("ctl/agoractl")
if ctl:
    rc, out, err = run([ctl, "--help"])
    missing = [c for c in commands if c not in out]
    t.ok(rc == 0 and not missing and "AGORA_CONFIG" in out and
         "agora.conf" in out and err == "",
         "agoractl --help: every command and the configuration file, on "
         "stdout, exit 0", (rc, missing, err))
    rc2, out2, _ = run([ctl, "-h"])
    t.ok(rc2 == 0 and out2 == out, "agoractl -h is --help", rc2)
    rc, out, err = run([ctl, "bogus"])
    t.ok(rc == 2 and out == "" and
         err.startswith("agoractl: unknown command 'bogus'\nusage: "),
         "agoractl bogus: the command named, the usage on stderr, exit 2",
         (rc, err))
    rc, out, err = run([ctl, "user", "bogus", "x@y"])
    t.ok(rc == 2 and "unknown command 'user bogus'" in err,
         "agoractl user bogus: both words named", (rc, err))
else:
    for what in ("--help", "-h", "bogus", "user bogus"):
        t.ok(True, "agoractl %s # SKIP agoractl is not built" % what)

# --- agora-worker ----------------------------------------------------------

src = read("worker/agora-worker.c")
options = set(re.findall(r'"(--?[a-z][a-z-]*)"', src))
t.ok({"--once", "--loop", "--deadline", "--topics", "-h", "--help"} <= options,
     "agora-worker: its options are read from the source", sorted(options))
page = sections(read("man/agora-worker.8"))
same(flags(page["SYNOPSIS"] + page["DESCRIPTION"]), options,
     "agora-worker(8) shows each option agora-worker accepts, and no other")
same(flags(page["DESCRIPTION"]), options,
     "agora-worker(8) describes each option")

worker = built("worker/agora-worker")
if worker:
    rc, out, err = run([worker, "--help"])
    missing = [o for o in options if o not in out]
    t.ok(rc == 0 and not missing and "AGORA_CONFIG" in out and err == "",
         "agora-worker --help: every option and the configuration file, "
         "on stdout, exit 0", (rc, missing, err))
    rc, out, err = run([worker, "--bogus"])
    t.ok(rc == 2 and out == "" and err.startswith("usage: "),
         "agora-worker --bogus: the usage on stderr, exit 2", (rc, err))
else:
    for what in ("--help", "--bogus"):
        t.ok(True, "agora-worker %s # SKIP agora-worker is not built" % what)

# --- agora-fcgi-pool -------------------------------------------------------

src = read("httpd-conf/agora-fcgi-pool.in")
m = re.search(r"^([a-z]+(?: \| [a-z]+)*)\) ;;$", src, re.M)
commands = set(m.group(1).split(" | ")) if m else set()
m = re.search(r"getopts ([a-z:]+) ", src)
options = {"-" + c for c in (m.group(1) if m else "") if c != ":"}
options |= set(re.findall(r"^(?:-h \| )?(--[a-z]+)\) help", src, re.M))
t.ok(commands == {"start", "stop", "status", "procs"} and
     {"-n", "-u", "-d", "-l", "-h", "--help"} <= options,
     "agora-fcgi-pool: its commands and options are read from the script",
     (sorted(commands), sorted(options)))
page = sections(read("man/agora-fcgi-pool.8"))
same({c.split()[0] for c in items(page["DESCRIPTION"])}, commands,
     "agora-fcgi-pool(8) describes each command, and no other")
same(synopsis_commands(page["SYNOPSIS"]), commands,
     "agora-fcgi-pool(8)'s synopsis shows each command, and no other")
same(flags(page["SYNOPSIS"] + page["DESCRIPTION"]), options,
     "agora-fcgi-pool(8) shows each option the script accepts, and no other")

pool = built("httpd-conf/agora-fcgi-pool")
if pool:
    rc, out, err = run(["sh", pool, "--help"])
    missing = [w for w in sorted(commands | options) if w not in out]
    t.ok(rc == 0 and not missing and "AGORA_CONFIG" in out and err == "",
         "agora-fcgi-pool --help: every command and option, on stdout, "
         "exit 0", (rc, missing, err))
    rc, out, err = run(["sh", pool, "bogus"])
    t.ok(rc == 2 and out == "" and
         err.startswith("agora-fcgi-pool: unknown command 'bogus'\nusage: "),
         "agora-fcgi-pool bogus: the command named, the usage on stderr, "
         "exit 2", (rc, err))
else:
    for what in ("--help", "bogus"):
        t.ok(True, "agora-fcgi-pool %s # SKIP it is not built" % what)

# --- agora.conf(5) ---------------------------------------------------------

src = read("lib/config.c")
block = c_block(src, "static const struct key keys[] = {")
keys = {k: c for c, k in re.findall(r"^\s*([SFI])\((\w+),", block, re.M)}
t.ok(len(keys) >= 60 and "database_url" in keys and
     keys.get("sms_token_file") == "F",
     "lib/config.c: the key table is read", len(keys))
text = read("man/agora.conf.5")
page = sections(text)
heads = set()
lines = page["KEYS"]
for i, line in enumerate(lines[:-1]):
    if line == ".TP":
        heads |= set(re.findall(r"[a-z][a-z0-9_]*[a-z0-9]",
                                re.sub(r"^\.B[IR]* ", "", lines[i + 1])))
words = set(re.findall(r"[a-z][a-z0-9_]*[a-z0-9]", re.sub(r"\\f.", " ", text)))
same(heads, {k for k, c in keys.items() if c != "F"},
     "agora.conf(5) has an entry under KEYS for each key but the secret "
     "files, and none for a key the table lacks")
missing = sorted(k for k in keys if k not in words)
t.ok(not missing, "agora.conf(5) names every key, the secret files "
     "(KEY_file) included", missing)

# --- the programs ----------------------------------------------------------

mk = read("Makefile.am")
m = re.search(r"^agoracgi_PROGRAMS =((?:.*\\\n)*.*)$", mk, re.M)
programs = set(re.findall(r"cgi-bin/([a-z0-9_-]+)", m.group(1)))
t.ok(len(programs) >= 14, "Makefile.am: the FastCGI programs are read",
     sorted(programs))
readme = read("README.md")
row = [line for line in readme.splitlines()
       if line.startswith("| `") and "/agora/cgi-bin/` |" in line]
same(set(re.findall(r"`([a-z0-9_-]+)`", row[0])) if row else set(), programs,
     "the README's install table lists every program make install installs")
m = re.search(r"configures the agora FastCGI programs\n(.*?)\)", text, re.S)
same(set(re.findall(r"^\.(?:B|BR|RB) (?:\( )?([a-z0-9_-]+)", m.group(1) if m else "",
                    re.M)), programs,
     "agora.conf(5) lists every program it configures")
m = re.search(r"The programs are those installed in\n(.*?)\n\.Pp",
              read("man/agora-fcgi-pool.8"), re.S)
same(set(re.findall(r"^\.Cm ([a-z0-9_-]+)", m.group(1) if m else "", re.M)),
     programs, "agora-fcgi-pool(8) lists every program it starts")
m = re.search(r"^dist_man8_MANS =((?:.*\\\n)*.*)$", mk, re.M)
t.ok(m is not None and
     set(re.findall(r"man/\S+\.8", m.group(1))) == set(PAGES[1:]),
     "make install installs the three pages of section 8")

# --- mandoc ----------------------------------------------------------------

mandoc = shutil.which("mandoc")
for path in PAGES:
    if mandoc is None:
        t.ok(True, "mandoc -Tlint %s # SKIP mandoc is not installed" % path)
        continue
    rc, out, err = run([mandoc, "-Tlint", "-Wwarning",
                        os.path.join(SRC, path)])
    t.ok(rc == 0 and out + err == "",
         "mandoc -Tlint -Wwarning %s: clean" % path, out + err)
t.done()
