"""The touchpoint outbox under load: emails per minute through real Celery workers and a real SMTP server,
and the service layer's own cost per touchpoint (SMTP excluded).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test [REDIS_URL=redis://127.0.0.1:6379/] \
        .venv/bin/python bench/touchpoints.py [--emails 5000] [--workers 2] [--keep]

PostgreSQL + Redis only. It works in its own database (`bench_touchpoints` on the DATABASE_URL server,
dropped, created and migrated afresh) and its own Redis database (`--redis-db`, default 11, flushed at start
and at the end), and measures in one run:
  1. setup: N customers (status at_risk, email consent granted, in an IANA zone where it is 12:00-18:00 now,
     so quiet hours never apply; no earlier touches, so the frequency cap never applies) with one due
     touchpoint each on the default "At-risk appreciation" cadence's step (migration 0002), bulk_create;
  2. throughput: an aiosmtpd SMTP sink in this process (tests/smtp.py's SmtpSink, with a lighter handler
     that keeps the raw bytes and the arrival time) and `--workers` separate worker processes, each
     `celery -A config worker --pool prefork --concurrency 1` (one pool child sends), with EMAIL_URL
     pointing at the sink. This process calls touchpoints.tasks.touchpoints_queue_due() until it queues
     nothing more, then waits for all N messages. Prints emails/minute (messages / wall time from the first
     dispatch to the last message), duplicates (same Message-ID more than once; must be 0), SMTP connections
     opened, and the touchpoints' statuses (all must be "sent"). The workers run through this file
     (`--child-worker`), which only wraps EmailTransport.send with a timer (one line per message to a file),
     so the SMTP conversation time per message (client side: MIME build + MAIL/RCPT/DATA, plus connecting
     when the transport opens a connection) comes from the same run; the sink also times MAIL .. end of DATA;
  3. dispatch overhead on a fresh batch of M touchpoints for M new customers, workers stopped, one process:
     (a) touchpoints_dispatch() (claim FOR UPDATE SKIP LOCKED + queued_until stamp), 3 runs each rolled back;
     (b) touchpoint_send() with a stub transport whose send() does nothing: claim + rules + render +
         mark sent (Contact + audit row), per touchpoint, with a breakdown and SQL statements per touchpoint.
Machine information and the command to reproduce are printed first.
"""

import sys
from pathlib import Path

# Run as `python bench/touchpoints.py`, Python puts bench/ first on sys.path, where this very file would
# shadow the `touchpoints` app (and a sibling bench a standard module): use the project root instead.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import zoneinfo  # noqa: E402
from email.parser import BytesHeaderParser  # noqa: E402
from urllib.parse import urlparse, urlunparse  # noqa: E402

from bench.scratch_db import database_urls  # noqa: E402
from core.worker_process import WORKER_OPTIONS, worker_spawn, worker_stop  # noqa: E402

BENCH_DB = "bench_touchpoints"
CADENCE = "At-risk appreciation"
ZONES = ["Pacific/Kiritimati", "Pacific/Auckland", "Australia/Sydney", "Asia/Tokyo", "Asia/Shanghai", "Asia/Bangkok",
         "Asia/Dhaka", "Asia/Karachi", "Asia/Dubai", "Europe/Moscow", "Europe/Athens", "Europe/Paris", "Europe/London",
         "Atlantic/Azores", "Atlantic/South_Georgia", "America/Sao_Paulo", "America/New_York", "America/Chicago",
         "America/Denver", "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu", "Pacific/Pago_Pago"]
SMTP_TIMES_ENV = "BENCH_TOUCHPOINTS_SMTP_TIMES"


# --- Worker child: a Celery worker whose EmailTransport.send is timed ------------------------------------

def child_worker(celery_argv: list[str]) -> None:
    """`celery <argv>`, with every EmailTransport.send timed into $BENCH_TOUCHPOINTS_SMTP_TIMES/<pid>.txt."""
    from celery.signals import worker_process_init

    @worker_process_init.connect(weak=False)
    def _time_sends(**kwargs) -> None:  # in the pool child, after the fork (Django is set up by then)
        from touchpoints.services import transports

        original = transports.EmailTransport.send
        out = open(Path(os.environ[SMTP_TIMES_ENV]) / f"{os.getpid()}.txt", "a", buffering=1)

        def timed_send(self, **kw):
            t0 = time.perf_counter()
            try:
                return original(self, **kw)
            finally:
                out.write(f"{time.perf_counter() - t0:.6f}\n")

        transports.EmailTransport.send = timed_send

    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *celery_argv]
    celery_main()


