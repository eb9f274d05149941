import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from config.demo import demo_banner, demo_base_url, demo_process_env, demo_supervisor_argv
from crm.services.demo_data import DEMO_LOGINS, demo_logins_ensure
from predictions.selectors import fits_exist


class Command(BaseCommand):
    help = ("Migrate, load demo data if the database is empty, collect static files, print the URLs and "
            "logins, then run web + worker + beat in the foreground (Ctrl-C stops all three).")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--customers", type=int, default=5000)
        parser.add_argument("--no-serve", action="store_true", help="Set everything up but start nothing.")

    def handle(self, *, port: int, host: str, customers: int, no_serve: bool, **options):
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        call_command("seed_demo", "--if-empty", "--customers", str(customers), "--no-progress")
        demo_logins_ensure()  # also when the data came from elsewhere (an import)
        # The purchase models once, so the cards, the queue's order and the KPI page show predictions at once
        # (then nightly); before the scan, so the cases it opens take their predicted value.
        if not fits_exist():
            call_command("fit_models")
        # Lifecycle events, statuses and the win-back queue from the history (a full build the first time).
        call_command("winback_scan", "--no-progress")
        call_command("collectstatic", interactive=False, verbosity=0)

        base_url = demo_base_url(host, port)
        self.stdout.write(demo_banner(base_url=base_url, logins=DEMO_LOGINS, serving=not no_serve))
        if no_serve:
            return
        self.stdout.flush()
        env = demo_process_env(host=host, port=port, base_url=base_url)
        # Replace this process with honcho rather than wait on it: Ctrl-C (SIGINT to the terminal's
        # process group) and a supervisor's SIGTERM reach honcho directly, which stops all three.
        connections.close_all()
        os.chdir(settings.BASE_DIR)
        argv = demo_supervisor_argv(colour=sys.stdout.isatty())
        os.execve(argv[0], argv, env)
