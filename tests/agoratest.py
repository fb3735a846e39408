"""agoratest: what the integration tests share.

TAP output, an HTTP client that shows every header (HTTPS when
AGORA_TEST_URL is an https URL), and the stack the tests run against,
described by the AGORA_TEST_* variables ./dev check sets.  Without
AGORA_TEST_URL a test skips (a TAP plan of 1..0), so that make distcheck
passes where no stack runs.

Every answer that request(), cgi(), cgi_output() and FcgiPool.request()
return is first checked against the OpenAPI document (openapicheck); an
answer that breaks it is one more failed test of the test that got it.
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import openapicheck

URL = os.environ.get("AGORA_TEST_URL")
SERVER = os.environ.get("AGORA_TEST_SERVER", "?")
MODE = os.environ.get("AGORA_TEST_MODE", "?")


def need_stack():
    if not URL:
        print("1..0 # SKIP AGORA_TEST_URL is not set (run ./dev check)")
        sys.exit(0)


class Tap:
    def __init__(self):
        global _tap
        self.n = 0
        self.failed = 0
        # Answers are checked from the tests' threads too.
        self.lock = threading.RLock()
        sys.excepthook = self._crash
        _tap = self
        for what, diag in _pending:
            self.ok(False, what, diag)
        del _pending[:]

    def _crash(self, kind, value, tb):
        """An uncaught exception is one more failed test, with its traceback."""
        import traceback
        self.ok(False, "the test ran to its end",
                "".join(traceback.format_exception(kind, value, tb)))
        print("1..%d" % self.n)
        sys.exit(1)

    def ok(self, cond, what, diag=None):
        with self.lock:
            self.n += 1
            if not cond:
                self.failed += 1
            print(("ok" if cond else "not ok") + " %d - %s [%s/%s]" % (self.n, what, SERVER, MODE))
            if not cond and diag is not None:
                for line in str(diag).splitlines()[:20]:
                    print("# " + line)
            sys.stdout.flush()
        return cond

    def done(self):
        with self.lock:
            print("# %d answers checked against the OpenAPI document, %d broke it"
                  % (checked["answers"], checked["broken"]))
            print("1..%d" % self.n)
            sys.exit(1 if self.failed else 0)


_tap = None
# Failed checks of answers received before the Tap existed.
_pending = []
checked = {"answers": 0, "broken": 0}
_count_lock = threading.Lock()
_checker = None
# The upgrade test talks to the previous release too, which answers by
# its own document: it turns the check off.
CHECK_OPENAPI = True


def checker():
    """The Checker of fcgi/openapi.json, made on first use."""
    global _checker
    if _checker is None:
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "fcgi", "openapi.json")) as f:
            doc = json.load(f)
        prefix = os.environ.get("AGORA_TEST_PREFIX")
        static = os.path.join(prefix, "share", "agora", "static") if prefix else None
        _checker = openapicheck.Checker(doc, static)
    return _checker


def check_answer(method, target, resp, via_server=False, request_headers=None,
                 request_body_len=0):
    """Check resp, the answer to method target, against the OpenAPI
    document; a mismatch is a failed test of the running Tap (or of the
    next one made).  Returns resp."""
    if not CHECK_OPENAPI:
        return resp
    errs = checker().check(method, target, resp.status, resp.headers, resp.body,
                           via_server, request_headers, request_body_len)
    what = "the answer matches the OpenAPI document: %s %s %d" % (method, target[:120],
                                                                  resp.status)
    with _count_lock:
        checked["answers"] += 1
        checked["broken"] += 1 if errs else 0
    if errs:
        diag = "\n".join(errs) + "\n" + repr(resp)[:600]
        if _tap is not None:
            _tap.ok(False, what, diag)
        else:
            _pending.append((what, diag))
    return resp


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def is_problem(self, status, code=None):
        j = self.json()
        return (self.status == status
                and (self.header("Content-Type") or "").startswith("application/problem+json")
                and isinstance(j, dict) and j.get("status") == status
                and isinstance(j.get("request_id"), str) and j["request_id"] != ""
                and (code is None or j.get("code") == code))

    def __repr__(self):
        return "%d %r %r" % (self.status, self.headers, self.body[:500])


# Over HTTPS (a setup that serves TLS), the server's certificate is
# checked against the stack's CA, AGORA_TEST_CA, and its name.
CA = os.environ.get("AGORA_TEST_CA") or None
_tls_context = None


def tls_context():
    """The client TLS context of request(): the stack's CA, names checked."""
    global _tls_context
    if _tls_context is None:
        import ssl
        _tls_context = ssl.create_default_context(cafile=CA)
    return _tls_context


