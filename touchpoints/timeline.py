"""touchpoints' part of the customer timeline (crm.timeline): each message or call task a cadence made, sent
or held back with the reason. Registered by TouchpointsConfig.ready."""

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import gettext, gettext_lazy as _

from core.isolation import label, sentence_isolated
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
    # Whole sentences, one per shape: a translator orders the parts as the language needs.
    # The channel and the reason are our own words; the cadence's name, the subject and an error are data,
    # isolated (core/isolation.py): a manager's English cadence name inside an Arabic sentence reads right.
    values = {"channel": label(tp.get_channel_display()), "cadence": tp.step.cadence.name, "subject": tp.subject[:80]}
    if tp.status != Status.SENT and tp.reason:
        values["reason"] = label(tp.get_reason_display())
        text = (gettext("%(channel)s: %(cadence)s (%(subject)s); reason: %(reason)s") if tp.subject
                else gettext("%(channel)s: %(cadence)s; reason: %(reason)s"))
    elif tp.status == Status.FAILED and tp.last_error:
        values["error"] = tp.last_error[:80]
        text = (gettext("%(channel)s: %(cadence)s (%(subject)s); error: %(error)s") if tp.subject
                else gettext("%(channel)s: %(cadence)s; error: %(error)s"))
    else:
        text = gettext("%(channel)s: %(cadence)s (%(subject)s)") if tp.subject else gettext("%(channel)s: %(cadence)s")
    return str(LABELS[tp.status]), sentence_isolated(text, **values)


def register() -> None:
    timeline.timeline_kind_register(key="touchpoints", label=_("Touchpoints"), position=50)
    timeline.timeline_queryset_register(name="touchpoints.touchpoints", kind="touchpoints", at="happened_at",
                                        describe=_touchpoint, build=_touchpoints)
    timeline.timeline_contacts_claim(
        name="touchpoints.sent",
        contact_ids=lambda cid: Touchpoint.objects.filter(customer_id=cid, contact__isnull=False).values("contact_id"))
