"""DJANGO_PROFILE=production: no insecure default (start-up stops on a missing or weak SECRET_KEY, DEBUG,
a missing or wildcard ALLOWED_HOSTS, a SITE_URL that is not https: config/settings/refusals.py), hashed
static files served by whitenoise, HTTPS everywhere; passes ``manage.py check --deploy``."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import DEBUG, PASSWORD_MIN_LENGTH, SITE_URL, env
from config.settings.refusals import production_refuse, production_refusals

if PASSWORD_MIN_LENGTH < 12:
    raise ImproperlyConfigured(f"PASSWORD_MIN_LENGTH={PASSWORD_MIN_LENGTH}: production accepts no less than 12.")

SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
production_refuse(problems=production_refusals(secret_key=SECRET_KEY, debug=DEBUG, allowed_hosts=ALLOWED_HOSTS,
                                               site_url=SITE_URL))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^health/live/$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