def connection(timeout=30, url=None):
    """An unopened HTTP(S) connection to url (the stack's, by default)."""
    u = urllib.parse.urlsplit(url or URL)
    if u.scheme == "https":
        return http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                           context=tls_context())
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def request(method, path, body=None, headers=None, timeout=30):
    c = connection(timeout)
    h = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    try:
        c.request(method, path, body=body, headers=h)
    except OSError:  # BrokenPipeError, ConnectionResetError, ssl.SSLError
        # A server that refuses a body it will not read (413) answers and
        # closes before the body is sent; over TLS the rest of the body
        # then meets a closed connection.  Its answer is read all the same.
        pass
    r = c.getresponse()
    data = r.read()
    resp = Resp(r.status, r.getheaders(), data)
    c.close()
    return check_answer(method, path, resp, True, h, len(body or b""))


def svc(what, action):
    """Start or stop PostgreSQL (pg) or memcached (mc) of the test stack."""
    subprocess.run([os.environ["AGORA_TEST_DEV"], "_svc",
                    os.environ.get("AGORA_TEST_STACK", "check"), what, action],
                   check=True, stdout=subprocess.DEVNULL)


def functions_schema():
    """The schema of this build's SQL functions (configure.ac), which its
    programs put first on their search_path (lib/db.c)."""
    path = os.path.join(os.environ.get("AGORA_BUILDDIR", "."), "config.h")
    with open(path) as f:
        m = re.search(r'^#define AGORA_FUNCTIONS_SCHEMA "(\w+)"$', f.read(), re.M)
    return m.group(1)


def psql_env():
    """The environment for psql and pgbench: the session calls the
    functions the programs call."""
    return dict(os.environ, PGOPTIONS="-c search_path=%s,public" % functions_schema())


def psql(sql, admin=True, check=True):
    """Run sql (a statement, or a list run in one session) through psql,
    with the programs' search_path; returns (returncode, stdout, stderr)."""
    url = os.environ["AGORA_TEST_ADMIN_URL" if admin else "AGORA_TEST_APP_URL"]
    args = []
    for s in (sql if isinstance(sql, list) else [sql]):
        args += ["-c", s]
    p = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url] + args,
                       capture_output=True, text=True, env=psql_env())
    if check and p.returncode != 0:
        raise RuntimeError(p.stderr)
    return p.returncode, p.stdout.strip(), p.stderr


def wait_for(pred, seconds):
    """Poll pred until it is true or seconds pass; returns the time taken or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def port_open(port, seconds=0.2):
    """Whether something accepts TCP connections on loopback's PORT."""
    try:
        socket.create_connection(("127.0.0.1", port), seconds).close()
        return True
    except OSError:
        return False


def cgi(prog, method, uri, body=b"", ctype=None, headers=None, env=None):
    """Run an installed program once as plain CGI.

    Returns a Resp built from its output, so that CGI answers can be
    checked like HTTP ones.  env adds variables (AGORA_* overrides).
    """
    e = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
         "SERVER_PROTOCOL": "HTTP/1.1", "AGORA_CONFIG": os.environ["AGORA_CONFIG"],
         "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body))}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        e["CONTENT_LENGTH"] = str(len(body))
        ctype = ctype or "application/json"
    if ctype:
        e["CONTENT_TYPE"] = ctype
    for k, v in (headers or {}).items():
        e["HTTP_" + k.upper().replace("-", "_")] = v
    e.update(env or {})
    p = subprocess.run([os.path.join(os.environ["AGORA_TEST_CGIDIR"], prog)], input=body,
                       env=e, capture_output=True, timeout=60)
    return cgi_output(method, uri, p.stdout)


def cgi_output(method, uri, out):
    """The Resp of what a program wrote as CGI (or through cgi-fcgi),
    checked as the answer to method uri."""
    head, _, payload = out.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("Status:") else 0
    hdrs = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
    return check_answer(method, uri, Resp(status, hdrs, payload))


