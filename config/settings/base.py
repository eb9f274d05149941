"""Every setting both profiles share, from the environment (see README "Configuration").

development.py and production.py add the profile's own (production.py refuses insecure defaults and passes
``check --deploy``), test.py the test run's; config/settings/__init__.py picks the profile from
DJANGO_PROFILE. Importing settings creates nothing on disk: the folders under VAR_DIR are made when the
apps are ready (config.apps.PipelineConfig).
"""

import datetime as dt
from pathlib import Path

import environ
from csp.constants import NONE, SELF

from config.settings.folders import filesystem_broker_options
from config.settings.limits import bounded, throttle_rate

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "core.admin_apps.WinbackAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "crm",
    "predictions",
    "winback",
    "touchpoints",
    "metrics",
    "config.apps.PipelineConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ApiMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After LocaleMiddleware (the browser's or the cookie's language) and the user: a person's own choice wins.
    "core.middleware.UserLanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: it turns a login that axes refused into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat are separate processes on one file: WAL lets readers run beside the writer,
    # IMMEDIATE takes the write lock up front so concurrent writers wait instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so that a real worker process in the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        # Lets core.db.fetch_all prepare the queue's hot statements. Django's own queries bind client-side
        # and are never prepared whatever the threshold. Turn off behind a transaction-mode pooler.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
        DATABASES["default"]["OPTIONS"]["options"] = "-c plan_cache_mode=force_generic_plan"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------------
# production.py refuses less than 12 (issue 13: 8 characters fell to guessing).
PASSWORD_MIN_LENGTH = env.int("PASSWORD_MIN_LENGTH", default=12)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/agent/"
LOGOUT_REDIRECT_URL = "login"
# axes first: it refuses a locked-out account or address before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# --- Client address ---------------------------------------------------------------------------------
# How many reverse proxies in front of the web processes append to CLIENT_IP_HEADER. 0: the address is the
# connection's (REMOTE_ADDR) and the header, which any client can send, is ignored. The login lockout and the
# API throttles both read the address through core.http.client_address.
TRUSTED_PROXY_COUNT = bounded("TRUSTED_PROXY_COUNT", env.int("TRUSTED_PROXY_COUNT", default=0), low=0, high=10)
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="X-Forwarded-For")

# --- Login lockout (django-axes) --------------------------------------------------------------------
# Failures count per account (every address) and per address (every account); either over its limit
# refuses further logins, even with the right password, until AXES_COOLOFF_MINUTES pass without a failure
# or a manager deletes the attempts in the admin (Access attempts, "Unlock"). The address limit is higher:
# a whole call centre can sit behind one NAT address, and their typos must not lock each other out.
AXES_FAILURE_LIMIT = bounded("AXES_FAILURE_LIMIT", env.int("AXES_FAILURE_LIMIT", default=5), low=1, high=100)
LOGIN_ADDRESS_FAILURE_LIMIT = bounded(
    "LOGIN_ADDRESS_FAILURE_LIMIT", env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=30), low=1, high=10000)
