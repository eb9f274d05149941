import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    CharField, Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Prefetch, Q, QuerySet, Value,
)
from django.db.models.functions import Cast, Concat
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Customer, Feedback
from touchpoints.models import Cadence, CadenceStep, Touchpoint, TouchpointSettings
from touchpoints.services.rendering import SURVEY_OF_TEMPLATE
from winback.models import DormancyPolicy, LifecycleEvent
from winback.selectors import row_problems


def settings_problems() -> list[str]:
    """What is wrong with the sending settings and the enabled cadences, one line each (the admin and
    /health/ show them): values out of bounds in rows stored before the bounds existed (the materialiser
    skips what it cannot compute), what the models' own checks refuse (equal quiet hours keep every email and
    SMS waiting; a milestone cadence without an order number), an enabled cadence that has no enabled step,
    and a step that still issues an offer agents no longer make (active offers: winback.selectors)."""
    problems: list[str] = []
    row = TouchpointSettings.objects.filter(pk=1).first()
    if row is not None:
        problems += row_problems(row, label=_("Touchpoint settings"))
    enabled_steps = CadenceStep.objects.filter(enabled=True).select_related("offer").order_by("position", "id")
    cadences = Cadence.objects.filter(enabled=True).prefetch_related(Prefetch("steps", queryset=enabled_steps))
    for cadence in cadences.order_by("name", "id"):
        label = _("Cadence “%(name)s”") % {"name": cadence.name}
        problems += row_problems(cadence, label=label)
        steps = list(cadence.steps.all())
        if not steps:
            problems.append(_("%(cadence)s is enabled but has no enabled step: it sends nothing.") % {"cadence": label})
        for step in steps:
            step_label = _("%(cadence)s, step %(position)s") % {"cadence": label, "position": step.position}
            problems += row_problems(step, label=step_label)
            if step.offer is not None and not step.offer.active:
                names = {"step": step_label, "offer": step.offer.name}
                problems.append(_("%(step)s issues the offer “%(offer)s”, which is no longer active.") % names)
                problems += row_problems(step.offer, label=_("%(step)s, offer “%(offer)s”") % names)
    return problems


# --- A cadence's results, step by step (the cadence's admin page) -----------------------------------------

# A customer touched by a step counts as reactivated when a reactivation event (docs/metrics.md s.1: an
# order by a lapsed or cancelled customer) falls in [sent_at, sent_at + window). Steps have no window of
# their own: the window is the dormancy policy's attribution window, the one that decides whether a
# win-back case was won by a contact (metrics.md s.3), so both pages credit a contact alike.
DEFAULT_ATTRIBUTION_DAYS = 30  # the policy's default, for a database without a policy row yet
_RESULT_DEFINITIONS = {
    "period": gettext_lazy("A touchpoint counts in the period its due time falls in (the time the sending "
                           "rules decided on it); no period: every touchpoint of the step."),
    "sent": gettext_lazy("Touchpoints sent (for a call step: call tasks put in the agents' queue)."),
    "suppressed": gettext_lazy("Touchpoints a sending rule refused, by the reason recorded (cancelled and "
                               "deferred ones are not counted)."),
    "answered": gettext_lazy("Sent touchpoints whose survey (NPS or CSAT score link) the customer answered; "
                             "a step whose message asks no survey cannot be answered (shown as -)."),
    "touched": gettext_lazy("Distinct customers the step was sent to."),
    "reactivated": gettext_lazy("Of those customers, how many reactivated (an order while lapsed or cancelled, "
                                "docs/metrics.md section 1) from the send to %(days)s days after it: the "
                                "dormancy policy's attribution window."),
}


def result_definitions(*, window_days: int) -> dict[str, str]:
    """How each column of the results is computed, for the page to say next to the figures."""
    return {key: str(text) % {"days": window_days} if key == "reactivated" else str(text)
            for key, text in _RESULT_DEFINITIONS.items()}


@dataclass(frozen=True)
class StepResult:
    step: CadenceStep
    sent: int
    suppressed: int
    suppressed_by_reason: list[tuple[str, str, int]]  # (reason, label, count), largest first
    answerable: bool
    answered: int
    touched: int
    reactivated: int

    @property
    def reactivated_percent(self) -> float | None:
        """Reactivated / touched, in percent; None (n/a) when nobody was touched."""
        return 100 * self.reactivated / self.touched if self.touched else None


