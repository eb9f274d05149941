"""Demo data: realistic synthetic customers, orders, complaints and feedback (see seed_demo)."""

import datetime as dt
import random
import sys
import unicodedata
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from collections.abc import Collection, Sequence
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from core.roles import AGENTS, MANAGERS
from crm.models import Complaint, Contact, Customer, Feedback
from crm.services.audit import Actor, audit_bulk_create
from crm.services.spend import spend_upsert
from crm.services.customers import CUSTOMER_INPUT_FIELDS, customer_cancel
from crm.services.errors import ConflictError
from crm.services.orders import OrderInput, OrderLineInput, orders_insert
from crm.services.records import COMPLAINT_FIELDS, CONTACT_FIELDS, FEEDBACK_FIELDS
from crm.validators import phone_normalize, phone_time_zones

# (username, password, group): printed by `make demo`; demo only, never used in production.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    ("manager", "manager-demo-2026", "Managers"),
    ("agent", "agent-demo-2026", "Agents"),
]

DEMO_PREFIX = "DEMO-"
DEMO_ACTOR = Actor(user=None, label="seed_demo")
ORDER_BATCH = 5000

# The demo shop's catalogue: (product id, name, category, unit price). Product names and categories are the
# shop's data (as a real shop's would be), not our text, so they are not translated.
DEMO_CATALOGUE: list[tuple[str, str, str, Decimal]] = [
    ("P-COF-1", "Espresso beans 1 kg", "Coffee", Decimal("24.00")),
    ("P-COF-2", "Filter coffee 500 g", "Coffee", Decimal("11.50")),
    ("P-COF-3", "Decaf beans 500 g", "Coffee", Decimal("13.00")),
    ("P-TEA-1", "Green tea 100 g", "Tea", Decimal("8.50")),
    ("P-TEA-2", "Earl Grey 250 g", "Tea", Decimal("9.90")),
    ("P-TEA-3", "Herbal tea sampler", "Tea", Decimal("14.00")),
    ("P-ACC-1", "Ceramic mug", "Accessories", Decimal("12.00")),
    ("P-ACC-2", "Hand grinder", "Accessories", Decimal("45.00")),
    ("P-ACC-3", "Pour-over kit", "Accessories", Decimal("29.00")),
    ("P-SNK-1", "Almond biscotti", "Snacks", Decimal("6.50")),
    ("P-SNK-2", "Dark chocolate bar", "Snacks", Decimal("4.20")),
    ("P-SNK-3", "Shortbread tin", "Snacks", Decimal("15.00")),
]
DEMO_CATEGORIES = sorted({category for _, _, category, _ in DEMO_CATALOGUE})
_PRODUCTS_BY_CATEGORY = {c: [p for p in DEMO_CATALOGUE if p[2] == c] for c in DEMO_CATEGORIES}

Kind = Literal["prospect", "one_time", "weekly", "monthly", "quarterly", "loyal", "lapsed", "returned", "new"]
Role = Literal["agent", "manager"]
ROLE_OF_GROUP: dict[str, Role] = {MANAGERS: "manager", AGENTS: "agent"}
T = TypeVar("T")

# Shares of the customer base. Assigned by quota, not by independent draws, so even a small demo
# (a test's 200 customers) has every kind of behaviour the lifecycle engine and KPIs must handle.
KIND_SHARES: dict[Kind, float] = {
    "prospect": 0.02,  # signed up, never ordered
    "one_time": 0.18,
    "weekly": 0.07,
    "monthly": 0.22,
    "quarterly": 0.12,
    "loyal": 0.10,  # early, steady, still buying
    "lapsed": 0.17,  # stop at some point, often slowing down first
    "returned": 0.08,  # stop for more than half a year, then come back
    "new": 0.04,  # acquired in the last three months
}
# (mean gap range in days, gamma shape range: higher is more regular, typical basket)
RHYTHMS: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "weekly": ((5.0, 10.0), (2.5, 6.0), 28.0),
    "monthly": ((18.0, 45.0), (1.8, 5.0), 60.0),
    "quarterly": ((65.0, 120.0), (1.5, 4.0), 120.0),
}

