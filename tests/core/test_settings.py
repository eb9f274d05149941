"""The production profile, the offline API docs, and the container set-up (Dockerfile, docker-compose.yml)."""

import os
import re
import secrets
import subprocess
import sys

import pytest
import yaml
from django.contrib.staticfiles import finders

from config.settings.refusals import DEVELOPMENT_SECRET_KEY
from tests.conftest import ROOT

APP_SERVICES = ("migrate", "web", "worker", "beat")


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _production_env(**extra: str) -> dict[str, str]:
    # The test run's own DATABASE_URL (or its SQLite default in VAR_DIR): the same database configuration.
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    return {**env, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_PROFILE": "production", **extra}


def test_production_profile_passes_check_deploy():
    env = _production_env(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="winback.example.com",
                          SITE_URL="https://winback.example.com")
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


GOOD = {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "winback.example.com",
        "SITE_URL": "https://winback.example.com"}
REFUSED = "DJANGO_PROFILE=production refuses to start"


def _refusal(result: subprocess.CompletedProcess) -> str:
    """The ImproperlyConfigured message the failed start printed, from its first line to the end."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "django.core.exceptions.ImproperlyConfigured: " + REFUSED in result.stderr, result.stderr
    return result.stderr[result.stderr.index(REFUSED):]


@pytest.mark.parametrize("bad, variable, fix", [
    ({"SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "SECRET_KEY is the development key", "50+ random characters"),
    ({"SECRET_KEY": ""}, "SECRET_KEY is not set", "secrets.token_urlsafe(50)"),
    ({"SECRET_KEY": secrets.token_urlsafe(30)}, "SECRET_KEY is too weak", "50+ random characters"),
    ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(50)}, "SECRET_KEY is too weak", "50+ random characters"),
    ({"SECRET_KEY": "ab" * 40}, "SECRET_KEY is too weak", "50+ random characters"),  # long, but 2 characters
    ({"DEBUG": "true"}, "DEBUG is true", "DEBUG=false"),
    ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS contains '*'", "ALLOWED_HOSTS=winback.example.com"),
    ({"ALLOWED_HOSTS": "winback.example.com,*"}, "ALLOWED_HOSTS contains '*'", "list the real host names"),
    ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is not set", "ALLOWED_HOSTS=winback.example.com"),
    ({"SITE_URL": "http://winback.example.com"}, "SITE_URL is 'http://winback.example.com'",
     "SITE_URL=https://winback.example.com"),
    ({"SITE_URL": "winback.example.com"}, "SITE_URL is 'winback.example.com'", "public https address"),
], ids=["development-key", "empty-key", "short-key", "django-insecure-key", "two-character-key", "debug",
        "wildcard-host", "wildcard-among-hosts", "empty-hosts", "http-site-url", "site-url-without-scheme"])
def test_production_profile_refuses_to_start_with_an_insecure_setting(bad, variable, fix):
    # Given an otherwise good production environment with one insecure setting
    env = _production_env(**{**GOOD, **bad})
    # When it starts
    result = _manage("check", env=env)
    # Then start-up fails with one problem, naming the variable and how to fix it
    message = _refusal(result)
    assert "1 insecure setting(s)" in message
    assert variable in message and fix in message


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_profile_refuses_to_start_without_required_setting(missing):
    present = dict(GOOD)
    del present[missing]
    message = _refusal(_manage("check", env=_production_env(**present)))
    assert f"{missing} is not set" in message


def test_production_profile_reports_every_insecure_setting_in_one_failed_start():
    # Given the development profile's defaults, as they would be if nothing were set for production
    env = _production_env(DEBUG="true", ALLOWED_HOSTS="*", SITE_URL="http://127.0.0.1:8000")
    # When it starts
    message = _refusal(_manage("check", env=env))
    # Then all four problems are listed at once, each on its own line
    assert "4 insecure setting(s)" in message
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    assert [line.split()[1] for line in lines] == ["SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SITE_URL"], message


def test_development_profile_check_deploy_flags_the_insecure_defaults():
    # The other side of the deploy check: it does fail when the production hardening is missing.
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_PROFILE", "SECRET_KEY", "SITE_URL")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W009" in result.stderr  # the well-known insecure development SECRET_KEY
    assert "touchpoints.W001" in result.stderr  # the plain-http SITE_URL the email links would use


def test_api_docs_load_only_local_static_assets(client):
    html = client.get("/api/docs/").content.decode()
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in refs), refs
    # Static files, and Swagger UI's init script from the docs view itself (no inline script: see the CSP)
    static = [ref for ref in refs if ref.startswith("/static/")]
    assert [ref for ref in refs if ref not in static] == ["/api/docs/?script="], refs
    assert "//cdn" not in html and "https://" not in html and "<script>" not in html and "<style>" not in html
    for ref in static:
        assert finders.find(ref.removeprefix("/static/")), f"{ref} is not a static file"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode() and "https://" not in script.content.decode()


# --- docker-compose.yml and Dockerfile (no Docker engine here: parsed, not run) --------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_part_of_the_service(compose):
    services = compose["services"]
    assert set(services) >= {"db", "redis", "mailpit", *APP_SERVICES}
    assert services["db"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    commands = {name: " ".join(services[name]["command"]) for name in APP_SERVICES}
    assert commands["migrate"] == "python manage.py migrate --noinput"
    assert commands["web"].startswith("gunicorn config.wsgi")
    assert " worker" in commands["worker"] and "celery -A config" in commands["worker"]
    assert "celery -A config beat" in commands["beat"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in commands["beat"]


def test_compose_app_services_share_one_image_and_configuration(compose):
    services = compose["services"]
    builds = {(services[name].get("build"), services[name].get("image")) for name in APP_SERVICES}
    assert len(builds) == 1 and None not in next(iter(builds)), builds
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DJANGO_PROFILE"] == "production"
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["EMAIL_URL"] == "smtp://mailpit:1025"
        assert env["SECURE_SSL_REDIRECT"] == "false"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # required from outside, never a default
        assert env["SITE_URL"].startswith("${SITE_URL:?")  # production refuses a default plain-http address
        assert "ALLOWED_HOSTS" in env


def test_compose_runs_exactly_one_beat(compose):
    beat = compose["services"]["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat.get("scale", 1) == 1


def test_compose_starts_the_app_only_on_healthy_dependencies_and_migrated_schema(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        deps = services[name]["depends_on"]
        assert deps["db"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"


def test_compose_services_have_healthchecks(compose):
    services = compose["services"]
    for name in ("db", "redis", "mailpit", "worker", "beat"):
        check = services[name]["healthcheck"]
        assert check["test"] and not check.get("disable"), name
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    # web keeps the image's HEALTHCHECK (GET /health/); it must not switch it off.
    assert not services["web"].get("healthcheck", {}).get("disable")
    assert re.search(r"^HEALTHCHECK .*/health/", _dockerfile(), re.M)


def _dockerfile() -> str:
    """The Dockerfile with continuation lines joined, as Docker reads it."""
    return re.sub(r"\\\n", "", (ROOT / "Dockerfile").read_text())


def test_dockerfile_builds_a_non_root_gunicorn_image_with_static_files():
    dockerfile = _dockerfile()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and line[0].isupper()]
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "pip install -r requirements.txt" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    user = re.search(r"^USER (\S+)$", dockerfile, re.M)
    assert user and user.group(1) not in ("root", "0")
    assert instructions.index("USER") > max(i for i, ins in enumerate(instructions) if ins == "RUN")
    assert re.search(r'^CMD \["gunicorn", "config.wsgi"', dockerfile, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", ".env"} <= set(ignored)


def test_dockerfile_build_step_passes_the_production_refusals():
    # Given the variables the image's collectstatic step sets (the image's ENV says DJANGO_PROFILE=production)
    (step,) = [line for line in _dockerfile().splitlines() if "manage.py collectstatic" in line]
    assignments = step.removeprefix("RUN ").split("python manage.py collectstatic")[0]
    env = _production_env(PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    env.pop("SITE_URL", None)
    # When the settings load with them, as that step does
    result = subprocess.run(["bash", "-c", f"{assignments} python manage.py check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    # Then the production profile starts: the build does not stop on its own refusals
    assert result.returncode == 0, result.stdout + result.stderr


def test_log_levels_set_single_loggers_levels():
    # Given LOG_LEVELS naming two loggers (what the demo sets to quiet the worker's per-task lines)
    env = {**os.environ, "LOG_LEVELS": "celery.app.trace=warning, celery.worker.strategy=ERROR"}
    # When Django configures logging
    result = _manage("shell", "-v", "0", "-c", "import logging; print(logging.getLogger('celery.app.trace').level,"
                     " logging.getLogger('celery.worker.strategy').level, logging.getLogger('other').level)", env=env)
    # Then those two have their levels and the others keep the root's
    assert result.stdout.split() == ["30", "40", "0"], result.stderr
