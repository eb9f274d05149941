"""Login lockout: axes' database handler with a limit of its own for the address."""

import math

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit, get_lockout_parameters
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

ADDRESS = "ip_address"


class LockoutHandler(AxesDatabaseHandler):
    """axes counts the failures of each lockout parameter (the account, the address) within the cool-off
    and compares the largest with one limit, AXES_FAILURE_LIMIT. Here the address has its own, higher limit
    (LOGIN_ADDRESS_FAILURE_LIMIT): a call centre behind one NAT address makes many more honest typos than
    one person does."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        account_limit = get_failure_limit(request, credentials)
        locked, account_failures = False, 0
        parameters = get_lockout_parameters(request, credentials)
        for parameter, attempts in zip(parameters, self.get_user_attempts(request, credentials)):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            if parameter == ADDRESS:
                locked = locked or failures >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
            else:
                account_failures = max(account_failures, failures)
        # axes compares the answer with AXES_FAILURE_LIMIT: a locked address answers at least that.
        return max(account_failures, account_limit) if locked else account_failures


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """The page a locked-out login gets (axes' AXES_LOCKOUT_CALLABLE): 429, how long to wait, who can unlock."""
    wait = get_cool_off(request)
    context = {"failure_limit": get_failure_limit(request, credentials), "minutes": math.ceil(wait.total_seconds() / 60)}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(int(wait.total_seconds()))
    return response
