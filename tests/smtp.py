"""A real SMTP server for the tests (aiosmtpd in a thread): messages arrive through a real conversation."""

import asyncio
import email
import email.policy
import logging
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: "SmtpSink") -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.sink.lock:
            if self.sink.down_reply:
                return self.sink.down_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.sink.lock:
            if self.sink.reply_to_rcpt:
                return self.sink.reply_to_rcpt.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpSink:
    """Start it, point EMAIL_URL / EMAIL_HOST at ``port``, read ``messages``. ``reply_to_rcpt`` holds
    replies to give to the next RCPT commands instead of accepting them (e.g. "451 4.3.0 Try again later");
    while ``down_reply`` is set, every MAIL command gets it (e.g. "421 4.3.2 Service not available"): an outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.reply_to_rcpt: list[str] = []
        self.down_reply: str | None = None
        self.delay = 0.0  # seconds before accepting each message, like a real server's latency
        self.lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def by_header(self, name: str) -> dict[str, list[EmailMessage]]:
        out: dict[str, list[EmailMessage]] = {}
        with self.lock:
            for m in self.messages:
                out.setdefault(str(m[name]), []).append(m)
        return out
