import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.management.privacy import command_actor, command_error, request_arguments
from crm.services.privacy import customer_export, customer_for_request


class Command(BaseCommand):
    help = ("Export everything held about one customer (a personal-data request) as one JSON file; the export is "
            "audited with its reason.")

    def add_arguments(self, parser: CommandParser) -> None:
        request_arguments(parser)
        parser.add_argument("--output", type=Path, help="File to write (default: standard output).")

    def handle(self, *args, external_id: str, output: Path | None, reason: str, user: str | None, **options) -> None:
        if output is not None and output.exists():
            raise CommandError(f"{output} exists already; choose another file (nothing was exported).")
        try:
            customer = customer_for_request(external_id=external_id)
            data = customer_export(actor=command_actor(user, "customer_export"), customer=customer, reason=reason)
        except ValidationError as exc:
            raise command_error(exc) from exc
        text = json.dumps(data, ensure_ascii=False, indent=2)
        if output is None:
            sys.stdout.write(text + "\n")
            return
        output.write_text(text + "\n", encoding="utf-8")
        self.stderr.write(f"Exported customer {external_id} to {output}.")
