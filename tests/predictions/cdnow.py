"""The CDNOW 1/10th sample (tests/data/CDNOW_sample.txt) as transactions and as the calibration summary that
Fader, Hardie & Lee (2005) fit the BG/NBD and Gamma-Gamma models on.

Conventions, checked against the papers' published per-customer summary (customer 1: x=2, t_x=30.43,
T=38.86, mean repeat spend 22.35; customer 2: x=1, t_x=1.71, T=38.86; customer 3: x=0, T=38.86):
- time is in weeks = days / 7, measured from the customer's first purchase day;
- a "purchase" is a purchase DAY: several orders on one day are one transaction, their amounts summed;
- x counts the purchase days after the first one up to and including the calibration end date;
- T = (calibration_end - first purchase).days / 7, so a purchase on the end date has t = T;
- m is the mean amount of the repeat purchase days (the first purchase is left out, as in the paper).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data" / "CDNOW_sample.txt"

# The sample covers first purchases in 1997-Q1 and all their purchases to the end of June 1998; the papers
# calibrate on weeks 1-39 and hold out weeks 40-78.
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)
START = date(1997, 1, 1)


def load_transactions(path: Path = DATA) -> list[tuple[str, date, float]]:
    """One (sample customer id, date, dollar value) per row of the file, in file order."""
    rows: list[tuple[str, date, float]] = []
    with open(path, encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if not fields:
                continue
            _master, customer, day, _cds, amount = fields
            rows.append((customer, date(int(day[:4]), int(day[4:6]), int(day[6:8])), float(amount)))
    return rows


def purchase_days(transactions: list[tuple[str, date, float]]) -> dict[str, dict[date, float]]:
    """customer id -> {purchase day: amount spent that day}, same-day orders merged."""
    days: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for customer, day, amount in transactions:
        days[customer][day] += amount
    return {customer: dict(by_day) for customer, by_day in days.items()}


def calibration_summary(
    transactions: list[tuple[str, date, float]], calibration_end: date = CALIBRATION_END
) -> dict[str, np.ndarray]:
    """Per customer (sorted by id) who bought on or before calibration_end: ids, x, t_x, T (weeks) and m, the
    mean spend per repeat purchase day (0 where x == 0)."""
    ids: list[str] = []
    x: list[int] = []
    t_x: list[float] = []
    age: list[float] = []
    m: list[float] = []
    for customer, by_day in sorted(purchase_days(transactions).items()):
        days = sorted(day for day in by_day if day <= calibration_end)
        if not days:
            continue
        first, repeats = days[0], days[1:]
        ids.append(customer)
        x.append(len(repeats))
        t_x.append((days[-1] - first).days / 7)
        age.append((calibration_end - first).days / 7)
        m.append(sum(by_day[day] for day in repeats) / len(repeats) if repeats else 0.0)
    return {
        "ids": np.array(ids),
        "x": np.array(x, dtype=float),
        "t_x": np.array(t_x),
        "T": np.array(age),
        "m": np.array(m),
    }


def first_purchase_days(transactions: list[tuple[str, date, float]]) -> dict[str, date]:
    return {customer: min(by_day) for customer, by_day in purchase_days(transactions).items()}


def repeat_purchases_between(
    transactions: list[tuple[str, date, float]], start: date, end: date, ids: np.ndarray | None = None
) -> np.ndarray | int:
    """Repeat purchase days (not the first purchase day) in start..end inclusive: the total, or per customer
    in the order of ids when ids is given."""
    counts: dict[str, int] = {}
    for customer, by_day in purchase_days(transactions).items():
        first = min(by_day)
        counts[customer] = sum(1 for day in by_day if day != first and start <= day <= end)
    if ids is None:
        return sum(counts.values())
    return np.array([counts.get(str(customer), 0) for customer in ids], dtype=float)
