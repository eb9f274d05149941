from django.db.models import Prefetch
from django.utils.translation import gettext as _

from touchpoints.models import Cadence, CadenceStep, TouchpointSettings
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
                offer = _("offer “%(name)s”") % {"name": step.offer.name}
                problems.append(_("%(step)s issues the %(offer)s, which is no longer active.") % {"step": step_label, "offer": offer})
                problems += row_problems(step.offer, label=f"{step_label}, {offer}")
    return problems