class FcgiPool:
    """procs FastCGI processes of an installed program on one socket of
    their own, as spawn-fcgi starts them, with AGORA_* overrides in env.
    Requests go through cgi-fcgi (libfcgi-bin), a real FastCGI client."""

    def __init__(self, prog, procs, env=None):
        import socket
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="agora-fcgi-")
        self.path = os.path.join(self.dir, "sock")
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(self.path)
        ls.listen(64)
        e = {"AGORA_CONFIG": os.environ["AGORA_CONFIG"]}
        e.update(env or {})
        self.procs = [subprocess.Popen([os.path.join(os.environ["AGORA_TEST_CGIDIR"], prog)],
                                       stdin=ls.fileno(), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, env=e)
                      for _ in range(procs)]
        ls.close()

    def request(self, method, uri, env=None, body=b"", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        e = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "REQUEST_URI": uri,
             "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
             "CONTENT_LENGTH": str(len(body)), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k, v in (headers or {}).items():
            k = k.upper().replace("-", "_")
            e[k if k == "CONTENT_TYPE" else "HTTP_" + k] = v
        e.update(env or {})
        p = subprocess.run(["cgi-fcgi", "-bind", "-connect", self.path], env=e,
                           input=body, capture_output=True, timeout=60)
        return cgi_output(method, uri, p.stdout)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=10)
        os.unlink(self.path)
        os.rmdir(self.dir)


def config_value(key):
    """A key of the stack's agora.conf."""
    with open(os.environ["AGORA_CONFIG"]) as f:
        for line in f:
            k, _, v = line.partition("=")
            if k.strip() == key:
                return v.strip()
    return None


def mc(command, end):
    """Send one text-protocol command to the stack's memcached; its answer."""
    host, _, port = config_value("memcached_servers").partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as c:
        c.sendall(command.encode() + b"\r\n")
        data = b""
        while not data.endswith(end):
            data += c.recv(65536)
    return data


def mc_get(key):
    """The value of key in the stack's memcached, or None."""
    head, _, rest = mc("get " + key, b"END\r\n").partition(b"\r\n")
    if not head.startswith(b"VALUE"):
        return None
    return rest[:int(head.split()[3])]


def bearer(token):
    return {"Authorization": "Bearer " + token}


def new_user(email, role="customer", password="integration test password"):
    """Make a user (an admin through agoractl) and log in; returns auth headers."""
    if role == "admin":
        ctl = os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agoractl")
        subprocess.run([ctl, "user", "add", "--email", email, "--name", "Admin", "--role", "admin",
                        "--password-stdin"], input=password + "\n", capture_output=True,
                       text=True, check=True)
    else:
        request("POST", "/api/v1/auth/register",
                body={"email": email, "password": password, "name": "Shopper"})
    r = request("POST", "/api/v1/auth/login", body={"email": email, "password": password})
    return bearer(r.json()["access_token"])


def sbin(name):
    return os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", name)


def ctl(*args):
    """Run agoractl; returns (returncode, stdout, stderr)."""
    p = subprocess.run([sbin("agoractl")] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def start_worker(*args, env=None, log=None):
    """Start agora-worker with AGORA_* overrides in env; its log goes to log."""
    e = dict(os.environ)
    e.update(env or {})
    out = open(log, "ab") if log else subprocess.DEVNULL
    # As in production (the cron file), the worker runs as the web
    # server's user: the files it stores must be readable by the programs.
    who = {"user": "www-data", "group": "www-data", "extra_groups": []} \
        if os.geteuid() == 0 else {}
    return subprocess.Popen([sbin("agora-worker")] + list(args), env=e,
                            stdout=subprocess.DEVNULL, stderr=out, **who)


def run_worker(*args, env=None, log=None, timeout=120):
    """Run agora-worker to its end; returns its exit status."""
    p = start_worker(*args, env=env, log=log)
    return p.wait(timeout=timeout)


def sign(secret, body, t=None):
    """An Agora-Signature header value for body, as the gateway makes it."""
    import hashlib
    import hmac
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


class Gateway:
    """The fake payment gateway (tests/fakegateway.py) on a loopback port
    (0: any free one), run by the test."""

    def __init__(self, port=0):
        import tempfile
        fd, self.portfile = tempfile.mkstemp()
        os.close(fd)
        os.unlink(self.portfile)
        here = os.path.dirname(os.path.abspath(__file__))
        self.p = subprocess.Popen([sys.executable, os.path.join(here, "fakegateway.py"),
                                   self.portfile, str(port)])
        for _ in range(300):  # up to 15 s: a loaded machine starts Python slowly
            if os.path.exists(self.portfile) and open(self.portfile).read():
                break
            time.sleep(0.05)
        self.port = int(open(self.portfile).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, path, body=None):
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        with urllib.request.urlopen(self.url + path, data=data, timeout=10) as r:
            return json.loads(r.read())

    def mode(self, mode, stall=1.0):
        self.call("/_mode", {"mode": mode, "stall": stall})

    def charges(self):
        return self.call("/_state")["charges"]

    def refunds(self):
        return self.call("/_state")["refunds"]

    def env(self):
        """The worker's settings for this gateway."""
        return {"AGORA_PAYMENT_PROVIDER": "http", "AGORA_PAYMENT_GATEWAY_URL": self.url,
                "AGORA_PAYMENT_GATEWAY_KEY": "sk_test_agora"}

    def stop(self):
        self.p.kill()
        self.p.wait()
        os.unlink(self.portfile)


# --- which process answered ----------------------------------------------------
# Each request's log line (the web server's error log, or the pool's log
# files) names the process that served it: "pid" beside "request_id".

def log_mark():
    """Where the stack's logs end now; served_by() reads what follows."""
    d = os.path.join(os.path.dirname(os.environ["AGORA_CONFIG"]), "logs")
    return {os.path.join(d, f): os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)}


