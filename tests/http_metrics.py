"""GET /metrics (fcgi/metrics.c, lib/metrics.c): Prometheus's text format,
checked by promtool; the requests counted across every process of a
program, through a restart of the web server; the worker's jobs; the
gauges read from PostgreSQL; and a real Prometheus that scrapes the stack
and sees exactly the requests this test made."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

from agoratest import (Tap, across_processes, need_stack, psql, request, run_worker, svc,
                       wait_for)

need_stack()
t = Tap()
ROUTE = "/api/v1/products/{product_id}"
LINE = re.compile(r'^([a-z_:]+)(\{.*\})? (\S+)$')


def scrape():
    r = request("GET", "/metrics")
    return r, (r.body or b"").decode("utf-8", "replace")


def series(text):
    """{(name, labels): value} of a scrape."""
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def value(text, name, **labels):
    """The sum of the series of name whose labels include labels."""
    total = 0.0
    for (n, lab), v in series(text).items():
        if n == name and all('%s="%s"' % (k, x) in lab for k, x in labels.items()):
            total += v
    return total


def misses(text):
    return value(text, "agora_http_requests_total", program="products", route=ROUTE,
                 method="GET", code="4xx")


# --- the format --------------------------------------------------------------------
r, text = scrape()
t.ok(r.status == 200 and (r.header("Content-Type") or "").startswith("text/plain; version=0.0.4"),
     "GET /metrics: 200, Prometheus's text format 0.0.4", r)
p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
t.ok(p.returncode == 0, "promtool check metrics passes", p.stdout + p.stderr)
keys = [LINE.match(x).group(1, 2) for x in text.splitlines() if LINE.match(x)]
twice = sorted({k for k in keys if keys.count(k) > 1})
t.ok(keys and not twice, "no series appears twice (Prometheus would drop one)", twice[:5])
t.ok(value(text, "agora_database_up") == 1 and value(text, "agora_memcached_up") == 1,
     "the database and memcached are up", text[-400:])
t.ok(value(text, "agora_metrics_files") >= 10,
     "the programs' files are read (%d)" % value(text, "agora_metrics_files"))
t.ok(value(text, "agora_db_connections") >= 1, "the database's connections are shown")
t.ok("/api/v1/products/999" not in text,
     "series are named by route template, never by the raw path")

# --- counts across processes ---------------------------------------------------------
before = misses(text)


def miss(rid):
    return request("GET", "/api/v1/products/999999999", headers={"X-Request-Id": rid})


got, pids = across_processes(miss, None, rounds=3)
sent = len(got)
_, text = scrape()
t.ok(all(x.status == 404 for x in got) and misses(text) - before == sent,
     "%d requests to the products program, served by %d processes: counted exactly"
     % (sent, len(pids)), (before, misses(text), sent))
t.ok(len(pids) >= 2, "and several processes served them", pids)
h = value(text, "agora_http_request_duration_seconds_count", program="products", route=ROUTE)
inf = value(text, "agora_http_request_duration_seconds_bucket", program="products",
            route=ROUTE, le="+Inf")
t.ok(h >= sent and h == inf, "the latency histogram counts them too", (h, inf))
t.ok(value(text, "agora_db_statements_total", program="products", route=ROUTE) > 0,
     "with the statements they sent to PostgreSQL")

# --- a restart of the web server loses nothing -----------------------------------------
before = misses(text)
svc("web", "restart")
_, text = scrape()
t.ok(misses(text) == before, "after the web server restarts, the counts are all still there",
     (before, misses(text)))
miss("x")
_, text = scrape()
t.ok(misses(text) == before + 1, "and the new processes count on from them",
     (before, misses(text)))

# --- 401s, 5xx, the worker ------------------------------------------------------------
a0 = value(text, "agora_auth_failures_total", program="orders")
request("GET", "/api/v1/orders", headers={"Authorization": "Bearer not-a-token"})
_, text = scrape()
t.ok(value(text, "agora_auth_failures_total", program="orders") == a0 + 1,
     "a bad token: one more auth failure")
RUN = uuid.uuid4().hex[:10]
psql("INSERT INTO outbox (topic, aggregate_id, payload) VALUES "
     "('notify.send', 'metrics-%s', '{}')" % RUN)
d0 = value(text, "agora_worker_jobs_total", topic="notify.send", result="dead")
t0 = time.time()
rc = run_worker("--once", "--topics", "notify.send")
_, text = scrape()
dead = value(text, "agora_worker_jobs_total", topic="notify.send", result="dead")
t.ok(rc == 0 and dead >= d0 + 1, "a job that can never succeed: the worker counts it dead",
     (rc, d0, dead))
t.ok(value(text, "agora_worker_last_pass_timestamp_seconds") >= int(t0),
     "and the time its pass ended")
t.ok(value(text, "agora_outbox_rows", topic="notify.send", state="dead") >= 1,
     "the outbox's dead rows, read from PostgreSQL")
psql("DELETE FROM outbox WHERE aggregate_id = 'metrics-%s'" % RUN)

# --- a real Prometheus ---------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def prom_query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=5) as f:
            res = json.load(f)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    return float(res[0]["value"][1]) if res else 0.0


def prometheus():
    """Prometheus scraping the stack every second; (process, port, dir)."""
    base = urllib.parse.urlparse(os.environ["AGORA_TEST_URL"])
    work = tempfile.mkdtemp(prefix="agora-prom-")
    port = free_port()
    scrape_cfg = {"job_name": "agora", "scrape_interval": "1s", "metrics_path": "/metrics",
                  "scheme": base.scheme, "static_configs": [{"targets": [base.netloc]}]}
    if base.scheme == "https":
        scrape_cfg["tls_config"] = {"ca_file": os.environ["AGORA_TEST_CA"]}
    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        json.dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape_cfg]}, f)
    proc = subprocess.Popen(
        ["prometheus", "--config.file=" + os.path.join(work, "prometheus.yml"),
         "--storage.tsdb.path=" + os.path.join(work, "data"),
         "--web.listen-address=127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "wb"))
    return proc, port, work


Q = ('sum(agora_http_requests_total{program="products",route="%s",method="GET",code="4xx"})'
     % ROUTE)
proc, port, work = prometheus()
try:
    up = wait_for(lambda: prom_query(port, 'up{job="agora"}') == 1, 60)
    t.ok(up, "Prometheus scrapes the stack", open(os.path.join(work, "log")).read()[-800:])
    _, text = scrape()
    start = misses(text)
    wait_for(lambda: prom_query(port, Q) == start, 10)
    seen0 = prom_query(port, Q)
    got, pids = across_processes(miss, None, rounds=2)
    want = (seen0 or 0) + len(got)
    wait_for(lambda: prom_query(port, Q) == want, 15)
    time.sleep(2.5)  # two more scrapes: the count must stay what was sent
    seen = prom_query(port, Q)
    t.ok(seen0 == start and seen == want,
         "Prometheus sees exactly the %d requests this test made, across %d processes"
         % (len(got), len(pids)), (start, seen0, seen, want))
finally:
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)

t.done()
