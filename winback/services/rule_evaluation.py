"""Backtest of the lapse rules: does our lapse flag pick the right customers?

The question is asked of a transaction log split at a calibration end C and a holdout end H:

- calibration = purchases on or before C; holdout = purchases in (C, H];
- population = customers whose first purchase is on or before C;
- label (the positive class) = "no purchase in the holdout": the customer really was gone;
- repeat buyers = the customers with 3 or more purchase days in the calibration part (where a customer's
  own rhythm exists, and where the rules differ most).

Day granularity everywhere (as in the BG/NBD paper): a customer's purchases on one day are one purchase, their
amounts summed. The rhythm rule (docs/metrics.md section 1) therefore counts purchase days as its "orders".

Every rule gives each customer a score at C (higher = more likely gone) and a flag of its own:

1. global windows (60, 90, 120, 180 days): score = days since the last purchase; flag when it is > window;
2. the rhythm rule with the given policy (the product's default: k 3, min_orders 3, default 90 d, floor 14 d,
   cap 365 d): score = recency / threshold after the last purchase; flag when recency > threshold, with the
   product's own arithmetic (PolicyParams.thresholds, vectorised by rhythm_thresholds_us);
3. the rhythm rule with k tuned, and with k and the floor (min_days) tuned together: "a rhythm with a floor"
   never flags before the floor but waits longer for slow-rhythm customers;
4. BG/NBD and MBG/NBD: score = 1 - P(alive). BG/NBD says P(alive) = 1 for a customer with no repeat purchase,
   so it cannot flag a one-time buyer; MBG/NBD can;
5. an L2-regularised logistic regression on the customer's history (see logistic_fit for the features).

Inner backtest. Whatever a rule needs to learn (tuned k and floor, the models' and the classifier's flag
thresholds, the classifier's weights) is learnt inside the calibration part only, never from the holdout: an
inner cut C' = C - min(H - C, half the calibration span) splits the calibration part the same way (inner
population = customers with a first purchase on or before C', inner label = no purchase in (C', C]); the
parameters and thresholds maximising F1 there are then applied unchanged at C. BG/NBD and MBG/NBD are fitted
twice: at C' (to choose their P(alive) threshold) and on the whole calibration part (to score at C), since
their fit needs no label. Everything is tuned on all customers (the product runs one rule for everyone) and
also reported on the repeat buyers. The inner holdout is shorter than the real one whenever the calibration
span is short, so the inner base rate of "gone" is lower: thresholds learnt there lean towards flagging less.

Two threshold modes per rule:

- "rate": the rhythm rule's flag rate: flag the top N by score, N = the given-policy rhythm rule's flagged count
  in that population (ties broken by customer id). At equal flag rate, all global windows are the same ranking
  (by recency), so they tie;
- "own": the rule's native flag (global windows, rhythm rules) or the threshold chosen on the inner backtest.

The ROC AUC (Mann-Whitney with average ranks for ties) depends on the score alone, so it is the same in both
modes. Also: the mean absolute error of expected vs actual holdout purchase days per customer for BG/NBD,
MBG/NBD (conditional expectation over the holdout length, in weeks) and a naive baseline (the customer's
calibration repeat-purchase rate, repeat purchase days / weeks since the first purchase, times the holdout
length).

The core (lapse_rules_evaluate) takes a Transactions object (plain arrays), so the same backtest runs on the
product's own order history; transactions_read reads CDNOW's format or the product's orders CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from predictions import btyd
from winback.models import DormancyPolicy
from winback.services.policy import PolicyParams, policy_params

US_PER_DAY = 86_400_000_000
FORMATS = ("auto", "cdnow", "orders")
ORDER_COLUMNS = ("external_id", "customer", "ordered_at", "amount", "currency", "coupon_code")
GLOBAL_WINDOWS = (60, 90, 120, 180)
K_GRID = tuple(100 + 25 * i for i in range(21))  # k = 1.00 .. 6.00 step 0.25, in hundredths (PolicyParams.K)
FLOOR_GRID = (14, 30, 45, 60, 75, 90, 120)  # min_days candidates for "a rhythm with a floor"
REPEAT_MIN = 3  # purchase days in the calibration part that make a repeat buyer
RATE, OWN = "rate", "own"
MODE_NAMES = {RATE: "flag rate", OWN: "own"}
FEATURES = (
    "recency", "frequency", "tenure", "gap_mean", "gap_std", "log_mean_spend", "since_rhythm_crossing", "one_time",
)


class TransactionsError(ValueError):
    """The transaction log cannot be read (the message says where and why)."""


class EvaluationError(ValueError):
    """The backtest cannot run on this log and these dates (the message says why)."""


# --- Input -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Transactions:
    """A transaction log as plain arrays, one entry per purchase (several a day are allowed; they are merged).

    customer: customer ids (str, object array); day: dates as proleptic Gregorian ordinals (date.toordinal());
    amount: the purchase's amount (float).
    """

    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.customer) == len(self.day) == len(self.amount)):
            raise ValueError("customer, day and amount must have the same length.")

    @classmethod
    def of(cls, *, customer: Sequence[Any], date: Sequence[dt.date], amount: Sequence[float]) -> Transactions:
        return cls(
            customer=np.asarray([str(c) for c in customer], dtype=object),
            day=np.fromiter((d.toordinal() for d in date), dtype=np.int64, count=len(date)),
            amount=np.asarray(amount, dtype=float),
        )

    def __len__(self) -> int:
        return len(self.day)


def transactions_read(*, path: Path, format: str = "auto", tz: dt.tzinfo | None = None) -> Transactions:
    """Read CDNOW's format or the product's orders CSV.

    cdnow: whitespace-separated master customer id (the customer), sample id, date YYYYMMDD, number of CDs,
    dollar value (the 1/10th sample, CDNOW_sample.txt), or customer id, date, number of CDs, dollar value
    after a header line (the full file, CDNOW_master.txt). orders: a CSV with the header external_id,customer,ordered_at,amount,currency,coupon_code
    (customer = the customer's external id; ordered_at an ISO 8601 date or date-time; a date-time with an offset
    is converted to tz, default the business time zone, before its date is taken). auto: orders when the first
    line is that header, cdnow otherwise. Raises TransactionsError (missing file, unknown format, a bad row with
    its line number).
    """
    path = Path(path)
    if format not in FORMATS:
        raise TransactionsError(f"Unknown format '{format}': use one of {', '.join(FORMATS)}.")
    if not path.is_file():
        raise TransactionsError(f"No such file: {path}")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if format == "auto":
            first = handle.readline()
            handle.seek(0)
            names = [c.strip().lower() for c in first.split(",")]
            format = "orders" if "ordered_at" in names and "customer" in names else "cdnow"
        if format == "orders":
            return _orders_read(handle, path=path, tz=tz)
        return _cdnow_read(handle, path=path)


def _cdnow_read(handle: Any, *, path: Path) -> Transactions:
    customers: list[str] = []
    days: list[int] = []
    amounts: list[float] = []
    width = None  # 5 (the sample: master id, sample id, ...) or 4 (the master file: id, ...), from the first row
    for number, line in enumerate(handle, start=1):
        fields = line.split()
        if not fields:
            continue
        if width is None and len(fields) == 4 and fields[0] == "customer_id":
            continue  # the master file's header
        width = width or len(fields)
        if len(fields) != width or width not in (4, 5):
            raise TransactionsError(
                f"{path}, line {number}: expected 5 whitespace-separated fields (master id, sample id, date "
                f"YYYYMMDD, CDs, dollars) or 4 (id, date, CDs, dollars) on every line, found {len(fields)}: "
                f"{line.strip()[:80]!r}"
            )
        date_field, dollars = fields[width - 3], fields[width - 1]
        try:
            day = dt.datetime.strptime(date_field, "%Y%m%d").date().toordinal()
        except ValueError:
            raise TransactionsError(f"{path}, line {number}: bad date {date_field!r} (expected YYYYMMDD).") from None
        try:
            amount = float(dollars)
        except ValueError:
            raise TransactionsError(f"{path}, line {number}: bad dollar value {dollars!r}.") from None
        if not math.isfinite(amount):
            raise TransactionsError(f"{path}, line {number}: bad dollar value {dollars!r}.")
        customers.append(fields[0])
        days.append(day)
        amounts.append(amount)
    return Transactions(
        customer=np.asarray(customers, dtype=object), day=np.asarray(days, dtype=np.int64),
        amount=np.asarray(amounts, dtype=float),
    )


def _orders_read(handle: Any, *, path: Path, tz: dt.tzinfo | None) -> Transactions:
    if tz is None:
        from django.utils import timezone

        tz = timezone.get_default_timezone()
    reader = csv.DictReader(handle)
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    missing = [c for c in ("customer", "ordered_at", "amount") if c not in header]
    if missing:
        raise TransactionsError(
            f"{path}, line 1: not an orders CSV: missing column(s) {', '.join(missing)} "
            f"(expected the header {','.join(ORDER_COLUMNS)})."
        )
    reader.fieldnames = header
    customers: list[str] = []
    days: list[int] = []
    amounts: list[float] = []
    for row in reader:
        number = reader.line_num
        customer = (row.get("customer") or "").strip()
        if not customer:
            raise TransactionsError(f"{path}, line {number}: the customer is empty.")
        raw = (row.get("ordered_at") or "").strip()
        try:
            when = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise TransactionsError(
                f"{path}, line {number}: bad ordered_at {raw!r} (expected an ISO 8601 date or date-time)."
            ) from None
        if when.tzinfo is not None:
            when = when.astimezone(tz)
        raw_amount = (row.get("amount") or "").strip()
        try:
            amount = Decimal(raw_amount)
        except InvalidOperation:
            raise TransactionsError(f"{path}, line {number}: bad amount {raw_amount!r}.") from None
        if not amount.is_finite():
            raise TransactionsError(f"{path}, line {number}: bad amount {raw_amount!r}.")
        customers.append(customer)
        days.append(when.date().toordinal())
        amounts.append(float(amount))
    return Transactions(
        customer=np.asarray(customers, dtype=object), day=np.asarray(days, dtype=np.int64),
        amount=np.asarray(amounts, dtype=float),
    )


# --- Per-customer state at a cut --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PurchaseDays:
    """Purchases merged per customer and day, sorted by (customer, day); cust indexes ids (sorted)."""

    ids: np.ndarray
    cust: np.ndarray
    day: np.ndarray
    amount: np.ndarray


def purchase_days_merge(transactions: Transactions) -> PurchaseDays:
    if not len(transactions):
        empty = np.zeros(0, dtype=np.int64)
        return PurchaseDays(np.zeros(0, dtype=object), empty, empty, np.zeros(0))
    ids, cust = np.unique(transactions.customer, return_inverse=True)
    day = np.asarray(transactions.day, dtype=np.int64)
    order = np.lexsort((day, cust))
    cust, day, amount = cust[order], day[order], np.asarray(transactions.amount, dtype=float)[order]
    start = np.flatnonzero(np.r_[True, (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])])
    return PurchaseDays(ids, cust[start], day[start], np.add.reduceat(amount, start))


@dataclass(frozen=True, eq=False)
class CustomerState:
    """Each customer's history at a cut (customers with a first purchase on or before it, in id order).

    n = purchase days on or before the cut; first / last = the first and last of them (ordinals); spend = their
    total amount; gap_mean = (last - first) / (n - 1) (0 for one purchase); gap_std = the sample standard
    deviation of the gaps (0 with fewer than 3 purchases); later = purchase days in (cut, end].
    """

    cut: int
    end: int
    ids: np.ndarray
    n: np.ndarray
    first: np.ndarray
    last: np.ndarray
    spend: np.ndarray
    gap_mean: np.ndarray
    gap_std: np.ndarray
    later: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def recency(self) -> np.ndarray:
        return self.cut - self.last

    @property
    def tenure(self) -> np.ndarray:
        return self.cut - self.first

    @property
    def gone(self) -> np.ndarray:
        """The label: no purchase in (cut, end]."""
        return self.later == 0


def customer_state(days: PurchaseDays, *, cut: int, end: int) -> CustomerState:
    mask = days.day <= cut
    cust, day, amount = days.cust[mask], days.day[mask], days.amount[mask]
    if not len(cust):
        e = np.zeros(0, dtype=np.int64)
        f = np.zeros(0)
        return CustomerState(cut, end, np.zeros(0, dtype=object), e, e, e, f, f, f, e)
    size = len(days.ids)
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    ends = np.r_[starts[1:], len(cust)] - 1
    present = cust[starts]
    n = np.diff(np.r_[starts, len(cust)])
    same = cust[1:] == cust[:-1]
    gaps = np.diff(day)[same].astype(float)
    owner = cust[1:][same]
    gap_sum = np.bincount(owner, weights=gaps, minlength=size)[present]
    gap_sq = np.bincount(owner, weights=gaps**2, minlength=size)[present]
    m = n - 1
    gap_mean = np.where(m > 0, gap_sum / np.maximum(m, 1), 0.0)
    var = np.where(m >= 2, (gap_sq - gap_sum**2 / np.maximum(m, 1)) / np.maximum(m - 1, 1), 0.0)
    later = np.bincount(days.cust[(days.day > cut) & (days.day <= end)], minlength=size)[present]
    return CustomerState(
        cut=cut, end=end, ids=days.ids[present], n=n, first=day[starts], last=day[ends],
        spend=np.add.reduceat(amount, starts), gap_mean=gap_mean, gap_std=np.sqrt(np.maximum(var, 0.0)), later=later,
    )


# --- Rules -------------------------------------------------------------------------------------------------


def policy_default() -> PolicyParams:
    """The product's default dormancy policy (the DormancyPolicy model's field defaults), without the database."""
    return dataclasses.replace(policy_params(DormancyPolicy()), version=0)


def rhythm_thresholds_us(*, policy: PolicyParams, orders: np.ndarray, span_us: np.ndarray) -> np.ndarray:
    """The lapse threshold after order i (microseconds), vectorised: PolicyParams.thresholds' first value for
    each (i, span_us = t_i - t_1), in the same integer arithmetic (rounded down), so both agree exactly."""
    i = np.asarray(orders, dtype=np.int64)
    span = np.asarray(span_us, dtype=np.int64)
    own = policy.K * span // (100 * np.maximum(i - 1, 1))
    own = np.minimum(np.maximum(own, policy.min_us), policy.max_us)
    return np.where(i >= policy.min_orders, own, np.int64(policy.default_us))


def rhythm_scores(state: CustomerState, policy: PolicyParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score = recency / threshold, flag = recency > threshold, threshold in days) after the last purchase day."""
    threshold = rhythm_thresholds_us(policy=policy, orders=state.n, span_us=(state.last - state.first) * US_PER_DAY)
    recency = state.recency.astype(np.int64) * US_PER_DAY
    return recency / np.maximum(threshold, 1), recency > threshold, threshold / US_PER_DAY


