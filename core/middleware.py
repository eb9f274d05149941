"""The API's answers outside DRF's reach (a NUL in the URL, Django's own error pages in the error shape), and a
person's own language."""

from collections.abc import Callable
from urllib.parse import parse_qsl, unquote

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _

from core.api import error_body, request_error_body
from core.selectors import user_language

API_PREFIX = "/api/"
NUL = "\x00"


class ApiMiddleware:
    """For /api/ requests only:

    - a NUL (%00) in the path, the query string, the token or the session cookie is a 400 before any view
      sees it: PostgreSQL text cannot hold NUL, so a lookup or a filter with one would fail in the database
      (a 500), and no key, filter value or credential can contain it. Bodies are checked field by field by
      the serializers;
    - an error page Django renders itself (a 404 for a URL no route matches, such as /api/cases/1.5/release/) is
      answered as JSON in the error shape, as a client of the API expects, not as HTML.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        # Cookies as parsed: a quoted cookie value spells NUL as \000 in the header itself.
        credentials = {"Authorization": request.META.get("HTTP_AUTHORIZATION", ""),
                       "Cookie": "".join(request.COOKIES.values())}
        # Before LocaleMiddleware (it must answer before sessions are read): the client's language is found
        # here for its own answers, else they would speak whatever language the thread last served.
        with translation.override(translation.get_language_from_request(request)):
            errors = nul_errors(path=request.path_info, query=request.META.get("QUERY_STRING", ""), headers=credentials)
            if errors:
                return JsonResponse(error_body(errors), status=400)
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            with translation.override(getattr(request, "LANGUAGE_CODE", None)
                                      or translation.get_language_from_request(request)):
                return json_error_page(response.status_code)
        return response


def nul_errors(*, path: str, query: str, headers: dict[str, str]) -> list[dict[str, str]]:
    """The API error items for each NUL in the (decoded) path, the query string's names and values, and the
    headers whose values are looked up in the database (the token, the session)."""
    message = _("Contains a NUL character (%00), which no value can hold.")
    errors = [{"field": name, "message": message} for name, value in headers.items() if NUL in value]
    if NUL in path:
        errors.append({"field": "path", "message": message})
    if NUL in unquote(query):
        named = [{"field": name.replace(NUL, "%00"), "message": message}
                 for name, value in parse_qsl(query, keep_blank_values=True) if NUL in name or NUL in value]
        errors += named or [{"field": "query", "message": message}]
    return errors


def json_error_page(status: int) -> JsonResponse:
    detail = _("Not found.") if status == 404 else _("The request could not be served (HTTP %(status)d).") % {"status": status}
    return JsonResponse(request_error_body(detail), status=status)


class UserLanguageMiddleware:
    """A logged-in person's chosen language (core.UserPreference) over the one LocaleMiddleware found (cookie,
    then browser): an agent's pages follow the agent, whatever machine they sit at. Without a choice the
    browser's stays. Placed after LocaleMiddleware and AuthenticationMiddleware; LocaleMiddleware then names
    this language in Content-Language on the way out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = user_language(user=request.user)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
