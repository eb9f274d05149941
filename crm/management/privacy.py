"""What the personal-data commands share: who is recorded as the author, and errors as command errors."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from crm.services.audit import Actor


def command_actor(username: str | None, command: str) -> Actor:
    if not username:
        return Actor(user=None, label=f"command:{command}")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named '{username}'; nothing changed.")
    return Actor.of(user, via=f"command:{command}")


def command_error(exc: ValidationError) -> CommandError:
    return CommandError(" ".join(exc.messages))


def request_arguments(parser: CommandParser) -> None:
    parser.add_argument("external_id", help="The customer's external id.")
    parser.add_argument("--reason", required=True, help="Why (kept in the audit trail), e.g. a ticket number.")
    parser.add_argument("--user", help="Username recorded in the audit trail (default: the command's name).")
