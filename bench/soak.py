"""Load and soak: a call centre's day against the real stack, watching latency, errors, memory and the outbox.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/winback REDIS_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/soak.py [--minutes 10] [--customers 20000] [--server-env NAME=VALUE ...]

What runs (all on this machine, all over real sockets):
  - the service: gunicorn (--gunicorn-workers, a free port), --celery-workers Celery worker processes (prefork,
    --celery-concurrency each) and one beat (django-celery-beat's DatabaseScheduler), on PostgreSQL (a scratch
    database `<name>_soak`, copied from a seeded template `<name>_soak_seed` that is kept and reused while the
    seed, the day and the migrations are the same) and Redis (the REDIS_URL server, database --redis-db, flushed
    at the start and the end); EMAIL_URL points at an SMTP sink in this process, so touchpoints really go out;
  - 16 agents (--agents): half work the agents' page (the login form with its CSRF token, "Next customer",
    the case page, the disposition form, which claims the next case itself; release; the callbacks page), half
    the queue API with a token from `manage.py drf_create_token` (claim = the card, disposition, release,
    their callbacks). Outcomes: no answer / busy / voicemail, reached (some with a reason, some with an offer
    and its coupon), declined, a callback a few minutes ahead in the customer's own time (it comes back to the
    same agent), do-not-call, wrong number, or a release;
  - 4 managers (--managers) logged in to the admin: the KPI page for different periods and the KPI API
    (/api/metrics/ by month and by range, snapshot and live, series, cohorts);
  - 1 integration with a token: new customers (a phone and time zone where it is calling hours now) with
    orders long ago, so the lifecycle refresh opens new cases (the queue stays fed), and new orders for active
    customers (thank-you touchpoints), now and then the same order again (idempotent: 200).

It prints, per endpoint, count, unexpected answers and p50/p95/p99 latency; every process's RSS every
--sample-seconds (gunicorn master and workers, each Celery worker and its pool children, beat) and the change
from minute 2 (half the run when shorter than 4 minutes) to the end; the outbox's due backlog (scheduled
touchpoints whose due time has passed) over time; the client's own CPU. Exit status 1 when any answer was
unexpected, any process grew more than 10% or was replaced, or the due backlog grew.
"""

import sys
from pathlib import Path

# Run as `python bench/soak.py`, Python puts bench/ first on sys.path, where bench/touchpoints.py would shadow
# the `touchpoints` app: use the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import zoneinfo  # noqa: E402
from collections import defaultdict  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from urllib.parse import urlencode, urlparse, urlunparse  # noqa: E402

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench.scratch_db import database_urls  # noqa: E402
from core.worker_process import WORKER_OPTIONS, worker_spawn, worker_stop  # noqa: E402

RSS_GROWTH_LIMIT = 0.10
BASELINE_SECONDS = 120
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CASE_PATH = re.compile(r"^/agent/case/(\d+)/$")
LOCAL_ZONE = re.compile(r'id="local-time">[^<]*</strong> \(([^,)]+)')
SELECT = r'<select name="{}"[^>]*>(.*?)</select>'
OPTION_VALUE = re.compile(r'<option value="(\d+)"')
# Countries with one time zone each (the phone alone names it), for the integration's new customers.
PHONE_ZONES = [("GB", "Europe/London"), ("FR", "Europe/Paris"), ("DE", "Europe/Berlin"), ("AE", "Asia/Dubai"),
               ("SA", "Asia/Riyadh"), ("JP", "Asia/Tokyo"), ("IN", "Asia/Kolkata"), ("SG", "Asia/Singapore"),
               ("NZ", "Pacific/Auckland"), ("CO", "America/Bogota"), ("PE", "America/Lima"), ("PH", "Asia/Manila")]
# (outcome, weight, what it needs): how an agent's calls end, roughly as in a real outbound campaign.
OUTCOMES = [("no_answer", 30, ""), ("voicemail", 12, ""), ("busy", 6, ""), ("reached_will_return", 12, "offer"),
            ("reached_declined", 10, "reason"), ("callback_requested", 10, "callback"), ("wrong_number", 2, ""),
            ("do_not_call", 2, ""), ("release", 8, "")]
KPI_METRICS = ["churn_rate", "retention_rate", "reactivation_rate", "new_customers", "case_win_rate", "nps"]


# --- Measuring ------------------------------------------------------------------------------------------

