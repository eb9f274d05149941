import os
import signal
import sys

from django.core.management.base import BaseCommand

from config.demo import demo_announce, demo_web_up
from core.selectors import health_status
from crm.services.demo_data import DEMO_LOGINS

UP_TIMEOUT_SECONDS = 180  # the worker and beat's first heartbeat and tick take up to a minute


def loops_up() -> bool:
    """The worker and beat have run: /health/'s heartbeat and tick checks, read here rather than over HTTP
    (a 503 while they start is logged as an error each time). Other checks (an outbox still catching up
    after the demo's simulated days) do not hold the banner back."""
    _, checks = health_status()
    return checks.get("worker") == "ok" and checks.get("tick") == "ok"


class Command(BaseCommand):
    help = ("The demo's fourth process (its Procfile): print the URL and logins once web, worker and beat are "
            "up, then wait until the demo stops.")

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=os.environ.get("DEMO_BASE_URL", "http://127.0.0.1:8000"))
        parser.add_argument("--timeout", type=float, default=UP_TIMEOUT_SECONDS)
        parser.add_argument("--no-wait", action="store_true", help="Print and exit instead of waiting (tests).")

    def handle(self, *, base_url: str, timeout: float, no_wait: bool, **options):
        # Stopping is honcho's SIGTERM (or the terminal's SIGINT): exit quietly, not with a traceback.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: sys.exit(0))
        demo_announce(base_url=base_url, logins=DEMO_LOGINS, ready=lambda: demo_web_up(base_url=base_url) and loops_up(),
                      timeout=timeout, out=self.stdout)
        if no_wait:
            return
        while True:  # honcho stops every process when one exits: this one stays until the demo stops
            signal.pause()
