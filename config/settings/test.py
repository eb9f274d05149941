"""The test run (pytest.ini): the development profile, with a broker folder of its own so that messages a
test enqueues never reach a demo's worker (the test's worker processes inherit this module)."""

from config.settings.base import REDIS_URL, VAR_DIR
from config.settings.development import *  # noqa: F403
from config.settings.folders import filesystem_broker_options

if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(VAR_DIR / "celery-broker-test")