@dataclass(frozen=True)
class CadenceResults:
    steps: list[StepResult]
    window_days: int
    start: dt.datetime | None
    end: dt.datetime | None


def attribution_window_days() -> int:
    days = DormancyPolicy.objects.order_by("-id").values_list("attribution_window_days", flat=True).first()
    return days or DEFAULT_ATTRIBUTION_DAYS


def cadence_results(*, cadence: Cadence, start: dt.datetime | None = None, end: dt.datetime | None = None) -> CadenceResults:
    """Per step of ``cadence``: sent, suppressed by reason, answered, customers touched and those reactivated
    within the window (RESULT_DEFINITIONS), for touchpoints due in [start, end) (None: unbounded).

    One grouped query per measure over the whole cadence, whatever the number of touchpoints."""
    window_days = attribution_window_days()
    base = Touchpoint.objects.filter(step__cadence=cadence)
    if start is not None:
        base = base.filter(due_at__gte=start)
    if end is not None:
        base = base.filter(due_at__lt=end)
    sent = base.filter(status=Touchpoint.Status.SENT).order_by()
    sent_counts = {r["step"]: r for r in sent.values("step").annotate(n=Count("id"), customers=Count("customer", distinct=True))}
    by_reason: dict[int, list[tuple[str, int]]] = {}
    for r in (base.filter(status=Touchpoint.Status.SUPPRESSED).order_by().values("step", "reason")
              .annotate(n=Count("id")).order_by("step", "-n", "reason")):
        by_reason.setdefault(r["step"], []).append((r["reason"], r["n"]))
    answered = dict(sent.filter(Exists(_survey_answer())).values("step").annotate(n=Count("id")).values_list("step", "n"))
    reactivated = dict(sent.filter(Exists(_reactivation_within(dt.timedelta(days=window_days))))
                       .values("step").annotate(n=Count("customer", distinct=True)).values_list("step", "n"))
    labels = dict(Touchpoint.Reason.choices)
    steps = []
    for step in cadence.steps.order_by("position", "id"):
        reasons = by_reason.get(step.pk, [])
        row = sent_counts.get(step.pk, {})
        steps.append(StepResult(
            step=step, sent=row.get("n", 0), suppressed=sum(n for _, n in reasons),
            suppressed_by_reason=[(reason, labels.get(reason, reason or "-"), n) for reason, n in reasons],
            answerable=step.template in SURVEY_OF_TEMPLATE, answered=answered.get(step.pk, 0),
            touched=row.get("customers", 0), reactivated=reactivated.get(step.pk, 0)))
    return CadenceResults(steps=steps, window_days=window_days, start=start, end=end)


def _survey_answer() -> QuerySet:
    """The answer recorded from a touchpoint's score links (links.SurveyLink.external_id): an exact match on
    the unique external_id, so the index answers it."""
    touchpoint = Cast(OuterRef("pk"), output_field=CharField())
    return Feedback.objects.filter(
        Q(external_id=Concat(Value("touchpoint-"), touchpoint, Value("-nps"), output_field=CharField()))
        | Q(external_id=Concat(Value("touchpoint-"), touchpoint, Value("-csat"), output_field=CharField())))


def _reactivation_within(window: dt.timedelta) -> QuerySet:
    return LifecycleEvent.objects.filter(
        customer_id=OuterRef("customer_id"), kind=LifecycleEvent.Kind.REACTIVATED, occurred_at__gte=OuterRef("sent_at"),
        occurred_at__lt=ExpressionWrapper(OuterRef("sent_at") + window, output_field=DateTimeField()))


# --- Choosing a customer to preview a step as ---------------------------------------------------------------

MAX_CUSTOMER_QUERY = 254  # an email address's longest
MAX_CUSTOMER_CHOICES = 10


def customer_choices(*, query: str) -> list[Customer]:
    """Customers matching ``query`` exactly: an id, an external id or an email address (any case); at most
    MAX_CUSTOMER_CHOICES, erased customers left out (nothing of them is left to show)."""
    query = query.strip()
    if not query or len(query) > MAX_CUSTOMER_QUERY:
        return []
    match = Q(external_id=query)
    if query.isascii() and query.isdigit() and len(query) <= 18:
        match |= Q(pk=int(query))
    if "@" in query:
        match |= Q(email__iexact=query)
    return list(Customer.objects.filter(match, erased_at__isnull=True).order_by("pk")[:MAX_CUSTOMER_CHOICES])
