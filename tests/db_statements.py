"""The statements each program prepares: those flagged read-only
(AGORA_STMT_READ), which a program runs again on a new connection when the
old one broke outside a transaction, must really only read.  A statement
that writes may have committed before the break, and running it again
would do its work twice: a second order, a second refund request.  A
statement the read replica may answer must be one of them.

The flags are held against the database itself: a read-only statement
writes no table, locks no row and calls no function that PostgreSQL knows
as VOLATILE (the default for a function that writes).  The old rule,
"whatever starts with SELECT", fails this test: order_transition,
payment_refund_request and idempotency_claim are SELECTs that write."""
import json
import os
import re
import subprocess
from agoratest import Tap, need_stack, psql

need_stack()
t = Tap()

WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|NOTIFY|FOR\s+(NO\s+KEY\s+)?UPDATE|"
                    r"FOR\s+(KEY\s+)?SHARE|nextval|setval|pg_notify|pg_advisory\w*)\b", re.I)
CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def statements(path):
    p = subprocess.run([path, "--statements"], capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin"})
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines() if line]


def volatile(names):
    """The names among names that PostgreSQL has a VOLATILE function of."""
    if not names:
        return set()
    lst = ",".join("'%s'" % n.lower() for n in sorted(names))
    _, out, _ = psql("SELECT DISTINCT proname FROM pg_proc WHERE provolatile = 'v' "
                     "AND proname IN (%s)" % lst)
    return set(out.split()) if out else set()


cgidir = os.environ["AGORA_TEST_CGIDIR"]
programs = [os.path.join(cgidir, p) for p in sorted(os.listdir(cgidir))]
programs.append(os.path.join(os.environ["AGORA_TEST_PREFIX"], "sbin", "agora-worker"))
reads = writes = 0
replica = []
for prog in programs:
    rc, stmts = statements(prog)
    name = os.path.basename(prog)
    t.ok(rc == 0, "%s --statements" % name, rc)
    for s in stmts:
        if s.get("replica"):
            replica.append("%s: %s" % (name, s["name"]))
            # A replica may answer only what could run again anywhere.
            t.ok(s["read"], "%s: %s, which the replica may answer, is flagged read-only"
                 % (name, s["name"]), s["sql"])
        if not s["read"]:
            writes += 1
            continue
        reads += 1
        w = WRITES.search(s["sql"])
        calls = volatile(set(CALL.findall(s["sql"])))
        t.ok(w is None and not calls,
             "%s: %s, flagged read-only, only reads" % (name, s["name"]),
             "writes: %s; volatile calls: %s; %s" % (w and w.group(0), sorted(calls), s["sql"]))
# The check above is worth what its parts are: it must see the SELECTs that
# write, which the retry once took for reads.
probe = {"SELECT order_transition($1::bigint, $2, $3, $4)": "order_transition",
         "SELECT busy FROM idempotency_claim($1::bigint, $2)": "idempotency_claim",
         "SELECT rt.id FROM refresh_tokens rt FOR UPDATE OF rt": "FOR UPDATE"}
for sql, what in probe.items():
    caught = WRITES.search(sql) is not None or bool(volatile(set(CALL.findall(sql))))
    t.ok(caught, "the check catches a SELECT that writes (%s)" % what, sql)
t.ok(len(replica) >= 8, "the catalog's and the reports' reads may go to the replica (%d)"
     % len(replica), replica)
t.ok(reads >= 30 and writes >= 30, "both kinds are there (%d read-only, %d others)" % (reads, writes))
t.done()
