"""Identical requests at the same moment: one 201, every other one 200 with the same body; never a 400/500.

Real concurrency: a threaded live server and one thread per request, so that the requests really race in
the database (unique constraints decide, and the losers answer as the second of two sequential requests).
"""

import json
import threading
import urllib.error
import urllib.request

import pytest

from core.services import api_token_create
from crm.models import Complaint, Contact, Customer, Feedback, Order
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(url: str, token: str, body: dict, n: int) -> list[tuple[int, dict]]:
    start = threading.Barrier(n)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def post() -> None:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Token {token}", "Content-Type": "application/json"})
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            answer = (exc.code, {"body": exc.read().decode()[:300]})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=post) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _one_created_and_the_rest_the_same(answers: list[tuple[int, dict]]) -> None:
    codes = sorted(code for code, _ in answers)
    assert codes == [200] * (len(answers) - 1) + [201], answers
    bodies = {json.dumps(body, sort_keys=True) for _, body in answers}
    assert len(bodies) == 1, bodies


@pytest.fixture
def token(integration) -> str:
    return api_token_create(user=integration)[1]


CASES = {
    "orders": (Order, {"external_id": "O-1", "customer": "C-1", "ordered_at": "2025-03-01T10:00:00Z", "amount": "10.00"}),
    "customers": (Customer, {"external_id": "C-2", "name": "Grace Hopper", "email": "grace@example.com"}),
    "contacts": (Contact, {"external_id": "K-1", "customer": "C-1", "channel": "call", "occurred_at": "2025-03-01T10:00:00Z", "notes": "hi"}),
    "complaints": (Complaint, {"external_id": "P-1", "customer": "C-1", "opened_at": "2025-03-01T10:00:00Z", "summary": "Late"}),
    "feedback": (Feedback, {"external_id": "F-1", "customer": "C-1", "kind": "nps", "score": 9, "responded_at": "2025-03-01T10:00:00Z"}),
}


@pytest.mark.parametrize("endpoint", list(CASES))
def test_twenty_identical_posts_at_once_create_one_record_and_answer_201_once_then_200(live_server, token, endpoint):
    # Given a customer, and twenty clients posting the very same record at the same moment
    CustomerFactory(external_id="C-1")
    model, body = CASES[endpoint]
    before = model.objects.count()
    # When they race
    answers = _race(f"{live_server.url}/api/{endpoint}/", token, body, n=20)
    # Then exactly one record exists, one answer is 201 and the others 200 with the same body
    _one_created_and_the_rest_the_same(answers)
    assert model.objects.count() == before + 1
