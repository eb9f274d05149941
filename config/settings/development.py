"""The zero-set-up profile (make demo, make test): SQLite and a broker-less Celery unless told otherwise."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env
from config.settings.refusals import DEVELOPMENT_SECRET_KEY

SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
