"""``manage.py drf_create_token USERNAME [-r]``, as with DRF's authtoken, for django-rest-knox tokens.

A token is stored as a digest only, so the command cannot show a user's existing token again: each run makes
a new one (and ``-r`` revokes the user's other tokens first) and prints it once."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.services import api_token_create, api_tokens_revoke_all


class Command(BaseCommand):
    help = ("Create an API token for a user and print it (once: only its digest is stored). "
            "-r revokes the user's other tokens.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", type=str)
        parser.add_argument("-r", "--reset", action="store_true", dest="reset_token", default=False,
                            help="Revoke the user's existing tokens, then create a new one")
        parser.add_argument("--days", type=int, default=None,
                            help="Days until the token expires (default: API_TOKEN_TTL_DAYS)")

    def handle(self, *args, username: str, reset_token: bool, days: int | None, **options) -> None:
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist")
        try:
            with transaction.atomic():
                revoked = api_tokens_revoke_all(user=user) if reset_token else 0
                stored, token = api_token_create(user=user, ttl_days=days)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        if revoked:
            self.stdout.write(f"Revoked {revoked} earlier token(s) of {username}.")
        self.stdout.write(f"Generated token {token} for user {username} (expires {stored.expiry:%Y-%m-%d %H:%M %Z}).")