COUNTRIES: list[tuple[str, int]] = [("GB", 30), ("US", 20), ("AE", 18), ("FR", 12), ("DE", 8), ("ES", 6), ("SA", 6)]
# Share of each country's customers who use the local language rather than English.
LOCAL_LOCALE: dict[str, tuple[str, float]] = {
    "FR": ("fr", 0.25), "DE": ("de", 0.25), "ES": ("es", 0.25), "AE": ("ar", 0.6), "SA": ("ar", 0.85),
}
US_AREA_CODES = ["212", "213", "206", "303", "305", "312", "404", "415", "512", "617", "646", "702", "718", "786", "917"]
DE_MOBILE = ["151", "152", "157", "159", "160", "162", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179"]

NAMES_EN = (
    "Oliver Amelia George Isla Harry Ava Jack Mia Noah Emily Leo Grace Oscar Sophie James Lily William Chloe "
    "Thomas Ella Michael Olivia Daniel Emma David Hannah Samuel Lucy Ethan Zoe Priya Arjun Wei Mei".split(),
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright Thompson Evans Walker White "
    "Roberts Green Hall Wood Jackson Clarke Hughes Miller Garcia Martinez Anderson Lee Harris Lewis Young Chen".split(),
)
NAMES_FR = (
    "Camille Louise Léa Chloé Manon Lucas Hugo Louis Gabriel Arthur Jules Inès Zoé Théo Maël Élise".split(),
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel Garnier Faure".split(),
)
NAMES_DE = (
    "Lukas Leon Finn Paul Jonas Felix Emma Mia Hannah Sofia Lena Lea Jürgen Anja Katrin Stefan".split(),
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Wolf Schäfer Bauer Krüger".split(),
)
NAMES_ES = (
    "Lucía Sofía Martina María Hugo Mateo Martín Alejandro Pablo Daniel Carmen Javier Elena Sergio".split(),
    "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Jiménez Ruiz Hernández Díaz Moreno".split(),
)
# (Arabic script, Latin transliteration): the latter for e-mail addresses and English-speaking customers.
NAMES_AR = (
    [("محمد", "Mohammed"), ("أحمد", "Ahmed"), ("علي", "Ali"), ("عمر", "Omar"), ("خالد", "Khaled"),
     ("يوسف", "Youssef"), ("حسن", "Hassan"), ("إبراهيم", "Ibrahim"), ("فاطمة", "Fatima"), ("مريم", "Maryam"),
     ("نور", "Noor"), ("ليلى", "Layla"), ("سارة", "Sara"), ("عائشة", "Aisha"), ("هند", "Hind"), ("سلمى", "Salma")],
    [("العلي", "Al Ali"), ("الهاشمي", "Al Hashimi"), ("المنصوري", "Al Mansouri"), ("الشامسي", "Al Shamsi"),
     ("القاسمي", "Al Qasimi"), ("الزعابي", "Al Zaabi"), ("الحربي", "Al Harbi"), ("العتيبي", "Al Otaibi"),
     ("الغامدي", "Al Ghamdi"), ("القحطاني", "Al Qahtani"), ("حداد", "Haddad"), ("خوري", "Khoury"),
     ("نصر", "Nasr"), ("سليمان", "Suleiman")],
)
LATIN_NAMES = {"FR": NAMES_FR, "DE": NAMES_DE, "ES": NAMES_ES}

COMPLAINT_CATEGORIES = [("delivery", 30), ("product", 25), ("service", 18), ("billing", 12), ("price", 10), ("other", 5)]
COMPLAINT_SEVERITIES = [("low", 30), ("medium", 40), ("high", 22), ("critical", 8)]
COMPLAINT_SUMMARIES: dict[str, list[str]] = {
    "delivery": ["Parcel arrived three days late", "Parcel arrived damaged", "Delivered to the wrong address",
                 "Courier marked it delivered but nothing arrived", "Missing item in the delivery"],
    "product": ["Item stopped working after a week", "Product does not match the description",
                "Wrong size sent", "Quality has dropped compared with earlier orders"],
    "service": ["Nobody answered the support line", "Promised callback never came",
                "Rude answer from the support chat", "Had to explain the problem three times"],
    "billing": ["Charged twice for one order", "Refund not received after two weeks",
                "Discount code not applied at checkout", "Invoice shows the wrong address"],
    "price": ["Prices went up a lot since last year", "Found the same item much cheaper elsewhere",
              "Delivery fee is too high for small orders"],
    "other": ["Cannot log in to the account", "Unwanted marketing emails", "Website checkout keeps failing"],
}
RESOLUTIONS = ["Refund issued", "Replacement sent", "Apologised and offered a voucher", "Re-delivered free of charge",
               "Explained the pricing and offered free delivery", "Fixed the account and confirmed by email",
               "Corrected the invoice"]
FEEDBACK_KINDS = [("nps", 50), ("csat", 35), ("ces", 15)]
FEEDBACK_COMMENTS = {
    "low": ["Delivery was late again.", "Support never got back to me.", "Too expensive for what it is.",
            "Quality is not what it used to be.", "Had to chase my refund."],
    "mid": ["Fine, nothing special.", "OK but delivery could be faster.", "Decent products, average service."],
    "high": ["Always reliable, thank you!", "Great quality and quick delivery.", "The support team was brilliant.",
             "My go-to shop."],
}
CALL_OUTCOMES = [("no_answer", 30), ("voicemail", 20), ("reached_will_return", 15), ("reached_declined", 10),
                 ("callback_requested", 8), ("busy", 7), ("wrong_number", 3)]
NOTES = ["Prefers to be contacted in the evening.", "Asked about the loyalty programme.",
         "Moved house recently; address updated.", "Buys mainly for the office.", "Interested in bulk discounts."]
INBOUND_CALL_NOTES = ["Asked where the last order is.", "Wanted to change the delivery slot.",
                      "Asked how to return an item.", "Asked about a charge on the card statement."]


@dataclass(frozen=True)
class DemoSeedResult:
    customers: int = 0
    orders: int = 0
    complaints: int = 0
    feedback: int = 0
    contacts: int = 0
    cancelled: int = 0
    logins: tuple[str, ...] = ()
    held_orders: int = 0  # at or after hold_from: not written (the demo's simulation plays them)
    skipped: bool = False  # --if-empty found customers: nothing was written
    existing_customers: int = 0


@dataclass
class _ComplaintPlan:
    opened_at: dt.datetime
    category: str
    severity: str
    summary: str
    status: str
    resolved_at: dt.datetime | None
    resolution: str
    owner: Role | None


@dataclass
class _FeedbackPlan:
    kind: str
    score: int
    comment: str
    responded_at: dt.datetime


@dataclass
class _ContactPlan:
    channel: str
    direction: str
    occurred_at: dt.datetime
    outcome: str
    notes: str
    agent: Role | None


@dataclass
class _CustomerPlan:
    external_id: str
    kind: Kind
    name: str
    email: str
    phone: str  # as a person would type it; normalised on write
    locale: str
    email_consent: str
    email_consent_at: dt.datetime | None
    email_consent_source: str
    do_not_call_since: dt.datetime | None
    mean_gap: float
    orders: list[tuple[dt.datetime, Decimal]] = field(default_factory=list)
    complaints: list[_ComplaintPlan] = field(default_factory=list)
    feedback: list[_FeedbackPlan] = field(default_factory=list)
    contacts: list[_ContactPlan] = field(default_factory=list)
    cancelled_at: dt.datetime | None = None


@dataclass
class DemoPlan:
    customers: list[_CustomerPlan]


class _Clock:
    """Day numbers inside the window [until - years, until) mapped to aware datetimes in the business zone.

    Everything is derived from ``until``, never from now(), so a seed and an anchor give the same rows.
    """

    def __init__(self, *, until: dt.date, years: int, tz: ZoneInfo) -> None:
        self.start = until - dt.timedelta(days=round(365.25 * years))
        self.span = (until - self.start).days
        self.tz = tz
        self.dates = [self.start + dt.timedelta(days=d) for d in range(self.span)]
        self.end = dt.datetime.combine(until, dt.time(0), tzinfo=tz)  # nothing happens at or after it

    def at(self, day: int, second: int) -> dt.datetime:
        second = min(max(second, 0), 86399)
        return dt.datetime.combine(
            self.dates[day], dt.time(second // 3600, second // 60 % 60, second % 60), tzinfo=self.tz
        )

    def random_at(self, rng: random.Random, day: int, hours: tuple[int, int] = (8, 21)) -> dt.datetime:
        return self.at(day, rng.randrange(hours[0] * 3600, hours[1] * 3600))


def _weighted(rng: random.Random, pairs: Sequence[tuple[T, int]]) -> T:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _kind_quota(rng: random.Random, n: int) -> list[Kind]:
    # Largest remainder, so the shares add up to exactly n.
    raw = {k: s * n for k, s in KIND_SHARES.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    kinds: list[Kind] = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    return kinds


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _phone(rng: random.Random, country: str) -> str:
    """A valid mobile number of the country, written the way people type it (spaces, brackets)."""
    for _ in range(100):
        if country == "GB":
            raw = f"+44 7{rng.choice('456789')}{_digits(rng, 2)} {_digits(rng, 6)}"
        elif country == "US":
            raw = f"+1 ({rng.choice(US_AREA_CODES)}) {rng.randrange(2, 10)}{_digits(rng, 2)}-{_digits(rng, 4)}"
        elif country == "FR":
            raw = f"+33 {rng.choice('67')} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}"
        elif country == "DE":
            raw = f"+49 {rng.choice(DE_MOBILE)} {_digits(rng, 8)}"
        elif country == "ES":
            raw = f"+34 6{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}"
        elif country == "AE":
            raw = f"+971 5{rng.choice('024568')} {_digits(rng, 3)} {_digits(rng, 4)}"
        else:  # SA
            raw = f"+966 5{rng.choice('0345689')} {_digits(rng, 3)} {_digits(rng, 4)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(raw, None)):
            return raw
    raise AssertionError(f"no valid {country} number in 100 tries")  # the templates are ~80%+ valid


def _ascii(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", value) if c.isascii() and c.isalnum()).lower()


def _identity(rng: random.Random, index: int) -> tuple[str, str, str, str]:
    """(name, email, phone, locale)."""
    country = _weighted(rng, COUNTRIES)
    local, share = LOCAL_LOCALE.get(country, ("en", 0.0))
    locale = local if rng.random() < share else "en"
    if locale == "en" and rng.random() < 0.01:
        locale = rng.choice(["pt-BR", "it", "nl"])  # a few languages the emails are not written in
    if country in ("AE", "SA") and (locale == "ar" or rng.random() < 0.5):
        (first_ar, first), (last_ar, last) = rng.choice(NAMES_AR[0]), rng.choice(NAMES_AR[1])
        name = f"{first_ar} {last_ar}" if locale == "ar" and rng.random() < 0.6 else f"{first} {last}"
    else:
        firsts, lasts = LATIN_NAMES.get(country, NAMES_EN)
        first, last = rng.choice(firsts), rng.choice(lasts)
        name = f"{first} {last}"
    style = rng.randrange(3)
    local_part = [f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[0]}{_ascii(last)}", f"{_ascii(first)}_{_ascii(last)}"][style]
    # RFC 2606 domains: a demo must never be able to mail a real person.
    email = f"{local_part}{index}@{rng.choice(['example.com', 'example.net', 'example.org'])}"
    if rng.random() < 0.04:
        email = ""
    phone = "" if rng.random() < 0.08 else _phone(rng, country)
    return name, email, phone, locale


def _order_days(
    rng: random.Random, *, first: int, last: int, mean: float, shape: float, slow_down: bool = False
) -> list[int]:
    """Days of a renewal-like process: gamma gaps around the customer's own mean, with the odd break."""
    days = [first]
    day = first
    while True:
        m = mean
        if slow_down and last > first:
            # The last stretch before a lapse: gaps grow, the pattern the at-risk rule should catch.
            progress = (day - first) / (last - first)
            m *= 1 + 2.0 * max(0.0, progress - 0.7) / 0.3
        gap = rng.gammavariate(shape, m / shape)
        if rng.random() < 0.04:
            gap *= rng.uniform(1.5, 3.0)  # holidays, a busy month
        day += max(1, round(gap))
        if day > last:
            return days
        days.append(day)


def _rhythm(rng: random.Random, name: str) -> tuple[float, float, float]:
    (lo, hi), (slo, shi), basket = RHYTHMS[name]
    return rng.uniform(lo, hi), rng.uniform(slo, shi), basket


def _orders_for(rng: random.Random, kind: Kind, span: int) -> tuple[list[int], float, float]:
    """(order days, mean gap, typical basket) for one customer of the given kind."""
    last_day = span - 1
    if kind in ("weekly", "monthly", "quarterly"):
        mean, shape, basket = _rhythm(rng, kind)
        acquired = min(last_day, int(span * rng.random() ** 0.8))  # a growing business: more recent sign-ups
        return _order_days(rng, first=acquired, last=last_day, mean=mean, shape=shape), mean, basket
    sub = _weighted(rng, [("weekly", 25), ("monthly", 50), ("quarterly", 25)])
    mean, shape, basket = _rhythm(rng, sub)
    if kind == "one_time":
        return [rng.randrange(span)], 0.0, basket * 1.3
    if kind == "loyal":
        mean = rng.uniform(7, 35)
        acquired = rng.randrange(max(1, int(span * 0.4)))
        return _order_days(rng, first=acquired, last=last_day, mean=mean, shape=rng.uniform(5, 12)), mean, basket
    if kind == "new":
        acquired = last_day - rng.randrange(min(90, span))
        return _order_days(rng, first=acquired, last=last_day, mean=mean, shape=shape), mean, basket
    if kind == "lapsed":
        acquired = rng.randrange(max(1, int(span * 0.75)))
        # Stop well before the anchor (more than three of their own cycles, or the 90-day default).
        latest_stop = last_day - max(round(3.5 * mean), 100)
        stop = rng.randint(acquired, latest_stop) if latest_stop > acquired else acquired
        days = _order_days(rng, first=acquired, last=stop, mean=mean, shape=shape, slow_down=True)
        return days, mean, basket
    # returned: a first spell, a pause of more than half a year, then a second spell at a new pace.
    acquired = rng.randrange(max(1, int(span * 0.3)))
    pause = max(190, round(4 * mean)) + rng.randrange(150)
    latest_pause_start = last_day - pause - 30
    earliest_pause_start = acquired + round(2 * mean)
    if latest_pause_start <= earliest_pause_start:  # a short window (--years 1): shrink the pause
        pause = max(30, last_day - 30 - earliest_pause_start)
        latest_pause_start = max(earliest_pause_start, last_day - pause - 30)
    pause_start = rng.randint(earliest_pause_start, max(earliest_pause_start, latest_pause_start))
    first_spell = _order_days(rng, first=acquired, last=min(pause_start, last_day), mean=mean, shape=shape)
    comeback = first_spell[-1] + pause
    if comeback > last_day:
        return first_spell, mean, basket
    mean2 = mean * rng.uniform(0.8, 1.5)
    # A quarter of those who return drift away again.
    end = last_day if rng.random() < 0.75 else rng.randint(comeback, last_day)
    second_spell = _order_days(rng, first=comeback, last=end, mean=mean2, shape=shape)
    return first_spell + second_spell, mean, basket


def _mood(rng: random.Random, kind: Kind) -> float:
    """0 (unhappy) .. 1 (delighted): drives feedback scores; lapsers lean unhappy."""
    a, b = {"loyal": (6.0, 1.5), "lapsed": (2.0, 3.0), "returned": (3.0, 2.5)}.get(kind, (5.0, 2.0))
    # The power leans scores upwards, as real surveys do (the happy answer more): NPS comes out around
    # +50 for loyal customers, below -50 for lapsers, slightly positive overall.
    return rng.betavariate(a, b) ** 0.6


def _score(rng: random.Random, kind: str, mood: float) -> int:
    if kind == "nps":
        return min(10, max(0, round(mood * 10 + rng.gauss(0, 1.2))))
    if kind == "csat":
        return min(5, max(1, round(1 + mood * 4 + rng.gauss(0, 0.6))))
    return min(7, max(1, round(1 + mood * 6 + rng.gauss(0, 0.8))))  # CES: 7 = "very easy"


def _band(kind: str, score: int) -> str:
    low, high = {"nps": (6, 9), "csat": (2, 4), "ces": (3, 6)}[kind]
    return "low" if score <= low else "high" if score >= high else "mid"


def _customer_plan(rng: random.Random, *, index: int, kind: Kind, clock: _Clock) -> _CustomerPlan:
    span = clock.span
    name, email, phone, locale = _identity(rng, index)
    if kind == "prospect":
        days, mean, basket = [], 0.0, 0.0
        signup_day = rng.randrange(span)
    else:
        days, mean, basket = _orders_for(rng, kind, span)
        signup_day = days[0]
    basket *= rng.lognormvariate(0, 0.45)
    preferred_hour = rng.randint(8, 21)
    orders: list[tuple[dt.datetime, Decimal]] = []
    for day in days:
        amount = basket * rng.lognormvariate(0, 0.25)
        if rng.random() < 0.03:
            amount *= rng.uniform(2, 4)  # a gift or a stock-up
        second = preferred_hour * 3600 + round(rng.gauss(0, 5400))
        orders.append((clock.at(day, min(max(second, 7 * 3600), 23 * 3600)), Decimal(f"{max(amount, 3.0):.2f}")))

    consent, consent_at, consent_source = "unknown", None, ""
    if email:
        roll = rng.random()
        if roll < 0.45:
            consent, consent_at, consent_source = "granted", clock.random_at(rng, signup_day), rng.choice(
                ["checkout opt-in", "newsletter form", "in-store sign-up"]
            )
        elif roll < 0.75 and orders:
            consent, consent_at, consent_source = "relationship", orders[0][0], "first purchase"
        elif roll < 0.95:
            pass
        else:
            day = rng.randint(signup_day, span - 1)
            consent, consent_at, consent_source = "withdrawn", clock.random_at(rng, day), "unsubscribe link"
    do_not_call_since = None
    if phone and rng.random() < 0.03:
        do_not_call_since = clock.random_at(rng, rng.randint(signup_day, span - 1), hours=(9, 19))

    plan = _CustomerPlan(
        external_id=f"{DEMO_PREFIX}C{index:06d}", kind=kind, name=name, email=email, phone=phone, locale=locale,
        email_consent=consent, email_consent_at=consent_at, email_consent_source=consent_source,
        do_not_call_since=do_not_call_since, mean_gap=mean, orders=orders,
    )
    mood = _mood(rng, kind)
    _complaints(rng, plan, days=days, clock=clock)
    if any(c.status != "resolved" for c in plan.complaints):
        mood *= 0.6
    _feedback(rng, plan, days=days, clock=clock, mood=mood)
    _contacts(rng, plan, signup_day=signup_day, clock=clock)
    return plan


def _complaints(rng: random.Random, plan: _CustomerPlan, *, days: list[int], clock: _Clock) -> None:
    if not days:
        return
    chance = {"lapsed": 0.35, "returned": 0.25, "one_time": 0.10}.get(plan.kind, 0.06)
    if rng.random() >= chance:
        return
    for n in range(_weighted(rng, [(1, 80), (2, 15), (3, 5)])):
        # A lapser's first complaint follows one of their last orders: often the reason they left.
        pool = days[-3:] if plan.kind == "lapsed" and n == 0 else days
        day = rng.choice(pool) + rng.randint(1, 10)
        if day >= clock.span:
            continue
        opened_at = clock.random_at(rng, day)
        age = clock.span - day
        weights = [("open", 60), ("in_progress", 30), ("resolved", 10)] if age < 7 else (
            [("open", 30), ("in_progress", 30), ("resolved", 40)] if age < 30 else
            [("open", 6), ("in_progress", 6), ("resolved", 88)]
        )
        status = _weighted(rng, weights)
        resolved_at, resolution = None, ""
        if status == "resolved":
            resolved_at = opened_at + dt.timedelta(hours=2 + rng.gammavariate(2.0, 36.0))
            if resolved_at >= clock.end:
                status, resolved_at = "in_progress", None
            else:
                resolution = rng.choice(RESOLUTIONS)
        category = _weighted(rng, COMPLAINT_CATEGORIES)
        owner: Role | None = None
        if status == "in_progress":
            owner = "agent"
        elif status == "resolved":
            owner = "agent" if rng.random() < 0.7 else "manager"
        plan.complaints.append(_ComplaintPlan(
            opened_at=opened_at, category=category, severity=_weighted(rng, COMPLAINT_SEVERITIES),
            summary=rng.choice(COMPLAINT_SUMMARIES[category]), status=status, resolved_at=resolved_at,
            resolution=resolution, owner=owner,
        ))


def _feedback(rng: random.Random, plan: _CustomerPlan, *, days: list[int], clock: _Clock, mood: float) -> None:
    if not days or rng.random() >= 0.35:
        return
    for _ in range(_weighted(rng, [(1, 70), (2, 20), (3, 10)])):
        day = rng.choice(days) + rng.randint(1, 5)
        if day >= clock.span:
            continue
        kind = _weighted(rng, FEEDBACK_KINDS)
        score = _score(rng, kind, mood)
        comment = rng.choice(FEEDBACK_COMMENTS[_band(kind, score)]) if rng.random() < 0.4 else ""
        plan.feedback.append(_FeedbackPlan(kind=kind, score=score, comment=comment, responded_at=clock.random_at(rng, day)))


def _contacts(rng: random.Random, plan: _CustomerPlan, *, signup_day: int, clock: _Clock) -> None:
    if plan.do_not_call_since:
        # The call in which they asked not to be called again; no call follows it.
        plan.contacts.append(_ContactPlan(
            channel="call", direction="outbound", occurred_at=plan.do_not_call_since, outcome="do_not_call",
            notes="Asked not to be called again.", agent="agent",
        ))
    chance = 0.3 if plan.kind in ("lapsed", "returned") else 0.12
    if rng.random() >= chance:
        return
    options: list[tuple[str, int]] = [("note", 20)]
    if plan.phone and not plan.do_not_call_since:
        options += [("call_out", 40), ("call_in", 10), ("sms", 7)]
    if plan.email:
        options.append(("email_in", 8))
        if plan.email_consent in ("granted", "relationship"):
            options.append(("email_out", 15))
    for _ in range(_weighted(rng, [(1, 60), (2, 25), (3, 15)])):
        what = _weighted(rng, options)
        at = clock.random_at(rng, rng.randint(signup_day, clock.span - 1), hours=(9, 19))
        if what == "call_out":
            outcome = _weighted(rng, CALL_OUTCOMES)
            c = _ContactPlan("call", "outbound", at, outcome, "", "agent")
        elif what == "call_in":
            c = _ContactPlan("call", "inbound", at, "other", rng.choice(INBOUND_CALL_NOTES), "agent")
        elif what == "sms":
            c = _ContactPlan("sms", "outbound", at, "sent", "Order update", "agent")
        elif what == "email_in":
            c = _ContactPlan("email", "inbound", at, "replied", rng.choice(INBOUND_CALL_NOTES), None)
        elif what == "email_out":
            c = _ContactPlan("email", "outbound", at, "sent", "Personal follow-up", "agent")
        else:
            c = _ContactPlan("note", "internal", at, "", rng.choice(NOTES), "agent")
        plan.contacts.append(c)


def demo_plan(*, seed: int, customers: int, years: int, until: dt.date, progress: bool = False) -> DemoPlan:
    """The whole demo data set, generated in memory from ``seed`` and ``until`` alone (no database)."""
    if customers < 0:
        raise ValueError("customers must be >= 0")
    if years < 1:
        raise ValueError("years must be >= 1")
    rng = random.Random(seed)
    clock = _Clock(until=until, years=years, tz=timezone.get_default_timezone())
    kinds = _kind_quota(rng, customers)
    plans = [
        _customer_plan(rng, index=i + 1, kind=kind, clock=clock)
        for i, kind in enumerate(tqdm(kinds, desc="generating", unit="customer", disable=not progress, file=sys.stderr))
    ]
    # Subscription-style cancellations: frequent buyers who stopped, cancelling just after their last box.
    candidates = [p for p in plans if p.kind == "lapsed" and 0 < p.mean_gap < 10 and p.orders]
    for p in rng.sample(candidates, min(len(candidates), max(1, customers // 500))):
        last_day = (p.orders[-1][0].date() - clock.start).days
        day = last_day + rng.randint(1, 10)
        if day < clock.span:
            p.cancelled_at = clock.random_at(rng, day)
    return DemoPlan(customers=plans)


def demo_logins_ensure() -> list[AbstractUser]:
    """Create (or reset) the demo logins of DEMO_LOGINS; safe to run again."""
    User = get_user_model()
    users = []
    for username, password, group_name in DEMO_LOGINS:
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.set_password(password)
        user.is_active = True
        # Only managers use the admin; the admin site also checks the group, so the flag alone lets no one in.
        user.is_staff = group_name == MANAGERS
        user.save()
        user.groups.add(Group.objects.get(name=group_name))
        users.append(user)
    return users


def demo_seed(
    *, seed: int, customers: int, years: int, until: dt.date, progress: bool, if_empty: bool = False,
    hold_from: dt.datetime | None = None, hold_customers: Collection[str] | None = None, plan: DemoPlan | None = None,
) -> DemoSeedResult:
    """Create the demo logins and a demo data set, all in one transaction, through the crm services.

    Orders go through ``orders_insert`` so the customers' denormalised figures and the audit trail are
    exactly what a real import would leave. With ``if_empty``, does nothing when any customer exists.
    With ``hold_from``, the orders at or after it of the ``hold_customers`` (default: everyone) are not
    written: `manage.py demo` places them in time order while it simulates the agents' months
    (``demo_held_orders`` gives them), so the lifecycle scans of those months see only the orders placed
    before them, as a live system would. ``plan``: the caller's ``demo_plan`` of the same arguments.
    """
    existing = Customer.objects.count() if if_empty else 0
    if existing:
        return DemoSeedResult(skipped=True, existing_customers=existing)
    if Customer.objects.filter(external_id__startswith=DEMO_PREFIX).exists():
        raise ConflictError(
            f"Demo customers ({DEMO_PREFIX}...) already exist; use --if-empty, or start from an empty database."
        )
    plan = plan or demo_plan(seed=seed, customers=customers, years=years, until=until, progress=progress)
    hold = None if hold_from is None else (hold_from, None if hold_customers is None else frozenset(hold_customers))
    with transaction.atomic():
        users = demo_logins_ensure()
        by_role: dict[Role, AbstractUser] = {}
        for user, (_, _, group_name) in zip(users, DEMO_LOGINS):
            if group_name in ROLE_OF_GROUP:
                by_role.setdefault(ROLE_OF_GROUP[group_name], user)
        rows = _write_customers(plan)
        orders = _write_orders(plan, progress=progress, hold=hold)
        cancelled = _write_cancellations(plan, rows)
        counts = _write_records(plan, rows, by_role)
        _write_spend(plan)
    held = len(demo_held_orders(plan, hold_from=hold[0], customers=hold[1])) if hold else 0
    return DemoSeedResult(
        customers=len(rows), orders=orders, cancelled=cancelled, held_orders=held,
        logins=tuple(u.get_username() for u in users), **counts,
    )


# The demo's marketing: a monthly budget per channel, larger in the months that brought more customers (what CAC,
# CLV:CAC and the payback read; docs/metrics.md section 6). Shares of the month's spend per channel.
DEMO_SPEND_CHANNELS = (("search ads", Decimal("0.5")), ("social", Decimal("0.3")), ("referral", Decimal("0.2")))
DEMO_SPEND_BASE, DEMO_SPEND_PER_NEW = Decimal("300"), Decimal("38")


def _write_spend(plan: DemoPlan) -> int:
    """A spend row per month and channel, from the first customer's month to the last order's, in the business
    currency; deterministic for the plan."""
    firsts = [c.orders[0][0] for c in plan.customers if c.orders]
    if not firsts:
        return 0
    months: dict[dt.date, int] = {}
    for first in firsts:
        key = timezone.localtime(first).date().replace(day=1)
        months[key] = months.get(key, 0) + 1
    month, last, written = min(months), max(months), 0
    while month <= last:
        total = DEMO_SPEND_BASE + DEMO_SPEND_PER_NEW * months.get(month, 0)
        for channel, share in DEMO_SPEND_CHANNELS:
            spend_upsert(month=month, channel=channel, amount=(total * share).quantize(Decimal("0.01")), currency="",
                         actor=DEMO_ACTOR)
            written += 1
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return written


def _write_customers(plan: DemoPlan) -> dict[str, Customer]:
    objs = []
    for p in plan.customers:
        phone = phone_normalize(p.phone)
        zones = phone_time_zones(phone)
        objs.append(Customer(
            external_id=p.external_id, name=p.name, email=p.email, phone=phone,
            timezone=zones[0] if len(zones) == 1 else "", call_zones=",".join(sorted(zones)),
            locale=p.locale, email_consent=p.email_consent,
            email_consent_at=p.email_consent_at, email_consent_source=p.email_consent_source,
            do_not_call_since=p.do_not_call_since,
        ))
    Customer.objects.bulk_create(objs, batch_size=1000)
    audit_bulk_create(actor=DEMO_ACTOR, instances=objs, fields=CUSTOMER_INPUT_FIELDS)
    return {c.external_id: c for c in objs}


def demo_order_lines(*, customer: str, external_id: str, amount: Decimal) -> tuple[OrderLineInput, ...]:
    """1 to 3 lines from the catalogue summing to ``amount`` exactly, the same for the same order every time.

    Mostly from the customer's favourite category, sometimes from another: so the demo has customers who
    try a new category (cross-sell) and others who stay with theirs.
    """
    # crc32 is the same in every process (unlike hash()), so a re-seed gives the same lines; and cheap, as
    # this runs once per demo order.
    rng = random.Random(zlib.crc32(f"{external_id}/{customer}/{amount}".encode()))
    favourite = DEMO_CATEGORIES[zlib.crc32(customer.encode()) % len(DEMO_CATEGORIES)]
    cents = int(amount * 100)
    roll = rng.random()
    count = min(1 if roll < 0.5 else 2 if roll < 0.85 else 3, max(cents, 1))
    products = []
    for _ in range(count):
        category = favourite if rng.random() < 0.75 else rng.choice(DEMO_CATEGORIES)
        products.append(rng.choice(_PRODUCTS_BY_CATEGORY[category]))
    # The amount split by the products' prices, the rounding left on the last line.
    weights = [price * rng.randint(1, 2) for *_, price in products]
    shares = [int(cents * w / sum(weights)) for w in weights[:-1]]
    shares.append(cents - sum(shares))
    return tuple(
        OrderLineInput(product_id=pid, product_name=name, category=category,
                       quantity=max(1, min(3, round(Decimal(share) / 100 / price))), amount=Decimal(share) / 100)
        for (pid, name, category, price), share in zip(products, shares)
    )


def _order_inputs(plan: DemoPlan) -> list[OrderInput]:
    """Every order of the plan, numbered the same whether or not some are held back."""
    currency = settings.DEFAULT_CURRENCY
    # Customer by customer, so each batch touches few customers (one figures UPDATE each on SQLite).
    return [
        OrderInput(external_id=(external_id := f"{DEMO_PREFIX}O{n:07d}"), customer=p.external_id, ordered_at=at,
                   amount=amount, currency=currency,
                   lines=demo_order_lines(customer=p.external_id, external_id=external_id, amount=amount))
        for n, (p, (at, amount)) in enumerate(((p, o) for p in plan.customers for o in p.orders), start=1)
    ]


def _held(order: OrderInput, hold_from: dt.datetime, customers: frozenset[str] | None) -> bool:
    return order.ordered_at >= hold_from and (customers is None or order.customer in customers)


def demo_held_orders(
    plan: DemoPlan, *, hold_from: dt.datetime, customers: Collection[str] | None = None
) -> list[OrderInput]:
    """The orders ``demo_seed(hold_from=..., hold_customers=...)`` left out, by time."""
    chosen = None if customers is None else frozenset(customers)
    return sorted((o for o in _order_inputs(plan) if _held(o, hold_from, chosen)),
                  key=lambda o: (o.ordered_at, o.external_id))


def _write_orders(plan: DemoPlan, *, progress: bool,
                  hold: tuple[dt.datetime, frozenset[str] | None] | None = None) -> int:
    items = [o for o in _order_inputs(plan) if hold is None or not _held(o, *hold)]
    with tqdm(total=len(items), desc="orders", unit="order", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(items), ORDER_BATCH):
            batch = items[start:start + ORDER_BATCH]
            orders_insert(actor=DEMO_ACTOR, items=batch, all_or_nothing=True)
            bar.update(len(batch))
    return len(items)


def _write_cancellations(plan: DemoPlan, rows: dict[str, Customer]) -> int:
    cancelled = [p for p in plan.customers if p.cancelled_at]
    for p in cancelled:
        customer_cancel(actor=DEMO_ACTOR, customer=rows[p.external_id], cancelled_at=p.cancelled_at)
    return len(cancelled)


def _write_records(plan: DemoPlan, rows: dict[str, Customer], by_role: dict[Role, AbstractUser]) -> dict[str, int]:
    complaints: list[Complaint] = []
    feedback: list[Feedback] = []
    contacts: list[Contact] = []
    for p in plan.customers:
        # The Customer instance (not just its id) so the audit snapshot reads it without a query per row.
        customer = rows[p.external_id]
        for c in p.complaints:
            complaints.append(Complaint(
                external_id=f"{DEMO_PREFIX}CP{len(complaints) + 1:06d}", customer=customer, opened_at=c.opened_at,
                category=c.category, severity=c.severity, summary=c.summary, status=c.status,
                resolved_at=c.resolved_at, resolution=c.resolution, owner=by_role.get(c.owner) if c.owner else None,
            ))
        for f in p.feedback:
            feedback.append(Feedback(
                external_id=f"{DEMO_PREFIX}FB{len(feedback) + 1:06d}", customer=customer, kind=f.kind,
                score=f.score, comment=f.comment, responded_at=f.responded_at,
            ))
        for t in p.contacts:
            contacts.append(Contact(
                external_id=f"{DEMO_PREFIX}CT{len(contacts) + 1:06d}", customer=customer, channel=t.channel,
                direction=t.direction, occurred_at=t.occurred_at, outcome=t.outcome, notes=t.notes,
                agent=by_role.get(t.agent) if t.agent else None,
            ))
    for model, objs, fields in (
        (Complaint, complaints, COMPLAINT_FIELDS), (Feedback, feedback, FEEDBACK_FIELDS), (Contact, contacts, CONTACT_FIELDS),
    ):
        model.objects.bulk_create(objs, batch_size=1000)
        audit_bulk_create(actor=DEMO_ACTOR, instances=objs, fields=fields)
    return {"complaints": len(complaints), "feedback": len(feedback), "contacts": len(contacts)}
