"""winback's part of the customer page (crm.timeline): lifecycle events, case events and the calls'
dispositions on the timeline, and the open case with the agent holding it in the summary. Registered by
WinbackConfig.ready."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from crm import timeline
from crm.models import Contact, Customer
from winback.models import CaseEvent, Disposition, LifecycleEvent, WinbackCase

OUTCOMES = dict(Contact.Outcome.choices)


def _lifecycle(event: LifecycleEvent) -> tuple[str, str]:
    return gettext("Lifecycle"), gettext("Status: %(kind)s") % {"kind": event.get_kind_display()}


def _case_event(event: CaseEvent) -> tuple[str, str]:
    case = event.case
    text = (gettext("Care call #%(id)s") if case.kind == WinbackCase.Kind.CARE
            else gettext("Win-back case #%(id)s")) % {"id": case.pk}
    who = event.agent.get_username() if event.agent_id else event.actor
    if who:
        text += " " + gettext("by %(who)s") % {"who": who}
    if event.from_status and event.from_status != event.to_status:
        text += ", " + gettext("%(old)s to %(new)s") % {"old": event.get_from_status_display(),
                                                          "new": event.get_to_status_display()}
    if event.reason:
        text += " (" + event.reason[:100] + ")"
    return gettext("Case %(what)s") % {"what": event.get_kind_display().lower()}, text


def _case_events(customer_id: int) -> QuerySet[CaseEvent]:
    # A recorded call is on the timeline as its disposition (reason, offer, coupon): its "worked" event
    # would say the same thing again.
    return (CaseEvent.objects.filter(case__customer_id=customer_id).exclude(kind=CaseEvent.Kind.WORKED)
            .select_related("case", "agent"))


def _disposition(disposition: Disposition) -> tuple[str, str]:
    text = gettext("Call by %(agent)s: %(outcome)s") % {
        "agent": disposition.agent.get_username(), "outcome": OUTCOMES.get(disposition.outcome, disposition.outcome)}
    if disposition.reason_id:
        text += "; " + gettext("reason for leaving: %(reason)s") % {"reason": disposition.reason.name}
    if disposition.coupon_id:
        coupon = disposition.coupon
        offer = coupon.offer.name if coupon.offer_id else gettext("no offer")
        text += "; " + gettext("offer: %(offer)s, coupon %(code)s") % {"offer": offer, "code": coupon.code}
    if disposition.callback_at:
        text += "; " + gettext("callback %(at)s") % {"at": f"{timezone.localtime(disposition.callback_at):%Y-%m-%d %H:%M}"}
    if disposition.note:
        text += " (" + " ".join(disposition.note.split())[:80] + ")"
    return gettext("Call"), text


def _dispositions(customer_id: int) -> QuerySet[Disposition]:
    return Disposition.objects.filter(case__customer_id=customer_id).select_related(
        "agent", "reason", "coupon__offer")


def open_case_facts(customer: Customer) -> list[timeline.Fact]:
    cases = list(WinbackCase.objects.filter(customer_id=customer.pk, status=WinbackCase.Status.OPEN)
                 .select_related("claimed_by").order_by("kind", "-opened_at")[:2])
    if not cases:
        return [timeline.Fact("open_case", gettext("Open win-back case"), gettext("None"))]
    facts = []
    for case in cases:
        label = gettext("Open care call") if case.kind == WinbackCase.Kind.CARE else gettext("Open win-back case")
        value = gettext("#%(id)s, opened %(at)s") % {"id": case.pk, "at": f"{timezone.localtime(case.opened_at):%Y-%m-%d}"}
        if case.holdout:
            value += ", " + gettext("in the holdout (never contacted)")
        if case.claimed_by_id:
            value += ", " + gettext("held by %(agent)s") % {"agent": case.claimed_by.get_username()}
        else:
            value += ", " + gettext("not held by an agent")
        facts.append(timeline.Fact("open_case", label, value,
                                   url=reverse("admin:winback_winbackcase_change", args=[case.pk])))
    return facts


def register() -> None:
    timeline.timeline_kind_register(key="lifecycle", label=_("Lifecycle"), position=20)
    timeline.timeline_kind_register(key="cases", label=_("Cases"), position=30)
    timeline.timeline_queryset_register(
        name="winback.lifecycle", kind="lifecycle", at="occurred_at", describe=_lifecycle,
        build=lambda cid: LifecycleEvent.objects.filter(customer_id=cid))
    timeline.timeline_queryset_register(name="winback.case_events", kind="cases", at="at", describe=_case_event,
                                        build=_case_events)
    timeline.timeline_queryset_register(name="winback.dispositions", kind="calls", at="created_at",
                                        describe=_disposition, build=_dispositions)
    timeline.timeline_contacts_claim(
        name="winback.dispositions",
        contact_ids=lambda cid: Disposition.objects.filter(case__customer_id=cid).values("contact_id"))
    timeline.summary_fact_register(name="winback.open_case", facts=open_case_facts)
