"""API error shape shared by every endpoint: {"detail": ..., "errors": [{"field", "message", "index"?}]}."""

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("The request conflicts with the current state of the resource.")
    default_code = "conflict"


def flatten_errors(detail: Any, *, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error dicts into a flat list with dotted field paths."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out += flatten_errors(value, prefix=f"{prefix}.{name}".strip(".") if name else prefix)
    elif isinstance(detail, list) and detail and all(isinstance(d, str) for d in detail):
        out += [{"field": prefix, "message": str(d)} for d in detail]
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            out += flatten_errors(value, prefix=f"{prefix}[{i}]" if prefix else f"[{i}]")
    else:
        out.append({"field": prefix, "message": str(detail)})
    return out


def error_body(errors: list[dict[str, Any]], *, detail: str | None = None) -> dict[str, Any]:
    """The one error shape of the API (DRF views, the middleware's answers, item errors of a list)."""
    return {"detail": str(detail) if detail is not None else _("Invalid input."), "errors": errors}


def request_error_body(detail: str, *, field: str = "") -> dict[str, Any]:
    """An error about the request as a whole: said once, at field ""."""
    return error_body([{"field": field, "message": str(detail)}], detail=detail)


def validation_errors(exc: DjangoValidationError) -> list[dict[str, str]]:
    """A Django ValidationError (a service's) as error items, one per field."""
    return flatten_errors(exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages})


def error_response(detail: str, *, status_code: int, field: str = "") -> Response:
    """A request-level error (not about one field) in the API's error shape."""
    return Response(request_error_body(detail, field=field), status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return Response(error_body(validation_errors(exc)), status=status.HTTP_400_BAD_REQUEST)
    # Django raises these while DRF reads the body or the query; unhandled, they become its HTML 400 page.
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error_response(_("The request body is larger than %(limit)d bytes.") % {"limit": limit},
                              status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return error_response(_("The request has too many fields or files."), status_code=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        # get_object_or_404's message is English and names the model's class; DRF's own is translated.
        exc = NotFound()
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 429:
        # DRF's answer already carries Retry-After (the seconds until the throttle's window ends).
        response.data = request_error_body(response.data["detail"])
        return response
    if response is not None and response.status_code == 400 and "errors" not in (response.data or {}):
        data = response.data
        if isinstance(data, dict) and set(data) == {"detail"} and isinstance(data["detail"], str):
            response.data = request_error_body(data["detail"])  # e.g. a body that is not JSON
        else:
            response.data = error_body(flatten_errors(data))
    return response


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(help_text=gettext_lazy("The field's dotted path; empty for the request as a whole."))
    message = serializers.CharField()
    index = serializers.IntegerField(required=False, allow_null=True,
                                     help_text=gettext_lazy("The item's position, when the body is a list."))
    code = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer):
    """The API's error shape: ``errors`` on every 400, 413 and 429; a 401, 403, 404 or 409 may carry ``detail``
    alone."""

    detail = serializers.CharField()
    errors = ErrorItemSerializer(many=True, required=False)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the error answers each operation can give, in the error shape.

    Without them a client (and schemathesis) reads every 400, 401, 403, 404 and 413 as undocumented."""

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        # extend_schema replaces get_response_serializers, so the answers are completed one step later.
        responses = super()._get_response_bodies(direction)
        for code, description in self._error_answers():
            declared = responses.get(code)
            if declared is None or "content" not in declared:
                description = declared["description"] if declared and declared.get("description") else description
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, direction=direction)
        return responses

    def _error_answers(self) -> list[tuple[str, str]]:
        answers = [("400", _("Invalid input: each error names its field (and in a list, the item's index)."))]
        if any(not isinstance(p, AllowAny) for p in self.view.get_permissions()):
            answers += [("401", _("No or an invalid token.")), ("403", _("The user may not do this."))]
        if "{" in self.path:
            answers.append(("404", _("No such record (or not one this user may see).")))
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            answers += [("413", _("The request body is too large.")),
                        ("415", _("The body is not JSON (nor a form)."))]
        if self.view.get_throttles():
            answers.append(("429", _("Too many requests (per token, per address): retry after the "
                                     "Retry-After header's seconds.")))
        return answers
