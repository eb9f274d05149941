import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import translation
from rest_framework.test import APIClient

from core.roles import AGENTS, INTEGRATIONS, MANAGERS
from core.services import api_token_create
from core.worker_process import WORKER_OPTIONS, worker_spawn, worker_stop
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The default hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # The API throttles count in the cache: each test starts from zero (a key prefix of its own, so that
    # on Redis nothing else in the database is touched).
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI always does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if ON_CI and skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} test(s) were skipped; on CI everything must run.", red=True
        )


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if ON_CI and reporter and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the business's default language. A request through the test client activates its
    person's language in this thread (LocaleMiddleware), and it stays active after the response, as in a
    server's thread until its next request: without this, a test after a Hungarian page would read Hungarian."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _user_in(group: str, **kwargs):
    user = UserFactory(**kwargs)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def manager(db):
    return _user_in(MANAGERS, username="manager", is_staff=True)


@pytest.fixture
def agent(db):
    return _user_in(AGENTS, username="agent")


@pytest.fixture
def integration(db):
    return _user_in(INTEGRATIONS, username="shop-integration")


@pytest.fixture
def api(integration) -> APIClient:
    """An API client authenticated with the integration's token, as another system would be."""
    client = APIClient()
    _, token = api_token_create(user=integration)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def test_database_url() -> str:
    """A DATABASE_URL for subprocesses (worker, demo) that points at the test database."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1", **extra}
    return env


def _per_test_process(file_name: str) -> str:
    """A file of this test process's own: under pytest-xdist two processes run at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return file_name
    stem, dot, suffix = file_name.rpartition(".")
    return f"{stem}-{worker}{dot}{suffix}" if dot else f"{file_name}-{worker}"


def worker_start(*, name: str = "", concurrency: int = 1, env: dict[str, str] | None = None,
                 log_name: str = "test-worker.log", timeout: float = 60, new_session: bool = False) -> subprocess.Popen:
    """Start a real Celery worker process on the test settings and wait until it is ready (its log says so)."""
    from django.conf import settings

    return worker_spawn(
        argv=[sys.executable, "-m", "celery", "-A", "config", "worker", *WORKER_OPTIONS, "--concurrency", str(concurrency),
              "-n", f"{name or 'test'}-{os.getpid()}@%h"],
        env=subprocess_env(**(env or {})), cwd=ROOT, log_path=settings.VAR_DIR / _per_test_process(log_name), timeout=timeout,
        new_session=new_session,
    )


@pytest.fixture
def celery_worker_process(transactional_db) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on the configured broker (Redis on CI, the filesystem otherwise)."""
    from config.celery import app

    # Messages left by earlier tests (after-commit refreshes) would sit in front of this test's own.
    app.control.purge()
    proc = worker_start()
    yield proc
    worker_stop(proc)
