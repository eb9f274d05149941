from base64 import b32encode

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login

from core.forms import LoginForm, TotpConfirmForm
from core.roles import user_is_agent, user_is_manager
from core.selectors import health_status, liveness_status, totp_device_confirmed
from core.services import totp_enrolment_confirm, totp_enrolment_start, user_language_set


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Every loop the service depends on: 503 when any is down (for monitoring and alerting)."""
    ok, checks = health_status()
    return JsonResponse(checks, status=200 if ok else 503)


@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    """This web process and its database: for a container's health check, which must not restart the web
    processes because beat or a worker stopped."""
    ok, checks = liveness_status()
    return JsonResponse(checks, status=200 if ok else 503)


class Login(LoginView):
    """The password, then the authenticator's code for a person who set one up (core.forms)."""

    authentication_form = LoginForm


@login_required
@require_http_methods(["GET", "POST"])
def totp_enrol(request: HttpRequest) -> HttpResponse:
    """A manager sets up an authenticator app: scan the QR code (or type the secret), confirm with a code.
    From then on the admin asks for a code after the password."""
    if not user_is_manager(request.user):
        raise PermissionDenied(_("Only managers set up an authenticator here."))
    device = totp_device_confirmed(user=request.user)
    if device is not None:
        return render(request, "registration/totp_enrol.html", {"device": device})
    form = TotpConfirmForm(request.POST or None)
    pending = totp_enrolment_start(user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            device = totp_enrolment_confirm(user=request.user, token=form.cleaned_data["token"])
        except ValidationError as exc:
            form.add_error("token", exc)
        else:
            otp_login(request, device)  # this session gave the code: it stays in
            messages.success(request, _("Your authenticator is set up: the admin now asks for its code."))
            return redirect("totp-enrol")
    uri = pending.config_url
    context = {"form": form, "uri": uri, "secret": b32encode(pending.bin_key).decode(),
               "qr_svg": segno.make(uri, error="m").svg_inline(scale=4, title=_("QR code of the secret"))}
    return render(request, "registration/totp_enrol.html", context, status=400 if form.errors else 200)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The site's root (and the admin's "View site"): a manager to the admin's index, which is their home (the
    KPI figures above the app list, core.admin_site), an agent to the queue, anyone else to the login page,
    which brings them back here once they are in."""
    if user_is_manager(request.user):
        return redirect("admin:index")
    if user_is_agent(request.user):
        return redirect("agent:home")
    if request.user.is_authenticated:
        raise PermissionDenied(_("This account has no role here: ask a manager to add it to Agents or Managers."))
    return redirect_to_login(request.get_full_path())


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The language chooser (agent header, admin user links): a logged-in person's choice is stored with them
    (core.UserPreference, applied by core.middleware.UserLanguageMiddleware on every later request, on any
    machine), anybody else's in Django's language cookie. "" returns to the browser's language. Then back to
    the page it was posted from, only if that page is on this site (no open redirect)."""
    language = request.POST.get("language")
    if language is None:
        return HttpResponseBadRequest(_("Choose a language."), content_type="text/plain; charset=utf-8")
    if request.user.is_authenticated:
        try:
            user_language_set(user=request.user, language=language)
        except ValidationError as exc:
            return HttpResponseBadRequest(" ".join(exc.messages), content_type="text/plain; charset=utf-8")
    elif language not in {code for code, _name in settings.LANGUAGES} | {""}:
        return HttpResponseBadRequest(_("Unknown language %(code)s.") % {"code": language[:20]},
                                      content_type="text/plain; charset=utf-8")
    response = HttpResponseRedirect(language_set_next(request))
    if request.user.is_authenticated or not language:
        # The stored choice rules; a cookie left from before would only confuse the login page after logout.
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH,
                               domain=settings.LANGUAGE_COOKIE_DOMAIN)
    else:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE)
    return response


def language_set_next(request: HttpRequest) -> str:
    """Where the chooser was posted from (its "next" field, else the Referer), when that is on this site; "/"
    otherwise."""
    target = request.POST.get("next") or request.META.get("HTTP_REFERER", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"
