"""End to end: `manage.py demo` sets up, serves, runs worker and beat, and stops everything on Ctrl-C."""

import http.cookiejar
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from config.demo import ANNOUNCE_LINE, demo_announce, demo_procfile, demo_web_up
from crm.services.demo_data import DEMO_LOGINS
from tests.conftest import ROOT

CUSTOMERS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        table[int(entry.name)] = (int(ppid), state, cmdline)
    return table


def _descendants(pid: int) -> dict[int, str]:
    table = _process_table()
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _, cmdline) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmdline
                frontier.append(child)
    return found


def _alive(pids) -> list[int]:
    table = _process_table()
    return [pid for pid in pids if pid in table and table[pid][1] != "Z"]


@pytest.fixture
def demo_database_url() -> Iterator[str | None]:
    """None on SQLite (the demo makes its own file in its VAR_DIR), else a fresh PostgreSQL database."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        yield None
        return
    import psycopg
    from psycopg import sql

    name = f"{db['NAME'][:40]}_demo_{os.getpid()}"
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"],
              "password": db["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    auth = urllib.parse.quote(db["USER"]) + (f":{urllib.parse.quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    try:
        yield f"postgres://{auth}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(**server) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Browser:
    """A cookie-keeping HTTP client, as a person's browser would be (CSRF cookie, session)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        try:
            with self.opener.open(self.base_url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post(self, path: str, data: dict[str, str]) -> tuple[int, bytes]:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base_url + path, data=body)
        with self.opener.open(request, timeout=30) as response:
            return response.status, response.read()

    def json(self, path: str) -> dict:
        status, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)


