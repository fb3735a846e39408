"""Files, invoices and notifications over HTTP, against the real stack:
uploads as a raw body and as multipart/form-data, downloads with
Content-Type, a safe Content-Disposition and ETag, the size limit, other
users' files, hostile file names, GET /orders/{id}/invoice before the
invoice exists, and GET /notifications."""
import hashlib
import os
import re
import subprocess
import tempfile
import time
import uuid

from agoratest import SERVER, Resp, Tap, cgi, config_value, need_stack, new_user, psql, request

need_stack()
t = Tap()
RUN = uuid.uuid4().hex[:10]
A = new_user("hf.a.%s@example.com" % RUN)
B = new_user("hf.b.%s@example.com" % RUN)
ADM = new_user("hf.admin.%s@example.com" % RUN, role="admin")
MAX = int(config_value("file_max_bytes") or 10485760)


ACCEPTED = []


def upload(h, data, ctype="application/octet-stream", query=""):
    r = request("POST", "/api/v1/files" + query, body=data,
                headers=dict(h, **{"Content-Type": ctype}))
    if r.status == 201 and h is A:
        ACCEPTED.append(r.json()["id"])
    return r


def multipart(h, parts, boundary=None):
    """POST /files as multipart/form-data; parts: (headers bytes, body bytes)."""
    b = boundary or ("----agora" + uuid.uuid4().hex)
    body = b""
    for head, data in parts:
        body += b"--" + b.encode() + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n"
    body += b"--" + b.encode() + b"--\r\n"
    return upload(h, body, "multipart/form-data; boundary=" + b)


def disposition_safe(cd):
    """No CR, LF, NUL, path or stray quote inside the header's file names."""
    if cd is None or any(c in cd for c in "\r\n\x00"):
        return False
    m = re.fullmatch(r'attachment; filename="([^"\\]*)"; filename\*=UTF-8\'\'([A-Za-z0-9!#$&+\-.^_`|~%]*)', cd)
    return m is not None and "/" not in m.group(1) and not m.group(1).startswith(".")


# --- raw uploads ---------------------------------------------------------------
data = b"hello\x00world\r\n--not-a-boundary\r\n" + bytes(range(256))
r = upload(A, data, "application/x-test", "?filename=report%20%C3%A9t%C3%A9.bin")
doc = r.json() or {}
t.ok(r.status == 201 and doc.get("size") == len(data)
     and doc.get("sha256") == hashlib.sha256(data).hexdigest()
     and doc.get("content_type") == "application/x-test"
     and doc.get("filename") == "report été.bin"
     and r.header("Location") == "/api/v1/files/" + str(doc.get("id")),
     "POST /files with a raw body: 201 with size, sha256, type and name", r)
FID = doc.get("id")
r = request("GET", "/api/v1/files/%s/download" % FID, headers=A)
etag = r.header("ETag")
t.ok(r.status == 200 and r.body == data and r.header("Content-Type") == "application/x-test"
     and etag == '"%s"' % hashlib.sha256(data).hexdigest(),
     "GET /files/{id}/download: the same bytes, type and a strong ETag", r.headers)
cd = r.header("Content-Disposition")
t.ok(disposition_safe(cd) and "filename*=UTF-8''report%20%C3%A9t%C3%A9.bin" in cd
     and 'filename="report _' in cd,
     "Content-Disposition: attachment, an ASCII name and the UTF-8 one in filename*", cd)
t.ok(r.header("X-Content-Type-Options") == "nosniff"
     and "default-src 'none'" in (r.header("Content-Security-Policy") or ""),
     "downloads carry nosniff and a CSP that runs nothing", r.headers)
r = request("GET", "/api/v1/files/%s/download" % FID, headers=dict(A, **{"If-None-Match": etag}))
t.ok(r.status == 304 and r.body == b"" and r.header("ETag") == etag,
     "If-None-Match with the ETag: 304", r)
