import datetime as dt
import os
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections
from django.utils import timezone

from config.demo import demo_banner, demo_base_url, demo_process_env, demo_supervisor_argv
from config.demo_activity import demo_seed_with_activity
from crm.services.demo_data import DEMO_LOGINS, demo_logins_ensure
from predictions.selectors import fits_exist

DEMO_YEARS = 3  # seed_demo's default history


class Command(BaseCommand):
    help = ("Migrate, load demo data and simulate months of agents' work if the database is empty, collect "
            "static files, print the URLs and logins, then run web + worker + beat in the foreground (Ctrl-C "
            "stops all three) and print the URLs and logins again once they are up.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--customers", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--months", type=int, default=12,
                            help="Months of agents' work and touchpoints to simulate before today (0: none).")
        parser.add_argument("--no-serve", action="store_true", help="Set everything up but start nothing.")

    def handle(self, *, port: int, host: str, customers: int, seed: int, months: int, no_serve: bool, **options):
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        demo_setup(customers=customers, seed=seed, months=months, stdout=self.stdout)
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


def demo_setup(*, customers: int, seed: int, months: int, stdout, until: dt.date | None = None) -> None:
    """Everything but serving: the data and its simulated months (once), the models, the lifecycle and the
    queue as of now, the KPI snapshots."""
    until = until or timezone.localdate()
    started = time.monotonic()
    result = demo_seed_with_activity(seed=seed, customers=customers, years=DEMO_YEARS, until=until, months=months,
                                     progress=sys.stderr.isatty())
    seeded = result.seeded
    seconds = time.monotonic() - started - (result.activity.seconds if result.activity else 0)
    if seeded.skipped:
        stdout.write(f"{seeded.existing_customers} customers already exist: nothing seeded or simulated.")
    else:
        stdout.write(f"Seeded {seeded.customers} customers, {seeded.orders + seeded.held_orders} orders, "
                     f"{seeded.complaints} complaints, {seeded.feedback} feedback, {seeded.contacts} contacts "
                     f"(seed {seed}, until {until}, {DEMO_YEARS} years) in {seconds:.1f}s; "
                     f"logins: {', '.join(seeded.logins)}.")
    if result.activity:
        stdout.write(result.activity.summary())
    demo_logins_ensure()  # also when the data came from elsewhere (an import)
    # The purchase models once, so the cards, the queue's order and the KPI page show predictions at once
    # (then nightly); before the scan, so the cases it opens take their predicted value.
    if not fits_exist():
        call_command("fit_models", stdout=stdout)
    # Lifecycle events, statuses and the win-back queue as of now (a full build the first time).
    # In this process: the workers start after it.
    call_command("winback_scan", "--inline", "--no-progress", stdout=stdout)
    if not seeded.skipped:
        # The KPI page reads the months from their snapshots (the nightly refresh keeps them current).
        call_command("metrics_refresh", "--inline", "--no-progress", stdout=stdout)
