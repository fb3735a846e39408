"""openapicheck: whether an HTTP answer is one the OpenAPI document allows.

Checker(doc).check(...) takes the request (method, target) and the answer
(status, headers, body) and returns what is wrong with the answer, as a
list of sentences; [] means it matches.  The request's method and path
select the operation (the document's `servers` give the prefix of each
path); the answer must then have

- a status the operation lists (or its `default`, if it has one);
- each header the response marks `required`, and every documented header
  that is sent must match its schema;
- a body of a documented media type, and for JSON media types a body that
  parses and validates against the schema (JSON Schema 2020-12, the
  dialect of OpenAPI 3.1), with `$ref`s resolved in the document; HEAD,
  204 and 304 answers and responses documented without content have no
  body.

A request that matches no operation must get one of the answers agora
gives before a route is chosen (its order is in agora_parse_request):
400 for a bad path or Content-Length, 413 for headers or a body over its
limits, then 404 `not_found` when no path matches, or 405
`method_not_allowed` with an Allow header naming exactly the documented
methods of the path (HEAD wherever GET is) when the path matches with
another method; 500 if the process failed.  Each is checked against its
shared response in components/responses.

Answers the web server writes itself, before or instead of agora, are
not in the document; each kind is recognised narrowly, only when the
request was sent through the web server (via_server=True):

- Static files: GET or HEAD of a path outside /api/ that the document does
  not name is served from the document root (static/).  The answer must
  be 200 with exactly the file's bytes.  Where there is no such file, a
  path of the web UI (one whose last part has no dot, outside
  /.well-known/) gets index.html, 200, and any other 404.  Any other
  method there is refused by the server: 405 (Apache) or 501 (lighttpd).
- TRACE, which the server refuses itself wherever it would otherwise
  echo the request (TraceEnable off in Apache: 405; lighttpd: 501).
- A request body over the web server's own limit (LIMIT_SERVER_BODY, the
  LimitRequestBody and server.max-request-size of httpd-conf/): the
  server answers 413 without running agora.
- A request header block over the web server's own limit
  (LIMIT_SERVER_HEADERS: Apache's LimitRequestFieldSize of 8190 bytes per
  line, lighttpd's max-request-field-size of 8 KiB in all): the server
  answers 400, 413 or 431 itself.
- A request line over the same limit (Apache's LimitRequestLine, 8190
  bytes; lighttpd counts it with the headers): 414 (or 400, 431).
- An encoded control character (%00 to %1F, %7F) anywhere in the target,
  or an encoded slash (%2F) in the path: lighttpd refuses control
  characters with 400 (url-ctrls-reject, on by default), Apache an
  encoded NUL or slash in the path with 404 (without AllowEncodedSlashes
  for the slash).  agora itself would answer 400 bad_path for a NUL.

All but the first apply only to answers without X-Request-Id, which agora
puts on every answer it writes: an answer of agora is always checked.
"""
import datetime
import json
import os
import re
import urllib.parse

import jsonschema

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The web server's body limit, 11 MiB (httpd-conf: LimitRequestBody
# 11534336 for Apache, server.max-request-size 11264 KiB for lighttpd).
LIMIT_SERVER_BODY = 11534336
# Header blocks larger than this may be refused by the web server (see
# the module's comment).
LIMIT_SERVER_HEADERS = 8190

# The responses of components/responses that answer a request that matches
# no operation (see the module's comment).
UNROUTED = {"400": "BadRequest", "413": "PayloadTooLarge", "500": "InternalError"}


def _date_time(value):
    """RFC 3339 section 5.6 date-time, with a real date and time."""
    if not isinstance(value, str):
        return True
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                     r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})", value)
    if m is None:
        return False
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    try:
        datetime.datetime(y, mo, d, h, mi, min(s, 59))
    except ValueError:
        return False
    return s <= 60 and (m.group(8) in "Zz" or
                        (int(m.group(8)[1:3]) < 24 and int(m.group(8)[4:6]) < 60))


# RFC 3986 characters of a URI reference; % only as the start of an escape.
_URI_REF = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


def _uri_reference(value):
    return not isinstance(value, str) or _URI_REF.fullmatch(value) is not None