class Stats:
    """Latencies and unexpected answers per endpoint, shared by every actor thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: dict[str, list[str]] = defaultdict(list)
        self.counters: dict[str, int] = defaultdict(int)

    def record(self, label: str, took: float, error: str = "") -> None:
        with self.lock:
            self.latency[label].append(took)
            if error:
                self.errors[label] += 1
                if len(self.samples[label]) < 3:
                    self.samples[label].append(error)

    def count(self, name: str) -> None:
        with self.lock:
            self.counters[name] += 1


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


class Client:
    """One actor's keep-alive connection with its own cookies; every request timed and checked."""

    def __init__(self, port: int, stats: Stats, *, token: str = "") -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.stats = stats
        self.token = token
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, *, label: str, expect: tuple[int, ...], form: dict | None = None,
                body: object = None) -> tuple[int, str, bytes]:
        headers = {"Accept": "application/json" if path.startswith("/api/") else "text/html"}
        data = None
        if form is not None:
            data = urlencode({"csrfmiddlewaretoken": self.csrf, **form}, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.stats.record(label, time.perf_counter() - t0, f"{method} {path}: {exc!r}")
            return 0, "", b""
        took = time.perf_counter() - t0
        for cookie in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if not value or "max-age=0" in cookie.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if response.status == 200 and b"csrfmiddlewaretoken" in payload:
            found = CSRF_INPUT.search(payload.decode(errors="replace"))
            self.csrf = found.group(1) if found else self.csrf
        error = "" if response.status in expect else f"{method} {path}: {response.status} {payload[:300]!r}"
        self.stats.record(label, took, error)
        return response.status, response.getheader("Location", ""), payload

    def login(self, path: str, username: str, password: str, *, label: str) -> bool:
        self.request("GET", path, label=f"GET {label}", expect=(200,))
        status, _, _ = self.request("POST", path, label=f"POST {label}", expect=(302,),
                                    form={"username": username, "password": password})
        return status == 302


def callback_local(zone: str, rng: random.Random) -> str:
    """A callback a few minutes ahead on the customer's wall clock, or "" when that is past calling hours."""
    at = dt.datetime.now(zoneinfo.ZoneInfo(zone)) + dt.timedelta(minutes=rng.randint(3, 6))
    return at.strftime("%Y-%m-%dT%H:%M") if 8 <= at.hour and (at.hour, at.minute) < (20, 50) else ""


def choose_outcome(rng: random.Random) -> tuple[str, str]:
    outcome, _, needs = rng.choices(OUTCOMES, weights=[w for _, w, _ in OUTCOMES])[0]
    return outcome, needs


# --- Actors -------------------------------------------------------------------------------------------------

class Actor(threading.Thread):
    def __init__(self, name: str, client: Client, stop: threading.Event, seed: int, think: float) -> None:
        super().__init__(name=name, daemon=True)
        self.client, self.stop, self.rng, self.think_s = client, stop, random.Random(seed), think
        self.calls = 0

    def think(self, factor: float = 1.0) -> bool:
        """Pause like a person would; False when the run is over."""
        return not self.stop.wait(self.think_s * factor * self.rng.uniform(0.5, 1.5))

    def wrap_up(self, outcome: str, callbacks_path: str) -> bool:
        """After a call: the outcome counted, every tenth call a look at one's callbacks, a short pause."""
        self.client.stats.count(f"outcome {outcome}")
        self.calls += 1
        if self.calls % 10 == 0:
            self.client.request("GET", callbacks_path, label=f"GET {callbacks_path}", expect=(200,))
        return self.think(0.3)


class ApiAgent(Actor):
    """An agent whose desk software talks to the queue API with a token."""

    def run(self) -> None:
        c = self.client
        while not self.stop.is_set():
            status, _, payload = c.request("POST", "/api/queue/next/", label="POST /api/queue/next/", expect=(200, 204), body={})
            if status != 200:
                c.stats.count("queue empty (204)" if status == 204 else "claim failed")
                if not self.think(2):
                    return
                continue
            card = json.loads(payload)
            case_id = card["case"]["id"]
            if not self.think():  # the agent reads the card and makes the call
                return
            outcome, needs = choose_outcome(self.rng)
            if outcome == "release":
                c.request("POST", f"/api/cases/{case_id}/release/", label="POST /api/cases/{id}/release/", expect=(200,), body={})
            else:
                body: dict = {"outcome": outcome, "note": "soak"}
                if needs == "offer" and card["offers"]:
                    body["offer"] = self.rng.choice(card["offers"])["id"]
                if needs in ("offer", "reason") and card["reasons"]:
                    body["reason"] = self.rng.choice(card["reasons"])["id"]
                if needs == "callback":
                    body["callback_at"] = callback_local(card["customer"]["time_zone"], self.rng)
                    if not body["callback_at"]:
                        body = {"outcome": "no_answer"}
                c.request("POST", f"/api/cases/{case_id}/disposition/", label="POST /api/cases/{id}/disposition/",
                          expect=(200,), body=body)
            if not self.wrap_up(outcome, "/api/me/callbacks/"):
                return


class SessionActor(Actor):
    """A person who logs in through a form; the session cookie and the CSRF token do the rest."""

    def __init__(self, *args, username: str, password: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.username, self.password = username, password


class PageAgent(SessionActor):
    """An agent on the agents' page: session login, then the buttons and the form, as a browser sends them."""

    def run(self) -> None:
        c = self.client
        if not c.login("/accounts/login/", self.username, self.password, label="/accounts/login/"):
            return
        c.request("GET", "/agent/", label="GET /agent/", expect=(200, 302))
        location = ""
        while not self.stop.is_set():
            if not CASE_PATH.match(location):
                status, location, _ = c.request("POST", "/agent/next/", label="POST /agent/next/", expect=(302,), form={})
                if not CASE_PATH.match(location):
                    c.stats.count("queue empty (page)")
                    c.request("GET", "/agent/", label="GET /agent/", expect=(200,))
                    if not self.think(2):
                        return
                    continue
            case_path = location
            status, _, payload = c.request("GET", case_path, label="GET /agent/case/{id}/", expect=(200,))
            if status != 200:
                location = ""
                continue
            page = payload.decode(errors="replace")
            if not self.think():
                return
            outcome, needs = choose_outcome(self.rng)
            if outcome == "release":
                _, location, _ = c.request("POST", f"{case_path}release/", label="POST /agent/case/{id}/release/",
                                           expect=(302,), form={})
            else:
                form = {"outcome": outcome, "note": "soak", "reason": "", "offer": "", "callback_at": ""}
                for field in ("offer", "reason") if needs == "offer" else ("reason",) if needs == "reason" else ():
                    select = re.search(SELECT.format(field), page, re.S)
                    values = OPTION_VALUE.findall(select.group(1)) if select else []
                    form[field] = self.rng.choice(values) if values else ""
                if needs == "callback":
                    zone = LOCAL_ZONE.search(page)
                    form["callback_at"] = callback_local(zone.group(1), self.rng) if zone else ""
                    if not form["callback_at"]:
                        form["outcome"] = "no_answer"
                # Saved: a redirect to the next case (claimed by the same request) or home; a 200 is the form
                # again with errors, which this scenario never provokes.
                _, location, _ = c.request("POST", case_path, label="POST /agent/case/{id}/ (disposition)",
                                           expect=(302,), form=form)
            if not self.wrap_up(outcome, "/agent/callbacks/"):
                return


class Manager(SessionActor):
    """A manager in the admin: the KPI page and the KPI API for one period after another."""

    def run(self) -> None:
        c = self.client
        if not c.login("/admin/login/?next=/admin/", self.username, self.password, label="/admin/login/"):
            return
        c.request("GET", "/admin/", label="GET /admin/", expect=(200,))
        today = dt.date.today().replace(day=1)
        while not self.stop.is_set():
            back = self.rng.randint(1, 24)
            month = (today - dt.timedelta(days=28 * back)).replace(day=1)
            quarter_start = month.replace(month=(month.month - 1) // 3 * 3 + 1)
            quarter_end = (quarter_start + dt.timedelta(days=95)).replace(day=1)
            year_start = month.replace(month=1, day=1)
            series_start = (month - dt.timedelta(days=365 * self.rng.choice([1, 2]))).replace(day=1)
            page = "/admin/metrics/metricsnapshot/"
            choice = self.rng.random()
            if choice < 0.30:
                query = self.rng.choice([
                    "", f"?month={month:%Y-%m}", f"?start={quarter_start}&end={quarter_end}",
                    f"?month={month:%Y-%m}&from={series_start:%Y-%m}&to={month:%Y-%m}"])
                c.request("GET", page + query, label="GET admin KPI page", expect=(200,))
            elif choice < 0.35:
                c.request("GET", f"{page}csv/{self.rng.choice(['headline', 'agents', 'reasons'])}/?month={month:%Y-%m}",
                          label="GET admin KPI csv", expect=(200,))
            elif choice < 0.60:
                query = self.rng.choice([f"month={month:%Y-%m}", f"start={quarter_start}&end={quarter_end}",
                                         f"start={year_start}&end={year_start.replace(year=year_start.year + 1)}"])
                c.request("GET", f"/api/metrics/?{query}", label="GET /api/metrics/", expect=(200,))
            elif choice < 0.65:
                c.request("GET", f"/api/metrics/?month={month:%Y-%m}&live=1", label="GET /api/metrics/?live=1", expect=(200,))
            elif choice < 0.85:
                c.request("GET", f"/api/metrics/series/?metric={self.rng.choice(KPI_METRICS)}&grain=month"
                                 f"&start={series_start}&end={month}", label="GET /api/metrics/series/", expect=(200,))
            else:
                query = self.rng.choice(["", f"?start={series_start}&end={month}"])
                c.request("GET", f"/api/metrics/cohorts/{query}", label="GET /api/metrics/cohorts/", expect=(200,))
            if not self.think():
                return


class Integration(Actor):
    """Another system pushing customers and orders through the crm API."""

    def __init__(self, *args, active_customers: list[str], run_id: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.active, self.run_id = active_customers, run_id

    def phone_and_zone(self) -> tuple[str, str]:
        import phonenumbers

        open_now = [(r, z) for r, z in PHONE_ZONES if 9 <= dt.datetime.now(zoneinfo.ZoneInfo(z)).hour < 19] or PHONE_ZONES
        region, zone = self.rng.choice(open_now)
        example = phonenumbers.format_number(phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE),
                                             phonenumbers.PhoneNumberFormat.E164)
        for _ in range(20):
            candidate = example[:-4] + f"{self.rng.randrange(10_000):04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                return candidate, zone
        return example, zone

    def run(self) -> None:
        c = self.client
        n = 0
        last_order: dict | None = None
        while not self.stop.is_set():
            n += 1
            # A customer who bought monthly a year ago and stopped: lapsed as soon as their lifecycle is refreshed.
            external_id = f"SOAK-{self.run_id}-C{n:06d}"
            phone, zone = self.phone_and_zone()
            now = dt.datetime.now(dt.timezone.utc)
            c.request("POST", "/api/customers/", label="POST /api/customers/", expect=(201,), body={
                "external_id": external_id, "name": f"Soak Customer {n}", "email": f"soak{self.run_id.lower()}{n}@example.com",
                "phone": phone, "timezone": zone, "email_consent": "granted", "email_consent_source": "soak",
                "acquired_at": (now - dt.timedelta(days=420)).isoformat()})
            orders = [{"external_id": f"{external_id}-O{k}", "customer": external_id,
                       "ordered_at": (now - dt.timedelta(days=400 - 30 * k, hours=self.rng.randint(0, 20))).isoformat(),
                       "amount": f"{self.rng.uniform(20, 200):.2f}"} for k in range(4)]
            c.request("POST", "/api/orders/", label="POST /api/orders/ (history, list)", expect=(201,), body=orders)
            if self.active:
                batch = [{"external_id": f"SOAK-{self.run_id}-O{n:06d}-{k}", "customer": self.rng.choice(self.active),
                          "ordered_at": (now - dt.timedelta(minutes=self.rng.randint(1, 120))).isoformat(),
                          "amount": f"{self.rng.uniform(10, 300):.2f}"} for k in range(self.rng.randint(1, 3))]
                if len(batch) == 1:
                    c.request("POST", "/api/orders/", label="POST /api/orders/ (one)", expect=(201,), body=batch[0])
                    last_order = batch[0]
                else:
                    c.request("POST", "/api/orders/", label="POST /api/orders/ (list)", expect=(201,), body=batch)
            if last_order and n % 10 == 0:  # a retry after a lost answer: the same order, nothing created
                c.request("POST", "/api/orders/", label="POST /api/orders/ (same again)", expect=(200,), body=last_order)
            if not self.think():
                return


# --- The stack ----------------------------------------------------------------------------------------------

def run_manage(argv: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    proc = subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env, text=True,
                          capture_output=capture, check=False)
    if proc.returncode:
        raise RuntimeError(f"manage.py {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout or ""


def seed_key(customers: int, seed: int) -> str:
    migrations = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/migrations/0*.py"))
    digest = hashlib.sha1("\n".join(migrations).encode()).hexdigest()[:12]
    return f"soak seed: {customers} customers, seed {seed}, until {dt.date.today()}, migrations {digest}"


def ensure_seed(*, admin_url: str, template_url: str, template: str, customers: int, seed: int,
                env: dict[str, str]) -> None:
    """The seeded database, made once per day and size (the full lifecycle scan takes minutes) and then kept."""
    key = seed_key(customers, seed)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                            [template]).fetchone()
        if row and row[0] == key:
            print(f"seed: reusing database {template} ({key})")
            return
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(template)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    seed_env = {**env, "DATABASE_URL": template_url}
    for argv in (["migrate", "-v0"], ["seed_demo", "--customers", str(customers), "--seed", str(seed), "--no-progress"],
                 ["winback_scan", "--full", "--inline"], ["metrics_refresh", "--months", "36", "--inline"]):
        t0 = time.perf_counter()
        out = run_manage(argv, seed_env, capture=True).strip().splitlines()
        print(f"seed: manage.py {' '.join(argv)}: {out[-1] if out else 'done'} ({time.perf_counter() - t0:.0f} s)")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(template), sql.Literal(key)))


USERS_SCRIPT = """
import json, os
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
for name, group, staff in json.loads(os.environ["SOAK_USERS"]):
    user, _ = get_user_model().objects.get_or_create(username=name)
    user.set_password(os.environ["SOAK_PASSWORD"])
    user.is_staff = staff
    user.save()
    user.groups.add(Group.objects.get(name=group))
"""
TOKEN = re.compile(r"\b[0-9a-fA-F]{32,}\b|\b[A-Za-z0-9_\-]{40,}\b")


def create_token(username: str, env: dict[str, str]) -> str:
    """The token as `manage.py drf_create_token` prints it, whatever the token model behind it."""
    out = run_manage(["drf_create_token", username], env, capture=True)
    found = TOKEN.findall(out)
    if not found:
        raise RuntimeError(f"no token in the output of drf_create_token {username}: {out!r}")
    return max(found, key=len)


def wait_for_log(proc: subprocess.Popen, log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: no '{text}' ({'exited' if proc.poll() is not None else 'timeout'}):\n"
                               + log.read_text()[-3000:])
        time.sleep(0.2)


class SmtpCounter:
    """Accepts every message and only counts it: the client's CPU is for the actors."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from tests.smtp import free_port

        self.port = free_port()
        self.received = 0
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received += 1
        return "250 Message accepted for delivery"


# --- Processes and memory -----------------------------------------------------------------------------------

def process_children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            kids[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    return kids


def descendants(pid: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], list(kids.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(kids.get(child, []))
    return sorted(out)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def service_processes(roots: dict[str, subprocess.Popen]) -> dict[int, str]:
    """pid -> label for every process of the service: each root and its descendants (workers, pool children)."""
    kids = process_children()
    labels: dict[int, str] = {}
    for name, proc in roots.items():
        labels[proc.pid] = f"{name} main" if name != "beat" else name
        for pid in descendants(proc.pid, kids):
            labels[pid] = f"{name} {'worker' if name == 'gunicorn' else 'child'}"
    return labels


class Sampler(threading.Thread):
    """Every few seconds: each service process's RSS, the outbox's due backlog, and what was sent."""

    def __init__(self, *, roots: dict[str, subprocess.Popen], db_url: str, smtp: SmtpCounter, every: float,
                 stop: threading.Event, started: float) -> None:
        super().__init__(name="sampler", daemon=True)
        self.roots, self.db_url, self.smtp, self.every, self.stop, self.started = roots, db_url, smtp, every, stop, started
        self.rss: list[tuple[float, dict[int, tuple[str, int]]]] = []
        self.backlog: list[tuple[float, int, float, int, int]] = []
        self.labels: dict[int, str] = {}

    def sample(self, conn: psycopg.Connection) -> None:
        t = time.monotonic() - self.started
        labels = service_processes(self.roots)
        self.labels.update(labels)
        self.rss.append((t, {pid: (label, kb) for pid, label in labels.items() if (kb := rss_kb(pid)) is not None}))
        due, oldest = conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(due_at)), 0) FROM touchpoints_touchpoint"
            " WHERE status = 'scheduled' AND due_at <= now()").fetchone()
        sent = conn.execute("SELECT count(*) FROM touchpoints_touchpoint WHERE status = 'sent'").fetchone()[0]
        with self.smtp.lock:
            received = self.smtp.received
        self.backlog.append((t, due, float(oldest), sent, received))

    def run(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while True:
                self.sample(conn)
                if self.stop.wait(self.every):
                    self.sample(conn)
                    return


# --- Report -----------------------------------------------------------------------------------------------

def report_latency(stats: Stats, minutes: float) -> int:
    print(f"{'endpoint':<44}{'count':>8}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'per min':>9}")
    total_errors = 0
    for label in sorted(stats.latency):
        values = sorted(stats.latency[label])
        errors = stats.errors.get(label, 0)
        total_errors += errors
        print(f"{label:<44}{len(values):>8}{errors:>8}{pct(values, .5) * 1000:>9.1f}{pct(values, .95) * 1000:>9.1f}"
              f"{pct(values, .99) * 1000:>9.1f}{len(values) / minutes:>9.1f}")
    total = sum(len(v) for v in stats.latency.values())
    print(f"{'all':<44}{total:>8}{total_errors:>8}")
    for label, samples in sorted(stats.samples.items()):
        for sample in samples:
            print(f"  unexpected, {label}: {sample}")
    print("scenario: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.counters.items())))
    return total_errors


def report_memory(sampler: Sampler, baseline_t: float) -> list[str]:
    failures = []
    base = next((s for s in sampler.rss if s[0] >= baseline_t), sampler.rss[-1])
    end = sampler.rss[-1]
    marks = [s for i, s in enumerate(sampler.rss) if i % max(1, round(60 / max(sampler.every, 1))) == 0]
    print(f"RSS in MB every minute (t = {', '.join(f'{t / 60:.1f}' for t, _ in marks)} min); baseline at"
          f" t = {base[0] / 60:.1f} min, end at t = {end[0] / 60:.1f} min; limit +{RSS_GROWTH_LIMIT:.0%}")
    order = sorted(sampler.labels, key=lambda pid: (sampler.labels[pid], pid))
    for pid in order:
        label = sampler.labels[pid]
        series = " ".join(f"{s[pid][1] / 1024:6.1f}" if pid in s else "     -" for _, s in marks)
        b, e = base[1].get(pid), end[1].get(pid)
        if b and e:
            growth = (e[1] - b[1]) / b[1]
            flag = "  GREW" if growth > RSS_GROWTH_LIMIT else ""
            if flag:
                failures.append(f"{label} {pid} grew {growth:+.1%}")
            verdict = f"{b[1] / 1024:7.1f} -> {e[1] / 1024:7.1f} MB {growth:+6.1%}{flag}"
        elif e is None:
            verdict = "EXITED during the run"
            failures.append(f"{label} {pid} exited during the run")
        else:
            verdict = "STARTED after the baseline (a replacement)"
            failures.append(f"{label} {pid} started after the baseline")
        print(f"  {label:<16}{pid:>8} | {series} | {verdict}")
    return failures


def report_backlog(sampler: Sampler, baseline_t: float, every: float) -> list[str]:
    print("outbox: due backlog (scheduled touchpoints past their due time), oldest due age, sent, SMTP messages")
    for t, due, oldest, sent, received in sampler.backlog:
        print(f"  t={t / 60:5.2f} min  due {due:6d}  oldest {oldest:7.1f} s  sent {sent:7d}  smtp {received:7d}")
    # The tick runs every minute, so the backlog is a saw-tooth: compare one-minute means, first vs last.
    window = max(1, round(60 / every))
    measured = [row for row in sampler.backlog if row[0] >= baseline_t]
    if len(measured) < 2 * window:
        measured = sampler.backlog[len(sampler.backlog) // 2:]
        window = max(1, len(measured) // 2)
    first = sum(r[1] for r in measured[:window]) / window
    last = sum(r[1] for r in measured[-window:]) / window
    limit = first * 1.2 + 50
    growing = last > limit
    print(f"  due backlog, one-minute mean: {first:.1f} after the baseline, {last:.1f} at the end (limit {limit:.1f})"
          f" -> {'GROWING' if growing else 'not growing'}")
    return [f"the due backlog grew from {first:.1f} to {last:.1f}"] if growing else []


# --- Main -------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--customers", type=int, default=20_000, help="seeded demo customers")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--managers", type=int, default=4)
    parser.add_argument("--think", type=float, default=4.0, help="an agent's mean seconds on a card (call included)")
    parser.add_argument("--manager-think", type=float, default=6.0)
    parser.add_argument("--integration-think", type=float, default=2.0)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--celery-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=15.0)
    parser.add_argument("--redis-db", type=int, default=5)
    parser.add_argument("--port", type=int, default=0, help="the web server's port (default: a free one)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for web, workers and beat (e.g. throttle rates); printed")
    parser.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    args = parser.parse_args()
    run_s = args.minutes * 60
    baseline_t = BASELINE_SECONDS if run_s >= 2 * BASELINE_SECONDS else run_s / 2

    url, name, soak_url, admin_url = database_urls(suffix="soak")
    template = f"{name}_seed"
    template_url = urlunparse(urlparse(soak_url)._replace(path=f"/{template}"))
    redis_parsed = urlparse(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/")
    redis_url = urlunparse(redis_parsed._replace(path=f"/{args.redis_db}"))
    var_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    from tests.smtp import free_port

    port = args.port or free_port()
    overrides = dict(item.split("=", 1) for item in args.server_env)
    base_env = {**os.environ, "DATABASE_URL": soak_url, "REDIS_URL": redis_url, "VAR_DIR": str(var_dir),
                "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_PROFILE": "development", "DEBUG": "false",
                "PYTHONUNBUFFERED": "1", "CELERY_TASK_ALWAYS_EAGER": "false"}
    import redis

    print(f"soak: {args.agents} agents, {args.managers} managers, 1 integration for {args.minutes:g} min against gunicorn"
          f" ({args.gunicorn_workers} workers, port {port}), {args.celery_workers} Celery workers x concurrency"
          f" {args.celery_concurrency}, beat; PostgreSQL {name} (from {template}), Redis {redis_url}")
    redis.Redis.from_url(redis_url).flushdb()
    ensure_seed(admin_url=admin_url, template_url=template_url, template=template, customers=args.customers,
                seed=args.seed, env=base_env)
    redis.Redis.from_url(redis_url).flushdb()  # the seed's after-commit refreshes: the full scan did their work
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))

    smtp = SmtpCounter()
    smtp.controller.start()
    server_env = {**base_env, "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}", "SITE_URL": f"http://127.0.0.1:{port}",
                  **overrides}
    shown = ("DJANGO_PROFILE", "DEBUG", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "SITE_URL", "VAR_DIR", *overrides)
    print("server environment: " + ", ".join(f"{k}={server_env[k]}" for k in shown))
    if not overrides:
        print("  (no --server-env overrides: the service's own defaults for throttles and lockouts)")

    password = secrets.token_urlsafe(16)
    run_id = f"{int(time.time()) % 100000:05d}"
    page_agents = [f"soak-agent-{i:02d}" for i in range(args.agents // 2)]
    api_agents = [f"soak-agent-{i:02d}" for i in range(args.agents // 2, args.agents)]
    managers = [f"soak-manager-{i}" for i in range(args.managers)]
    users = ([(u, "Agents", False) for u in page_agents + api_agents] + [(u, "Managers", True) for u in managers]
             + [("soak-integration", "Integrations", False)])
    t0 = time.perf_counter()
    run_manage(["shell", "-c", USERS_SCRIPT], {**server_env, "SOAK_USERS": json.dumps(users), "SOAK_PASSWORD": password},
               capture=True)
    with ThreadPoolExecutor(3) as pool:
        tokens = dict(zip(api_agents + ["soak-integration"],
                          pool.map(lambda u: create_token(u, server_env), api_agents + ["soak-integration"])))
    with psycopg.connect(soak_url) as conn:
        active = [r[0] for r in conn.execute(
            "SELECT external_id FROM crm_customer WHERE status = 'active' ORDER BY id LIMIT 5000").fetchall()]
        open_cases = conn.execute("SELECT count(*) FROM winback_winbackcase WHERE status = 'open' AND NOT holdout"
                                  " AND ready").fetchone()[0]
    print(f"users: {len(users)} (session logins for {len(page_agents)} page agents and {len(managers)} managers; tokens"
          f" from drf_create_token for {len(api_agents)} API agents and the integration) in {time.perf_counter() - t0:.0f} s;"
          f" {open_cases:,} open non-holdout cases, {len(active):,} active customers for new orders")

    roots: dict[str, subprocess.Popen] = {}
    logs: list[Path] = []
    stop = threading.Event()
    failures: list[str] = []
    try:
        for i in range(args.celery_workers):
            log = var_dir / f"celery-{i + 1}.log"
            roots[f"celery-{i + 1}"] = worker_spawn(
                argv=[sys.executable, "-m", "celery", "-A", "config", "worker", *WORKER_OPTIONS, "--concurrency",
                      str(args.celery_concurrency), "-n", f"soak-{i + 1}-{os.getpid()}@%h"],
                env=server_env, cwd=ROOT, log_path=log)
            logs.append(log)
        log = var_dir / "beat.log"
        roots["beat"] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--scheduler",
             "django_celery_beat.schedulers:DatabaseScheduler"],
            cwd=ROOT, env=server_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        wait_for_log(roots["beat"], log, "beat: Starting")
        logs.append(log)
        log = var_dir / "gunicorn.log"
        roots["gunicorn"] = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.gunicorn_workers), "--bind",
             f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "60"],
            cwd=ROOT, env=server_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        logs.append(log)
        probe = Client(port, Stats())
        deadline = time.monotonic() + 60
        while probe.request("GET", "/health/live/", label="probe", expect=(200,))[0] != 200:
            if time.monotonic() > deadline or roots["gunicorn"].poll() is not None:
                raise RuntimeError("gunicorn did not answer /health/live/:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        print(f"stack up: logs in {var_dir}; running for {args.minutes:g} min, sampling every {args.sample_seconds:g} s")

        stats = Stats()
        actors: list[Actor] = []
        for i, username in enumerate(page_agents):
            actors.append(PageAgent(username, Client(port, stats), stop, i, args.think, username=username, password=password))
        for i, username in enumerate(api_agents):
            actors.append(ApiAgent(username, Client(port, stats, token=tokens[username]), stop, 100 + i, args.think))
        for i, username in enumerate(managers):
            actors.append(Manager(username, Client(port, stats), stop, 200 + i, args.manager_think, username=username,
                                  password=password))
        actors.append(Integration("integration", Client(port, stats, token=tokens["soak-integration"]), stop, 300,
                                  args.integration_think, active_customers=active, run_id=run_id))
        started = time.monotonic()
        cpu0 = os.times()
        sampler = Sampler(roots=roots, db_url=soak_url, smtp=smtp, every=args.sample_seconds, stop=stop, started=started)
        sampler.start()
        for actor in actors:
            actor.start()
        while time.monotonic() - started < run_s:
            time.sleep(1)
            dead = [name for name, proc in roots.items() if proc.poll() is not None]
            if dead:
                failures.append(f"{', '.join(dead)} exited during the run")
                break
        stop.set()
        for actor in actors:
            actor.join(timeout=90)
        sampler.join(timeout=60)
        elapsed = time.monotonic() - started
        cpu1 = os.times()
        minutes = elapsed / 60

        print()
        print("=" * 110)
        print(f"soak: {elapsed / 60:.1f} min, {args.agents} agents ({len(page_agents)} on the page, {len(api_agents)} on the API),"
              f" {args.managers} managers, 1 integration; {args.customers:,} seeded customers")
        total_errors = report_latency(stats, minutes)
        print()
        failures += report_memory(sampler, baseline_t)
        print()
        failures += report_backlog(sampler, baseline_t, args.sample_seconds)
        client_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        print(f"client: {client_cpu:.1f} s CPU over {elapsed:.0f} s ({client_cpu / elapsed:.1%} of one core; actors, sampler,"
              f" SMTP sink); load average {os.getloadavg()[0]:.2f}")
        if total_errors:
            failures.insert(0, f"{total_errors} unexpected answers")
    finally:
        stop.set()
        for role, proc in reversed(list(roots.items())):
            if role.startswith("celery"):
                worker_stop(proc, timeout=30)
            else:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        smtp.controller.stop()
        redis.Redis.from_url(redis_url).flushdb()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    for log in logs:
        tracebacks = log.read_text().count("Traceback")
        if tracebacks:
            print(f"{log.name}: {tracebacks} tracebacks")
    print("RESULT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
