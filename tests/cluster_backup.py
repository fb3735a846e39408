"""The restore drill (./dev check --cluster; README, "Backups"): a full
backup of the primary with pgBackRest, orders taken on, a moment chosen,
more orders, the primary destroyed with its data, and the repository's
backup and archived WAL restored onto a new host (db3) to that moment.
Every order answered before the moment is there; none made after it is.

The moment's WAL must have reached the repository before the primary is
lost: the drill forces the segment out (pg_switch_wal) where production
waits at most archive_timeout; what a lost primary had not archived is
what a synchronous replica is for (tests/cluster_faults.py)."""
import os
import subprocess
import sys
import time
import uuid

from agoratest import Tap, new_user, request, wait_for

if not os.environ.get("AGORA_TEST_CLUSTER"):
    print("1..0 # SKIP not on a cluster (./dev check --cluster)")
    sys.exit(0)
t = Tap()
RUN = uuid.uuid4().hex[:10]
DB = {"db1": "10.213.0.21", "db2": "10.213.0.22", "db3": "10.213.0.23"}


def cluster(host, *action):
    subprocess.run([os.environ["AGORA_TEST_DEV"], "_cluster", host] + list(action),
                   check=True, stdout=subprocess.DEVNULL)


def psql(host, sql, db="agora"):
    p = subprocess.run(["psql", "-X", "-qAt", "host=%s port=5432 dbname=%s user=postgres "
                        "connect_timeout=2" % (DB[host], db), "-c", sql],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


# The primary of the moment: db1, or db2 after the failover test.
PRIMARY = next((h for h in ("db1", "db2") if psql(h, "SELECT pg_is_in_recovery()") == "f"), None)
t.ok(PRIMARY is not None, "a primary to back up (%s)" % PRIMARY)
ADM = new_user("backup.admin.%s@example.com" % RUN, role="admin")
A = new_user("backup.%s@example.com" % RUN)
r = request("POST", "/api/v1/products", headers=ADM, body={
    "sku": "BK-" + RUN, "name": "Backed up", "price_cents": 900, "stock": 100000})
PID = r.json()["id"]

REPO = os.path.join(os.environ["AGORA_TEST_CLUSTER"], "backup", "backup", "agora")


def full_backups():
    """The repository's full backups (pgBackRest labels them ...F)."""
    return sorted(d for d in os.listdir(REPO) if d.endswith("F")) if os.path.isdir(REPO) else []


had = full_backups()
t0 = time.monotonic()
cluster(PRIMARY, "backup")
# A new label (retention may expire an old one at the same time).
t.ok(set(full_backups()) - set(had),
     "a full backup of %s is in the repository, made in %.1f s"
     % (PRIMARY, time.monotonic() - t0), (had, full_backups()))


def orders(seconds):
    """Orders placed for seconds: [(id, start, end)] of those answered 201
    (wall-clock times, as the server's commit times are)."""
    made, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        s = time.time()
        r = request("POST", "/api/v1/orders", headers=A,
                    body={"items": [{"product_id": PID, "quantity": 1}]})
        if r.status == 201:
            made.append((r.json()["id"], s, time.time()))
    return made


before = orders(3)
time.sleep(0.5)
moment = time.time()
target = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment)) + (".%06d+00" % (
    (moment % 1) * 1000000))
time.sleep(0.5)
after = orders(2)
t.ok(len(before) > 10 and len(after) > 5,
     "orders taken after the backup: %d before the moment, %d after" % (len(before), len(after)))

# The segment holding the moment, in the repository.
seg = psql(PRIMARY, "SELECT pg_walfile_name(pg_switch_wal())")
took = wait_for(lambda: (psql(PRIMARY, "SELECT last_archived_wal FROM pg_stat_archiver") or "")
                >= (seg or "~"), 30)
t.ok(took is not None, "the WAL up to the moment is archived (%s)" % seg)

cluster(PRIMARY, "destroy")
t.ok(psql(PRIMARY, "SELECT 1") is None and not os.path.exists(
    os.path.join(os.environ["AGORA_TEST_CLUSTER"], PRIMARY, "pg")),
    "the primary is destroyed: its processes and its data")

t0 = time.monotonic()
cluster("db3", "restore", target)
took = wait_for(lambda: psql("db3", "SELECT pg_is_in_recovery()") == "f", 120)
t.ok(took is not None, "db3 restored to %s and promoted in %.1f s"
     % (target, time.monotonic() - t0))
ids = lambda made: ",".join(x[0] for x in made)  # noqa: E731
have = psql("db3", "SELECT count(*) FROM orders WHERE id = ANY('{%s}'::bigint[])" % ids(before))
t.ok(have == str(len(before)),
     "every order answered before the moment is on db3 (%s of %d)" % (have, len(before)))
have = psql("db3", "SELECT count(*) FROM orders WHERE id = ANY('{%s}'::bigint[])" % ids(after))
t.ok(have == "0", "no order made after it is (%s of %d)" % (have, len(after)))
stock = psql("db3", "SELECT on_hand - reserved FROM inventory WHERE product_id = %s" % PID)
t.ok(stock == str(100000 - len(before)),
     "and the stock is as those orders left it (%s)" % stock)
t.done()
