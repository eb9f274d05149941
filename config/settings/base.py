"""Every setting both profiles share, from the environment (see README "Configuration").

development.py and production.py add the profile's own (production.py refuses insecure defaults and passes
``check --deploy``), test.py the test run's; config/settings/__init__.py picks the profile from
DJANGO_PROFILE. Importing settings creates nothing on disk: the folders under VAR_DIR are made when the
apps are ready (config.apps.PipelineConfig).
"""

from pathlib import Path

import environ

from config.settings.folders import filesystem_broker_options

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
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "crm",
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
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/agent/"
LOGOUT_REDIRECT_URL = "login"

# --- I18n -------------------------------------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("ar", "Arabic")]
# The business time zone: docs/metrics.md counts days and periods in it.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

# --- Email ------------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Customer care <care@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)  # seconds; a hung SMTP server must not hold a worker

# --- Touchpoints (the outbox) ------------------------------------------------------------------------
WINBACK_BRAND_NAME = env.str("WINBACK_BRAND_NAME", default="Our shop")
WINBACK_SHOP_URL = env.str("WINBACK_SHOP_URL", default=SITE_URL)
TOUCHPOINT_SMS_BACKEND = env.str("TOUCHPOINT_SMS_BACKEND", default="touchpoints.services.transports.LoggingSmsBackend")
# A worker holds a touchpoint this long while sending it; a killed worker's touchpoint is sent after it.
TOUCHPOINT_SEND_LEASE_SECONDS = env.int("TOUCHPOINT_SEND_LEASE_SECONDS", default=120)
# A queued batch that never reached a worker is queued again after this.
TOUCHPOINT_QUEUE_LEASE_SECONDS = env.int("TOUCHPOINT_QUEUE_LEASE_SECONDS", default=600)
TOUCHPOINT_BATCH_SIZE = env.int("TOUCHPOINT_BATCH_SIZE", default=50)
TOUCHPOINT_DISPATCH_LIMIT = env.int("TOUCHPOINT_DISPATCH_LIMIT", default=5000)

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

# --- Celery -----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
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
}
