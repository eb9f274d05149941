"""The production install, proven end to end: a virtualenv holding requirements.txt and nothing else (the
Dockerfile's steps), the production profile, and the Procfile's web, worker and beat against the real
PostgreSQL, Redis and an SMTP server.

The test requirements pull in packages that the runtime may lean on without declaring them (kombu's Redis
transport imports `packaging`, which only pytest installed): only an install of requirements.txt by itself
shows that, so this venv is built apart from the one the tests run in.
"""

import datetime as dt
import hashlib
import http.cookies
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from psycopg import sql

from core.worker_process import worker_spawn
from tests.conftest import ON_CI, ROOT
from tests.smtp import SmtpSink, free_port
from tests.touchpoints.test_worker_e2e import daytime_zone, wait_until

pytestmark = [
    pytest.mark.smoke, pytest.mark.postgres, pytest.mark.worker, pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL,
                       reason="needs Redis, production's broker: set REDIS_URL=redis://... (CI always does)"),
]

KPIS = "/admin/metrics/metricsnapshot/"
PASSWORD_ENV = "SMOKE_PASSWORD"
# Run by the runtime venv's `manage.py shell`: the logins a deployment's operator would create, and the
# tokens of the shop's integration and of an agent's dialer.
SETUP = f"""
import json, os
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from core.services import api_token_create
from core.roles import AGENTS, INTEGRATIONS, MANAGERS
from winback.services.policy import policy_change

def user(username, group, **fields):
    u = get_user_model().objects.create_user(username, password=os.environ["{PASSWORD_ENV}"], **fields)
    u.groups.add(Group.objects.get(name=group))
    return u

manager = user("smoke-manager", MANAGERS, is_staff=True)
tokens = {{name: api_token_create(user=user(name, group))[1]
          for name, group in [("smoke-integration", INTEGRATIONS), ("smoke-agent", AGENTS)]}}
# A manager's choice, so that the lapsed customer's case is callable: the default 10% holdout draw would
# now and then leave the agent nothing to claim.
policy_change(user=manager, values={{"holdout_share": 0}}, note="smoke test: no holdout")
print(json.dumps(tokens))
"""


def requirements_file() -> Path:
    # SMOKE_REQUIREMENTS=path tries a broken copy of the lock by hand (the test must then fail); CI always
    # proves requirements.txt itself.
    override = os.environ.get("SMOKE_REQUIREMENTS")
    if override and ON_CI:
        pytest.fail("SMOKE_REQUIREMENTS is for trying a broken lock by hand; CI proves requirements.txt itself")
    return Path(override).resolve() if override else ROOT / "requirements.txt"