def log_lines(mark, logs=None):
    """The JSON log lines written since mark to the stack's logs (the web
    server's error log or the pool's files; in Apache's, after its own
    prefix), or to the files of logs (a list of paths, read whole)."""
    d = os.path.dirname(next(iter(mark))) if mark else None
    paths = [os.path.join(d, f) for f in os.listdir(d)] if d else []
    for path in paths + list(logs or []):
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            f.seek(mark.get(path, 0) if path in paths else 0)
            for line in f:
                i = line.find(b'{"ts"')
                if i < 0:
                    continue
                try:
                    yield json.loads(line[i:])
                except ValueError:
                    continue


def served_by(mark, rids):
    """{request id: pid} for the requests of rids logged since mark."""
    want = set(rids)
    return {j["request_id"]: j["pid"] for j in log_lines(mark)
            if j.get("request_id") in want and "pid" in j}


def live(pids):
    """The pids of processes that still run: mod_fcgid ends idle ones, and
    a process that has ended can serve nothing stale.  One that has exited
    stays in /proc as a zombie until its parent reaps it (mod_fcgid's
    process manager does so on its own schedule): that one has ended."""
    def running(p):
        try:
            with open("/proc/%d/stat" % int(p)) as f:
                # The state follows the command, which is in parentheses.
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False
    return {p for p in pids if running(p)}


def across_processes(send, want, width=12, rounds=15):
    """Call send(request_id) width at a time until the processes of want
    (pids; None: all rounds) have all answered, or rounds pass.  Returns
    (answers, pids): every Resp, and the set of pids that served them."""
    import threading
    import uuid
    answers, pids, rids = [], set(), []
    mark = log_mark()
    for _ in range(rounds):
        batch = ["t-" + uuid.uuid4().hex for _ in range(width)]
        out = [None] * width
        # Sent together: a server that hands each request to the process
        # it used last keeps to one process for requests that never
        # overlap.
        start = threading.Barrier(width)

        def run(i):
            start.wait(60)
            out[i] = send(batch[i])
        threads = [threading.Thread(target=run, args=(i,)) for i in range(width)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        answers += out
        rids += batch
        # A line is written when its answer has gone; give it a moment.
        wait_for(lambda: len(served_by(mark, rids)) == len(rids), 2)
        pids = set(served_by(mark, rids).values())
        if want is not None and live(want) <= pids:
            break
    return answers, pids


def reset_ok(resp, t0, t1, window=60, header="RateLimit-Reset"):
    """Whether resp's header (seconds until the rate-limit window ends)
    is right for some second of the server's clock between t0 and t1,
    the times before the request was sent and after its answer came."""
    try:
        v = int(resp.header(header))
    except (TypeError, ValueError):
        return False
    # The server reads time(2), which Linux serves from the clock of the
    # last tick: just after a second begins it may still say the one
    # before, which time.time() has left (one answer in 120 failed so).
    return any(v == window - s % window for s in range(int(t0 - 0.05), int(t1) + 1))


def in_minute(seconds):
    """When fewer than seconds are left in the clock's minute (the window
    of the rate limits), wait for the next one, so that a sequence of
    requests counted against a limit falls in one window."""
    if 60 - time.time() % 60 < seconds:
        time.sleep(60.5 - time.time() % 60)
