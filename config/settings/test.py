"""The test run (pytest.ini): the development profile, with a broker folder of its own so that messages a
test enqueues never reach a demo's worker (the test's worker processes inherit this module).

Under pytest-xdist (``make test`` runs two test processes) each process gets its own test database (named
by pytest-django), its own broker folder and its own Redis database, so one process's worker never takes
another's messages. The Redis URL is moved once, in the test process, and written back to the environment
with a mark: the worker subprocesses inherit it as it is, and a test that starts a worker on a Redis of its
own keeps that one.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from config.settings.base import CACHES, REDIS_URL, VAR_DIR
from config.settings.development import *  # noqa: F403
from config.settings.folders import filesystem_broker_options

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... or "" without xdist
# Redis databases 10 and up belong to the test processes (0-9 are left to whoever runs a demo or a bench).
XDIST_REDIS_FIRST_DB = 10

# Decided once, by the test process: its subprocesses (which inherit the mark) take REDIS_URL as given.
if XDIST_WORKER and not os.environ.get("WINBACK_TEST_REDIS_MOVED"):
    os.environ["WINBACK_TEST_REDIS_MOVED"] = "1"
    if REDIS_URL:
        moved = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{XDIST_REDIS_FIRST_DB + int(XDIST_WORKER[2:])}"))
        if CACHES["default"].get("LOCATION") == REDIS_URL:
            CACHES = {"default": {**CACHES["default"], "LOCATION": moved}}
        REDIS_URL = CELERY_BROKER_URL = moved
        os.environ["REDIS_URL"] = moved

if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(
        VAR_DIR / ("celery-broker-test" + (f"-{XDIST_WORKER}" if XDIST_WORKER else ""))
    )
