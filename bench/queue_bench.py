"""The agents' queue under load (named queue_bench.py: a bench/queue.py would shadow the standard library's
"queue" module for every script in this folder): claims per second (service layer) and POST /api/queue/next/ latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/queue_bench.py [--cases 100000] [--seconds 10]

In its own database (`<name>_bench_queue`) it opens N ready cases for customers in a zone where it is
mid-day now, then measures in one run:
  1. case_claim_next + case_release with 1, 4 and 16 concurrent agents (processes), counting double claims
     (a release refused because the case was not the agent's);
  2. the full agent cycle (claim + a "no answer" disposition: contact, audit, disposition rows) with 16
     agents; every case may be claimed once, so a case claimed twice is a double claim;
  3. POST /api/queue/next/ (+ release) over HTTP with 16 concurrent clients against gunicorn: p50 and p95,
     after a few seconds of warm-up (a gunicorn worker loads the app on its first request).
Targets: >= 1,000 claims/s at 16 agents, HTTP p95 < 100 ms, 0 double claims.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zoneinfo
from datetime import datetime, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_db import database_urls  # noqa: E402
ZONES = ["Pacific/Kiritimati", "Asia/Tokyo", "Asia/Dhaka", "Asia/Dubai", "Europe/Paris", "Atlantic/Cape_Verde",
         "America/Sao_Paulo", "America/New_York", "America/Denver", "Pacific/Honolulu", "Pacific/Pago_Pago"]


def daytime_zone() -> str:
    now = datetime.now(timezone.utc)
    return next(z for z in ZONES if 9 <= now.astimezone(zoneinfo.ZoneInfo(z)).hour < 18)


def setup_django(url: str, var_dir: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def agent_loop(args: tuple) -> tuple[int, int, list[int]]:
    url, var_dir, username, seconds, mode, start_at = args
    setup_django(url, var_dir)
    from django.contrib.auth import get_user_model

    from winback.services.queue import DispositionInput, NotYourCase, case_claim_next, case_record_disposition, case_release

    agent = get_user_model().objects.get(username=username)
    while time.time() < start_at:
        time.sleep(0.005)
    claims, refused, seen = 0, 0, []
    deadline = time.time() + seconds
    while time.time() < deadline:
        case = case_claim_next(agent=agent)
        if case is None:
            break
        claims += 1
        try:
            if mode == "release":
                case_release(agent=agent, case_id=case.pk)
            else:
                seen.append(case.pk)
                case_record_disposition(agent=agent, case_id=case.pk, data=DispositionInput(outcome="no_answer"))
        except NotYourCase:
            refused += 1
    return claims, refused, seen


def run_agents(url: str, var_dir: str, n: int, seconds: float, mode: str) -> tuple[float, int, int]:
    start_at = time.time() + 3  # every process set up before the clock starts
    with mp.get_context("spawn").Pool(n) as pool:
        results = pool.map(agent_loop, [(url, var_dir, f"bench-agent-{i}", seconds, mode, start_at) for i in range(n)])
    claims = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    seen = [pk for r in results for pk in r[2]]
    doubles = refused + (len(seen) - len(set(seen)))
    return claims / seconds, claims, doubles


def http_client(args: tuple) -> list[float]:
    port, token, seconds, start_at = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def cycle() -> float:
        t0 = time.perf_counter()
        conn.request("POST", "/api/queue/next/", body="{}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        took = time.perf_counter() - t0
        if response.status != 200:
            raise RuntimeError(f"/api/queue/next/ answered {response.status}: {body[:200]!r}")
        case_id = json.loads(body)["case"]["id"]
        conn.request("POST", f"/api/cases/{case_id}/release/", body="{}", headers=headers)
        release = conn.getresponse()
        release.read()
        if release.status != 200:
            raise RuntimeError(f"release answered {release.status}")
        return took

    while time.time() < start_at:  # warm-up, not measured: every gunicorn worker has loaded the app
        cycle()
    latencies: list[float] = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        latencies.append(cycle())
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    args = parser.parse_args()
    url, name, bench_url, admin_url = database_urls(suffix="bench_queue")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    var_dir = tempfile.mkdtemp(prefix="bench-queue-")
    env = {**os.environ, "DATABASE_URL": bench_url, "VAR_DIR": var_dir}
    env.pop("REDIS_URL", None)
    # The bench measures the queue, not the throttles: 16 agents behind one address at full speed would be
    # 429s at the default limits. The throttles still run (counting per gunicorn worker, no Redis).
    env.update(API_THROTTLE_TOKEN="1000000/min", API_THROTTLE_ADDRESS="1000000/min")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    zone = daytime_zone()
    setup_django(bench_url, var_dir)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core.services import api_token_create

    agents = Group.objects.get(name="Agents")
    tokens = []
    for i in range(16):
        user = get_user_model().objects.create_user(f"bench-agent-{i}", password="x")
        user.groups.add(agents)
        tokens.append(api_token_create(user=user)[1])

    t0 = time.perf_counter()
    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            "INSERT INTO crm_customer (external_id, name, email, phone, timezone, call_zones, locale, status,"
            " email_consent, email_consent_source, order_count, total_spent, history_version, lifecycle_version,"
            " created_at, updated_at) SELECT 'Q' || g, 'Customer ' || g, '', '+33612345678', %s, %s, 'en', 'lapsed',"
            " 'unknown', '', 1, 10, 0, 0, now(), now() FROM generate_series(1, %s) g", [zone, zone, args.cases])
        conn.execute(
            "INSERT INTO winback_winbackcase (customer_id, kind, lapsed_at, opened_at, status, holdout, is_recovery,"
            " revenue_12m, priority, close_reason, ready, attempts, awaiting_return, created_at, updated_at)"
            " SELECT id, 'winback', now(), now(), 'open', false, random() < 0.05, r, r, '', true, 0, false, now(), now()"
            " FROM (SELECT id, round((random() * 2000)::numeric, 2) AS r FROM crm_customer) x")
        conn.execute("VACUUM ANALYZE")
    print(f"{args.cases:,} open cases for customers in {zone} in {time.perf_counter() - t0:.1f}s")

    print("service layer (case_claim_next + case_release; agents are processes):")
    for n in (1, 4, 16):
        rate, claims, doubles = run_agents(bench_url, var_dir, n, args.seconds, "release")
        print(f"  {n:2d} agents: {rate:7.0f} claims/s  ({claims:,} claims, {doubles} double claims)")
    rate16 = rate
    rate, claims, doubles_cycle = run_agents(bench_url, var_dir, 16, args.seconds, "disposition")
    print(f"  16 agents, full cycle (claim + no-answer disposition): {rate:5.0f} cycles/s ({claims:,}, {doubles_cycle} double claims)")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
         str(args.gunicorn_workers), "--log-level", "warning"],
        cwd=ROOT, env={**env, "DJANGO_PROFILE": "development"},
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        start_at = time.time() + 5  # includes the clients' warm-up
        with mp.get_context("spawn").Pool(16) as pool:
            runs = pool.map(http_client, [(port, token, args.seconds, start_at) for token in tokens])
    finally:
        server.terminate()
        server.wait(20)
    latencies = sorted(x for run in runs for x in run)
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
    print(f"HTTP POST /api/queue/next/, 16 clients, gunicorn {args.gunicorn_workers} workers: {len(latencies):,} requests,"
          f" p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print()
    print(f"claims/s at 16 agents: {rate16:.0f} (target >= 1000); HTTP p95 {p95:.1f} ms (target < 100);"
          f" double claims: {doubles + doubles_cycle} (target 0)")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
