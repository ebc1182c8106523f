"""Django settings: deploy knobs from the environment, simulation parameters from config.yaml."""

import os
from pathlib import Path

import dj_database_url

from dawn_site.config import ConfigError, config_load

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_seconds(name: str, default: int) -> int:
    value = (os.environ.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number of seconds, not {value!r}")
    return int(value)


# off unless asked for: the debug pages show settings and paths, and its query log grows without bound
DEBUG = _env_bool("DJANGO_DEBUG", False)
# The local default key is only fit for a laptop; deployments set DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "dawn-local-development-key-not-for-production"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h.strip()]

# Served over HTTPS only (a deployment; `make run` is plain HTTP on loopback and leaves these off): plain HTTP
# is redirected, cookies go over HTTPS only, browsers are told to keep to HTTPS (HSTS). Health and metrics
# are exempt from the redirect: probes and scrapers reach a worker directly, over plain HTTP.
HTTPS_ONLY = _env_bool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = _env_seconds("DJANGO_HSTS_SECONDS", 31536000 if HTTPS_ONLY else 0)  # a year
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("DJANGO_HSTS_PRELOAD", True)  # consent to the preload list; nothing is submitted
# behind a TLS-terminating proxy that sets X-Forwarded-Proto (and drops a client's own): requests it marks
# https are secure. Never set it where clients reach the server without that proxy: they could claim https.
if _env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# local play: writes need no user, for loopback clients only (consciousness/access.py); `make run` sets it
DAWN_OPEN_WRITES = _env_bool("DAWN_OPEN_WRITES", False)

DAWN_CONFIG_PATH = Path(os.environ.get("DAWN_CONFIG") or BASE_DIR / "config.yaml")
DAWN_CONFIG = config_load(DAWN_CONFIG_PATH)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "corsheaders",
    "consciousness",
    "processes",
    "dawn_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files in both shapes, DEBUG or not
    "dawn_site.errors.JsonErrorMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dawn_site.urls"
ASGI_APPLICATION = "dawn_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# How long a statement waits for a lock another connection holds before it fails: a REST write then answers
# 503 with Retry-After (dawn_site/errors.py) instead of hanging, and a history flush is retried later
DATABASE_LOCK_TIMEOUT_S = 5
# PostgreSQL: no statement runs longer than this (a hung server, a full disk that blocks the WAL writer)
DATABASE_STATEMENT_TIMEOUT_S = 60
# what a 503 for a locked, full or read-only database tells the client to wait before retrying
DATABASE_RETRY_AFTER_S = 5

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the API read while runtick writes; IMMEDIATE + timeout queue writers instead of failing
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": DATABASE_LOCK_TIMEOUT_S,  # sqlite3's busy timeout, in seconds
    }
    # a file, not shared-cache memory: the engine writes from its own threads, and only a file
    # database gives them WAL and the busy timeout
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={DATABASE_LOCK_TIMEOUT_S * 1000} "
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_S * 1000}"
    )

REDIS_URL = os.environ.get("REDIS_URL") or ""
# the write throttles' counters: shared by every worker through Redis in the scaled shape
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times socket reads out after 5 s by default, as long as channels_redis's
                # blocking pop waits for a message: an idle receiver would fail every 5 s
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                # several DAWNs (or test runs) can share one Redis, each under its own prefix
                "prefix": os.environ.get("DAWN_CHANNEL_PREFIX") or "dawn",
                "capacity": 1000,
                "expiry": 10,
                "group_expiry": 3600,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000, "expiry": 10}}}

CORS_ALLOWED_ORIGINS = list(DAWN_CONFIG["api"]["cors_origins"])

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DAWN_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns at every start-up about a missing one
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # hashed, compressed copies made by `manage.py collectstatic` (part of `make run`), cached for a year
    "staticfiles": {"BACKEND": "dawn_site.storage.StaticStorage"},
}
# before collectstatic has run (a fresh checkout, the in-process tests) the files are served plain from the apps
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    # JSON bodies only: a form post is answered 415, not with a per-field "must be valid JSON"
    "DEFAULT_PARSER_CLASSES": ["consciousness.rest.DawnJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["consciousness.listing.StrictFilterBackend"],
    # reads are open; writes need a user with the view's permission (consciousness.access)
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",  # the dashboard and the browsable API, with CSRF
        "rest_framework.authentication.TokenAuthentication",  # Authorization: Token <key>
    ],
    "DEFAULT_PERMISSION_CLASSES": ["consciousness.access.WritePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["consciousness.access.WriteUserThrottle", "consciousness.access.WriteAddressThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "writes_user": os.environ.get("DAWN_WRITE_RATE_USER") or "60/minute",
        "writes_address": os.environ.get("DAWN_WRITE_RATE_ADDRESS") or "120/minute",
    },
    "DEFAULT_SCHEMA_CLASS": "consciousness.schema.DawnAutoSchema",
    "EXCEPTION_HANDLER": "dawn_site.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DAWN API",
    "DESCRIPTION": (
        "The state, tick history, health and analysis runs of a DAWN engine. Times are epoch seconds (UTC). "
        "Every error body is `{\"error\": ..., \"fields\": {...}}`. The live stream is the WebSocket /ws "
        "(described in the README)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # the picture's URL names a file: the router's slashed copy of it is served, not documented twice
    "PREPROCESSING_HOOKS": ["consciousness.schema.endpoints_without_slashed_twins"],
    # Swagger UI and Redoc from drf-spectacular-sidecar's local copies: no request leaves the host
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOG_DIR = Path(os.environ.get("DAWN_LOG_DIR") or BASE_DIR / "logs")
LOG_DIR.mkdir(parents=True, exist_ok=True)
LOG_LEVEL = os.environ.get("DAWN_LOG_LEVEL", "INFO")
# DAWN_LOG_FORMAT=json: one JSON object per line (python-json-logger), for log collectors
LOG_FORMAT = "json" if os.environ.get("DAWN_LOG_FORMAT", "").strip().lower() == "json" else "plain"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {
        "connection_lines": {"()": "dawn_site.logs.ConnectionLinesAtDebug"},
        "deliberate_unavailable": {"()": "dawn_site.logs.DeliberateUnavailable"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["connection_lines"]},
        "file": {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": str(LOG_DIR / "consciousness.log"),
            "maxBytes": 10 * 1024 * 1024,
            "backupCount": 5,
            "formatter": LOG_FORMAT,
            "filters": ["connection_lines"],
            "delay": True,
        },
    },
    "root": {"handlers": ["console", "file"], "level": LOG_LEVEL},
    "loggers": {
        # each event once, through the root's handlers: Django's own console handler (DEBUG only) and
        # uvicorn's handlers (a worker's command line installs them) would print it a second time
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.request": {"handlers": [], "filters": ["deliberate_unavailable"], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "uvicorn": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
