from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from winback.models import DormancyPolicy
from winback.signals import policy_changed

US_PER_DAY = 86_400_000_000


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

    def thresholds(self, *, i: int, span_us: int) -> tuple[int, int]:
        """(lapse, at-risk) thresholds after order i, where span_us = t_i - t_1.

        Before min_orders the lapse threshold is default_days; the at-risk one scales it by at_risk_k / k
        (docs/metrics.md leaves it open; "the same rule with at_risk_k" would otherwise put it on the lapse).
        """
        if i >= self.min_orders:
            lapse = min(max(self.K * span_us // (100 * (i - 1)), self.min_us), self.max_us)
            risk = min(max(self.AK * span_us // (100 * (i - 1)), self.min_us), self.max_us)
            return lapse, risk
        return self.default_us, self.default_us * self.AK // self.K


def policy_current() -> DormancyPolicy:
    policy = DormancyPolicy.objects.order_by("-id").first()
    return policy or DormancyPolicy.objects.create(note="defaults")


def policy_params(policy: DormancyPolicy) -> PolicyParams:
    return PolicyParams(
        version=policy.pk,
        K=int(policy.k * 100),
        AK=int(policy.at_risk_k * 100),
        min_orders=policy.min_orders,
        default_us=policy.default_days * US_PER_DAY,
        min_us=policy.min_days * US_PER_DAY,
        max_us=policy.max_days * US_PER_DAY,
        holdout_share=float(policy.holdout_share),
        window_days=policy.attribution_window_days,
    )


POLICY_FIELDS = ["k", "at_risk_k", "min_orders", "default_days", "min_days", "max_days", "holdout_share", "attribution_window_days"]


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
