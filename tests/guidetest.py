"""What the two install tests share: the README's install guide
(tests/install_guide.py) and the Debian package's (tests/deb_package.py).
Each follows the command blocks of a document marked for it, then places
an order through the installed Apache and waits for the worker to charge
it and store its invoice."""
import grp
import os
import pwd
import re
import stat
import uuid

from agoratest import request, wait_for

ADMIN_PW = "a long admin password"


def marked_blocks(text, marker):
    """The ```sh blocks that follow an <!-- marker --> line, in order."""
    return re.findall(r"<!-- %s -->\n```sh\n(.*?)```" % re.escape(marker), text, re.S)


def cron_lines(path):
    """The (user, command) of each line of a cron.d file that runs."""
    out = []
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        f = line.split(None, 6)
        out.append((f[5], f[6]))
    return out


def owner_mode(path):
    st = os.stat(path)
    return "%s:%s %04o" % (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
                           stat.S_IMODE(st.st_mode))


def order_paid(t, seconds, who):
    """The admin the guide made makes a product, a shopper signs up and
    orders two with a card; the order must be completed (charged, its
    invoice stored) within seconds by who (the workers that run it).
    Returns True when its invoice PDF is served."""
    run = uuid.uuid4().hex[:8]
    r = request("POST", "/api/v1/auth/login", body={"email": "admin@example.com",
                                                    "password": ADMIN_PW})
    t.ok(r.status == 200, "the first admin, made as the guide says, logs in", r)
    adm = {"Authorization": "Bearer " + r.json().get("access_token", "")}
    r = request("POST", "/api/v1/products", headers=adm, body={
        "sku": "GUIDE-" + run, "name": "Guide", "price_cents": 1250, "stock": 10})
    t.ok(r.status == 201, "the admin makes a product", r)
    pid = r.json().get("id")
    email = "shopper.%s@example.com" % run
    request("POST", "/api/v1/auth/register",
            body={"email": email, "password": "shopper password 1", "name": "Shopper"})
    r = request("POST", "/api/v1/auth/login",
                body={"email": email, "password": "shopper password 1"})
    h = {"Authorization": "Bearer " + r.json().get("access_token", "")}
    r = request("POST", "/api/v1/orders", headers=h, body={
        "items": [{"product_id": pid, "quantity": 2}],
        "payment": {"method": "card", "token": "tok_visa"}})
    t.ok(r.status == 201, "a shopper who signed up places an order with a card", r)
    oid = r.json().get("id")

    def status():
        return request("GET", "/api/v1/orders/%s" % oid, headers=h).json().get("status")
    took = wait_for(lambda: status() == "completed", seconds)
    t.ok(took is not None, "%s charge it and store its invoice: completed (%s)"
         % (who, status()), took)
    inv = request("GET", "/api/v1/orders/%s/invoice" % oid, headers=h)
    return t.ok(inv.status == 200 and inv.body.startswith(b"%PDF"),
                "the installed Apache serves the invoice the worker stored", inv)