# --- The SMTP sink -----------------------------------------------------------------------------------------

class _TimedHandler:
    """Accepts everything; keeps (arrival time, raw bytes) and times each message's conversation server-side
    (MAIL FROM received .. DATA accepted). Parsing waits until the end, so the sink costs little CPU."""

    def __init__(self, sink: "BenchSink") -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        session.bench_mail_at = time.perf_counter()
        if not getattr(session, "bench_seen", False):
            session.bench_seen = True
            with self.sink.lock:
                self.sink.connections += 1
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        with self.sink.lock:
            self.sink.raw.append((now, envelope.content))
            self.sink.server_times.append(now - getattr(session, "bench_mail_at", now))
        return "250 Message accepted for delivery"


def make_sink():
    from aiosmtpd.controller import Controller

    from tests.smtp import SmtpSink

    class BenchSink(SmtpSink):
        def __init__(self) -> None:
            super().__init__()
            self.raw: list[tuple[float, bytes]] = []
            self.server_times: list[float] = []
            self.connections = 0
            self.lock = threading.Lock()
            self._controller = Controller(_TimedHandler(self), hostname="127.0.0.1", port=self.port)

        def count(self) -> int:
            with self.lock:
                return len(self.raw)

    return BenchSink()


# --- Helpers ------------------------------------------------------------------------------------------------

def daytime_zone(now: dt.datetime) -> str:
    """A zone where it is 12:00-18:00 now: hours away from any quiet hours that start at 21:00 and end by 08:00."""
    for name in ZONES + sorted(zoneinfo.available_timezones()):
        if 12 <= now.astimezone(zoneinfo.ZoneInfo(name)).hour < 18:
            return name
    raise RuntimeError("no zone is in the afternoon now")


