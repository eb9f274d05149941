"""A broker outage delays work and loses none: writes answer 2xx, /health/ says 503, the sweep catches up.

A Redis server of the test's own (a real one, on a free port) is stopped while orders are posted through the
API and imported from CSV; the API answers as usual, the refused enqueues are counted, and one lifecycle
scan after Redis is back refreshes every customer. OUTAGE_SECONDS stretches the stream of posts (CI keeps
it short; `OUTAGE_SECONDS=60 pytest tests/core/test_broker_outage.py` runs the full minute).
"""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.core.management import call_command
from django.db.models import F

from config.celery import app as celery_app
from core.models import EnqueueFailure
from crm.models import Customer, Order
from tests.factories import CustomerFactory
from winback.services.lifecycle import lifecycle_scan

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary (CI installs and runs it)"),
    pytest.mark.django_db(transaction=True),
]
OUTAGE_SECONDS = float(os.environ.get("OUTAGE_SECONDS", "3"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    def __init__(self, port: int) -> None:
        self.port, self.proc = port, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def queued(self, queue: str = "winback") -> int:
        return redis.Redis.from_url(self.url).llen(queue)


@pytest.fixture
def own_redis(settings) -> Iterator[OwnRedis]:
    """The app's broker (the Celery app and /health/) pointed at a Redis of this test's own."""
    server = OwnRedis(_free_port())
    server.start()
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf.broker_url = server.url
    celery_app.conf.broker_transport_options = {"socket_connect_timeout": 1}
    _reset_connections()
    settings.REDIS_URL = server.url
    try:
        yield server
    finally:
        server.stop()
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
        _reset_connections()


def _reset_connections() -> None:
    # Celery caches its connection and producer pools (kombu's registry, and a cached property on the app);
    # drop them all so the next publish connects to the URL now configured.
    kombu.pools.reset()
    celery_app.__dict__.pop("pool", None)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _order(n: int, customer: str) -> dict:
    return {"external_id": f"O-{n}", "customer": customer, "ordered_at": "2025-03-01T10:00:00Z", "amount": "10.00"}


def test_orders_posted_and_imported_while_redis_is_down_answer_2xx_and_are_refreshed_by_one_scan(
    api, own_redis, tmp_path: Path
):
    # Given customers, and a broker that works: an order's lifecycle refresh is enqueued to it
    for i in range(40):
        CustomerFactory(external_id=f"C-{i}")
    assert api.post("/api/orders/", _order(0, "C-0"), format="json").status_code == 201
    assert own_redis.queued() == 1

    # When Redis stops and orders keep coming, through the API and a CSV import
    own_redis.stop()
    answers, n, started = [], 1, time.monotonic()
    while n < 20 or time.monotonic() - started < OUTAGE_SECONDS:
        answers.append(api.post("/api/orders/", _order(n, f"C-{n % 30}"), format="json").status_code)
        n += 1
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text("external_id,customer,ordered_at,amount\n"
                        + "".join(f"I-{i},C-{30 + i % 10},2025-04-01T10:00:00Z,5.00\n" for i in range(25)))
    call_command("import_csv", "orders", str(csv_path), "--batch-size", "10", stdout=open(os.devnull, "w"))
    health = api.get("/health/")

    # Then every request was answered 2xx and every order was written
    assert set(answers) == {201}, answers
    assert Order.objects.count() == n + 25
    # ... the refused enqueues are counted and /health/ says the broker is down
    assert EnqueueFailure.objects.get(task="winback.lifecycle_refresh").count >= n - 1
    assert health.status_code == 503
    assert health.json()["broker_status"].startswith("error")
    # ... and no customer who ordered has had their lifecycle refreshed (no message reached a worker)
    ordered = Customer.objects.filter(order_count__gt=0)
    assert ordered.count() >= 30 and not ordered.filter(history_version=F("lifecycle_version")).exists()

    # When Redis is back and the hourly sweep runs once
    own_redis.start()
    lifecycle_scan()

    # Then every customer's lifecycle is up to date
    assert not Customer.objects.exclude(history_version=F("lifecycle_version")).exists()
    assert set(Customer.objects.values_list("status", flat=True)) <= {"active", "at_risk", "lapsed"}