AXES_COOLOFF_TIME = dt.timedelta(
    minutes=bounded("AXES_COOLOFF_MINUTES", env.int("AXES_COOLOFF_MINUTES", default=15), low=1, high=7 * 24 * 60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_HANDLER = "core.lockout.LockoutHandler"
AXES_CLIENT_IP_CALLABLE = "core.http.client_address"
AXES_LOCKOUT_CALLABLE = "core.lockout.lockout_response"
# A success does not wipe the failures: an attacker with one valid account must not reset an address's count.
AXES_RESET_ON_SUCCESS = False
AXES_VERBOSE = False

# --- Second step for managers (django-otp, TOTP) ----------------------------------------------------
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Win-back")
# The admin never shows an authenticator's secret or QR code again: only its owner saw it, once, at set-up.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- I18n -------------------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
# Each named in its own language: the chooser is read by someone who may not read the page's current one.
LANGUAGES = [("en", "English"), ("ar", "العربية"), ("fa", "فارسی"), ("hu", "Magyar")]
# The project's catalogues (apps with a locale/ of their own, like touchpoints, keep theirs).
# EXTRA_LOCALE_PATH: a directory of catalogues that wins over the shipped ones (a business's own wording).
LOCALE_PATHS = [*([Path(env.str("EXTRA_LOCALE_PATH"))] if env.str("EXTRA_LOCALE_PATH", default="") else []),
                BASE_DIR / "locale"]
# The business time zone: docs/metrics.md counts days and periods in it.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Dates and numbers where the project writes them otherwise than Django ("2026. 12. 01." in Hungarian).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

# --- Email ------------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# EMAIL_URL=filemail:// writes the messages to files in this folder, one file per connection (a sending batch),
# each message whole (what `make demo` does: the emails stay readable without flooding the terminal).
EMAIL_FILE_PATH = EMAIL_CONFIG.get("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Customer care <care@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)  # seconds; a hung SMTP server must not hold a worker

# --- Touchpoints (the outbox) ------------------------------------------------------------------------
# --- Purchase predictions (predictions/services/fitting.py) ----------------------------------------
# Repeat buyers a fit needs before the product uses it: BG/NBD learns dropout from them alone.
PREDICTIONS_MIN_REPEAT_BUYERS = bounded(
    "PREDICTIONS_MIN_REPEAT_BUYERS", env.int("PREDICTIONS_MIN_REPEAT_BUYERS", default=300), low=20, high=1_000_000)
PREDICTIONS_MAX_ITERATIONS = bounded(
    "PREDICTIONS_MAX_ITERATIONS", env.int("PREDICTIONS_MAX_ITERATIONS", default=2000), low=1, high=100_000)

WINBACK_BRAND_NAME = env.str("WINBACK_BRAND_NAME", default="Our shop")
WINBACK_SHOP_URL = env.str("WINBACK_SHOP_URL", default=SITE_URL)
TOUCHPOINT_SMS_BACKEND = env.str("TOUCHPOINT_SMS_BACKEND", default="touchpoints.services.transports.LoggingSmsBackend")
# A worker holds a touchpoint this long while sending it; a killed worker's touchpoint is sent after it.
TOUCHPOINT_SEND_LEASE_SECONDS = env.int("TOUCHPOINT_SEND_LEASE_SECONDS", default=120)
# A queued batch that never reached a worker is queued again after this.
TOUCHPOINT_QUEUE_LEASE_SECONDS = env.int("TOUCHPOINT_QUEUE_LEASE_SECONDS", default=600)
TOUCHPOINT_BATCH_SIZE = env.int("TOUCHPOINT_BATCH_SIZE", default=50)
TOUCHPOINT_DISPATCH_LIMIT = env.int("TOUCHPOINT_DISPATCH_LIMIT", default=5000)
# Temporary sending errors (the mail server down, 4xx replies) are retried this long, then the touchpoint
# fails; the wait between attempts doubles up to the cap. Bounds: 1-336 hours, 60-21600 s (touchpoints.checks).
TOUCHPOINT_RETRY_WINDOW_HOURS = env.int("TOUCHPOINT_RETRY_WINDOW_HOURS", default=48)
TOUCHPOINT_RETRY_MAX_DELAY_SECONDS = env.int("TOUCHPOINT_RETRY_MAX_DELAY_SECONDS", default=1800)

# --- Business defaults ------------------------------------------------------------------------------
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="EUR")
# Region used to read phone numbers written without a +country prefix; blank means "+ required".
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="") or None
# The suppression list's HMAC key (crm/services/suppression.py); blank: derived from SECRET_KEY (and the old
# keys from SECRET_KEY_FALLBACKS). Set it in production so rotating SECRET_KEY never touches the list; on a
# rotation of this key, keep the old one in SUPPRESSION_HASH_OLD_KEYS (entries cannot be re-hashed).
SUPPRESSION_HASH_KEY = env.str("SUPPRESSION_HASH_KEY", default="")
SUPPRESSION_HASH_OLD_KEYS = env.list("SUPPRESSION_HASH_OLD_KEYS", default=[])

# --- REST API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.TokenRateThrottle",
        "core.throttling.AddressRateThrottle",
        "core.throttling.AnonymousRateThrottle",
    ],
    # Per token (or per logged-in user): 1200/min is 20 requests a second held all minute, above what a
    # shop integration needs even while it posts a burst of orders (up to 1,000 orders a request).
    # Per address, every request: a call centre of 16+ agents and the shop's integration can share one NAT
    # address, so it is five integrations' worth. Anonymous requests (only the schema and docs answer them
    # with anything but a 401) get far less. Counters live in the "default" cache (see CACHES).
    "DEFAULT_THROTTLE_RATES": {
        "token": throttle_rate("API_THROTTLE_TOKEN", env.str("API_THROTTLE_TOKEN", default="1200/min")),
        "address": throttle_rate("API_THROTTLE_ADDRESS", env.str("API_THROTTLE_ADDRESS", default="6000/min")),
        "anon": throttle_rate("API_THROTTLE_ANON", env.str("API_THROTTLE_ANON", default="60/min")),
    },
}
# API tokens (django-rest-knox): only a digest is stored; each expires after API_TOKEN_TTL_DAYS.
API_TOKEN_TTL_DAYS = bounded("API_TOKEN_TTL_DAYS", env.int("API_TOKEN_TTL_DAYS", default=90), low=1, high=366)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",  # what integrations already send
}
# Bodies above this are refused with a 413 (core.api): ample for a list of a thousand orders (~150 kB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Win-back service API",
    "DESCRIPTION": "Customers, orders, contacts, complaints and feedback in; cases and KPIs out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from our own static files, not a CDN: the docs work offline and behind a CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Cache (the API throttles' counters) -------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Every web process must count against the same counters: Redis when there is one. The embedded default
