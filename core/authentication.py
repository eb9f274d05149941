"""API token authentication that brings the user's roles along, so a request costs one query, not three."""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from core.db import fetch_all, instances
from core.sql import column_list, render


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, read in one statement with the user's group names.

    request.auth is the key (DRF's own class puts the Token row there; nothing here reads it).
    """

    def authenticate_credentials(self, key: str):
        user = user_by_token(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, key


@functools.cache
def _user_by_token_statement() -> str:
    User = get_user_model()
    # Index: authtoken_token's primary key (the key), then the user's group rows.
    return render(
        "SELECT {columns}, g.name FROM {token} t JOIN {user} u ON u.id = t.user_id"
        " LEFT JOIN {user_groups} ug ON ug.user_id = u.id LEFT JOIN {group} g ON g.id = ug.group_id"
        " WHERE t.key = %(key)s",
        columns=column_list(User, "u"), token=Token, user=User, user_groups=User.groups.through, group=Group,
    )


def user_by_token(*, key: str):
    """The token's user with ``role_names`` filled in (see core.roles), or None."""
    User = get_user_model()
    rows = fetch_all(_user_by_token_statement(), {"key": key})
    if not rows:
        return None
    user = instances(User, rows[:1])[0]
    user.role_names = frozenset(row[-1] for row in rows if row[-1] is not None)
    return user
