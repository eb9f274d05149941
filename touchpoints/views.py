"""The public pages behind the links in emails: no login, the signed token is the authentication."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from touchpoints.services.links import BadLink, customer_unsubscribe, feedback_record_from_link, unsubscribe_read
from touchpoints.services.rendering import RTL_LANGUAGES, locale_candidates


def _lang(locale: str) -> dict[str, str]:
    lang = "ar" if locale_candidates(locale)[0].split("-")[0] == "ar" else "en"
    return {"lang": lang, "dir": "rtl" if lang in RTL_LANGUAGES else "ltr", "brand": settings.WINBACK_BRAND_NAME}


def _mask(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else ""


# Mail clients POST "List-Unsubscribe=One-Click" (RFC 8058) with no cookie and no CSRF token.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        customer, _ = unsubscribe_read(token=token)
    except BadLink as exc:
        return render(request, "touchpoints/unsubscribe.html", {**_lang(""), "error": str(exc), "done": False}, status=404)
    done = customer.email_consent == "withdrawn"
    if request.method == "POST":  # GET only shows the page: link scanners must not unsubscribe anyone
        customer = customer_unsubscribe(token=token)
        done = True
    return render(request, "touchpoints/unsubscribe.html",
                  {**_lang(customer.locale), "email": _mask(customer.email), "done": done, "error": ""})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def score(request: HttpRequest, token: str) -> HttpResponse:
    """GET records the score (the one click); POST adds a comment. One answer per link and survey."""
    comment = request.POST.get("comment", "").strip() if request.method == "POST" else None
    try:
        result = feedback_record_from_link(token=token, comment=comment)
    except BadLink as exc:
        return render(request, "touchpoints/feedback_thanks.html", {**_lang(""), "error": str(exc)}, status=404)
    return render(request, "touchpoints/feedback_thanks.html", {
        **_lang(result.feedback.customer.locale), "kind": result.kind, "score": result.score,
        "already": result.already and request.method == "GET", "comment_saved": bool(comment), "error": "",
    })
