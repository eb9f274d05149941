"""API throttles (settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]): per token, per address, and anonymous.

DRF's own SimpleRateThrottle keeps every request's timestamp in one cache entry, read and written back whole
on each request: at 1,200 a minute that is a list of 1,200 floats per request, and two web processes writing
it at once lose each other's requests. These count in fixed windows with the cache's atomic increment
instead (one add and one increment per request). A client may get up to twice a rate across the edge of two
windows; the limits are set with that in mind.
"""

from typing import Any

from django.utils.translation import gettext as _
from knox.models import AuthToken
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from core.http import client_address


class WindowRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # Read now, not at import as DRF's class attribute does: a changed setting (a test's) takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request: Request) -> str:
        return client_address(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        return True if key is None else self.hit(key)

    def hit(self, key: str) -> bool:
        """Count one request under ``key``; False once the window holds more than the rate allows."""
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        counter = f"{key}_{window}"
        self.cache.add(counter, 0, timeout=self.duration + 1)
        try:
            count = self.cache.incr(counter)
        except ValueError:  # the window's counter expired between the two calls
            self.cache.add(counter, 1, timeout=self.duration + 1)
            count = 1
        return count <= self.num_requests

    def wait(self) -> float:
        return max(1.0, self.window_end - self.now)


class TokenRateThrottle(WindowRateThrottle):
    """Per API token (per logged-in user for a session): two integrations behind one address count apart."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not request.user.is_authenticated:
            return None
        auth = request.auth
        ident = f"t{auth.digest[:32]}" if isinstance(auth, AuthToken) else f"u{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressRateThrottle(WindowRateThrottle):
    """Per client address, every request, whoever makes it."""

    scope = "address"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AnonymousRateThrottle(WindowRateThrottle):
    """Per client address, requests without valid credentials: far fewer than a working client sends."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user.is_authenticated:
            return None
        return self.address_key(request)

    def address_key(self, request: Request) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def wrong_credentials_count(request: Request) -> None:
    """A request with a wrong, expired or revoked token counts as an anonymous one from its address.

    DRF refuses it (401) before any throttle runs, so without this guessing tokens would never be slowed
    down. Raises Throttled once the address is over the anonymous rate."""
    throttle = AnonymousRateThrottle()
    if throttle.rate is not None and not throttle.hit(throttle.address_key(request)):
        raise Throttled(wait=throttle.wait(), detail=_("Too many requests with a wrong token from this address."))