r = request("GET", "/api/v1/files/%s" % FID, headers=A)
t.ok(r.status == 200 and r.json() == doc, "GET /files/{id}: the metadata", r)
r = request("POST", "/api/v1/files", body=b"no type", headers=A)
ACCEPTED.append((r.json() or {}).get("id"))
t.ok(r.status == 201 and r.json()["content_type"] == "application/octet-stream"
     and r.json()["filename"] == "upload", "no Content-Type or name: octet-stream, upload", r)

# --- multipart ------------------------------------------------------------------
payload = b"\r\n--\r\nline\x00\xff\xfe" * 100 + b"\r\n"
r = multipart(A, [(b'Content-Disposition: form-data; name="note"', b"ignored"),
                  (b'Content-Disposition: form-data; name="file"; filename="photo.png"\r\n'
                   b"Content-Type: image/png", payload)])
mdoc = r.json() or {}
t.ok(r.status == 201 and mdoc.get("sha256") == hashlib.sha256(payload).hexdigest()
     and mdoc.get("size") == len(payload) and mdoc.get("content_type") == "image/png"
     and mdoc.get("filename") == "photo.png",
     "multipart/form-data: the file part's bytes (CRLFs and NULs kept), name and type", r)
r = request("GET", "/api/v1/files/%s/download" % mdoc.get("id"), headers=A)
t.ok(r.status == 200 and r.body == payload and r.header("Content-Type") == "image/png",
     "the multipart upload downloads byte for byte", r.headers)
r = multipart(A, [(b'Content-Disposition: form-data; name="other"; filename="x"', b"abc")])
t.ok(r.is_problem(422), "multipart without a file part: 422", r)
r = upload(A, b"--x\r\ngarbage", "multipart/form-data; boundary=zzz")
t.ok(r.status in (400, 422) and r.is_problem(r.status), "a broken multipart body: 4xx problem", r)

# --- multipart limits ------------------------------------------------------------
# GMime made an object for every part it met: 150,000 empty parts in 1.4 MB
# grew a files process by ~190 MB.  The parts are counted before GMime
# parses any, and refused past 16.
ATTACK = b"--b\r\n\r\n\r\n" * 150000 + b"--b--\r\n"
FILE_PART = (b'Content-Disposition: form-data; name="file"; filename="f.txt"', b"the file")


def cgi_peak(body, ctype):
    """Run the files program once as plain CGI, as cgi() does; its answer
    and its peak resident set (KiB) as the kernel counted it (wait4)."""
    e = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST",
         "REQUEST_URI": "/api/v1/files", "SERVER_PROTOCOL": "HTTP/1.1",
         "AGORA_CONFIG": os.environ["AGORA_CONFIG"], "REMOTE_ADDR": "127.0.0.1",
         "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": ctype,
         "HTTP_AUTHORIZATION": A["Authorization"]}
    with tempfile.TemporaryFile() as f:
        f.write(body)
        f.seek(0)
        p = subprocess.Popen([os.path.join(os.environ["AGORA_TEST_CGIDIR"], "files")],
                             stdin=f, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e)
        out = p.stdout.read()
        _, _, usage = os.wait4(p.pid, 0)
        p.returncode = 0
    head, _, payload = out.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("Status:") else 0
    hdrs = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
    return Resp(status, hdrs, payload), usage.ru_maxrss


