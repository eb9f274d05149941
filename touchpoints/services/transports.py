"""How a message leaves: email through Django's backend (SMTP in production), SMS through a pluggable one.

Errors are sorted into temporary ones (retry later) and permanent ones (the touchpoint fails, visible in
the admin): a 4xx SMTP reply, a dropped connection or a timeout is temporary; a 5xx reply is permanent.
A temporary error is the mail server's (it is down, busy, unreachable: every message waits for it) unless
the server refused only this recipient with a 4xx other than 421 (a full mailbox, greylisting).

A connection that drops or times out after the message was handed over (after DATA, before the server's
250) is the one ambiguous case: the server may have queued it. It counts as temporary and is sent again,
with the same Message-ID: a message lost for good is worse than a rare duplicate that mail systems can
recognise by its Message-ID.
"""

import email.utils
import logging
import smtplib
from collections import deque
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


class TransientSendError(Exception):
    """Try again later. ``server``: the mail server itself is unavailable (not just this recipient)."""

    def __init__(self, message: str, *, server: bool = True) -> None:
        super().__init__(message)
        self.server = server


class PermanentSendError(Exception):
    """Trying again will not help."""


def classify_smtp_error(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        message = f"Recipient refused: {exc.recipients}"
        if bool(codes) and all(400 <= code < 500 for code in codes):
            # 421 is "service not available" whatever the command; other 4xx concern this mailbox only.
            return TransientSendError(message, server=421 in codes)
        return PermanentSendError(message)
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = TransientSendError if 400 <= exc.smtp_code < 500 else PermanentSendError
        message = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return kind(f"SMTP {exc.smtp_code}: {message}")
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)):
        return TransientSendError(f"{type(exc).__name__}: {exc}")
    return PermanentSendError(f"{type(exc).__name__}: {exc}")


class EmailTransport:
    """One connection reused for a batch; reopened after an error (the server may have dropped it)."""

    def __init__(self) -> None:
        self._connection = None

    def send(self, *, to: str, subject: str, text: str, html: str, headers: dict[str, str]) -> None:
        try:
            if self._connection is None:
                self._connection = get_connection(fail_silently=False)
                # Opened here, the connection stays open for the next messages (a connection the backend
                # opens by itself is closed after each send).
                self._connection.open()
            message = EmailMultiAlternatives(
                subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to], headers=headers,
                connection=self._connection,
            )
            message.attach_alternative(html, "text/html")
            message.send()
        except Exception as exc:
            self.close()
            raise classify_smtp_error(exc) from exc

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection may fail again; it is gone either way
                log.debug("closing the email connection failed", exc_info=True)
            self._connection = None


def mail_server_probe(*, timeout: float = 10) -> str | None:
    """None when the mail server would take a message now, else why not. It is asked as a message would be
    (connect, EHLO, NOOP, MAIL FROM, then RSET: nothing is sent); a backend other than SMTP always would."""
    connection = get_connection(fail_silently=False)
    if not isinstance(connection, SmtpBackend):
        return None
    # A server that does not answer must not hold the tick for the whole EMAIL_TIMEOUT.
    connection.timeout = min(connection.timeout or timeout, timeout)
    sender = email.utils.parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    try:
        connection.open()
        smtp = connection.connection
        smtp.ehlo_or_helo_if_needed()
        for code, text in (smtp.noop(), smtp.mail(sender), smtp.rset()):
            if code >= 400:
                raise smtplib.SMTPResponseException(code, text)
    except Exception as exc:
        return str(classify_smtp_error(exc))
    finally:
        try:
            connection.close()
        except Exception:  # closing a broken connection may fail again; it is gone either way
            log.debug("closing the probe connection failed", exc_info=True)
    return None


class SmsBackend(Protocol):
    def send(self, *, to: str, text: str, reference: str) -> str:
        """Send and return the provider's message id; raise TransientSendError or PermanentSendError."""


class LoggingSmsBackend:
    """The default: writes the SMS to the log (plug a provider in with TOUCHPOINT_SMS_BACKEND)."""

    sent: deque[dict] = deque(maxlen=1000)  # the last ones, in memory too, for the tests and the demo

    def send(self, *, to: str, text: str, reference: str) -> str:
        log.info("SMS to %s (%s): %s", to, reference, text)
        LoggingSmsBackend.sent.append({"to": to, "text": text, "reference": reference})
        return f"log-{reference}"


def sms_backend() -> SmsBackend:
    return import_string(settings.TOUCHPOINT_SMS_BACKEND)()
