"""HTTPS as shipped (agora-apache-tls.conf, agora-lighttpd-tls.conf): the
protocol floor, no weak cipher, no compression, HSTS on every answer, the
plain port's redirect, and OCSP stapling where the server can.

Runs where the stack serves HTTPS (./dev check: the pool setups) and
skips elsewhere.  The handshakes are openssl s_client's: a client that
offers old protocols and ciphers when told to (security level 0), so that
a refusal is the server's.
"""
import os
import re
import subprocess
import sys
import urllib.parse

from agoratest import Tap, need_stack, request, connection, URL, CA, SERVER

need_stack()
if not URL.startswith("https:"):
    print("1..0 # SKIP this setup serves plain HTTP")
    sys.exit(0)
t = Tap()
u = urllib.parse.urlsplit(URL)
PLAIN = os.environ.get("AGORA_TEST_PLAIN_URL")
HSTS = "max-age=63072000"


def s_client(*args):
    """(handshake done, what s_client printed) of one connection."""
    p = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (u.hostname, u.port),
                        "-CAfile", CA, "-verify_return_error"] + list(args),
                       input=b"", capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace")
    return p.returncode == 0 and "BEGIN CERTIFICATE" in out, out


def negotiated(out):
    """(protocol, cipher) of s_client's "New, TLSv1.3, Cipher is ..." line."""
    m = re.search(r"^New, (\S+), Cipher is (\S+)", out, re.M)
    return (m.group(1), m.group(2)) if m else (None, None)


def field(out, name):
    """The value of s_client's line "name: value" (or "name    : value")."""
    m = re.search(r"^\s*%s\s*:\s*(\S.*?)\s*$" % re.escape(name), out, re.M)
    return m.group(1) if m else None


# The protocol floor: TLS 1.2.
for proto in ("-tls1", "-tls1_1"):
    ok, out = s_client(proto, "-cipher", "DEFAULT@SECLEVEL=0")
    t.ok(not ok, "%s is refused" % proto, out[-600:])
ok, out = s_client("-tls1_2")
t.ok(ok and negotiated(out)[0] == "TLSv1.2" and "Verify return code: 0 (ok)" in out,
     "-tls1_2 is accepted, the certificate verifies against the stack's CA", out[-900:])
cipher = negotiated(out)[1] or ""
t.ok(cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher),
     "TLS 1.2 picks forward-secret ECDHE with an AEAD cipher: %s" % cipher, out[-900:])
t.ok(field(out, "Compression") == "NONE", "no TLS compression", out[-900:])
ok, out = s_client("-tls1_3")
t.ok(ok and negotiated(out)[0] == "TLSv1.3", "-tls1_3 is accepted", out[-900:])
ok, out = s_client()
t.ok(ok and negotiated(out)[0] == "TLSv1.3", "a client that has TLS 1.3 gets it", out[-900:])

# No weak cipher: CBC with a SHA-1 or SHA-2 MAC, static RSA, RC4, 3DES,
# no authentication.  Each is offered alone, with TLS 1.2.  Those this
# openssl does not have are left out (offering them proves nothing).
weak = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA", "AES128-SHA", "AES256-GCM-SHA384",
        "DES-CBC3-SHA", "ECDHE-ECDSA-DES-CBC3-SHA", "RC4-SHA", "ECDHE-ECDSA-RC4-SHA",
        "AECDH-AES128-SHA", "ECDHE-ECDSA-NULL-SHA"]
known = [c for c in weak
         if subprocess.run(["openssl", "ciphers", c + "@SECLEVEL=0"],
                           capture_output=True).returncode == 0]
t.ok("ECDHE-ECDSA-AES128-SHA" in known and "ECDHE-ECDSA-AES128-SHA256" in known,
     "the client has CBC suites for the stack's ECDSA key to try", known)
for c in known:
    ok, out = s_client("-tls1_2", "-cipher", c + "@SECLEVEL=0")
    t.ok(not ok, "TLS 1.2 with %s alone is refused" % c, out[-600:])
