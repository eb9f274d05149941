"""A manager's test send: a step's message, rendered for a chosen customer (or a sample), sent to the
manager's own address through the product's email transport. (The module is not called test_send.py so
that no test runner mistakes it for a test.)

It is not a touchpoint: no outbox row, no Contact on the customer's timeline, no coupon issued, so it
counts in no KPI, never uses up the frequency cap and never stands in for the real send (whose
idempotency key it does not take). Its subject says it is a test, and so does a header, so that a mail
filter can tell it apart. An SMS step's text arrives by email too: the manager's phone is not on record.
"""

import logging

from django.conf import settings
from django.utils.html import format_html
from django.utils.translation import gettext as _

from crm.models import Customer
from touchpoints.models import CadenceStep
from touchpoints.services.preview import StepPreview, cadence_step_preview
from touchpoints.services.transports import EmailTransport, PermanentSendError, TransientSendError

log = logging.getLogger(__name__)
TEST_SUBJECT_PREFIX = "[TEST]"
TEST_HEADER = "X-Winback-Test-Send"


class SendRefused(Exception):
    """The test cannot be sent; the message says why, for the manager."""


def cadence_step_test_send(*, step: CadenceStep, customer: Customer | None, to: str, requested_by: str,
                           locale: str = "en", transport: EmailTransport | None = None) -> StepPreview:
    """Send ``step`` as ``customer`` would get it (a sample customer in ``locale`` when None) to ``to``,
    the requesting manager's own address; raises SendRefused with a reason a manager can act on."""
    if not (to or "").strip():
        raise SendRefused(_("Your user account has no email address, so there is nowhere to send the test. "
                            "Add one to your account and try again."))
    if not step.template:
        raise SendRefused(_("A call step has no message to send: it puts a call in the agents' queue."))
    preview = cadence_step_preview(step=step, customer=customer, locale=locale)
    rendered = preview.rendered
    if step.channel == CadenceStep.Channel.SMS:
        # Translators: the subject of a test email that carries an SMS, e.g. "[TEST] SMS: Win-back, step 2".
        subject = _("%(prefix)s SMS: %(cadence)s, step %(position)s") % {
            "prefix": TEST_SUBJECT_PREFIX, "cadence": step.cadence.name, "position": step.position}
        text, html = rendered.sms + "\n", format_html("<pre>{}</pre>", rendered.sms)
    else:
        subject, text, html = f"{TEST_SUBJECT_PREFIX} {rendered.subject}", rendered.text, rendered.html
    own_transport = transport is None
    transport = transport or EmailTransport()
    try:
        transport.send(to=to.strip(), subject=subject, text=text, html=html,
                       headers={TEST_HEADER: f"cadence-step-{step.pk}"})
    except (TransientSendError, PermanentSendError) as exc:
        raise SendRefused(_("The mail server did not take the test: %(error)s") % {"error": exc}) from exc
    finally:
        if own_transport:
            transport.close()
    # Who saw which customer's message where: the log keeps it (nothing about the customer changed).
    log.info("test send of step %s as customer %s to %s, asked by %s (from %s)", step.pk,
             "sample" if preview.sample else preview.customer.pk, to, requested_by, settings.DEFAULT_FROM_EMAIL)
    return preview