def machine_info(bench_url: str, redis_url: str) -> list[str]:
    import celery
    import django
    import psycopg
    import redis

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    with psycopg.connect(bench_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    rv = redis.Redis.from_url(redis_url).info("server")["redis_version"]

    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        return proc.stdout.strip() if proc.returncode == 0 else "?"

    dirty = git("status", "--porcelain", "--", "touchpoints", "crm", "winback", "config")
    return [
        f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, {mem:,} MB RAM,"
        f" {platform.system()} {platform.release()}",
        f"software: Python {platform.python_version()}, Django {django.get_version()}, Celery {celery.__version__},"
        f" PostgreSQL {pg}, Redis {rv}",
        f"code: {git('rev-parse', '--short', 'HEAD')}" + (" (uncommitted changes in the app)" if dirty else ""),
    ]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def create_batch(prefix: str, n: int, zone: str, now: dt.datetime) -> list[int]:
    """N customers (at risk, consent granted, in ``zone``) with one touchpoint due now on the at-risk step."""
    from crm.models import Customer
    from touchpoints.models import CadenceStep, Touchpoint

    step = CadenceStep.objects.select_related("cadence").get(cadence__name=CADENCE, position=1)
    assert step.channel == "email" and step.cadence.trigger == "at_risk" and step.enabled and step.cadence.enabled
    customers = Customer.objects.bulk_create([
        Customer(external_id=f"{prefix}{i:07d}", name=f"Customer {prefix}{i}", email=f"{prefix.lower()}{i}@example.com",
                 timezone=zone, call_zones=zone, locale="en", status="at_risk", email_consent="granted",
                 email_consent_at=now - dt.timedelta(days=400), email_consent_source="bench",
                 acquired_at=now - dt.timedelta(days=400), last_order_at=now - dt.timedelta(days=60),
                 order_count=3, total_spent=150, history_version=1, lifecycle_version=1)
        for i in range(n)
    ], batch_size=2000)
    anchor_at = now - step.offset - dt.timedelta(minutes=1)
    touchpoints = Touchpoint.objects.bulk_create([
        Touchpoint(customer=c, step=step, channel=step.channel, anchor_at=anchor_at, anchor="at_risk",
                   due_at=anchor_at + step.offset, idempotency_key=f"c{c.pk}:at_risk:{anchor_at:%Y%m%d}:s{step.pk}")
        for c in customers
    ], batch_size=2000)
    return [t.pk for t in touchpoints]


def start_worker(i: int, env: dict[str, str], log_dir: Path, timeout: float = 60) -> subprocess.Popen:
    """One worker process, started through this file's --child-worker (see its docstring)."""
    return worker_spawn(
        argv=[sys.executable, str(Path(__file__).resolve()), "--child-worker", "-A", "config", "worker", *WORKER_OPTIONS,
              "--concurrency", "1", "-n", f"bench-tp-{i}-{os.getpid()}@%h"],
        env=env, cwd=ROOT, log_path=log_dir / f"bench-touchpoints-worker-{i}.log", timeout=timeout,
    )


def status_counts(ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from touchpoints.models import Touchpoint

    rows = Touchpoint.objects.filter(pk__in=ids).values("status").annotate(n=Count("id")).order_by("status")
    return {r["status"]: r["n"] for r in rows}


class StubTransport:
    """Sends nothing: what is left is the service layer."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, **kw) -> None:
        self.sent += 1

    def close(self) -> None:
        pass


# --- Main ------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=5000, help="touchpoints (customers) in the throughput run")
    parser.add_argument("--overhead", type=int, default=None,
                        help="touchpoints in the fresh batch of part 3 (default: the same as --emails, at most 5000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, each --concurrency 1")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for all messages")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    n, m = args.emails, args.overhead or min(args.emails, 5000)

    import psycopg
    import redis

    url, _, bench_url, admin_url = database_urls(name=BENCH_DB)
    redis_parsed = urlparse(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/")
    redis_url = urlunparse(redis_parsed._replace(path=f"/{args.redis_db}"))
    var_dir = Path(os.environ.get("VAR_DIR") or tempfile.mkdtemp(prefix="bench-touchpoints-"))
    var_dir.mkdir(parents=True, exist_ok=True)
    times_dir = Path(tempfile.mkdtemp(prefix="smtp-times-", dir=var_dir))

    print("touchpoints bench: the outbox through Celery workers and SMTP; service-layer cost per touchpoint")
    print(f"reproduce: cd {ROOT} && DATABASE_URL={url} REDIS_URL={urlunparse(redis_parsed._replace(path='/'))}"
          f" timeout 1800 .venv/bin/python bench/touchpoints.py --emails {n}"
          + (f" --overhead {args.overhead}" if args.overhead else "")
          + (f" --workers {args.workers}" if args.workers != 2 else ""))

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    redis.Redis.from_url(redis_url).flushdb()
    for line in machine_info(bench_url, redis_url):
        print(line)

    sink = make_sink().start()
    env = {**os.environ, "DATABASE_URL": bench_url, "REDIS_URL": redis_url, "EMAIL_URL": sink.url,
           "VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_PROFILE": "development",
           "CELERY_TASK_ALWAYS_EAGER": "false", "PYTHONUNBUFFERED": "1", SMTP_TIMES_ENV: str(times_dir)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    print(f"database {BENCH_DB} created and migrated in {time.perf_counter() - t0:.1f}s; Redis {redis_url} flushed;"
          f" SMTP sink on 127.0.0.1:{sink.port}")
    os.environ.update(env)
    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    import config  # noqa: F401  (the Celery app: .delay() goes to Redis)
    from touchpoints.models import Touchpoint
    from touchpoints.services import sending
    from touchpoints.services.dispatch import touchpoints_dispatch
    from touchpoints.services.rules import quiet_hours_end
    from touchpoints.services.sending import touchpoint_limits, touchpoint_send
    from touchpoints.tasks import touchpoints_queue_due

    workers: list[subprocess.Popen] = []
    try:
        # 1. Setup -------------------------------------------------------------------------------------------
        now = timezone.now()
        zone = daytime_zone(now)
        limits = touchpoint_limits(fresh=True)
        for later in (0, 1, 3):  # not quiet now, nor in the next three hours
            assert quiet_hours_end(call_zones=zone, now=now + dt.timedelta(hours=later), start=limits.quiet_start,
                                   end=limits.quiet_end) is None, f"{zone} is in quiet hours"
        t0 = time.perf_counter()
        ids = create_batch("T", n, zone, now)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        local = now.astimezone(zoneinfo.ZoneInfo(zone))
        print(f"1. setup: {n:,} customers (at_risk, consent granted, {zone}, local time {local:%H:%M}; quiet hours"
              f" {limits.quiet_start:%H:%M}-{limits.quiet_end:%H:%M}; cap {limits.cap_count} per {limits.cap_days} days,"
              f" no earlier touches) with one due '{CADENCE}' touchpoint each, bulk_create, in {time.perf_counter() - t0:.1f}s")

        # 2. Throughput ---------------------------------------------------------------------------------------
        t0 = time.perf_counter()
        workers = [start_worker(i + 1, env, var_dir) for i in range(args.workers)]
        print(f"2. throughput: {args.workers} worker processes (celery -A config worker --pool prefork --concurrency 1"
              f" each) ready in {time.perf_counter() - t0:.1f}s; batch size {settings.TOUCHPOINT_BATCH_SIZE},"
              f" dispatch limit {settings.TOUCHPOINT_DISPATCH_LIMIT}")
        start = time.perf_counter()
        queued, calls, dispatch_s = 0, 0, 0.0
        while True:
            c0 = time.perf_counter()
            got = touchpoints_queue_due()
            dispatch_s += time.perf_counter() - c0
            calls += 1
            queued += got
            if not got:
                break
        print(f"   touchpoints_queue_due(): {queued:,} queued in {calls} calls, {dispatch_s * 1000:.0f} ms"
              f" ({dispatch_s * 1000 / max(queued, 1):.3f} ms per touchpoint, Redis enqueue included)")
        deadline = start + args.timeout
        last_count, last_progress = 0, time.perf_counter()
        while True:
            count = sink.count()
            now_s = time.perf_counter()
            if count != last_count:
                last_count, last_progress = count, now_s
            if count >= n:
                break
            if now_s > deadline or now_s - last_progress > 120 or any(w.poll() is not None for w in workers):
                print(f"   STOPPED WAITING: {count:,} of {n:,} messages arrived; statuses {status_counts(ids)}")
                break
            time.sleep(0.05)
        # The sent mark commits just after the server accepted the message.
        for _ in range(200):
            statuses = status_counts(ids)
            if statuses.get("sent", 0) >= n:
                break
            time.sleep(0.1)
        time.sleep(1)  # a late duplicate would show here
        with sink.lock:
            raw = list(sink.raw)
            server_times = list(sink.server_times)
            connections = sink.connections
        for w in workers:
            worker_stop(w, timeout=30)
        statuses = status_counts(ids)

        parser_ = BytesHeaderParser()
        headers = [parser_.parsebytes(content) for _, content in raw]
        by_id: dict[str, int] = {}
        for h in headers:
            by_id[str(h["Message-ID"])] = by_id.get(str(h["Message-ID"]), 0) + 1
        duplicates = sum(c - 1 for c in by_id.values() if c > 1)
        touchpoints_seen = {int(h["X-Touchpoint"]) for h in headers if h["X-Touchpoint"]}
        wall = (raw[-1][0] - start) if raw else float("nan")
        rate = len(raw) / wall * 60 if raw else 0.0
        client_times = []
        per_process = []
        for f in sorted(times_dir.glob("*.txt")):
            values = [float(x) for x in f.read_text().split()]
            client_times += values
            per_process.append(len(values))
        all_sent = statuses.get("sent", 0) == n and len(statuses) == 1
        print(f"   {len(raw):,} messages received in {wall:.1f}s from the first dispatch to the last message:"
              f" {rate:,.0f} emails/minute")
        print(f"   duplicates (same Message-ID twice or more): {duplicates}; distinct touchpoints received"
              f" {len(touchpoints_seen & set(ids)):,} of {n:,}; messages per worker process {per_process}")
        print(f"   touchpoint statuses: {statuses} -> {'all sent' if all_sent else 'NOT all sent'}")
        print(f"   SMTP connections opened: {connections:,} for {len(raw):,} messages"
              f" ({len(raw) / max(connections, 1):.1f} messages per connection)")
        if client_times:
            print(f"   SMTP per message, client side (EmailTransport.send: MIME build + conversation, incl. connect"
                  f" and QUIT when it opens a connection): mean {statistics.mean(client_times) * 1000:.2f} ms,"
                  f" p50 {pct(client_times, .5) * 1000:.2f}, p95 {pct(client_times, .95) * 1000:.2f}")
        if server_times:
            print(f"   SMTP per message, server side (sink: MAIL FROM .. DATA accepted): mean"
                  f" {statistics.mean(server_times) * 1000:.2f} ms, p50 {pct(server_times, .5) * 1000:.2f}")
        busy = args.workers * wall / max(len(raw), 1)
        print(f"   worker time per message ({args.workers} busy pool processes x wall / messages): {busy * 1000:.2f} ms")

        # 3. Dispatch overhead, one process, workers stopped -----------------------------------------------
        now = timezone.now()
        fresh = create_batch("O", m, zone, now)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"3. overhead, one process, workers stopped: a fresh batch of {m:,} due touchpoints for {m:,} new customers")
        runs = []
        for _ in range(3):
            with transaction.atomic():
                c0 = time.perf_counter()
                batches = touchpoints_dispatch(limit=m)
                runs.append(time.perf_counter() - c0)
                transaction.set_rollback(True)
            assert sum(map(len, batches)) == m, f"dispatch claimed {sum(map(len, batches))} of {m}"
        dispatch_ms = statistics.median(runs) * 1000 / m
        print(f"   (a) touchpoints_dispatch(limit={m}) (claim + queue stamp, no commit, no enqueue): runs"
              f" {', '.join(f'{r * 1000:.0f}' for r in runs)} ms -> {dispatch_ms:.4f} ms per touchpoint (median run)")

        timings: dict[str, float] = {}

        def timed(name: str, fn):
            def wrapper(*a, **kw):
                c0 = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    timings[name] = timings.get(name, 0.0) + time.perf_counter() - c0
            return wrapper

        originals = {name: getattr(sending, name) for name in ("_claim", "touchpoint_context", "touchpoint_render", "_mark_sent")}
        for name, fn in originals.items():
            setattr(sending, name, timed(name, fn))
        statements = [0]

        def count_sql(execute, sql, params, many, context):
            statements[0] += 1
            return execute(sql, params, many, context)

        stub = StubTransport()
        per: list[float] = []
        outcomes: dict[str, int] = {}
        try:
            with connection.execute_wrapper(count_sql):
                total0 = time.perf_counter()
                for pk in fresh:
                    c0 = time.perf_counter()
                    outcome = touchpoint_send(touchpoint_id=pk, transport=stub)
                    per.append(time.perf_counter() - c0)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                total = time.perf_counter() - total0
        finally:
            for name, fn in originals.items():
                setattr(sending, name, fn)
        send_ms = total * 1000 / m
        print(f"   (b) touchpoint_send() with a stub transport: {m:,} in {total:.1f}s -> {send_ms:.2f} ms per touchpoint"
              f" (p50 {pct(per, .5) * 1000:.2f}, p95 {pct(per, .95) * 1000:.2f}); outcomes {outcomes},"
              f" stub sends {stub.sent:,}; {statements[0] / m:.1f} SQL statements per touchpoint")
        render = timings.get("touchpoint_context", 0) + timings.get("touchpoint_render", 0)
        print(f"       per touchpoint: claim + rules {timings.get('_claim', 0) * 1000 / m:.2f} ms, context + render"
              f" {render * 1000 / m:.2f} ms, mark sent (Contact, audit) {timings.get('_mark_sent', 0) * 1000 / m:.2f} ms,"
              f" rest {(total - timings.get('_claim', 0) - render - timings.get('_mark_sent', 0)) * 1000 / m:.2f} ms")

        # Summary -------------------------------------------------------------------------------------------
        print()
        print("=" * 100)
        print(f"touchpoints bench: {n:,} emails, {args.workers} worker processes x concurrency 1, {os.cpu_count()} cores")
        print(f"  throughput                              {rate:10,.0f} emails/minute  ({len(raw):,} in {wall:.1f}s)")
        print(f"  duplicates (Message-ID)                 {duplicates:10d}       (must be 0)")
        print(f"  all touchpoints sent                    {str(all_sent):>10}       ({statuses})")
        print(f"  dispatch  touchpoints_dispatch          {dispatch_ms:10.4f} ms per touchpoint")
        print(f"  send      touchpoint_send, stub         {send_ms:10.2f} ms per touchpoint (service layer, no SMTP)")
        if client_times:
            print(f"  SMTP      EmailTransport.send           {statistics.mean(client_times) * 1000:10.2f} ms per message"
                  f" (throughput run, {connections:,} connections for {len(raw):,} messages)")
        print(f"  worker time per message                 {busy * 1000:10.2f} ms")
        print("=" * 100)
        ok = duplicates == 0 and all_sent and len(raw) == n and outcomes == {"sent": m}
    finally:
        for w in workers:
            worker_stop(w, timeout=30)
        sink.stop()
        from django.db import connections as django_connections

        django_connections.close_all()
        redis.Redis.from_url(redis_url).flushdb()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-worker":
        child_worker(sys.argv[2:])
    else:
        main()