# (no Redis) counts per process, so N gunicorn workers allow up to N times each rate.
CACHE_URL = env.str("CACHE_URL", default=REDIS_URL)
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "winback-cache"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------------------
# The filesystem transport ignores the host; naming one spares every process kombu's start-up warning
# ("No hostname was supplied"), which a newcomer would think they must act on.
FILESYSTEM_BROKER_URL = "filesystem://localhost/"
CELERY_BROKER_URL = REDIS_URL or FILESYSTEM_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = "winback"
if REDIS_URL:
    # Longer than any task may run (CELERY_TASK_TIME_LIMIT), or Redis redelivers a task still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": max(3600, env.int("CELERY_TASK_TIME_LIMIT", default=900) + 300),
        # An unreachable Redis (not just a refused port) must not hold a web request for long.
        "socket_connect_timeout": env.float("BROKER_CONNECT_TIMEOUT", default=2.0),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(VAR_DIR / "celery-broker")
    # The filesystem transport has no fan-out exchange for remote control commands.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Enqueues after a commit are best effort (core/task_base.py): try briefly, then leave the work to the
# periodic sweeps rather than holding the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=840)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Health (/health/ answers 503 past these) --------------------------------------------------------
HEALTH_TICK_STALE_SECONDS = env.int("HEALTH_TICK_STALE_SECONDS", default=300)  # the outbox tick runs every minute
HEALTH_OUTBOX_MAX_AGE_SECONDS = env.int("HEALTH_OUTBOX_MAX_AGE_SECONDS", default=900)
# Each returns (name, ok, detail) for /health/ (core.selectors.health_status).
HEALTH_CHECKS = ["touchpoints.health.outbox_health", "touchpoints.health.settings_health",
                 "crm.health.suppression_health"]

# --- Logging ----------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # LOG_LEVELS=name=LEVEL,name=LEVEL sets single loggers' levels: the demo quiets the worker's two lines
    # per task (received, succeeded) so that a sent email leaves one line, its own.
    "loggers": {name.strip(): {"level": level.strip().upper()}
                for name, _, level in (item.partition("=") for item in env.list("LOG_LEVELS", default=[])) if level},
}

# --- Content-Security-Policy and Permissions-Policy (README "Security headers") ------------------------
# Both profiles send the same policies, so a page that leans on inline script or style fails in development,
# not first in production. Scripts and styles live in static files (static/<app>/); data reaches a script
# through data-* attributes or json_script. The headers go on every response, the API's JSON too: a JSON
# document opened in a browser then runs nothing either.
INSTALLED_APPS += ["csp"]  # its system checks flag settings left in django-csp's old format
_after_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE[_after_security:_after_security] = [
    "csp.middleware.CSPMiddleware", "django_permissions_policy.PermissionsPolicyMiddleware"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # data: for the favicon "data:," of base.html and the icons swagger-ui.css draws as data: SVGs.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# No page uses a browser feature (the agents dial through tel: links, which need none): deny them all, to
# every frame, so an injected script or an embedded page cannot ask for them either.
PERMISSIONS_POLICY = {feature: [] for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen",
    "geolocation", "gyroscope", "hid", "idle-detection", "local-fonts", "magnetometer", "microphone", "midi",
    "payment", "picture-in-picture", "publickey-credentials-get", "screen-wake-lock", "serial", "usb",
    "xr-spatial-tracking",
)}
