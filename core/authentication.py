"""API token authentication that brings the user's roles along, so a request costs one query, not three.

Tokens are django-rest-knox's: the table holds each token's first characters (``token_key``, an index) and
its digest, never the token itself, and each token has an expiry (core.services.api_token_create).
"""

import functools
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import authentication, exceptions

from core.db import fetch_all, instances
from core.sql import column_list, render
from core.throttling import wrong_credentials_count


_DIGEST_COLUMN = [f.name for f in AuthToken._meta.concrete_fields].index("digest")


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <token>``, read in one statement with the user's group names.

    request.auth is the token's AuthToken row (built from that statement: revoking it needs no other read).
    """

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            wrong_credentials_count(request)  # raises Throttled past the anonymous rate
            raise

    def authenticate_credentials(self, key: str):
        found = token_with_user(token=key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token, user = found
        if token.expiry is not None and token.expiry <= timezone.now():
            raise exceptions.AuthenticationFailed(
                _("The token has expired: ask for a new one (manage.py drf_create_token)."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token


@functools.cache
def _token_with_user_statement() -> str:
    User = get_user_model()
    # Index: knox_authtoken.token_key, then the user's group rows.
    return render(
        "SELECT {token_columns}, {columns}, g.name FROM {token} t"
        " JOIN {user} u ON u.id = t.user_id"
        " LEFT JOIN {user_groups} ug ON ug.user_id = u.id LEFT JOIN {group} g ON g.id = ug.group_id"
        " WHERE t.token_key = %(token_key)s",
        token_columns=column_list(AuthToken, "t"), columns=column_list(User, "u"), token=AuthToken, user=User, user_groups=User.groups.through, group=Group,
    )


def token_with_user(*, token: str) -> tuple[AuthToken, object] | None:
    """The stored token whose digest matches ``token`` and its user, with ``role_names`` filled in (see
    core.roles), or None. The digest is compared in constant time; expiry is the caller's to check."""
    rows = fetch_all(_token_with_user_statement(), {"token_key": token[:CONSTANTS.TOKEN_KEY_LENGTH]})
    if not rows:
        return None
    digest = hash_token(token)
    at = _DIGEST_COLUMN
    # Several tokens may share their first characters: the one whose digest matches, if any.
    mine = [row for row in rows if compare_digest(row[at], digest)]
    if not mine:
        return None
    stored = instances(AuthToken, mine[:1])[0]
    user = instances(get_user_model(), mine[:1], start=len(AuthToken._meta.concrete_fields))[0]
    user.role_names = frozenset(row[-1] for row in mine if row[-1] is not None)
    stored.user = user
    return stored, user


def user_by_token(*, token: str):
    """The token's user with ``role_names`` filled in, or None (expired tokens included: see the class)."""
    found = token_with_user(token=token)
    return None if found is None else found[1]