def customer_features(*, state: CustomerState, policy: PolicyParams) -> np.ndarray:
    """The classifier's features (FEATURES order), one row per customer: recency, frequency (purchase days),
    tenure, mean gap, gap std, log(1 + mean spend per purchase day), days since the rhythm rule's crossing
    (negative while not crossed), one-time buyer (0/1). Days throughout."""
    _, _, threshold = rhythm_scores(state, policy)
    recency = state.recency.astype(float)
    return np.column_stack([
        recency, state.n.astype(float), state.tenure.astype(float), state.gap_mean, state.gap_std,
        np.log1p(np.maximum(state.spend / state.n, 0.0)), recency - threshold, (state.n == 1).astype(float),
    ])


@dataclass(frozen=True, eq=False)
class LogisticModel:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    converged: bool

    def predict(self, X: np.ndarray) -> np.ndarray:
        return special.expit(((X - self.mean) / self.scale) @ self.weights + self.intercept)


def logistic_fit(*, X: np.ndarray, y: np.ndarray, l2: float = 1.0) -> LogisticModel:
    """L2-regularised logistic regression on standardised features, by L-BFGS on the exact gradient.

    Loss = sum of log losses + l2/2 * |w|^2 (the intercept is not penalised): scikit-learn's default (C = 1).
    Written here on scipy.optimize rather than taken from scikit-learn, which would add ~40 MB to the runtime
    image for one linear model.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = (X - mean) / scale

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = Z @ w + b
        residual = special.expit(z) - y
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * (w @ w)
        return value, np.r_[Z.T @ residual + l2 * w, residual.sum()]

    result = optimize.minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B")
    return LogisticModel(mean, scale, result.x[:-1], float(result.x[-1]), bool(result.success))


# --- Metrics -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """For the positive class "no purchase in the holdout"; nan where undefined (e.g. precision with no flag)."""

    customers: int
    positives: int
    flagged: int
    true_positives: int
    precision: float
    recall: float
    f1: float
    auc: float


def roc_auc(*, score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC = the Mann-Whitney U / (positives * negatives), ties counted one half (average ranks)."""
    label = np.asarray(label, dtype=bool)
    positives = int(label.sum())
    negatives = len(label) - positives
    if not positives or not negatives:
        return math.nan
    ranks = stats.rankdata(np.asarray(score, dtype=float))
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_metrics(*, flag: np.ndarray, label: np.ndarray, score: np.ndarray) -> Metrics:
    flag = np.asarray(flag, dtype=bool)
    label = np.asarray(label, dtype=bool)
    flagged, positives, tp = int(flag.sum()), int(label.sum()), int((flag & label).sum())
    return Metrics(
        customers=len(label), positives=positives, flagged=flagged, true_positives=tp,
        precision=tp / flagged if flagged else math.nan,
        recall=tp / positives if positives else math.nan,
        f1=2 * tp / (flagged + positives) if flagged + positives else math.nan,
        auc=roc_auc(score=score, label=label),
    )


