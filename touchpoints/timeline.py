"""touchpoints' part of the customer timeline (crm.timeline): each message or call task a cadence made, sent
or held back with the reason. Registered by TouchpointsConfig.ready."""

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import gettext, gettext_lazy as _

from crm import timeline
from touchpoints.models import Touchpoint

Status = Touchpoint.Status
# What has happened; a touchpoint still scheduled or being sent is not history yet.
SHOWN = (Status.SENT, Status.SUPPRESSED, Status.CANCELLED, Status.FAILED)
LABELS = {
    Status.SENT: _("Touchpoint sent"),
    Status.SUPPRESSED: _("Touchpoint suppressed"),
    Status.CANCELLED: _("Touchpoint cancelled"),
    Status.FAILED: _("Touchpoint failed"),
}


def _touchpoints(customer_id: int) -> QuerySet[Touchpoint]:
    # Sent ones when they went out; the others when they were due (when the rule said no).
    return (Touchpoint.objects.filter(customer_id=customer_id, status__in=SHOWN)
            .annotate(happened_at=Coalesce(F("sent_at"), F("due_at"))).select_related("step__cadence"))


def _touchpoint(tp: Touchpoint) -> tuple[str, str]:
    text = f"{tp.get_channel_display()}: {tp.step.cadence.name}"
    if tp.subject:
        text += f" ({tp.subject[:80]})"
    if tp.status != Status.SENT and tp.reason:
        text += "; " + gettext("reason: %(reason)s") % {"reason": tp.get_reason_display()}
    elif tp.status == Status.FAILED and tp.last_error:
        text += "; " + gettext("error: %(error)s") % {"error": tp.last_error[:80]}
    return str(LABELS[tp.status]), text


def register() -> None:
    timeline.timeline_kind_register(key="touchpoints", label=_("Touchpoints"), position=50)
    timeline.timeline_queryset_register(name="touchpoints.touchpoints", kind="touchpoints", at="happened_at",
                                        describe=_touchpoint, build=_touchpoints)
    timeline.timeline_contacts_claim(
        name="touchpoints.sent",
        contact_ids=lambda cid: Touchpoint.objects.filter(customer_id=cid, contact__isnull=False).values("contact_id"))