def _wait_until_serving(proc: subprocess.Popen, log: Path, base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{log.read_text()}"
        if f"{base_url}/admin/" in log.read_text():
            try:
                with urllib.request.urlopen(f"{base_url}/health/", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
        time.sleep(0.5)
    raise AssertionError(f"demo did not serve {base_url} within {timeout:.0f} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen, known: set[int]) -> None:
    """Kill whatever is left: the launcher's group, and each child's own group (honcho starts each of the
    Procfile processes in a session of its own)."""
    for pid in _alive(known | set(_descendants(proc.pid)) | {proc.pid}):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _demo_env(var_dir: Path, database_url: str | None) -> dict[str, str]:
    """The demo's own VAR_DIR (SQLite file, broker folder, static files) and database, not the test run's;
    and not the test settings (config.settings.test): the demo runs as a person's would."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DJANGO_PROFILE", "DJANGO_SETTINGS_MODULE", "PYTEST_VERSION")}
    env.update(VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@pytest.mark.slow
def test_demo_sets_up_once_then_serves_admin_docs_health_and_data_then_stops_everything_on_ctrl_c(
        tmp_path, demo_database_url):
    # One test for both runs a person makes (the first `make demo` sets up, the next ones find it done): the
    # set-up (migrate, static files, seed, simulate, fit) is most of each run's time.
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _demo_env(tmp_path / "var", demo_database_url)

    def manage(*args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=300, start_new_session=True)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def customers() -> int:
        out = manage("shell", "-c", "from crm.models import Customer; print(Customer.objects.count())")
        return int(out.split()[-1])  # the last line: the shell may first report its automatic imports

    # Given a first run that only sets up (two simulated months: the demo's wiring, not the simulation, which
    # tests/core/test_demo_activity.py covers)
    out = manage("demo", "--no-serve", "--port", "8123", "--customers", str(CUSTOMERS), "--months", "2")
    assert "http://127.0.0.1:8123/admin/" in out and "http://127.0.0.1:8123/api/docs/" in out
    assert all(username in out and password in out for username, password, _ in DEMO_LOGINS)
    assert customers() == CUSTOMERS
    assert (tmp_path / "var/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").is_file()
    # The purchase models were fitted once (this few customers are too few: the attempts say so)
    assert "bgnbd" in out and "NOT USABLE: Only" in out
    # and it started nothing
    assert "Listening at:" not in out and "celery@" not in out

    # When the demo is run again, serving
    log = tmp_path / "demo.log"
    known: set[int] = set()
    with open(log, "wb") as out_file:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(port), "--customers", str(CUSTOMERS), "--months", "2"],
            cwd=ROOT, env=env, stdout=out_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_until_serving(proc, log, base_url, timeout=300)
        children = _descendants(proc.pid)
        known |= set(children)
        commands = list(children.values())
        assert sum("gunicorn config.wsgi" in c for c in commands) == 3, commands  # master + 2 workers
        assert any("celery -A config worker" in c for c in commands), commands
        assert any("celery -A config beat" in c and "DatabaseScheduler" in c for c in commands), commands
        printed = log.read_text()
        for username, password, _ in DEMO_LOGINS:
            assert username in printed and password in printed
        assert f"{base_url}/api/docs/" in printed and f"{base_url}/health/" in printed

        browser = Browser(base_url)
        status, _ = browser.get("/admin/login/")
        assert status == 200

        status, docs = browser.get("/api/docs/")
        assert status == 200
        assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", docs.decode())
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
        status, bundle = browser.get(next(a for a in assets if a.endswith("swagger-ui-bundle.js")))
        assert status == 200 and b"SwaggerUI" in bundle  # served by whitenoise from STATIC_ROOT

        health = browser.json("/health/")
        assert health["database"] == "ok"
        assert health["broker"] == ("redis" if settings.REDIS_URL else "filesystem")
        # Beat enqueues core.heartbeat every 30 s and a worker runs it: "ok" proves both are alive.
        deadline = time.monotonic() + 90
        while health["worker"] != "ok":
            assert time.monotonic() < deadline, f"worker still stale after 90 s: {health}\n{log.read_text()}"
            time.sleep(2)
            health = browser.json("/health/")

        # Once web, worker and beat are up, the URL and logins are printed again: the last lines before the
        # running logs, after every start-up line of the three.
        deadline = time.monotonic() + 120
        while "Web, worker and beat are up" not in log.read_text():
            assert time.monotonic() < deadline, f"no second banner within 120 s:\n{log.read_text()}"
            time.sleep(1)
        printed = log.read_text()
        announced = printed.rindex(f"Win-back demo: {base_url}/")
        assert printed.index(f"Win-back demo: {base_url}/") < announced  # printed before the start, and again
        assert all(username in printed[announced:] and password in printed[announced:] for username, password, _ in DEMO_LOGINS)
        assert all(printed.rfind(started) < announced for started in (
            "Listening at:", "celery@", "beat: Starting"))
        # No email is printed whole: at most one log line per message (the demo writes them to files)
        assert "Content-Type:" not in printed and "MIME-Version" not in printed and "Subject:" not in printed
        # and the worker's own two lines per task (received, succeeded) are quiet: a sent email leaves its one line
        assert "Task touchpoints.send_batch[" not in printed and "Task core.heartbeat[" not in printed
        # The live worker's sends only (the simulated past's log nothing), each a message in the files
        mail = tmp_path / "var" / "mail"
        messages = sum(f.read_text().count("Message-ID:") for f in mail.iterdir()) if mail.exists() else 0
        sent_lines = [line for line in printed.splitlines() if "email sent: touchpoint" in line]
        assert all(" worker.1 " in line for line in sent_lines), sent_lines[:3]
        assert len(sent_lines) <= messages

        username, password, _ = next(login for login in DEMO_LOGINS if login[2] == "Managers")
        browser.get("/admin/login/")
        csrf = next(c.value for c in browser.cookies if c.name == "csrftoken")
        status, page = browser.post("/admin/login/?next=/admin/", {
            "csrfmiddlewaretoken": csrf, "username": username, "password": password, "next": "/admin/"})
        assert status == 200 and b"logout" in page.lower(), page[:2000]
        status, page = browser.get("/admin/crm/customer/")
        # Then nothing was seeded twice: the second run found the first run's customers
        assert status == 200 and f"{CUSTOMERS} customers".encode() in page
        assert browser.json("/api/customers/?limit=1")["count"] == CUSTOMERS

        known |= set(_descendants(proc.pid))
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _alive(known) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftover = _alive(known)
        assert not leftover, {pid: cmd for pid, cmd in _process_table().items() if pid in leftover}
        assert "SIGKILL" not in log.read_text(), "a process had to be killed instead of stopping cleanly"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        _stop(proc, known)


def test_the_demos_emails_go_to_files_not_into_the_terminal(monkeypatch):
    from config.demo import demo_banner, demo_process_env

    # Given no EMAIL_URL, the demo's processes write each email to a file under VAR_DIR/mail
    monkeypatch.delenv("EMAIL_URL", raising=False)
    env = demo_process_env(host="127.0.0.1", port=8123, base_url="http://127.0.0.1:8123")
    assert env["EMAIL_URL"] == "filemail://"
    result = subprocess.run([sys.executable, "-c", "from django.conf import settings; print(settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH)"],
                            cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.development"},
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["django.core.mail.backends.filebased.EmailBackend", env["VAR_DIR"] + "/mail"], result.stderr
    assert f"{env['VAR_DIR']}/mail/" in demo_banner(base_url="http://127.0.0.1:8123", logins=[], serving=True)
    # And an EMAIL_URL the person set is kept
    monkeypatch.setenv("EMAIL_URL", "smtp://localhost:2525")
    assert demo_process_env(host="127.0.0.1", port=8123, base_url="x")["EMAIL_URL"] == "smtp://localhost:2525"


def test_the_demos_procfile_is_the_projects_plus_the_announcer(settings, tmp_path):
    # Given the project's Procfile (web, worker, beat: production's too)
    settings.VAR_DIR = tmp_path
    project = [line for line in (ROOT / "Procfile").read_text().splitlines() if line and not line.startswith("#")]
    assert [line.split(":")[0] for line in project] == ["web", "worker", "beat"]
    # When the demo writes its own
    written = demo_procfile().read_text().splitlines()
    # Then it has the same three, then the announcer, and production's Procfile is unchanged
    assert [line for line in written if line and not line.startswith("#")] == [*project, ANNOUNCE_LINE]
    assert "announce" not in (ROOT / "Procfile").read_text()


def test_the_banner_is_printed_again_once_web_worker_and_beat_are_up():
    # Given a demo whose web, worker and beat are up at the fourth check
    checks = []

    def ready() -> bool:
        checks.append(len(checks) + 1)
        return len(checks) >= 4

    out = io.StringIO()
    # When the announcer waits for them
    up = demo_announce(base_url="http://127.0.0.1:8123", logins=DEMO_LOGINS, ready=ready, timeout=30,
                       interval=0.01, out=out)
    # Then it printed the URL and every login once, after they were up, saying so
    assert up and len(checks) == 4
    printed = out.getvalue()
    assert printed.count("Win-back demo: http://127.0.0.1:8123/") == 1 and "http://127.0.0.1:8123/admin/" in printed
    assert all(username in printed and password in printed for username, password, _ in DEMO_LOGINS)
    assert "Web, worker and beat are up" in printed

    # And when they do not come up in time, it still prints the banner, saying what to look at
    out = io.StringIO()
    assert not demo_announce(base_url="http://127.0.0.1:8123", logins=DEMO_LOGINS, ready=lambda: False,
                             timeout=0.1, interval=0.01, out=out)
    assert "Win-back demo: http://127.0.0.1:8123/" in out.getvalue() and "Not everything is up yet" in out.getvalue()


def test_the_announcer_asks_web_without_a_logged_503(live_server):
    # Given the web server up: /health/live/ answers (the full /health/ would log a 503 while beat starts)
    assert demo_web_up(base_url=live_server.url)
    # And a port where nothing listens is not up
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not demo_web_up(base_url=f"http://127.0.0.1:{port}")
