import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.management.privacy import command_actor, command_error, request_arguments
from crm.services.privacy import AlreadyErased, customer_erase, customer_for_request


class Command(BaseCommand):
    help = ("Erase one customer's personal data everywhere (a personal-data request), keep what the KPIs count, "
            "and put their email, phone and key on the suppression list. Audited with its reason.")

    def add_arguments(self, parser: CommandParser) -> None:
        request_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, external_id: str, reason: str, yes: bool, user: str | None, **options) -> None:
        try:
            customer = customer_for_request(external_id=external_id)
        except AlreadyErased as exc:
            self.stdout.write(" ".join(exc.messages))  # the request is fulfilled: not a failure
            return
        except ValidationError as exc:
            raise command_error(exc) from exc
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("Erasing cannot be undone: confirm with --yes (nothing was erased).")
            answer = input(f"Erase the personal data of customer {external_id} ({customer.name})? "
                           "This cannot be undone. Type the external id to confirm: ")
            if answer.strip() != external_id:
                raise CommandError("Not confirmed; nothing was erased.")
        try:
            result = customer_erase(actor=command_actor(user, "customer_erase"), customer=customer, reason=reason)
        except ValidationError as exc:
            raise command_error(exc) from exc
        self.stdout.write(result.summary())
