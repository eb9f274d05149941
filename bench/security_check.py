"""The login, throttle, token and header checks (README, "Security" and "Security headers"), printed.

    python bench/security_check.py

Runs in-process against a fresh SQLite database in a temporary VAR_DIR (the default settings: lockout 5 per
account, throttles 1200/min per token and 60/min for anonymous or wrong-token requests) and prints what an
attacker would see: 50 wrong passwords then the right one, the admin login for the same account from another
address, a token's stored row, a wrong token and one token past its minute's allowance, and the headers of
the login page. The tests (tests/core/test_login_lockout.py, test_throttling.py, test_api_tokens.py,
test_security_headers.py) assert all of it; this prints the figures.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def main() -> None:
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="security-check-")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    checks()


def checks() -> None:
    from django.contrib.auth.models import Group
    from django.contrib.auth import get_user_model
    from django.test import Client
    from core.services import api_token_create
    U = get_user_model()

    agent = U.objects.create_user("chk-agent", password="correct-horse-battery")
    agent.groups.add(Group.objects.get(name="Agents"))
    c = Client(REMOTE_ADDR="10.1.1.1")
    codes = []
    t = time.monotonic()
    for i in range(50):
        codes.append(c.post("/accounts/login/", {"username": "chk-agent", "password": f"wrong-{i}"}).status_code)
    right = c.post("/accounts/login/", {"username": "chk-agent", "password": "correct-horse-battery"})
    print("agent login, 50 wrong passwords:", {k: codes.count(k) for k in set(codes)}, "first 429 at attempt", codes.index(429) + 1 if 429 in codes else None,
          "; then the right one:", right.status_code, f"({time.monotonic()-t:.1f} s)")
    a = Client(REMOTE_ADDR="10.1.1.2")
    codes = [a.post("/admin/login/", {"username": "chk-agent", "password": f"x-{i}"}).status_code for i in range(6)]
    print("admin login from another address, same account:", codes)
    integ = U.objects.create_user("chk-int", password="integration-password-long")
    integ.groups.add(Group.objects.get(name="Integrations"))
    _, token = api_token_create(user=integ)
    from knox.models import AuthToken
    row = AuthToken.objects.filter(user=integ).values().first()
    print("token stored:", {k: (str(v)[:20] + "...") for k, v in row.items() if k in ("digest", "token_key", "expiry")}, "plain key in row:", token in str(row))
    api = Client(REMOTE_ADDR="10.1.1.3")
    anon = [api.get("/api/customers/").status_code for _ in range(62)]
    print("no credentials, 62 requests:", {k: anon.count(k) for k in set(anon)})
    wrong = [api.get("/api/customers/", HTTP_AUTHORIZATION="Token " + "0" * 64).status_code for _ in range(62)]
    print("a wrong token, 62 requests:", {k: wrong.count(k) for k in set(wrong)}, "first 429 at", wrong.index(429) + 1 if 429 in wrong else None)
    t = time.monotonic(); ok = [api.get("/api/customers/?page_size=1", HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.1.1.9").status_code for _ in range(1201)]
    print("one token, 1201 requests in", f"{time.monotonic()-t:.1f} s:", {k: ok.count(k) for k in set(ok)}, "first 429 at", ok.index(429) + 1 if 429 in ok else None)
    print("Retry-After on the wrong token's 429:", api.get("/api/customers/", HTTP_AUTHORIZATION="Token " + "0" * 64).get("Retry-After"))
    page = Client().get("/accounts/login/")
    for h in ("Content-Security-Policy", "Permissions-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        print(h + ":", page.get(h))


if __name__ == "__main__":
    main()
