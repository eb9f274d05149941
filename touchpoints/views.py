"""The public pages behind the links in emails: no login, the signed token is the authentication.

GET only shows a page; a POST records (a mail scanner opens links, it does not submit forms). The survey
and comment forms carry Django's CSRF token: the GET that shows the form sets the cookie, so a person coming
from their mail client posts it back. The link token authorises the answer; CSRF only keeps another site from
posting it through the person's browser. The unsubscribe POST is exempt, because mail clients send the
RFC 8058 one-click POST with no cookie and no token.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_http_methods, require_POST

from touchpoints.services.links import (
    SCORE_RANGES, AlreadyCommented, BadLink, BadInput, ExpiredLink, SurveyLink, answer_read, answer_token,
    customer_unsubscribe, feedback_comment_add, feedback_record_from_link, survey_answer_find, survey_link_read, unsubscribe_read,
)
from touchpoints.services.rendering import RTL_LANGUAGES

SURVEY_TEMPLATE = "touchpoints/survey.html"


def _language(locale: str) -> str:
    """The customer's language when the pages exist in it, else the browser's (LocaleMiddleware's choice)."""
    available = {code for code, _name in settings.LANGUAGES}
    # Not locale_candidates' last resort (the site's language): a customer whose language is unknown or has
    # no pages reads their browser's, which LocaleMiddleware chose from the cookie or Accept-Language.
    tag = (locale or "").lower().replace("_", "-")
    return next((c for c in (tag, tag.split("-")[0]) if c in available), translation.get_language() or settings.LANGUAGE_CODE)


def _page(request: HttpRequest, template: str, context: dict, *, locale: str | None = None, status: int = 200) -> HttpResponse:
    # A bad link names no customer: the page speaks the browser's language (LocaleMiddleware).
    lang = _language(locale) if locale is not None else translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(lang):
        lang = translation.get_language()
        return render(request, template, {
            "lang": lang, "dir": "rtl" if lang.split("-")[0] in RTL_LANGUAGES else "ltr",
            "brand": settings.WINBACK_BRAND_NAME, **context,
            # The brand inside a sentence, isolated: a Latin name in an Arabic sentence keeps the words around it in place.
            "brand_html": format_html("<bdi>{}</bdi>", settings.WINBACK_BRAND_NAME),
        }, status=status)


def _error(request: HttpRequest, template: str, exc: BadLink) -> HttpResponse:
    return _page(request, template, {"error": str(exc)}, status=410 if isinstance(exc, ExpiredLink) else 404)


def _mask(email: str) -> str:
    name, _sep, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else ""


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        customer, _touchpoint_id = unsubscribe_read(token=token)
    except BadLink as exc:
        return _error(request, "touchpoints/unsubscribe.html", exc)
    done = customer.email_consent == "withdrawn"
    if request.method == "POST":
        customer = customer_unsubscribe(token=token)
        done = True
    return _page(request, "touchpoints/unsubscribe.html", {"email": _mask(customer.email), "done": done},
                 locale=customer.locale)


def _question(link: SurveyLink) -> str:
    template = link.touchpoint.step.template if link.touchpoint.step_id else ""
    if link.kind == "nps":
        # The brand isolated (<bdi>): a Latin name inside an Arabic or Persian question keeps the words in order.
        question = conditional_escape(_("How likely are you to recommend %(brand)s to a friend or colleague?"))
        return mark_safe(question % {"brand": format_html("<bdi>{}</bdi>", settings.WINBACK_BRAND_NAME)})
    if template == "complaint_follow_up":
        return _("How satisfied are you with the way we handled it?")
    return _("How satisfied are you with your order?")


def _survey(request: HttpRequest, link: SurveyLink, *, status: int = 200, **context) -> HttpResponse:
    return _page(request, SURVEY_TEMPLATE, {
        "question": _question(link), "kind": link.kind, "scale": list(link.scale), "high": _high(link.kind), **context,
    }, locale=link.touchpoint.customer.locale, status=status)


@never_cache
@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def score(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the question with the clicked score chosen, and a button. POST: the answer, recorded once."""
    try:
        link = survey_link_read(token=token)
    except BadLink as exc:
        return _error(request, SURVEY_TEMPLATE, exc)
    with translation.override(_language(link.touchpoint.customer.locale)):
        if request.method == "GET":
            answer = survey_answer_find(link=link)
            if answer is not None:
                return _survey(request, link, already=True, score=answer.score)
            return _survey(request, link, ask=True, chosen=link.score)
        chosen = request.POST.get("score", "")
        try:
            result = feedback_record_from_link(token=token, score=int(chosen) if chosen.isdigit() else -1)
        except BadInput as exc:
            return _survey(request, link, ask=True, chosen=link.score, form_error=str(exc), status=400)
        if result.already:
            return _survey(request, link, already=True, score=result.score)
        return _survey(request, link, recorded=True, score=result.score,
                       answer_token=answer_token(feedback_id=result.feedback.pk))


@never_cache
@require_POST
def comment(request: HttpRequest) -> HttpResponse:
    """The comment on an answer, with the answer token from the page that confirmed it."""
    token, text = request.POST.get("answer", ""), request.POST.get("comment", "")
    try:
        answer = answer_read(token=token)
    except BadLink as exc:
        return _error(request, SURVEY_TEMPLATE, exc)
    locale = answer.customer.locale
    with translation.override(_language(locale)):
        try:
            feedback_comment_add(token=token, comment=text)
        except AlreadyCommented as exc:
            return _page(request, SURVEY_TEMPLATE, {"notice": str(exc)}, locale=locale, status=409)
        except BadInput as exc:
            return _page(request, SURVEY_TEMPLATE, {"recorded": True, "score": answer.score, "high": _high(answer.kind),
                                                    "form_error": str(exc), "answer_token": token}, locale=locale, status=400)
    return _page(request, SURVEY_TEMPLATE, {"comment_saved": True}, locale=locale)


def _high(kind: str) -> int:
    return SCORE_RANGES[kind][-1]
