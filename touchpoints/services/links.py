"""Signed links in emails: one-click unsubscribe (RFC 8058) and one-click survey scores.

The signature is the authentication: the links work without a login and cannot be forged or altered
(another customer, another score). They do not expire: an unsubscribe link must work years later.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from crm.models import Customer, Feedback
from crm.services.audit import Actor
from crm.services.customers import customer_update
from crm.services.errors import ConflictError
from crm.services.records import feedback_create, record_update
from touchpoints.models import Touchpoint

UNSUBSCRIBE_SALT = "touchpoints.unsubscribe"
SCORE_SALT = "touchpoints.score"
SCORE_RANGES = {"nps": range(0, 11), "csat": range(1, 6)}
LINK_ACTOR = Actor(user=None, label="email link")


class BadLink(Exception):
    """The link was altered, truncated or signed with another key."""


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_url(*, customer_id: int, touchpoint_id: int) -> str:
    token = signing.dumps([customer_id, touchpoint_id], salt=UNSUBSCRIBE_SALT)
    return _absolute(reverse("touchpoints:unsubscribe", args=[token]))


def unsubscribe_read(*, token: str) -> tuple[Customer, int]:
    try:
        customer_id, touchpoint_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadLink("This unsubscribe link is not valid.") from exc
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise BadLink("This unsubscribe link is not valid.")
    return customer, touchpoint_id


def customer_unsubscribe(*, token: str) -> Customer:
    """Record the opt-out as a consent change (audited); doing it twice changes nothing."""
    customer, touchpoint_id = unsubscribe_read(token=token)
    if customer.email_consent == Customer.Consent.WITHDRAWN:
        return customer
    return customer_update(actor=LINK_ACTOR, customer=customer, data={
        "email_consent": Customer.Consent.WITHDRAWN,
        "email_consent_at": timezone.now(),
        "email_consent_source": f"one-click unsubscribe (touchpoint {touchpoint_id})",
    })


def score_links(*, touchpoint_id: int, kind: str) -> list[dict]:
    return [
        {"score": score, "url": _absolute(reverse("touchpoints:score", args=[
            signing.dumps([touchpoint_id, kind, score], salt=SCORE_SALT)]))}
        for score in SCORE_RANGES[kind]
    ]


@dataclass(frozen=True)
class ScoreResult:
    feedback: Feedback
    kind: str
    score: int
    already: bool  # the link had been used before: the first answer stands


def _score_read(token: str) -> tuple[int, str, int]:
    try:
        touchpoint_id, kind, score = signing.loads(token, salt=SCORE_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadLink("This survey link is not valid.") from exc
    if kind not in SCORE_RANGES or score not in SCORE_RANGES[kind]:
        raise BadLink("This survey link is not valid.")
    return touchpoint_id, kind, score


def feedback_record_from_link(*, token: str, comment: str | None = None) -> ScoreResult:
    """One Feedback per (touchpoint, kind), however often and whichever score of it is clicked."""
    touchpoint_id, kind, score = _score_read(token)
    touchpoint = Touchpoint.objects.filter(pk=touchpoint_id).first()
    if touchpoint is None:
        raise BadLink("This survey link is not valid.")
    external_id = f"touchpoint-{touchpoint_id}-{kind}"
    existing = Feedback.objects.filter(external_id=external_id).first()
    already = existing is not None
    if existing is None:
        try:
            with transaction.atomic():
                existing = feedback_create(actor=LINK_ACTOR, data={
                    "external_id": external_id, "customer": touchpoint.customer, "kind": kind, "score": score,
                    "responded_at": timezone.now(), "comment": "",
                })
        except (IntegrityError, ConflictError):  # a double click raced us: the first answer stands
            existing, already = Feedback.objects.get(external_id=external_id), True
    if comment:
        existing = record_update(actor=LINK_ACTOR, record=existing, data={"comment": comment[:2000]})
    return ScoreResult(feedback=existing, kind=kind, score=existing.score, already=already)
