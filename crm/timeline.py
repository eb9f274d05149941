"""A customer's timeline: everything about one customer in one list, newest first, with a type filter and
pages (the customer page in the admin shows it).

crm knows nothing of the apps above it (docs/architecture.md), so this module is a small registry: crm's own
sources (orders, calls and contacts, complaints, feedback, consent changes) are registered by crm.selectors,
which reads the timeline; winback and touchpoints register theirs in their AppConfig.ready (lifecycle
events, case events, the calls' dispositions, touchpoints). The summary at the top of the page takes facts
the same way (the open case and who holds it).

A source answers "the ``count`` newest entries of this customer" with one bounded query. A page merges
what each wanted source returns: page p of n entries needs at most p*n + 1 entries of each source (one more
tells whether an older page exists), so a page costs one query per source however long the history.
"""

import datetime as dt
import heapq
import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext

from crm.models import Customer

PER_PAGE = 50
# Deep pages read p*n rows of every source: beyond this a narrower filter or the full lists serve better.
MAX_PAGE = 100


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str  # the filter's key, e.g. "orders"
    label: str  # what happened, for people: "Order", "Case claimed", "Touchpoint suppressed"
    description: str  # one readable line
    # Ties at the same instant: the row written later first (sources order by time, then id, both descending).
    tiebreak: int = 0


@dataclass(frozen=True)
class Kind:
    key: str
    label: str | Promise
    position: int


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    # (customer id, count) -> that customer's ``count`` newest entries of this source, newest first.
    entries: Callable[[int, int], list[Entry]]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Fact:
    """One line of the customer page's summary: a label, a value, optionally a link to the value's page."""

    key: str
    label: str
    value: str
    url: str = ""


_KINDS: dict[str, Kind] = {}
_SOURCES: dict[str, Source] = {}
_CONTACT_CLAIMS: dict[str, Callable[[int], QuerySet]] = {}
_FACTS: dict[str, Callable[[Customer], list[Fact]]] = {}


def timeline_kind_register(*, key: str, label: str | Promise, position: int) -> None:
    """A type people can filter the timeline by (``?timeline_type=<key>``); ``position`` orders the filter."""
    _KINDS[key] = Kind(key=key, label=label, position=position)


def timeline_source_register(*, name: str, kind: str, entries: Callable[[int, int], list[Entry]]) -> None:
    """Registering the same name again replaces the source (ready() may run more than once in tests)."""
    position = _SOURCES[name].position if name in _SOURCES else len(_SOURCES)
    _SOURCES[name] = Source(name=name, kind=kind, entries=entries, position=position)


def timeline_queryset_register(*, name: str, kind: str, build: Callable[[int], QuerySet], at: str,
                               describe: Callable[[Any], tuple[str, str]]) -> None:
    """A source from a queryset: ``build(customer_id)`` is the customer's rows (with what ``describe`` reads
    already joined), ordered here by ``at`` (a field or an annotation) then id, newest first, and cut at the
    count; ``describe(row)`` gives the entry's label and one-line description."""
    def entries(customer_id: int, count: int) -> list[Entry]:
        rows = build(customer_id).order_by(f"-{at}", "-pk")[:count]
        return [Entry(getattr(row, at), kind, *describe(row), tiebreak=row.pk) for row in rows]
    timeline_source_register(name=name, kind=kind, entries=entries)


def timeline_contacts_claim(*, name: str, contact_ids: Callable[[int], QuerySet]) -> None:
    """Contacts another source describes better (a call's disposition, a sent touchpoint's message):
    ``contact_ids(customer_id)`` is a queryset of their ids, left out of the plain contacts so each event is
    on the timeline once. A subquery, so the contacts stay one query."""
    _CONTACT_CLAIMS[name] = contact_ids


def claimed_contact_ids(customer_id: int) -> list[QuerySet]:
    return [claim(customer_id) for claim in _CONTACT_CLAIMS.values()]


def summary_fact_register(*, name: str, facts: Callable[[Customer], list[Fact]]) -> None:
    """Lines another app adds to the summary: ``facts(customer)``, in one or two queries."""
    _FACTS[name] = facts


def summary_facts(customer: Customer) -> list[Fact]:
    return [fact for facts in _FACTS.values() for fact in facts(customer)]


def timeline_kinds() -> list[Kind]:
    return sorted(_KINDS.values(), key=lambda k: (k.position, k.key))


@dataclass(frozen=True)
class TimelinePage:
    entries: list[Entry]
    page: int
    per_page: int
    has_next: bool
    kind: str  # the type shown, "" for all
    kinds: list[Kind]
    errors: list[str]

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def timeline_params(*, kind: str | None, page: str | None) -> tuple[str, int, list[str]]:
    """The type and page asked for in the address; a bad value is said and the first page of everything
    shown instead (a GET changes nothing, so there is nothing else to refuse)."""
    errors = []
    kind = (kind or "").strip()
    if kind and kind not in _KINDS:
        errors.append(gettext("Unknown timeline type “%(kind)s”: showing every type.") % {"kind": kind[:40]})
        kind = ""
    number = 1
    page = (page or "").strip()
    if page:
        if page.isascii() and page.isdigit() and 1 <= int(page) <= MAX_PAGE:
            number = int(page)
        else:
            errors.append(gettext("The timeline page must be a whole number from 1 to %(most)s: showing page 1.")
                          % {"most": MAX_PAGE})
    return kind, number, errors


def customer_timeline_page(*, customer_id: int, kinds: Collection[str] = (), page: int = 1,
                           per_page: int = PER_PAGE, errors: list[str] | None = None) -> TimelinePage:
    """One page of the customer's timeline, newest first; ``kinds`` empty means every type."""
    page = min(max(page, 1), MAX_PAGE)
    offset = (page - 1) * per_page
    count = offset + per_page + 1
    sources = sorted((s for s in _SOURCES.values() if not kinds or s.kind in kinds), key=lambda s: s.position)
    streams = [_keyed(source, source.entries(customer_id, count)) for source in sources]
    merged = heapq.merge(*streams, key=lambda item: item[0], reverse=True)
    window = [entry for _, entry in itertools.islice(merged, offset, offset + per_page + 1)]
    return TimelinePage(entries=window[:per_page], page=page, per_page=per_page, has_next=len(window) > per_page,
                        kind=next(iter(kinds)) if len(kinds) == 1 else "", kinds=timeline_kinds(),
                        errors=list(errors or []))


def _keyed(source: Source, entries: list[Entry]) -> list[tuple[tuple, Entry]]:
    # Same instant in two sources: a fixed order (the later-registered source first), so pages never
    # overlap or skip an entry.
    return [((entry.at, source.position, entry.tiebreak), entry) for entry in entries]
