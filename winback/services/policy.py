import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from winback.models import DormancyPolicy
from winback.signals import policy_changed

US_PER_DAY = 86_400_000_000
US_PER_WEEK = 7 * US_PER_DAY
# The window rule is the rhythm rule's branch before min_orders for every order: min_orders out of reach.
NEVER = 2**31 - 1


@dataclass(frozen=True)
class PolicyParams:
    """The policy in the units the engine computes in: whole microseconds, k as hundredths (k = K/100),
    so the SQL engine and Python agree to the microsecond (thresholds are rounded down)."""

    version: int
    K: int
    AK: int
    min_orders: int
    default_us: int
    min_us: int
    max_us: int
    holdout_share: float
    window_days: int
    # The model rule (docs/metrics.md s.1, "Optional model-based rule"): BG/NBD parameters of the policy's fit.
    model_rule: bool = False
    p_alive_min: float = 0.0
    r: float = 0.0
    alpha: float = 0.0
    a: float = 0.0
    b: float = 0.0
    tz: str = "UTC"  # purchase days (the model's x) are days of the business time zone

    def thresholds(self, *, i: int, span_us: int, x: int = 0) -> tuple[int, int]:
        """(lapse, at-risk) thresholds after order i, where span_us = t_i - t_1 and x = the purchase days
        among orders 1..i, less one (the model rule's repeat purchases).

        Before min_orders the lapse threshold is default_days; the at-risk one scales it by at_risk_k / k
        (docs/metrics.md leaves it open; "the same rule with at_risk_k" would otherwise put it on the lapse).
        The model rule's at-risk threshold scales its lapse threshold the same way.
        """
        if self.model_rule:
            lapse = self.model_threshold_us(span_us=span_us, x=x) if x >= 1 else self.default_us
            return lapse, lapse * self.AK // self.K
        if i >= self.min_orders:
            lapse = min(max(self.K * span_us // (100 * (i - 1)), self.min_us), self.max_us)
            risk = min(max(self.AK * span_us // (100 * (i - 1)), self.min_us), self.max_us)
            return lapse, risk
        return self.default_us, self.default_us * self.AK // self.K

    def model_threshold_us(self, *, span_us: int, x: int) -> int:
        """Microseconds after the last purchase at which BG/NBD's P(alive) falls to p_alive_min, bounded by
        min_days and max_days (a degenerate fit can neither lapse everyone at once nor no one ever).

        P(alive | x, t_x, T) = 1 / (1 + c ((alpha + T) / (alpha + t_x))^(r + x)), c = a / (b + x - 1), in
        weeks since the first purchase, so P = p at T = (alpha + t_x) ((1/p - 1) / c)^(1 / (r + x)) - alpha.
        The operations are those of lifecycle_sql.EVENTS_SQL, in the same order: both give the same float
        and the same microsecond."""
        tx_weeks = span_us / US_PER_WEEK
        root = ((1.0 / self.p_alive_min - 1.0) * (self.b + x - 1) / self.a) ** (1.0 / (self.r + x))
        weeks = (self.alpha + tx_weeks) * root - self.alpha - tx_weeks
        return int(math.floor(min(max(weeks * US_PER_WEEK, self.min_us), self.max_us)))


def policy_current() -> DormancyPolicy:
    policy = DormancyPolicy.objects.order_by("-id").first()
    return policy or DormancyPolicy.objects.create(note="defaults")


def policy_params(policy: DormancyPolicy) -> PolicyParams:
    model = policy.model_fit.params if policy.rule == DormancyPolicy.Rule.MODEL and policy.model_fit else None
    return PolicyParams(
        version=policy.pk,
        K=int(policy.k * 100),
        AK=int(policy.at_risk_k * 100),
        min_orders=NEVER if policy.rule == DormancyPolicy.Rule.WINDOW else policy.min_orders,
        default_us=policy.default_days * US_PER_DAY,
        min_us=policy.min_days * US_PER_DAY,
        max_us=policy.max_days * US_PER_DAY,
        holdout_share=float(policy.holdout_share),
        window_days=policy.attribution_window_days,
        model_rule=model is not None,
        p_alive_min=float(policy.p_alive_min),
        **({k: float(model[k]) for k in ("r", "alpha", "a", "b")} if model else {}),
        tz=settings.TIME_ZONE,
    )


POLICY_FIELDS = ["rule", "k", "at_risk_k", "min_orders", "default_days", "min_days", "max_days", "p_alive_min", "model_fit",
                 "holdout_share", "attribution_window_days"]


@transaction.atomic
def policy_change(*, user: AbstractBaseUser | None, values: dict[str, Any], note: str = "") -> DormancyPolicy:
    """A new policy version (the old ones stay, with who made them and when); lifecycles are rebuilt
    (config/pipeline.py; the hourly scan also rebuilds when the policy it last built with is not current)."""
    current = policy_current()
    data = {f: values.get(f, getattr(current, f)) for f in POLICY_FIELDS}
    policy = DormancyPolicy(**data, note=note[:200], created_by=user if user and user.is_authenticated else None)
    policy.full_clean()
    policy.save()
    policy_changed.send(sender=DormancyPolicy, policy=policy)
    return policy
