"""The API's JSON parser: a document nested deeper than any of our bodies is refused before anything walks it."""

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# The deepest body the API takes is a list of objects holding scalars (depth 2); 32 leaves room for any
# client's envelope while every recursive walk after parsing (validation, error flattening) stays shallow.
MAX_JSON_DEPTH = 32


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing documents nested deeper than MAX_JSON_DEPTH with a ParseError (a 400).

    The standard library's parser recurses: a body of a few thousand brackets raises RecursionError, which
    DRF would let through as a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep_message()) from None
        if json_depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(too_deep_message())
        return data


def too_deep_message() -> str:
    return _("JSON parse error - the document is nested more than %(depth)d levels deep.") % {"depth": MAX_JSON_DEPTH}


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` (a scalar is depth 0, ``[]`` depth 1).

    Iterative, so that it cannot itself run out of stack on what the parser accepted."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
