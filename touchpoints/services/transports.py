"""How a message leaves: email through Django's backend (SMTP in production), SMS through a pluggable one.

Errors are sorted into temporary ones (retry later) and permanent ones (the touchpoint fails, visible in
the admin): a 4xx SMTP reply, a dropped connection or a timeout is temporary; a 5xx reply is permanent.
"""

import logging
from collections import deque
import smtplib
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


class TransientSendError(Exception):
    """Try again later."""


class PermanentSendError(Exception):
    """Trying again will not help."""


def classify_smtp_error(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        temporary = bool(codes) and all(400 <= code < 500 for code in codes)
        return (TransientSendError if temporary else PermanentSendError)(f"Recipient refused: {exc.recipients}")
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