def files_hwm():
    """The peak resident set (KiB) of every running files process, by pid."""
    prog = os.path.join(os.environ["AGORA_TEST_CGIDIR"], "files")
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not os.readlink("/proc/%s/exe" % pid).startswith(prog):
                continue
            with open("/proc/%s/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        out[pid] = int(line.split()[1])
        except OSError:
            continue
    return out


body = b"--b\r\n" + FILE_PART[0] + b"\r\n\r\n" + FILE_PART[1] + b"\r\n--b--\r\n"
r, base = cgi_peak(body, "multipart/form-data; boundary=b")
if r.status == 201:
    ACCEPTED.append(r.json()["id"])
r2, peak = cgi_peak(ATTACK, "multipart/form-data; boundary=b")
t.ok(r.status == 201 and r2.is_problem(413, "too_many_parts") and peak - base < 16 * 1024,
     "150,000 empty parts (%d bytes): 413 too_many_parts, the process grew %d KiB over a "
     "normal upload's %d KiB" % (len(ATTACK), peak - base, base), (r, r2))
before = files_hwm()
t0 = time.monotonic()
r = upload(A, ATTACK, "multipart/form-data; boundary=b")
took = time.monotonic() - t0
after = files_hwm()
floor = min(before.values()) if before else 0
grown = max([after[p] - before.get(p, floor) for p in after] or [0])
t.ok(r.is_problem(413, "too_many_parts") and took < 5 and grown < 16 * 1024 and after,
     "over HTTP: 413 too_many_parts in %.2f s; the files processes' peak grew %d KiB"
     % (took, grown), (r, before, after))
r = multipart(A, [FILE_PART])
t.ok(r.status == 201 and r.json()["size"] == len(FILE_PART[1]),
     "a normal multipart upload still works after that", r)
r = multipart(A, [(b'Content-Disposition: form-data; name="f%d"' % i, b"v")
                  for i in range(15)] + [FILE_PART])
t.ok(r.status == 201, "16 parts, the file the last: 201", r)
r = multipart(A, [(b'Content-Disposition: form-data; name="f%d"' % i, b"v")
                  for i in range(16)] + [FILE_PART])
t.ok(r.is_problem(413, "too_many_parts"), "17 parts: 413 too_many_parts", r)
r = multipart(A, [(FILE_PART[0] + b"\r\nX-Pad: 1" * 16, FILE_PART[1])])
t.ok(r.is_problem(413, "part_headers_too_large"), "17 header lines in a part: 413", r)
r = multipart(A, [(FILE_PART[0] + b"\r\nX-Pad: " + b"p" * 4096, FILE_PART[1])])
t.ok(r.is_problem(413, "part_headers_too_large"), "a part's headers over 4 KiB: 413", r)
r = multipart(A, [(b'Content-Disposition: form-data; name="file"\r\n'
                   b"Content-Type: multipart/mixed; boundary=in",
                   b"--in\r\n\r\nx\r\n" * 1000 + b"--in--")])
t.ok(r.is_problem(422), "a nested multipart is not a file part: 422", r)
r = multipart(A, [(FILE_PART[0] + b"\r\nContent-Transfer-Encoding: base64", b"aGVsbG8=")])
t.ok(r.status == 201 and r.json()["size"] == 5 and r.json()["sha256"]
     == hashlib.sha256(b"hello").hexdigest(), "a file part in base64 is decoded", r)
for ct in ("multipart/form-data", "multipart/form-data; boundary=a; boundary=b",
           "multipart/form-data; boundary=" + "x" * 71, 'multipart/form-data; boundary="b'):
    r = upload(A, body, ct)
    t.ok(r.is_problem(400, "bad_multipart"), "Content-Type %r: 400 bad_multipart" % ct[:50], r)
r = upload(A, body.replace(b"--b", b"--a b"), 'multipart/form-data; boundary="a b"')
t.ok(r.status == 201, "a quoted boundary with a space: 201", r)

# --- hostile names ----------------------------------------------------------------
names = {
    "traversal": b"../../etc/passwd",
    "windows path": b"..\\..\\boot.ini",
    "quotes": b'a"b\\"c.txt',
    "CR/LF": b"x\r\nSet-Cookie: evil=1.txt",
    "NUL": b"a\x00.txt",
    "dot file": b".htaccess",
}
for what, name in names.items():
    r = multipart(A, [(b'Content-Disposition: form-data; name="file"; filename="' + name + b'"',
                       b"content")])
    fid = (r.json() or {}).get("id")
    d = request("GET", "/api/v1/files/%s/download" % fid, headers=A)
    t.ok(r.status == 201 and d.status == 200 and disposition_safe(d.header("Content-Disposition")),
         "a file name with %s is neutralized in Content-Disposition" % what,
         (r, d.header("Content-Disposition")))
r = upload(A, b"x", "text/plain", "?filename=..%2F..%2Fetc%2Fpasswd")
t.ok(r.status == 201 and r.json()["filename"] == "passwd", "?filename= keeps only the last part", r)
# lighttpd refuses control characters in the query itself (400, before
# agora); where they reach agora, they are replaced.
r = upload(A, b"x", "text/plain", "?filename=a%0D%0Ab%22c")
t.ok((r.status == 201 and r.json()["filename"] == "a__b_c")
     or (SERVER == "lighttpd" and r.status == 400),
     "CR, LF and quotes in ?filename= become _ (or the server refuses them)", r)
r = upload(A, b"x", "text/plain", "?filename=a%00b")
t.ok(r.status == 400 and (SERVER == "lighttpd" or r.is_problem(400)), "a NUL in ?filename=: 400", r)

# --- limits, access -----------------------------------------------------------------
r = upload(A, b"\0" * (MAX + 1))
t.ok(r.is_problem(413), "a file over file_max_bytes: 413 problem+json", r)
# Past file_max_bytes and the room kept for multipart framing, the answer
# comes from Content-Length alone: a run that declares such a length but
# sends one byte gets 413, not the 400 of a body shorter than declared.
r = cgi("files", "POST", "/api/v1/files?filename=big.bin", body=b"x",
        ctype="application/octet-stream", headers=A,
        env={"CONTENT_LENGTH": str(MAX + 64 * 1024 + 1)})
t.ok(r.is_problem(413), "a Content-Length past the upload limit: 413 before the body is read",
     r)
r = upload(A, b"\0" * MAX)
t.ok(r.status == 201 and r.json()["size"] == MAX, "a file of exactly file_max_bytes: 201", r)
r = upload(A, b"")
t.ok(r.is_problem(422), "an empty file: 422", r)
r = upload(A, b"x", "text/pl\xc3\xa4in")
t.ok(r.is_problem(422), "a media type that is not ASCII: 422", r)
r = upload({}, b"x")
t.ok(r.is_problem(401), "anonymous upload: 401", r)
for path in ("/api/v1/files/%s" % FID, "/api/v1/files/%s/download" % FID):
    r = request("GET", path, headers=B)
    t.ok(r.is_problem(404), "another user's file: 404 (%s)" % path.rsplit("/", 1)[-1], r)
r = request("GET", "/api/v1/files/%s/download" % FID, headers=ADM)
t.ok(r.status == 200 and r.body == data, "an admin may download any file", r)
for bad in ("0", "abc", "99999999999999", "1;DROP"):
    r = request("GET", "/api/v1/files/%s/download" % bad, headers=A)
    t.ok(r.is_problem(404), "file id %r: 404" % bad, r)
_, n, _ = psql("SELECT count(*) FROM files WHERE user_id = (SELECT id FROM users WHERE email = "
               "'hf.a.%s@example.com')" % RUN)
t.ok(int(n) == len(ACCEPTED), "one row per accepted upload, none for refused ones",
     (n, len(ACCEPTED)))

# --- invoices before completion, notifications ------------------------------------------
P = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "HF-" + RUN, "name": "File thing", "price_cents": 100, "stock": 10}).json()["id"]
o = request("POST", "/api/v1/orders", headers=A,
            body={"items": [{"product_id": P, "quantity": 1}]}).json()
r = request("GET", "/api/v1/orders/%s/invoice" % o["id"], headers=A)
t.ok(r.is_problem(404, "invoice_not_ready"), "GET /orders/{id}/invoice before completion: 404", r)
r = request("GET", "/api/v1/orders/%s/invoice" % o["id"], headers=B)
t.ok(r.is_problem(404, "not_found"), "another user's invoice: 404 not_found", r)
r = request("GET", "/api/v1/orders/999999999/invoice", headers=A)
t.ok(r.is_problem(404), "the invoice of no order: 404", r)
r = request("GET", "/api/v1/notifications", headers=A)
t.ok(r.status == 200 and isinstance(r.json().get("data"), list), "GET /notifications: a list", r)
r = request("GET", "/api/v1/notifications")
t.ok(r.is_problem(401), "GET /notifications anonymous: 401", r)
for q in ("limit=0", "limit=101", "cursor=abc"):
    r = request("GET", "/api/v1/notifications?" + q, headers=A)
    t.ok(r.is_problem(400), "GET /notifications?%s: 400" % q, r)
t.done()
