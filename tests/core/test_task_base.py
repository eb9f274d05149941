"""Every task is enqueued after the commit of the transaction that asked for it, and best effort."""

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from core.models import EnqueueFailure
from core.tasks import heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    # The broker's side of apply_async: what AfterCommitTask hands to Celery.
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda self, args=None, kwargs=None, **o: calls.append((self.name, kwargs)) or "sent")
    return calls


def test_inside_a_transaction_the_task_is_sent_only_when_it_commits(sent):
    with transaction.atomic():
        assert heartbeat.delay(name="x") is None
        assert sent == []
    assert sent == [("core.heartbeat", {"name": "x"})]


def test_a_rolled_back_transaction_sends_nothing(sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        heartbeat.delay(name="x")
        raise RuntimeError("the request failed")
    assert sent == []


def test_outside_a_transaction_it_is_sent_at_once(sent):
    assert heartbeat.delay(name="x") == "sent"
    assert sent == [("core.heartbeat", {"name": "x"})]


def test_a_broker_refusal_is_counted_and_the_caller_goes_on(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("celery.app.task.Task.apply_async", refuse)
    with transaction.atomic():
        heartbeat.delay(name="x")
    assert heartbeat.delay(name="y") is None
    failure = EnqueueFailure.objects.get(task="core.heartbeat")
    assert failure.count == 2 and "Connection refused" in failure.last_error
