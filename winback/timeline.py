"""winback's part of the customer page (crm.timeline): lifecycle events, case events and the calls'
dispositions on the timeline, and the open case with the agent holding it in the summary. Registered by
WinbackConfig.ready."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from core.isolation import label as label_text, sentence_isolated
from core.locale_format import date_local
from crm import timeline
from crm.models import Contact, Customer
from winback.models import CaseEvent, Disposition, LifecycleEvent, WinbackCase

OUTCOMES = dict(Contact.Outcome.choices)


def _lifecycle(event: LifecycleEvent) -> tuple[str, str]:
    return gettext("Lifecycle"), gettext("Status: %(kind)s") % {"kind": event.get_kind_display()}


def _case_event(event: CaseEvent) -> tuple[str, str]:
    case = event.case
    # Translators: a win-back or care case on the customer's timeline, e.g. "Care call #12".
    label = (gettext("Care call #%(id)s") if case.kind == WinbackCase.Kind.CARE
             else gettext("Win-back case #%(id)s")) % {"id": case.pk}
    who = event.agent.get_username() if event.agent_id else event.actor
    changed = bool(event.from_status and event.from_status != event.to_status)
    # The case's name and the statuses are our own words (labels); who did it is data (isolated).
    data = {"case": label_text(label), "who": who, "old": label_text(event.get_from_status_display()),
            "new": label_text(event.get_to_status_display())}
    # One whole sentence for each combination: word order differs between languages.
    if who and changed:
        # Translators: "Win-back case #12 by anna, Open to Won".
        text = sentence_isolated(gettext("%(case)s by %(who)s, %(old)s to %(new)s"), **data)
    elif who:
        text = sentence_isolated(gettext("%(case)s by %(who)s"), case=data["case"], who=who)
    elif changed:
        text = sentence_isolated(gettext("%(case)s, %(old)s to %(new)s"), case=data["case"], old=data["old"], new=data["new"])
    else:
        text = label_text(label)
    if event.reason:
        # Translators: a case event on the timeline, then the reason it gives (free text, in brackets).
        text = sentence_isolated(gettext("%(event)s (%(reason)s)"), event=text, reason=event.reason[:100])
    return gettext("Case %(what)s") % {"what": event.get_kind_display().lower()}, text


def _case_events(customer_id: int) -> QuerySet[CaseEvent]:
    # A recorded call is on the timeline as its disposition (reason, offer, coupon): its "worked" event
    # would say the same thing again.
    return (CaseEvent.objects.filter(case__customer_id=customer_id).exclude(kind=CaseEvent.Kind.WORKED)
            .select_related("case", "agent"))


def _disposition(disposition: Disposition) -> tuple[str, str]:
    text = sentence_isolated(gettext("Call by %(agent)s: %(outcome)s"), agent=disposition.agent.get_username(),
                             outcome=label_text(OUTCOMES.get(disposition.outcome, disposition.outcome)))
    details = []
    if disposition.reason_id:
        # The reason and the offer as the business wrote them (its default language): translating them here
        # would cost two queries more per timeline (core.content), over the timeline's one per source. Isolated:
        # they may be in another script than the page.
        details.append(sentence_isolated(gettext("reason for leaving: %(reason)s"), reason=disposition.reason.name))
    if disposition.coupon_id:
        coupon = disposition.coupon
        offer = coupon.offer.name if coupon.offer_id else label_text(gettext("no offer"))
        details.append(sentence_isolated(gettext("offer: %(offer)s, coupon %(code)s"), offer=offer, code=coupon.code))
    if disposition.callback_at:
        local = timezone.localtime(disposition.callback_at)
        details.append(sentence_isolated(gettext("callback %(date)s %(time)s"), date=date_local(value=local),
                                         time=f"{local:%H:%M}"))
    for detail in details:
        # Translators: the call's summary, then one more detail of it (Arabic and Persian use "؛").
        text = sentence_isolated(gettext("%(call)s; %(detail)s"), call=text, detail=detail)
    if disposition.note:
        text = sentence_isolated(gettext("%(event)s (%(reason)s)"), event=text,
                                 reason=" ".join(disposition.note.split())[:80])
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
        data = {"id": case.pk, "at": date_local(value=case.opened_at),
                "agent": case.claimed_by.get_username() if case.claimed_by_id else ""}
        # One whole sentence for each combination (the holdout, who holds the case).
        if case.holdout and case.claimed_by_id:
            value = sentence_isolated(gettext("#%(id)s, opened %(at)s, in the holdout (never contacted), held by %(agent)s"), **data)
        elif case.holdout:
            value = sentence_isolated(gettext("#%(id)s, opened %(at)s, in the holdout (never contacted), not held by an agent"), **data)
        elif case.claimed_by_id:
            value = sentence_isolated(gettext("#%(id)s, opened %(at)s, held by %(agent)s"), **data)
        else:
            value = sentence_isolated(gettext("#%(id)s, opened %(at)s, not held by an agent"), **data)
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