def clean_env(**extra: str) -> dict[str, str]:
    """No settings, virtualenv or pytest variables of this run: the runtime sees only what a container would."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: v for k, v in os.environ.items() if k in keep}, "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1", **extra}


def run(argv: list[str], *, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv[1:4])} ... exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result.stdout


def runtime_venv(requirements: Path) -> Path:
    """A virtualenv with `pip install -r requirements.txt` alone, kept under var/ while the file is unchanged."""
    var = Path(settings.VAR_DIR)
    venv = var / f"runtime-venv-{hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]}"
    done = venv / ".installed"
    if done.is_file():
        return venv
    for stale in var.glob("runtime-venv-*"):  # an earlier lock's, or one whose install did not finish
        shutil.rmtree(stale)
    pip_config = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    run([sys.executable, "-m", "venv", str(venv)], env=clean_env())
    run([str(venv / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
         "-r", str(requirements)], env=clean_env(**pip_config))
    done.touch()
    return venv


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database beside the test database; dropped afterwards."""
    db = settings.DATABASES["default"]
    name = f"{db['NAME'][:50]}_smoke"
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"],
              "password": db["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}

    def execute(statement: str) -> None:
        with psycopg.connect(**server) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

    execute("DROP DATABASE IF EXISTS {} WITH (FORCE)")  # left over by an interrupted run
    execute("CREATE DATABASE {}")
    auth = urllib.parse.quote(db["USER"]) + (f":{urllib.parse.quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    try:
        yield f"postgres://{auth}@{server['host']}:{server['port']}/{name}"
    finally:
        execute("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def redis_url_of_its_own() -> str:
    """The suite's Redis, another database number (the suite's + 8), emptied: no message of an earlier run
    reaches the new worker, and the suite's own queue is never touched."""
    url = urllib.parse.urlsplit(settings.REDIS_URL)
    number = (int(url.path.strip("/") or 0) + 8) % 16
    own = urllib.parse.urlunsplit(url._replace(path=f"/{number}"))
    redis.Redis.from_url(own).flushdb()
    return own


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def processes_stop(procs: list[subprocess.Popen]) -> None:
    # SIGTERM to each program only (a Celery worker then stops its own pool in order), SIGKILL to whatever
    # of its process group is left after the grace period.
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 30
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to check, not to follow


class Client:
    """HTTP as gunicorn receives it behind a TLS-terminating proxy: `X-Forwarded-Proto: https`, which the
    production settings trust. Cookies are kept by hand, since urllib's jar never sends the Secure session
    and CSRF cookies over plain http."""

    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url, self.token = base_url, token
        self.cookies: dict[str, str] = {}
        self.opener = urllib.request.build_opener(_KeepRedirects)

    def request(self, method: str, path: str, *, json_body: Any = None,
                form: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        headers = {"X-Forwarded-Proto": "https", "Origin": "https://" + urllib.parse.urlsplit(self.base_url).netloc}
        data = None
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            data, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as exc:
            response = exc
        with response:
            for header in response.headers.get_all("Set-Cookie") or []:
                self.cookies.update({k: m.value for k, m in http.cookies.SimpleCookie(header).items()})
            return response.status, response.headers, response.read()


@dataclass
class Production:
    base_url: str
    env: dict[str, str]
    python: str
    database: psycopg.Connection
    sink: SmtpSink
    tokens: dict[str, str]
    password: str
    logs: Path

    def client(self, role: str = "") -> Client:
        return Client(self.base_url, self.tokens[role] if role else "")

    def row(self, query: str, *params: Any) -> tuple | None:
        return self.database.execute(query, params).fetchone()

    def celery(self, *args: str) -> str:
        return run([self.python, "-m", "celery", "-A", "config", *args], env=self.env)

    def logs_tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in sorted(self.logs.glob("*.log")))

    def wait_for(self, condition: Callable[[], Any], *, seconds: float, what: str) -> None:
        try:
            wait_until(condition, seconds=seconds, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs_tail()}") from None


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Iterator[Production]:
    venv = runtime_venv(requirements_file())
    python = str(venv / "bin/python")
    var_dir = tmp_path_factory.mktemp("production")
    logs = var_dir / "logs"
    logs.mkdir()
    port = free_port()
    with ExitStack() as stack:
        sink = SmtpSink().start()
        stack.callback(sink.stop)
        database_url = stack.enter_context(scratch_database())
        env = clean_env(
            PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",  # the Procfile's `python` is the runtime's
            DJANGO_PROFILE="production", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="localhost,127.0.0.1",
            # The public address is https (a proxy terminates TLS), so check --deploy passes with every default
            # of the production profile, SECURE_SSL_REDIRECT included.
            SITE_URL=f"https://localhost:{port}", VAR_DIR=str(var_dir), DATABASE_URL=database_url,
            REDIS_URL=redis_url_of_its_own(), EMAIL_URL=sink.url, WEB_BIND=f"127.0.0.1:{port}",
        )

        def manage(*args: str, **extra: str) -> str:
            return run([python, "manage.py", *args], env={**env, **extra})

        # The Dockerfile's build step, then what a deployment runs before it serves.
        manage("collectstatic", "--noinput", "--verbosity", "0")
        manage("check", "--deploy", "--fail-level", "WARNING")
        manage("migrate", "--noinput")
        password = secrets.token_urlsafe(16)
        tokens = json.loads(manage("shell", "-c", SETUP, **{PASSWORD_ENV: password}).strip().splitlines()[-1])

        procs: list[subprocess.Popen] = []
        stack.callback(processes_stop, procs)  # before the database is dropped
        commands = procfile()
        for name in ("web", "beat"):
            with open(logs / f"{name}.log", "wb") as log:
                procs.append(subprocess.Popen(["bash", "-c", commands[name]], cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        procs.append(worker_spawn(argv=["bash", "-c", commands["worker"]], env=env, cwd=ROOT,
                                  log_path=logs / "worker.log", timeout=90, new_session=True))
        database = stack.enter_context(psycopg.connect(database_url, autocommit=True))
        live = Production(base_url=f"http://127.0.0.1:{port}", env=env, python=python, database=database,
                          sink=sink, tokens=tokens, password=password, logs=logs)
        live.wait_for(lambda: _answers(live.client(), "/health/live/") == 200, seconds=60, what="gunicorn to serve /health/live/")
        yield live


def _answers(client: Client, path: str) -> int | None:
    try:
        return client.request("GET", path)[0]
    except OSError:
        return None  # not listening yet


def _created(client: Client, path: str, body: Any) -> Any:
    status, _, answer = client.request("POST", path, json_body=body)
    assert status == 201, (path, status, answer[:2000])
    return json.loads(answer)


def test_an_order_refreshes_its_customer_and_the_thank_you_goes_out_through_the_worker_and_smtp(production):
    # Given a shop's integration and a customer who agreed to emails, where it is daytime now
    shop = production.client("smoke-integration")
    _created(shop, "/api/customers/", {"external_id": "SMOKE-1", "name": "Smoke Test", "email": "smoke@example.com",
                                       "timezone": daytime_zone(), "email_consent": "granted",
                                       "email_consent_source": "smoke test"})
    # When the shop posts their order
    ordered_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    _created(shop, "/api/orders/", {"external_id": "SMOKE-O1", "customer": "SMOKE-1",
                                    "ordered_at": ordered_at.isoformat(), "amount": "42.50", "currency": "EUR"})
    # Then the worker refreshes the customer's lifecycle within seconds
    production.wait_for(
        lambda: production.row("SELECT status, lifecycle_version = history_version FROM crm_customer"
                               " WHERE external_id = %s", "SMOKE-1") == ("active", True),
        seconds=60, what="the customer's lifecycle refresh")
    # And once beat's every-minute tick has run (called now rather than waited for), the thank-you arrives
    # through the worker's SMTP conversation, once
    production.celery("call", "touchpoints.tick")
    production.wait_for(lambda: "smoke@example.com" in production.sink.by_header("To"), seconds=60,
                        what="the thank-you email")
    (thanks,) = production.sink.by_header("To")["smoke@example.com"]
    assert "42.50" in thanks.get_body(("plain",)).get_content()


def test_a_manager_logs_in_through_the_form_and_sees_the_kpi_page_with_its_static_files(production):
    # Given the manager's browser on the login form
    browser = production.client()
    status, _, _ = browser.request("GET", "/admin/login/")
    assert status == 200 and "csrftoken" in browser.cookies
    # When they log in
    status, headers, body = browser.request("POST", f"/admin/login/?next={KPIS}", form={
        "csrfmiddlewaretoken": browser.cookies["csrftoken"], "username": "smoke-manager",
        "password": production.password, "next": KPIS})
    # Then they land on the KPI page, which renders, with the stylesheet collectstatic hashed, served by whitenoise
    assert (status, headers["Location"]) == (302, KPIS), body[:2000]
    status, _, page = browser.request("GET", KPIS)
    assert status == 200 and b'id="kpi-agents"' in page and b"data-metric=" in page, page[:2000]
    stylesheet = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, page[:2000]
    assert browser.request("GET", stylesheet[1].decode())[0] == 200


def test_an_agent_claims_a_lapsed_customers_case_through_the_api(production):
    # Given a customer whose last order was 300 days ago, posted by the shop, where it is daytime now
    shop = production.client("smoke-integration")
    _created(shop, "/api/customers/", {"external_id": "SMOKE-LAPSED", "name": "Lapsed Smoke",
                                       "phone": "+33612345678", "timezone": daytime_zone()})
    now = dt.datetime.now(dt.timezone.utc)
    _created(shop, "/api/orders/", [
        {"external_id": f"SMOKE-L{days}", "customer": "SMOKE-LAPSED", "amount": "80.00",
         "ordered_at": (now - dt.timedelta(days=days)).isoformat()} for days in (400, 300)])
    # When the worker's refresh has found the lapse and opened its case
    production.wait_for(
        lambda: production.row("SELECT wc.status, wc.ready FROM winback_winbackcase wc JOIN crm_customer c"
                               " ON c.id = wc.customer_id WHERE c.external_id = %s", "SMOKE-LAPSED") == ("open", True),
        seconds=60, what="the lapsed customer's case")
    # Then an agent's dialer claims it
    status, _, body = production.client("smoke-agent").request("POST", "/api/queue/next/")
    assert status == 200, body[:2000]
    assert json.loads(body)["customer"]["external_id"] == "SMOKE-LAPSED"


def test_beat_schedules_the_heartbeat_and_the_tick_and_health_turns_green(production):
    # Beat sends core.heartbeat every 30 s and the outbox tick every minute; the worker runs both: /health/
    # then answers 200 with the worker, the broker and the tick ok.
    client = production.client()

    def health() -> tuple[int, dict]:
        status, _, body = client.request("GET", "/health/")
        return status, json.loads(body)

    production.wait_for(lambda: health()[0] == 200 and health()[1]["worker"] == "ok", seconds=150,
                        what="/health/ to answer 200 (worker heartbeat and outbox tick)")
    status, body = health()
    assert (status, body["broker"], body["broker_status"], body["tick"]) == (200, "redis", "ok", "ok")
