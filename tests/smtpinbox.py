"""An SMTP server of the tests (aiosmtpd, from Debian) that keeps what it
receives, on the port of the stack's smtp_url, for the tests that read
agora-worker's mails back (worker_invoices.py, http_account_mail.py)."""
import email
import email.policy
import threading
import urllib.parse

from aiosmtpd.controller import Controller

from agoratest import config_value


class Inbox:
    def __init__(self):
        self.mails = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def parsed(self):
        """Every mail so far as (recipients, raw bytes, parsed message)."""
        with self.lock:
            return [(to, raw, email.message_from_bytes(raw, policy=email.policy.default))
                    for to, raw in self.mails]

    def to(self, addr, subject):
        """The parsed mails with this To and Subject, oldest first."""
        return [m for _, _, m in self.parsed() if m["To"] == addr and m["Subject"] == subject]


class Smtp:
    """The server, stopped and started again by the tests of SMTP down."""

    def __init__(self, inbox):
        self.inbox, self.c = inbox, None
        self.port = urllib.parse.urlsplit(config_value("smtp_url")).port

    def start(self):
        self.c = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.c.start()

    def stop(self):
        self.c.stop()
