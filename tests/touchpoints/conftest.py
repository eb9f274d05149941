import datetime as dt
from itertools import count

import pytest

from crm.models import Customer
from crm.services.audit import SYSTEM
from crm.services.customers import customer_create
from tests.smtp import SmtpSink
from touchpoints.models import Cadence, CadenceStep, Touchpoint

# Noon UTC on a Tuesday: outside quiet hours for a customer in the business time zone (UTC).
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
_ids = count()


@pytest.fixture
def smtp(settings):
    """A real SMTP server; Django's SMTP backend talks to it."""
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    sink.stop()


def make_customer(**kwargs) -> Customer:
    n = next(_ids)
    data = {"external_id": f"TP{n}", "name": f"Amina Test{n}", "email": f"tp{n}@example.com",
            "email_consent": "granted", **kwargs}
    customer, _ = customer_create(actor=SYSTEM, data=data)
    return customer


def make_step(*, trigger: str = "at_risk", marketing: bool = True, template: str = "appreciation",
              channel: str = "email", offer=None, **cadence_fields) -> CadenceStep:
    cadence = Cadence.objects.create(name=f"Test {trigger} {next(_ids)}", trigger=trigger, marketing=marketing, **cadence_fields)
    return CadenceStep.objects.create(cadence=cadence, channel=channel, template=template, offer=offer)


def make_touchpoint(customer: Customer, step: CadenceStep | None = None, *, due_at: dt.datetime = NOW,
                    anchor_at: dt.datetime | None = None, anchor: str = "") -> Touchpoint:
    step = step or make_step()
    return Touchpoint.objects.create(
        customer=customer, step=step, channel=step.channel, anchor_at=anchor_at or due_at - dt.timedelta(hours=1),
        anchor=anchor, due_at=due_at, idempotency_key=f"test:{next(_ids)}",
    )
