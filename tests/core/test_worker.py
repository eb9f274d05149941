"""A real Celery worker runs tasks from the configured broker, and the Celery set-up is at-least-once safe."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from core.models import Heartbeat
from core.tasks import heartbeat
from tests.conftest import ROOT


@pytest.mark.worker
@pytest.mark.slow
def test_a_real_worker_runs_the_heartbeat_task(celery_worker_process):
    name = f"test-{uuid.uuid4().hex[:12]}"
    heartbeat.delay(name=name)  # through the broker: nothing in this process runs it
    deadline = time.monotonic() + 60
    while not Heartbeat.objects.filter(name=name).exists():
        assert celery_worker_process.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker did not run core.heartbeat within 60 s"
        time.sleep(0.2)
    # The hostname is the worker's node name (the fixture's -n test-<pid>@host): run there, not eagerly here.
    assert Heartbeat.objects.get(name=name).worker.startswith(f"test-{os.getpid()}@")


CELERY_CONF_SCRIPT = """
import json
from config.celery import app
c = app.conf
print(json.dumps({k: c[k] for k in ("accept_content", "task_serializer", "result_serializer", "task_acks_late",
    "task_reject_on_worker_lost", "worker_prefetch_multiplier", "task_time_limit", "task_soft_time_limit",
    "task_always_eager", "broker_url", "broker_transport_options")}))
"""


def _celery_conf(redis_url: str) -> dict:
    """The Celery configuration a worker gets with (or without) REDIS_URL; nothing connects to the broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env["REDIS_URL"] = redis_url
    out = subprocess.run([sys.executable, "-c", CELERY_CONF_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:6379/15"], ids=["filesystem", "redis"])
def test_celery_is_configured_for_at_least_once_delivery(redis_url):
    conf = _celery_conf(redis_url)
    assert conf["accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_always_eager"] is False
    assert 0 < conf["task_soft_time_limit"] < conf["task_time_limit"]
    if redis_url:
        assert conf["broker_url"] == redis_url
        # Redis redelivers an unacknowledged task after the visibility timeout: it must outlast any task.
        assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    else:
        assert conf["broker_url"] == "filesystem://localhost/"


def test_this_processes_celery_app_is_the_configured_one():
    from django.conf import settings

    from config.celery import app

    assert app.conf.task_acks_late is True and app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_url == (settings.REDIS_URL or "filesystem://localhost/")
    assert app.conf.task_default_queue == "winback"


def test_the_embedded_broker_starts_without_a_warning_to_act_on(tmp_path):
    # Given the zero-setup defaults (no REDIS_URL), when a process connects to the broker
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WINBACK_TEST_REDIS_MOVED")}
    code = ("import django; django.setup()\n"
            "from config.celery import app\n"
            "with app.connection_for_write() as c: c.ensure_connection(max_retries=1)\n")
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.development", "VAR_DIR": str(tmp_path)})
    # Then it connects, and kombu does not complain about a missing hostname
    assert result.returncode == 0, result.stderr
    assert "No hostname was supplied" not in result.stderr + result.stdout