# The same offer with a good suite: the refusals above are the cipher's.
ok, out = s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256@SECLEVEL=0")
t.ok(ok and negotiated(out)[1] == "ECDHE-ECDSA-AES128-GCM-SHA256",
     "TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 alone is accepted", out[-900:])

# HSTS on every answer over HTTPS: the programs', the static files',
# the web server's own; two years, no includeSubDomains, no preload.
for path, status in [("/api/v1/health", 200), ("/api/v1/nope", 404), ("/", 200),
                     ("/robots.txt", 200), ("/no-such-file.txt", 404)]:
    r = request("GET", path)
    t.ok(r.status == status and r.header("Strict-Transport-Security") == HSTS,
         "GET %s over HTTPS: %d with Strict-Transport-Security: %s" % (path, status, HSTS), r)
r = request("GET", "/robots.txt")
t.ok(r.header("X-Content-Type-Options") == "nosniff" and r.header("X-Frame-Options") == "DENY"
     and "default-src 'self'" in (r.header("Content-Security-Policy") or ""),
     "static files keep their own headers beside HSTS", r)
r = request("GET", "/api/v1/health")
csp = [v for k, v in r.headers if k.lower() == "content-security-policy"]
t.ok(len(csp) == 1 and "default-src 'self'" not in csp[0],
     "API answers get HSTS, not the static files' headers", r)


# The plain port: a permanent redirect to the same path and query.
def plain(method, target, body=None):
    c = connection(url=PLAIN)
    c.request(method, target, body=body, headers={"Content-Type": "application/json"}
              if body else {})
    r = c.getresponse()
    r.read()
    c.close()
    return r


for target in ["/", "/robots.txt", "/api/v1/health", "/api/v1/products?q=tent&page=2",
               "/api/v1/products?q=a%20b%26c&tag=%C3%A9", "/api/v1/orders?a=1&a=2",
               "/api/v1/caf%C3%A9%20x"]:
    r = plain("GET", target)
    want = "https://%s:%d%s" % (u.hostname, u.port, target)
    t.ok(r.status in (301, 308) and r.getheader("Location") == want,
         "plain GET %s: %s to %s" % (target, r.status, want),
         "%d %r" % (r.status, r.getheaders()))
r = plain("POST", "/api/v1/auth/login?x=1", body=b"{}")
t.ok(r.status == 308 and r.getheader("Location")
     == "https://%s:%d/api/v1/auth/login?x=1" % (u.hostname, u.port),
     "plain POST: 308, which keeps the method and body", "%d %r" % (r.status, r.getheaders()))
r = plain("GET", "/api/v1/health")
t.ok(r.getheader("X-Request-Id") is None, "the plain port serves no program", r.getheaders())

# OCSP stapling.
prefix = os.environ["AGORA_TEST_PREFIX"]
conf = os.path.join(prefix, "share", "agora", "httpd-conf", "agora-%s-tls.conf" % SERVER)
with open(conf) as f:
    text = f.read()
lines = [x.strip() for x in text.splitlines()]
if SERVER == "apache":
    # Apache fetches the answer from the CA's responder (the stack's
    # stands in: SSLStaplingForceURL) and staples it.
    t.ok("SSLUseStapling On" in lines
         and any(x.startswith("SSLStaplingCache \"shmcb:") for x in lines),
         "agora-apache-tls.conf staples (SSLUseStapling, SSLStaplingCache)", conf)
else:
    # lighttpd staples an answer fetched into a file (ssl.stapling-file):
    # the template says how; the stack staples the one its CA made.
    t.ok(any(x.startswith("#   ssl.stapling-file =") for x in lines)
         and not any(x.startswith("ssl.stapling-file") for x in lines),
         "agora-lighttpd-tls.conf says how to staple a fetched answer", conf)
ok, out = s_client("-status")
t.ok(ok and "OCSP Response Status: successful" in out and "Cert Status: good" in out,
     "the OCSP answer is stapled: good", out[-1500:])

t.done()
