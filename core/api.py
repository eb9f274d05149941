"""API error shape shared by every endpoint: {"detail": ..., "errors": [{"field", "message", "index"?}]}."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        body = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        return Response(
            {"detail": "Invalid input.", "errors": flatten_errors(body)},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 400 and "errors" not in (response.data or {}):
        response.data = {"detail": "Invalid input.", "errors": flatten_errors(response.data)}
    return response
