"""Values a process reads often and that change rarely (the settings rows read on every claim and send)."""

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """``load()``'s value, read again at most every ``ttl`` seconds in this process: a manager's change to
    a settings row reaches every worker within that time, and a busy worker does not read it per item."""

    def __init__(self, load: Callable[[], T], *, ttl: float = 5.0) -> None:
        self._load, self._ttl = load, ttl
        self._value: tuple[float, T] | None = None

    def get(self, *, fresh: bool = False) -> T:
        if fresh or self._value is None or time.monotonic() - self._value[0] >= self._ttl:
            self._value = (time.monotonic(), self._load())
        return self._value[1]

    def clear(self) -> None:
        self._value = None