def _date(value):
    """RFC 3339 full-date, YYYY-MM-DD, a real day."""
    if not isinstance(value, str):
        return True
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) is None:
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def format_checker():
    """The formats of the document.  python3-jsonschema checks date-time
    and uri-reference only with packages Debian does not install with it
    (and passes every value without them), so they are checked here, and
    date with them, so that all three are this file's."""
    fc = jsonschema.FormatChecker(())
    fc.checks("date")(_date)
    fc.checks("date-time")(_date_time)
    fc.checks("uri-reference")(_uri_reference)
    return fc


def _decode_path(target):
    """The path of target percent-decoded as agora decodes it (UTF-8, no
    NUL), or None when agora would refuse it with 400 bad_path."""
    raw = target.split("?", 1)[0].split("#", 1)[0]
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        return None
    try:
        path = urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in path else path


def _template_regex(full):
    """A regex for a path template: each {name} is one non-empty segment."""
    out, pos = "", 0
    for m in re.finditer(r"\{[^}/]+\}", full):
        out += re.escape(full[pos:m.start()]) + "[^/]+"
        pos = m.end()
    return re.compile(out + re.escape(full[pos:]))


def _header_values(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def _media_type(value):
    return (value or "").split(";", 1)[0].strip().lower()


def _is_json(media):
    return media == "application/json" or media.endswith("+json")


# The URI the document is known by to the validator.  Its local $refs
# ("#/components/...") are made absolute with it, so that a schema taken
# out of the document resolves them wherever it is validated.
DOC_URI = "urn:agora:openapi"


def _absolute_refs(obj):
    if isinstance(obj, dict):
        return {k: (DOC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#")
                    else _absolute_refs(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_absolute_refs(v) for v in obj]
    return obj


def _ref_options(doc):
    """How Draft202012Validator finds the document: a referencing registry
    where python3-jsonschema has one (4.18 and later, whose unevaluated*
    keywords look $refs up only there), else a RefResolver (4.10, Debian
    12's)."""
    try:
        import referencing
        import referencing.jsonschema
        registry = referencing.Registry().with_resource(
            DOC_URI, referencing.Resource.from_contents(
                doc, default_specification=referencing.jsonschema.DRAFT202012))
        jsonschema.Draft202012Validator({}, registry=registry)
        return {"registry": registry}
    except (ImportError, TypeError):
        return {"resolver": jsonschema.RefResolver(DOC_URI, doc)}


class Checker:
    def __init__(self, doc, static_dir=None):
        self.doc = _absolute_refs(doc)
        self.static_dir = static_dir
        self.ref_options = _ref_options(self.doc)
        self.formats = format_checker()
        self.validators = {}
        self.routes = []
        base = self._server(self.doc)
        for template, item in self.doc.get("paths", {}).items():
            prefix = self._server(item, base)
            full = prefix + template
            # Literal paths before templated ones (OpenAPI: /users/me
            # before /users/{id}), then the longer first.
            rank = (full.count("{"), -len(full))
            self.routes.append((rank, _template_regex(full), template, item))
        self.routes.sort(key=lambda r: r[0])

    @staticmethod
    def _server(obj, default=""):
        servers = obj.get("servers")
        if not servers:
            return default
        return urllib.parse.urlsplit(servers[0]["url"]).path.rstrip("/")

    def resolve(self, ref):
        """What ref, a reference into the document, names; KeyError if
        nothing."""
        if ref.startswith(DOC_URI):
            ref = ref[len(DOC_URI):]
        if not ref.startswith("#/"):
            raise KeyError("%s is not a reference into the document" % ref)
        obj = self.doc
        for part in ref[2:].split("/"):
            part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
                obj = obj[int(part)]
            elif isinstance(obj, dict) and part in obj:
                obj = obj[part]
            else:
                raise KeyError("%s: no %r" % (ref, part))
        return obj

    def deref(self, obj):
        """obj, or what its $ref names (repeatedly)."""
        while isinstance(obj, dict) and "$ref" in obj:
            obj = self.resolve(obj["$ref"])
        return obj

    def _validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(schema, format_checker=self.formats,
                                                **self.ref_options)
            self.validators[key] = v
        return v

    def schema_errors(self, schema, value, what):
        """Each way value breaks schema, as a sentence naming where."""
        out = []
        for e in sorted(self._validator(schema).iter_errors(value), key=lambda e: list(e.path)):
            where = "".join("[%r]" % p for p in e.absolute_path)
            out.append("%s%s: %s" % (what, where, e.message[:300]))
        return out

    def find(self, path):
        """(template, path item) of the path, or None."""
        for _, rx, template, item in self.routes:
            if rx.fullmatch(path):
                return template, item
        return None

    # --- the check ----------------------------------------------------

    def check(self, method, target, status, headers, body, via_server=False,
              request_headers=None, request_body_len=0):
        """What is wrong with this answer to method target; [] if nothing."""
        method = method.upper()
        if status == 0:
            return ["no status line: the program wrote no answer"]
        if via_server:
            server = self._server_answer(method, target, status, headers, body,
                                         request_headers or {}, request_body_len)
            if server is not None:
                return server
        path = _decode_path(target)
        found = self.find(path) if path is not None else None
        if found is None:
            return self._unrouted(method, status, headers, body, {"404": "NotFound"})
        template, item = found
        op = item.get(method.lower())
        if op is None and method == "HEAD":
            op = item.get("get")
        if op is None:
            errs = self._unrouted(method, status, headers, body, {"405": "MethodNotAllowed"})
            if status == 405:
                errs += self._allow(item, headers)
            return errs
        return self._operation(method, op, status, headers, body)

    def _unrouted(self, method, status, headers, body, expected):
        names = dict(UNROUTED, **expected)
        name = names.get(str(status))
        if name is None:
            return ["status %d: a request that matches no operation gets %s" %
                    (status, " or ".join(sorted(names)))]
        resp = self.deref({"$ref": "#/components/responses/" + name})
        return self._response(method, resp, status, headers, body)

    def _allow(self, item, headers):
        allow = _header_values(headers, "Allow")
        documented = {m.upper() for m in item if m in METHODS}
        if "GET" in documented:
            documented.add("HEAD")
        got = {m.strip() for v in allow for m in v.split(",") if m.strip()}
        if got != documented:
            return ["Allow: %r but the document has %s" % (", ".join(allow),
                                                           ", ".join(sorted(documented)))]
        return []

    def _operation(self, method, op, status, headers, body):
        responses = op.get("responses", {})
        resp = responses.get(str(status))
        if resp is None:
            resp = responses.get("%dXX" % (status // 100), responses.get("default"))
        if resp is None:
            return ["status %d is not documented for %s (documented: %s)" %
                    (status, op.get("operationId", "?"), ", ".join(sorted(responses)))]
        return self._response(method, self.deref(resp), status, headers, body)

    def _response(self, method, resp, status, headers, body):
        errs = self._headers(resp, headers)
        if method == "HEAD" or status in (204, 304) or not resp.get("content"):
            if body:
                errs.append("a body of %d bytes where the document has none" % len(body))
            return errs
        return errs + self._body(resp["content"], status, headers, body)

    def _headers(self, resp, headers):
        errs = []
        for name, h in resp.get("headers", {}).items():
            if name.lower() == "content-type":
                continue  # OpenAPI: the media type says it, not a header entry
            h = self.deref(h)
            values = _header_values(headers, name)
            if not values:
                if h.get("required"):
                    errs.append("header %s is missing" % name)
                continue
            # Set-Cookie alone may repeat: its values cannot be joined
            # into one line (RFC 6265, section 3).
            if len(values) > 1 and name.lower() != "set-cookie":
                errs.append("header %s is sent %d times" % (name, len(values)))
            schema = self.deref(h.get("schema", {}))
            for v in values:
                errs += self.schema_errors(schema, self._header_value(schema, v),
                                           "header %s %r" % (name, v))
        return errs

    @staticmethod
    def _header_value(schema, value):
        """A header's text as the JSON value its schema speaks of."""
        if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        if schema.get("type") == "boolean" and value in ("true", "false"):
            return value == "true"
        return value

    def _body(self, content, status, headers, body):
        ctypes = _header_values(headers, "Content-Type")
        if not ctypes:
            return ["no Content-Type (documented: %s)" % ", ".join(content)]
        media = _media_type(ctypes[0])
        key = next((k for k in (media, media.split("/")[0] + "/*", "*/*") if k in content), None)
        if key is None:
            return ["Content-Type %s is not documented (documented: %s)" %
                    (ctypes[0], ", ".join(content))]
        schema = content[key].get("schema")
        if not _is_json(media) or schema is None:
            return []
        try:
            value = json.loads(body, parse_constant=self._no_constant)
        except ValueError as e:
            return ["the %s body does not parse: %s" % (media, e)]
        errs = self.schema_errors(schema, value, "body")
        if media == "application/problem+json" and isinstance(value, dict):
            errs += self._problem(value, status, headers)
        return errs

    @staticmethod
    def _no_constant(name):
        raise ValueError("%s is not JSON" % name)

    @staticmethod
    def _problem(value, status, headers):
        """What the Problem schema says in words: status is the answer's
        status, request_id the X-Request-Id header."""
        errs = []
        if value.get("status") != status:
            errs.append("problem status %r in a %d answer" % (value.get("status"), status))
        rid = _header_values(headers, "X-Request-Id")
        if rid and value.get("request_id") != rid[0]:
            errs.append("problem request_id %r but X-Request-Id %r" %
                        (value.get("request_id"), rid[0]))
        return errs

    # --- answers of the web server itself ------------------------------

    def _server_answer(self, method, target, status, headers, body, request_headers,
                       request_body_len):
        """The check of an answer the web server wrote itself, or None when
        the answer is not one (see the module's comment)."""
        path = target.split("?", 1)[0]
        if not path.startswith("/api/") and self.find(_decode_path(path) or path) is None:
            return self._static(method, path, status, body)
        if _header_values(headers, "X-Request-Id"):
            return None
        if method == "TRACE":
            return [] if status in (405, 501) else \
                ["status %d from the web server to TRACE: expected 405 or 501" % status]
        if request_body_len > LIMIT_SERVER_BODY:
            return [] if status == 413 else \
                ["status %d from the web server to a body over its limit: expected 413" % status]
        size = sum(len(k) + len(v) + 4 for k, v in request_headers.items())
        longest = max((len(k) + len(v) + 2 for k, v in request_headers.items()), default=0)
        if size > LIMIT_SERVER_HEADERS or longest > LIMIT_SERVER_HEADERS:
            return [] if status in (400, 413, 431) else \
                ["status %d from the web server to headers over its limit" % status]
        if len(method) + len(target) + 10 > LIMIT_SERVER_HEADERS:
            return [] if status in (400, 414, 431) else \
                ["status %d from the web server to a request line over its limit" % status]
        if re.search(r"%[01][0-9A-Fa-f]|%7[Ff]", target) or re.search(r"%2[Ff]", path):
            return [] if status in (400, 404) else \
                ["status %d from the web server to an encoded control character or slash"
                 % status]
        return None

    def _static(self, method, path, status, body):
        if method not in ("GET", "HEAD"):
            return [] if status in (405, 501) else \
                ["%s %s: status %d; the server refuses all but GET and HEAD of static files "
                 "(405 or 501)" % (method, path, status)]
        if self.static_dir is None:
            return ["%s is neither in the document nor a static file (no static directory)"
                    % path]
        rel = urllib.parse.unquote(path).lstrip("/") or "index.html"
        file = os.path.normpath(os.path.join(self.static_dir, rel))
        if not file.startswith(os.path.normpath(self.static_dir) + os.sep) \
                or not os.path.isfile(file):
            ui = "." not in path.rsplit("/", 1)[-1] and not path.startswith("/.well-known/")
            if not ui:
                return [] if status == 404 else ["status %d for %s, which is no static file" %
                                                 (status, path)]
            file = os.path.join(self.static_dir, "index.html")
            if status != 200:
                return ["status %d for %s, a path of the web UI: expected index.html, 200"
                        % (status, path)]
        with open(file, "rb") as f:
            want = f.read()
        if status != 200:
            return ["status %d for the static file %s" % (status, path)]
        if method == "GET" and body != want:
            return ["the static file %s is not served as it is" % path]
        return []
