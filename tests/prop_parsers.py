"""Property tests of our parsers against Python's, with hypothesis.

Where Python has a reference, our code must agree with it on valid
input: every JSON document Python's json module writes (objects and
arrays nested up to the 16 levels agora_json_parse allows, unicode
strings written escaped or raw, integers within int64, finite floats,
object keys without U+0000, which json-c cannot hold)
is accepted by agora_json_parse and means the same value; every string
percent-encoded with urllib.parse.quote decodes (agora_url_decode) to
what urllib.parse.unquote gives, and quote_plus to unquote_plus.  The
verdicts come from tests/prop_helper (a check program); examples are
derandomized and bounded, so that a run is the same every time and
takes seconds.  No stack needed; skips where hypothesis is missing.
"""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

# hypothesis keeps caches (its Unicode tables) under .hypothesis in the
# working directory, the build tree, where make distcheck finds them left
# after distclean: keep them in a directory of this run's, removed at exit.
STORE = tempfile.mkdtemp(prefix="agora-hypothesis-")
atexit.register(shutil.rmtree, STORE, True)
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = STORE

try:
    from hypothesis import HealthCheck, given, settings, strategies as st
except ImportError:
    print("1..0 # SKIP python3-hypothesis is not installed")
    sys.exit(0)

HELPER = os.path.join(os.environ.get("AGORA_BUILDDIR", "."), "tests", "prop_helper")
EXAMPLES = 400
DEPTH_MAX = 16
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


class Helper:
    """tests/prop_helper, kept running: one record in, one verdict out."""

    def __init__(self):
        self.p = subprocess.Popen([HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, mode, data):
        self.p.stdin.write(b"%s %d\n" % (mode.encode(), len(data)) + data)
        self.p.stdin.flush()
        line = self.p.stdout.readline().decode().split() + [""]
        if line[0] not in ("ok", "bad"):
            raise RuntimeError("prop_helper stopped")
        return bytes.fromhex(line[1]) if line[0] == "ok" else None

    def close(self):
        self.p.stdin.close()
        return self.p.wait(timeout=30)


H = Helper()
n = failed = 0


def check(name, test):
    global n, failed
    n += 1
    try:
        test()
        print("ok %d - %s" % (n, name))
    except Exception as e:  # hypothesis raises the falsifying example
        failed += 1
        print("not ok %d - %s" % (n, name))
        for x in getattr(e, "exceptions", [e]):
            for line in str(x).splitlines()[:10]:
                print("# " + line)
    sys.stdout.flush()


def depth(v):
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
# Object keys without U+0000: json-c's keys are C strings, so
# agora_json_parse refuses them (400) rather than cut them short.
KEYS = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                      blacklist_categories=("Cs",)), max_size=8)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=40)
DOCS = (st.lists(VALUES, max_size=5) | st.dictionaries(KEYS, VALUES, max_size=5)
        ).filter(lambda d: depth(d) <= DEPTH_MAX)


@SETTINGS
@given(DOCS, st.booleans(), st.sampled_from([None, 1, "\t"]))
def json_agrees(doc, ascii_only, indent):
    text = json.dumps(doc, ensure_ascii=ascii_only, indent=indent).encode()
    ours = H.ask("json", text)
    assert ours is not None, "refused: %r" % text
    assert json.loads(ours) == doc, "%r became %r" % (text, ours)


@SETTINGS
@given(st.lists(st.text(max_size=4), min_size=DEPTH_MAX + 1, max_size=DEPTH_MAX + 1))
def json_depth_cap(keys):
    doc = "x"
    for k in keys:
        doc = {k: doc}
    assert H.ask("json", json.dumps(doc).encode()) is None, "17 levels accepted"


TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                      blacklist_categories=("Cs",)), max_size=40)


@SETTINGS
@given(TEXT, st.sampled_from(["", "/", "/:@!$&'()*+,;=", "~"]), st.booleans())
def path_agrees(s, safe, lower):
    q = urllib.parse.quote(s, safe=safe)
    if lower:  # percent-escapes in either case mean the same
        q = "".join(c.lower() if i > 0 and q[i - 1] == "%" or i > 1 and q[i - 2] == "%" else c
                    for i, c in enumerate(q))
    want = urllib.parse.unquote(q).encode()
    assert H.ask("path", q.encode()) == want, "%r" % q


@SETTINGS
@given(TEXT)
def query_agrees(s):
    q = urllib.parse.quote_plus(s)
    want = urllib.parse.unquote_plus(q).encode()
    assert H.ask("query", q.encode()) == want, "%r" % q


check("agora_json_parse accepts what json.dumps writes, with the same value", json_agrees)
check("agora_json_parse refuses 17 levels of nesting", json_depth_cap)
check("agora_url_decode of quote(s) is unquote's", path_agrees)
check("agora_url_decode with + of quote_plus(s) is unquote_plus's", query_agrees)
rc = H.close()
check("prop_helper ended cleanly", lambda: (_ for _ in ()).throw(RuntimeError(rc)) if rc else None)
print("1..%d" % n)
sys.exit(1 if failed else 0)
