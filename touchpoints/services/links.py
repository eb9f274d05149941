"""Signed links in emails: one-click unsubscribe (RFC 8058) and survey scores.

The signature is the authentication: the links work without a login and cannot be forged or altered
(another customer, another score). They do not expire: an unsubscribe link must work years later.

Opening a link (GET) never changes anything: mail scanners and link previews open every link in a message,
so a GET that recorded would answer every survey with the first score of the scale (an NPS 0 books a
detractor call) and unsubscribe everyone. The pages ask, a POST records. A survey answer is written once;
its comment only with the answer token issued on the page after the answer, never with the link alone
(the link sits in a mailbox, may be forwarded, and would let anyone overwrite what the customer wrote).
"""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Customer, Feedback
from crm.services.audit import Actor
from crm.services.customers import customer_update
from crm.services.errors import ConflictError
from crm.services.records import feedback_create, record_update
from touchpoints.models import Touchpoint

UNSUBSCRIBE_SALT = "touchpoints.unsubscribe"
SCORE_SALT = "touchpoints.score"
ANSWER_SALT = "touchpoints.answer"
# The answer token lives on the page shown right after answering; a day or two covers a page left open.
ANSWER_TOKEN_MAX_AGE = dt.timedelta(days=2)
MAX_COMMENT = 2000
SCORE_RANGES = {"nps": range(0, 11), "csat": range(1, 6)}
LINK_ACTOR = Actor(user=None, label="email link")


class BadLink(Exception):
    """The link was altered, truncated or signed with another key."""


class ExpiredLink(BadLink):
    """The token is genuine but too old."""


class BadInput(Exception):
    """The form was sent without a usable value (no score on the scale, an empty comment)."""


class AlreadyCommented(Exception):
    """The answer has its comment already."""


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_url(*, customer_id: int, touchpoint_id: int) -> str:
    token = signing.dumps([customer_id, touchpoint_id], salt=UNSUBSCRIBE_SALT)
    return _absolute(reverse("touchpoints:unsubscribe", args=[token]))


def unsubscribe_read(*, token: str) -> tuple[Customer, int]:
    try:
        customer_id, touchpoint_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadLink(_("This unsubscribe link is not valid.")) from exc
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise BadLink(_("This unsubscribe link is not valid."))
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
class SurveyLink:
    """What a score link says: which survey of which touchpoint, and the score that was clicked."""

    touchpoint: Touchpoint
    kind: str
    score: int

    @property
    def external_id(self) -> str:
        return f"touchpoint-{self.touchpoint.pk}-{self.kind}"

    @property
    def scale(self) -> range:
        return SCORE_RANGES[self.kind]


@dataclass(frozen=True)
class ScoreResult:
    feedback: Feedback
    kind: str
    score: int
    already: bool  # the survey had been answered before: the first answer stands, nothing was recorded


def survey_link_read(*, token: str) -> SurveyLink:
    """The link's survey, or BadLink. Reading records nothing (a GET, a mail scanner's included)."""
    try:
        touchpoint_id, kind, score = signing.loads(token, salt=SCORE_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadLink(_("This survey link is not valid.")) from exc
    if kind not in SCORE_RANGES or score not in SCORE_RANGES[kind]:
        raise BadLink(_("This survey link is not valid."))
    touchpoint = Touchpoint.objects.filter(pk=touchpoint_id).select_related("customer").first()
    if touchpoint is None:
        raise BadLink(_("This survey link is not valid."))
    return SurveyLink(touchpoint=touchpoint, kind=kind, score=score)


def survey_answer_find(*, link: SurveyLink) -> Feedback | None:
    return Feedback.objects.filter(external_id=link.external_id).first()


def feedback_record_from_link(*, token: str, score: int | None = None) -> ScoreResult:
    """Record the answer to the link's survey (a POST): ``score`` is the one the person chose on the page
    (the clicked one when not given). One answer per touchpoint and survey, enforced by the unique
    external_id: a second POST, or two at once, leaves the first answer as it is."""
    link = survey_link_read(token=token)
    existing = survey_answer_find(link=link)
    if existing is not None:
        return ScoreResult(feedback=existing, kind=link.kind, score=existing.score, already=True)
    score = link.score if score is None else score
    if score not in link.scale:
        raise BadInput(_("Please choose a score from %(low)s to %(high)s.") % {"low": link.scale[0], "high": link.scale[-1]})
    try:
        with transaction.atomic():
            feedback = feedback_create(actor=LINK_ACTOR, data={
                "external_id": link.external_id, "customer": link.touchpoint.customer, "kind": link.kind,
                "score": score, "responded_at": timezone.now(), "comment": "",
            })
    except (IntegrityError, ConflictError):  # a double click raced us: the first answer stands
        existing = Feedback.objects.get(external_id=link.external_id)
        return ScoreResult(feedback=existing, kind=link.kind, score=existing.score, already=True)
    return ScoreResult(feedback=feedback, kind=link.kind, score=score, already=False)


def answer_token(*, feedback_id: int) -> str:
    """Issued on the page that confirms the answer, and only there: it, not the survey link, lets the
    person who answered add a comment (whoever else holds the link cannot write on the answer)."""
    return signing.dumps([feedback_id], salt=ANSWER_SALT)


def answer_read(*, token: str) -> Feedback:
    """The answer an answer token was issued for, or BadLink (ExpiredLink once it is too old)."""
    try:
        (feedback_id,) = signing.loads(token, salt=ANSWER_SALT, max_age=ANSWER_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ExpiredLink(_("This page has expired: your answer is recorded, but a comment can no longer be added.")) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadLink(_("This page is not valid.")) from exc
    feedback = Feedback.objects.filter(pk=feedback_id).select_related("customer").first()
    if feedback is None:
        raise BadLink(_("This page is not valid."))
    return feedback


def feedback_comment_add(*, token: str, comment: str) -> Feedback:
    """Add the comment to the answer the token was issued for; once: an answer that has its comment keeps it."""
    answer = answer_read(token=token)
    comment = comment.strip()[:MAX_COMMENT]
    if not comment:
        raise BadInput(_("Please write a comment before sending."))
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().get(pk=answer.pk)
        if feedback.comment:
            raise AlreadyCommented(_("We already have your comment, thank you."))
        return record_update(actor=LINK_ACTOR, record=feedback, data={"comment": comment})