def top_n(*, score: np.ndarray, n: int, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Flag the n highest scores; equal scores go in tiebreak order (default: position, i.e. customer id)."""
    score = np.asarray(score, dtype=float)
    tiebreak = np.arange(len(score)) if tiebreak is None else tiebreak
    flag = np.zeros(len(score), dtype=bool)
    flag[np.lexsort((tiebreak, -score))[:n]] = True
    return flag


def f1_difference_interval(*, flag_a: np.ndarray, flag_b: np.ndarray, label: np.ndarray, rounds: int = 2000,
                           seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of F1(flag_a) - F1(flag_b): customers resampled with replacement, both
    rules judged on the same resample (seeded: the same data gives the same interval)."""
    label, flag_a, flag_b = (np.asarray(v, dtype=bool) for v in (label, flag_a, flag_b))
    n = len(label)
    if not n:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    diffs = []
    chunk = max(1, 5_000_000 // n)  # bounded memory whatever the population
    for start in range(0, rounds, chunk):
        idx = rng.integers(0, n, size=(min(chunk, rounds - start), n))
        y, a, b = label[idx], flag_a[idx], flag_b[idx]
        positives = y.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1_a = 2 * (a & y).sum(axis=1) / (a.sum(axis=1) + positives)
            f1_b = 2 * (b & y).sum(axis=1) / (b.sum(axis=1) + positives)
        diffs.append(f1_a - f1_b)
    low, high = np.nanpercentile(np.concatenate(diffs), [2.5, 97.5])
    return float(low), float(high)


def best_cutoff(*, score: np.ndarray, label: np.ndarray) -> float:
    """The cutoff c maximising the F1 of "score > c" (c halfway between two distinct scores; -inf = flag all,
    the largest score = flag none). The first best, from the highest cutoff, wins ties."""
    score = np.asarray(score, dtype=float)
    label = np.asarray(label, dtype=bool)
    if not len(score):
        return math.inf
    s = -np.sort(-score)
    y = label[np.argsort(-score, kind="stable")]
    tp = np.cumsum(y)
    f1 = 2 * tp / (np.arange(1, len(s) + 1) + label.sum())
    group_end = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(group_end, f1, -1.0)
    best = int(np.argmax(f1))
    if f1[best] <= 0:
        return float(s[0])
    if best + 1 == len(s):
        return -math.inf
    return float((s[best] + s[best + 1]) / 2)


# --- The evaluation ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    rule: str  # key: global_60, rhythm_default, rhythm_k, rhythm_k_floor, bgnbd, mbgnbd, logistic
    name: str
    mode: str  # RATE or OWN
    cutoff: str  # what flags in this mode
    all_customers: Metrics
    repeat_buyers: Metrics


@dataclass(frozen=True)
class Mae:
    model: str
    all_customers: float
    repeat_buyers: float


@dataclass(frozen=True)
class Evaluation:
    calibration_end: dt.date
    holdout_end: dt.date
    inner_cut: dt.date
    customers: int
    positives: int
    repeat_buyers: int
    repeat_positives: int
    inner_customers: int
    inner_positives: int
    policy: PolicyParams
    tuned: dict[str, float]  # k, k_with_floor, floor_days, and the own-mode cutoffs of the learnt rules
    rows: tuple[Row, ...]
    mae: tuple[Mae, ...]
    notes: tuple[str, ...] = ()
    # The 95% bootstrap interval of the winner's F1 margin over the best global window (repeat buyers, at the
    # rhythm rule's flag rate): is the margin more than the luck of which customers were in the sample?
    winner_margin_interval: tuple[float, float] = (math.nan, math.nan)

    def row(self, rule: str, mode: str) -> Row:
        return next(r for r in self.rows if r.rule == rule and r.mode == mode)

    def winner(self) -> tuple[Row, Row]:
        """(the best rule by F1 among repeat buyers at the rhythm rule's flag rate, the best global window there);
        the first in row order wins a tie."""
        return _winner(self.rows)


def _winner(rows: Sequence[Row]) -> tuple[Row, Row]:
    rate = [r for r in rows if r.mode == RATE]

    def best(candidates: list[Row]) -> Row:
        return max(candidates, key=lambda r: -1.0 if math.isnan(r.repeat_buyers.f1) else r.repeat_buyers.f1)

    return best(rate), best([r for r in rate if r.rule.startswith("global_")])


@dataclass(frozen=True, eq=False)
class _Scored:
    rule: str
    name: str
    score: np.ndarray
    flag: np.ndarray
    cutoff: str


def btyd_inputs(state: CustomerState) -> dict[str, np.ndarray]:
    return {
        "x": (state.n - 1).astype(float), "t_x": (state.last - state.first) / 7.0, "T": (state.cut - state.first) / 7.0,
    }


def _p_alive_cutoff(cut: float) -> str:
    """How "1 - P(alive) > cut" reads."""
    if cut == -math.inf:
        return "everyone"
    return "no one" if cut >= 1 else f"P(alive) < {1 - cut:.3f}"


def lapse_rules_evaluate(
    *, transactions: Transactions, calibration_end: dt.date, holdout_end: dt.date, policy: PolicyParams | None = None,
) -> Evaluation:
    """Backtest the lapse rules on a transaction log (see the module docstring). policy: the rhythm rule's
    policy (default: the product's default policy); purchase days are its orders."""
    if calibration_end >= holdout_end:
        raise EvaluationError(
            f"The calibration end ({calibration_end}) must be before the holdout end ({holdout_end})."
        )
    policy = policy or policy_default()
    days = purchase_days_merge(transactions)
    c, h = calibration_end.toordinal(), holdout_end.toordinal()
    outer = customer_state(days, cut=c, end=h)
    if not outer.size:
        raise EvaluationError(f"No customer has a purchase on or before the calibration end ({calibration_end}).")
    span = c - int(days.day.min())
    inner_cut = c - min(h - c, span // 2)
    inner = customer_state(days, cut=inner_cut, end=c) if inner_cut < c else None
    if inner is None or not inner.size:
        raise EvaluationError(
            f"The calibration part is too short for the inner backtest: no customer has a purchase on or before "
            f"the inner cut ({dt.date.fromordinal(inner_cut)}, calibration end minus half the calibration span)."
        )
    y_in, y_out = inner.gone, outer.gone
    notes: list[str] = []
    tuned: dict[str, float] = {}
    scored: list[_Scored] = []

    for window in GLOBAL_WINDOWS:
        recency = outer.recency.astype(float)
        scored.append(_Scored(f"global_{window}", f"global {window} d", recency, recency > window, f"recency > {window} d"))

    score, flag, _ = rhythm_scores(outer, policy)
    k = policy.K / 100
    scored.append(_Scored(
        "rhythm_default", f"rhythm k={k:g} floor {policy.min_us // US_PER_DAY} d", score, flag, "recency > threshold",
    ))

    def rhythm_tuned(grid: list[tuple[int, int]]) -> PolicyParams:
        best, best_f1 = policy, -1.0
        for K, min_us in grid:
            candidate = dataclasses.replace(policy, K=K, min_us=min_us)
            _, inner_flag, _ = rhythm_scores(inner, candidate)
            tp = int((inner_flag & y_in).sum())
            f1 = 2 * tp / (int(inner_flag.sum()) + int(y_in.sum()) or 1)
            if f1 > best_f1:
                best, best_f1 = candidate, f1
        return best

    tuned_k = rhythm_tuned([(K, policy.min_us) for K in K_GRID])
    tuned["k"] = tuned_k.K / 100
    score, flag, _ = rhythm_scores(outer, tuned_k)
    scored.append(_Scored("rhythm_k", f"rhythm k tuned ({tuned['k']:g})", score, flag, "recency > threshold"))
    tuned_kf = rhythm_tuned([(K, floor * US_PER_DAY) for floor in FLOOR_GRID for K in K_GRID])
    tuned["k_with_floor"] = tuned_kf.K / 100
    tuned["floor_days"] = tuned_kf.min_us / US_PER_DAY
    score, flag, _ = rhythm_scores(outer, tuned_kf)
    scored.append(_Scored(
        "rhythm_k_floor", f"rhythm k+floor tuned ({tuned['k_with_floor']:g}, {tuned['floor_days']:g} d)", score, flag,
        "recency > threshold",
    ))

    for key, value in (("k", tuned["k"]), ("k_with_floor", tuned["k_with_floor"])):
        if value in (K_GRID[0] / 100, K_GRID[-1] / 100):
            notes.append(
                f"tuned k = {value:g} ({key}) is at the edge of the grid {K_GRID[0] / 100:g}..{K_GRID[-1] / 100:g}: "
                "the inner backtest's best may lie beyond it."
            )
    if tuned["floor_days"] == FLOOR_GRID[-1]:
        notes.append(f"the tuned floor is the grid's largest ({FLOOR_GRID[-1]} d): the best may lie beyond it.")

    t_holdout = (h - c) / 7.0
    x_out = btyd_inputs(outer)
    expected: dict[str, np.ndarray] = {}
    for key, name, fit, p_alive, purchases in (
        ("bgnbd", "BG/NBD P(alive)", btyd.bgnbd_fit, btyd.bgnbd_p_alive, btyd.bgnbd_expected_purchases),
        ("mbgnbd", "MBG/NBD P(alive)", btyd.mbgnbd_fit, btyd.mbgnbd_p_alive, btyd.mbgnbd_expected_purchases),
    ):
        try:
            fit_in, fit_out = fit(**btyd_inputs(inner)), fit(**btyd_inputs(outer))
        except btyd.FitError as exc:
            notes.append(f"{name}: the fit failed ({exc}); its rows flag nobody.")
            nothing = np.zeros(outer.size)
            scored.append(_Scored(key, f"{name} (no fit)", nothing, nothing > 0, "no fit"))
            continue
        for label, result in (("inner cut", fit_in), ("calibration end", fit_out)):
            if not result.converged:
                notes.append(f"{name}: the fit at the {label} did not converge ({result.message}).")
        cut = best_cutoff(score=1 - np.asarray(p_alive(params=fit_in.params, **btyd_inputs(inner))), label=y_in)
        tuned[f"{key}_cutoff"] = cut  # flag when 1 - P(alive) > cutoff
        score = 1 - np.asarray(p_alive(params=fit_out.params, **x_out), dtype=float)
        scored.append(_Scored(key, name, score, score > cut, _p_alive_cutoff(cut)))
        expected[key] = np.asarray(purchases(params=fit_out.params, t=t_holdout, **x_out), dtype=float)

    model = logistic_fit(X=customer_features(state=inner, policy=policy), y=y_in)
    if not model.converged:
        notes.append("logistic regression: the optimiser did not converge.")
    cut = best_cutoff(score=model.predict(customer_features(state=inner, policy=policy)), label=y_in)
    tuned["logistic_p_min"] = cut
    score = model.predict(customer_features(state=outer, policy=policy))
    scored.append(_Scored("logistic", "logistic regression", score, score > cut, f"P(gone) > {cut:.3f}"))

    repeat = outer.n >= REPEAT_MIN
    rhythm_flag = next(s for s in scored if s.rule == "rhythm_default").flag
    n_all, n_repeat = int(rhythm_flag.sum()), int(rhythm_flag[repeat].sum())
    rows: list[Row] = []
    for mode in (RATE, OWN):
        for s in scored:
            if mode == RATE:
                flag_all, flag_repeat = top_n(score=s.score, n=n_all), top_n(score=s.score[repeat], n=n_repeat)
                cutoff = f"top {n_all} / {n_repeat} by score"
            else:
                flag_all, flag_repeat, cutoff = s.flag, s.flag[repeat], s.cutoff
            rows.append(Row(
                rule=s.rule, name=s.name, mode=mode, cutoff=cutoff,
                all_customers=classification_metrics(flag=flag_all, label=y_out, score=s.score),
                repeat_buyers=classification_metrics(flag=flag_repeat, label=y_out[repeat], score=s.score[repeat]),
            ))

    evaluation_rows = tuple(rows)
    winner, best_window = _winner(evaluation_rows)
    by_rule = {s.rule: s for s in scored}
    interval = f1_difference_interval(
        flag_a=top_n(score=by_rule[winner.rule].score[repeat], n=n_repeat),
        flag_b=top_n(score=by_rule[best_window.rule].score[repeat], n=n_repeat), label=y_out[repeat])

    actual = outer.later.astype(float)
    T = x_out["T"]
    expected["naive"] = np.where(T > 0, x_out["x"] / np.where(T > 0, T, 1.0), 0.0) * t_holdout
    mae = tuple(
        Mae(model=name, all_customers=float(np.mean(np.abs(expected[key] - actual))),
            repeat_buyers=float(np.mean(np.abs(expected[key] - actual)[repeat])) if repeat.any() else math.nan)
        for key, name in (("bgnbd", "BG/NBD"), ("mbgnbd", "MBG/NBD"), ("naive", "naive (calibration rate)"))
        if key in expected
    )
    return Evaluation(
        calibration_end=calibration_end, holdout_end=holdout_end, inner_cut=dt.date.fromordinal(inner_cut),
        customers=outer.size, positives=int(y_out.sum()), repeat_buyers=int(repeat.sum()),
        repeat_positives=int(y_out[repeat].sum()), inner_customers=inner.size, inner_positives=int(y_in.sum()),
        policy=policy, tuned=tuned, rows=evaluation_rows, mae=mae, notes=tuple(notes), winner_margin_interval=interval,
    )


# --- The printed table -------------------------------------------------------------------------------------


def _f(value: float, width: int = 6) -> str:
    return f"{'n/a':>{width}}" if math.isnan(value) else f"{value:>{width}.3f}"


def _share(part: int, whole: int) -> str:
    return f"{part:,} ({part / whole:.1%})" if whole else f"{part:,}"


def evaluation_table(*, evaluation: Evaluation) -> str:
    e = evaluation
    holdout_days = (e.holdout_end - e.calibration_end).days
    lines = [
        f"Lapse rules backtest: calibration to {e.calibration_end}, holdout ({e.calibration_end}, {e.holdout_end}] "
        f"({holdout_days} days). Positive = no purchase in the holdout.",
        f"All customers (first purchase on or before {e.calibration_end}): {e.customers:,}, "
        f"positive {_share(e.positives, e.customers)}.",
        f"Repeat buyers ({REPEAT_MIN}+ purchase days in the calibration part): {e.repeat_buyers:,}, "
        f"positive {_share(e.repeat_positives, e.repeat_buyers)}.",
        f"Inner backtest (tuning, model thresholds, classifier training): cut {e.inner_cut}, "
        f"{e.inner_customers:,} customers, positive (no purchase in ({e.inner_cut}, {e.calibration_end}]) "
        f"{_share(e.inner_positives, e.inner_customers)}.",
        "Tuned on the inner backtest: " + "; ".join(
            [f"k = {e.tuned['k']:g} (floor {e.policy.min_us // US_PER_DAY} d)",
             f"k = {e.tuned['k_with_floor']:g} with floor {e.tuned['floor_days']:g} d"]
            + [f"{name} flags {_p_alive_cutoff(e.tuned[key + '_cutoff'])}"
               for key, name in (("bgnbd", "BG/NBD"), ("mbgnbd", "MBG/NBD")) if key + "_cutoff" in e.tuned]
            + [f"logistic P(gone) > {e.tuned['logistic_p_min']:.3f}"]
        ) + ".",
        "Modes: 'flag rate' = the top N by score, N = the default rhythm rule's flagged count in that population; "
        "'own' = the rule's own flag (native, or its threshold from the inner backtest).",
        "",
    ]
    name_width = max(len(r.name) for r in e.rows)
    group = f"{'flagged':>7} {'prec':>6} {'recall':>6} {'F1':>6} {'AUC':>6}"
    lines.append(f"{'':{name_width}}  {'':9}  | {'all customers':^{len(group)}} | {'repeat buyers':^{len(group)}}")
    lines.append(f"{'rule':{name_width}}  {'mode':9}  | {group} | {group}")
    lines.append("-" * len(lines[-1]))
    for mode in (RATE, OWN):
        for r in (r for r in e.rows if r.mode == mode):
            cells = []
            for m in (r.all_customers, r.repeat_buyers):
                cells.append(f"{m.flagged:>7} {_f(m.precision)} {_f(m.recall)} {_f(m.f1)} {_f(m.auc)}")
            lines.append(f"{r.name:{name_width}}  {MODE_NAMES[mode]:9}  | {cells[0]} | {cells[1]}")
        lines.append("")
    lines.append("At equal flag rate all global windows are one ranking (by recency), hence identical rows.")
    lines.append(f"Mean absolute error, expected vs actual holdout purchase days per customer ({holdout_days / 7:.1f} weeks):")
    for m in e.mae:
        lines.append(f"  {m.model:<26} all {_f(m.all_customers, 0)}   repeat buyers {_f(m.repeat_buyers, 0)}")
    best, best_window = e.winner()
    margin = best.repeat_buyers.f1 - best_window.repeat_buyers.f1
    lines.append(
        f"Winner among repeat buyers at the rhythm rule's flag rate (F1): {best.name}, F1 {best.repeat_buyers.f1:.3f}, "
        f"{margin:+.3f} over the best global window ({best_window.name}, {best_window.repeat_buyers.f1:.3f}); "
        f"95% bootstrap interval of the margin {e.winner_margin_interval[0]:+.3f} .. {e.winner_margin_interval[1]:+.3f}"
        + (" (a tie: the interval holds 0)." if e.winner_margin_interval[0] <= 0 <= e.winner_margin_interval[1] else ".")
    )
    lines.extend(f"Note: {n}" for n in e.notes)
    return "\n".join(lines)
