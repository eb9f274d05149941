import csv
import datetime as dt
import math
import re
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from winback.services.rule_evaluation import (
    OWN, RATE, Evaluation, Transactions, best_cutoff, f1_difference_interval, lapse_rules_evaluate, policy_default,
    TransactionsError, rhythm_thresholds_us, roc_auc, top_n, transactions_read,
)
from winback.services.policy import US_PER_DAY, PolicyParams

CDNOW = Path(__file__).resolve().parent.parent / "data" / "CDNOW_sample.txt"
CAL, HOLD = dt.date(1997, 9, 30), dt.date(1998, 6, 30)

# Measured on CDNOW with this code (calibration to 1997-09-30, holdout to 1998-06-30); the product owner's
# reference figures: global 90 d 0.856 vs rhythm 0.852 over all customers, 0.555 vs 0.456 over repeat buyers.
MEASURED_F1 = {
    ("global_90", OWN): (0.856, 0.555),
    ("rhythm_default", OWN): (0.852, 0.456),
    ("bgnbd", RATE): (0.719, 0.469),
}


def _run(*args: str) -> str:
    out = StringIO()
    call_command("evaluate_lapse_rules", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def cdnow() -> Evaluation:
    return lapse_rules_evaluate(transactions=transactions_read(path=CDNOW), calibration_end=CAL, holdout_end=HOLD)


def test_cdnow_through_the_command(cdnow):
    # Given the CDNOW sample, when the command runs on it
    table = _run("--transactions", str(CDNOW), "--calibration-end", str(CAL), "--holdout-end", str(HOLD))

    # then the population is CDNOW's 2,357 customers, and the key figures are the measured ones, in the object
    # and in the printed table
    assert cdnow.customers == 2357
    assert cdnow.repeat_buyers == 507
    for (rule, mode), (f1_all, f1_repeat) in MEASURED_F1.items():
        row = cdnow.row(rule, mode)
        assert row.all_customers.f1 == pytest.approx(f1_all, abs=0.01)
        assert row.repeat_buyers.f1 == pytest.approx(f1_repeat, abs=0.01)
        mode_name = "flag rate" if mode == RATE else "own"
        line = next(line for line in table.splitlines() if line.startswith(row.name + " ") and f" {mode_name} " in line)
        figures = re.findall(r"\d+\.\d{3}", line)  # prec, recall, F1, AUC for all, then for repeat buyers
        assert float(figures[2]) == pytest.approx(row.all_customers.f1, abs=0.0005)
        assert float(figures[6]) == pytest.approx(row.repeat_buyers.f1, abs=0.0005)

    # every AUC is a probability; the flag-rate rows flag exactly as many as the default rhythm rule
    rhythm = cdnow.row("rhythm_default", OWN)
    for row in cdnow.rows:
        for metrics in (row.all_customers, row.repeat_buyers):
            assert 0 <= metrics.auc <= 1
        if row.mode == RATE:
            assert row.all_customers.flagged == rhythm.all_customers.flagged
            assert row.repeat_buyers.flagged == rhythm.repeat_buyers.flagged

    # the winner named in the table is the rule with the highest F1 among repeat buyers at equal flag rate
    rate_rows = [r for r in cdnow.rows if r.mode == RATE]
    best = max(r.repeat_buyers.f1 for r in rate_rows)
    winner_line = next(line for line in table.splitlines() if line.startswith("Winner among repeat buyers"))
    named = re.search(
        r"\(F1\): (.+?), F1 (\d\.\d{3}), ([+-]\d\.\d{3}) over the best global window \((.+?), (\d\.\d{3})\)", winner_line,
    )
    assert named, winner_line
    winner = next(r for r in rate_rows if r.name == named[1])
    assert winner.repeat_buyers.f1 == best
    best_window = max(r.repeat_buyers.f1 for r in rate_rows if r.rule.startswith("global_"))
    assert float(named[3]) == pytest.approx(best - best_window, abs=0.001)
    # with the bootstrap interval of that margin: on CDNOW a handful of customers, a tie
    low, high = cdnow.winner_margin_interval
    assert low < best - best_window < high and low < 0 < high
    assert f"interval of the margin {low:+.3f} .. {high:+.3f} (a tie" in winner_line

    # the MAE lines: BG/NBD, MBG/NBD and the naive baseline, finite; the models beat the baseline on CDNOW
    mae = {m.model: m for m in cdnow.mae}
    assert set(mae) == {"BG/NBD", "MBG/NBD", "naive (calibration rate)"}
    for m in mae.values():
        assert math.isfinite(m.all_customers) and math.isfinite(m.repeat_buyers)
        assert f"{m.model:<26} all {m.all_customers:.3f}" in table
    assert mae["BG/NBD"].all_customers < mae["naive (calibration rate)"].all_customers

    # BG/NBD says P(alive) = 1 for one-time buyers: at the rhythm rule's flag rate it is far behind recency
    assert cdnow.row("bgnbd", RATE).all_customers.f1 < cdnow.row("global_90", RATE).all_customers.f1 - 0.1
    # the inner cut is the calibration end minus half the calibration span (272 days // 2)
    assert cdnow.inner_cut == dt.date(1997, 5, 17)
    assert {"k", "k_with_floor", "floor_days", "logistic_p_min"} <= set(cdnow.tuned)


def _day(offset: int) -> dt.date:
    return dt.date(2024, 3, 31) + dt.timedelta(days=offset)


def test_hand_made_log():
    # Given six customers (days relative to the calibration end 2024-03-31; the holdout runs to 2024-06-30):
    #   A: -200 -150 -100        rhythm 150 d, recency 100; no holdout purchase  -> positive
    #   B: -60 -50 -40           rhythm 30 d,  recency 40;  buys at +10          -> negative
    #   C: -120                  default 90 d, recency 120; nothing             -> positive
    #   D: -30                   default 90 d, recency 30;  nothing             -> positive
    #   E: -200 -95              default 90 d, recency 95; buys at +50           -> negative
    #   F: -300 -10 -10          two purchases the same day are one;  buys +20   -> negative
    #   G: +5 only               not in the population (first purchase after the calibration end)
    history = {
        "A": [-200, -150, -100], "B": [-60, -50, -40, 10], "C": [-120], "D": [-30], "E": [-200, -95, 50],
        "F": [-300, -10, -10, 20], "G": [5],
    }
    rows = [(c, _day(d)) for c, days in history.items() for d in days]
    log = Transactions.of(customer=[c for c, _ in rows], date=[d for _, d in rows], amount=[10.0] * len(rows))

    # when the rules are evaluated
    e = lapse_rules_evaluate(transactions=log, calibration_end=_day(0), holdout_end=_day(91))

    # then: 6 customers, 3 positives (A, C, D); repeat buyers (3+ purchase days) are A and B
    assert (e.customers, e.positives, e.repeat_buyers, e.repeat_positives) == (6, 3, 2, 1)
    # global 90 d flags A, C, E: 2 of 3 right, 2 of 3 found
    g = e.row("global_90", OWN).all_customers
    assert (g.flagged, g.true_positives) == (3, 2)
    assert (g.precision, g.recall, g.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # AUC by recency: positives 100, 120, 30 vs negatives 40, 95, 10: 3 + 3 + 1 of 9 pairs ordered right
    assert g.auc == pytest.approx(7 / 9)
    # the rhythm rule flags B (40 > 30), C (120 > 90), E (95 > 90): one right
    r = e.row("rhythm_default", OWN).all_customers
    assert (r.flagged, r.true_positives) == (3, 1)
    assert (r.precision, r.recall, r.f1) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # its scores recency/threshold: A .667+, B 1.333-, C 1.333+, D .333+, E 1.056-, F .111-: 1 + 2.5 (a tie) + 1
    assert r.auc == pytest.approx(4.5 / 9)
    # among repeat buyers (A+, B-): recency picks A, the rhythm rule picks B
    assert e.row("global_90", OWN).repeat_buyers.f1 == 1.0
    assert e.row("global_90", OWN).repeat_buyers.auc == 1.0
    assert (e.row("rhythm_default", OWN).repeat_buyers.f1, e.row("rhythm_default", OWN).repeat_buyers.auc) == (0.0, 0.0)
    rhythm_rep = e.row("rhythm_default", OWN).repeat_buyers
    assert math.isclose(rhythm_rep.precision, 0.0) and math.isclose(rhythm_rep.recall, 0.0)
    # at the rhythm rule's flag rate (3 of all, 1 of the repeat buyers) recency flags C, A, E and then A
    rate = e.row("global_180", RATE)
    assert (rate.all_customers.flagged, rate.all_customers.true_positives) == (3, 2)
    assert (rate.repeat_buyers.flagged, rate.repeat_buyers.f1) == (1, 1.0)
    # the inner cut: calibration end minus min(91-day holdout, 300-day span // 2)
    assert e.inner_cut == _day(-91)


def test_auc_cutoffs_and_ties():
    # AUC: all pairs right, all wrong, all tied
    y = np.array([True, True, False, False])
    assert roc_auc(score=np.array([4, 3, 2, 1]), label=y) == 1.0
    assert roc_auc(score=np.array([1, 2, 3, 4]), label=y) == 0.0
    assert roc_auc(score=np.ones(4), label=y) == 0.5
    assert math.isnan(roc_auc(score=np.ones(4), label=np.ones(4, dtype=bool)))
    # a brute-force count over random scores with many ties agrees
    rng = np.random.default_rng(1)
    score, label = rng.integers(0, 5, 300).astype(float), rng.random(300) < 0.4
    pos, neg = score[label][:, None], score[~label][None, :]
    assert roc_auc(score=score, label=label) == pytest.approx(((pos > neg) + 0.5 * (pos == neg)).mean())
    # top N: equal scores go to the lower position (customer id order)
    assert top_n(score=np.array([1.0, 2.0, 2.0, 0.0]), n=1).tolist() == [False, True, False, False]
    assert top_n(score=np.array([1.0, 2.0, 2.0, 0.0]), n=3).tolist() == [True, True, True, False]
    # the F1-best cutoff lies between two distinct scores; "flag all" is -inf
    assert best_cutoff(score=np.array([0.9, 0.8, 0.2, 0.1]), label=np.array([True, True, False, False])) == pytest.approx(0.5)
    assert best_cutoff(score=np.array([0.9, 0.8]), label=np.array([True, True])) == -math.inf


def test_vectorised_thresholds_agree_with_the_policy():
    # Given a few hundred random histories and policies
    rng = np.random.default_rng(7)
    for _ in range(10):
        policy = PolicyParams(
            version=1, K=int(rng.integers(1, 1000)), AK=150, min_orders=int(rng.integers(2, 6)),
            default_us=int(rng.integers(1, 400)) * US_PER_DAY, min_us=int(rng.integers(1, 60)) * US_PER_DAY,
            max_us=int(rng.integers(60, 800)) * US_PER_DAY, holdout_share=0.1, window_days=30,
        )
        orders = rng.integers(1, 30, 40)
        # spans in whole days (the evaluation's) and arbitrary microseconds
        whole_days = rng.integers(0, 3000, 40) * US_PER_DAY
        span = np.where(orders > 1, whole_days + rng.integers(0, 2, 40) * rng.integers(0, US_PER_DAY, 40), 0)
        # when both compute the lapse thresholds, then they agree to the microsecond
        got = rhythm_thresholds_us(policy=policy, orders=orders, span_us=span)
        want = [policy.thresholds(i=int(i), span_us=int(s))[0] for i, s in zip(orders, span, strict=True)]
        assert got.tolist() == want
    # and the default policy is the product's: k 3, 3 orders, 90 / 14 / 365 days
    default = policy_default()
    assert (default.K, default.min_orders, default.default_us, default.min_us, default.max_us) == (
        300, 3, 90 * US_PER_DAY, 14 * US_PER_DAY, 365 * US_PER_DAY,
    )


def test_orders_csv_gives_the_same_evaluation(tmp_path, settings, cdnow):
    # Given CDNOW's purchases written as the product's orders CSV, dates in three spellings (a date, a local
    # date-time, a date-time with an offset that falls on the same business day), in the CDNOW file's order
    settings.TIME_ZONE = "UTC"
    path = tmp_path / "orders.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "customer", "ordered_at", "amount", "currency", "coupon_code"])
        for number, line in enumerate(CDNOW.read_text().splitlines()):
            master, _, date, _, dollars = line.split()
            day = dt.datetime.strptime(date, "%Y%m%d").date()
            when = [day.isoformat(), f"{day}T13:45:00", f"{day - dt.timedelta(days=1)}T22:00:00-05:00"][number % 3]
            writer.writerow([f"o{number}", master, when, dollars, "USD", ""])

    # when the evaluation runs on it (auto-detected and named)
    for fmt in ("auto", "orders"):
        evaluation = lapse_rules_evaluate(
            transactions=transactions_read(path=path, format=fmt), calibration_end=CAL, holdout_end=HOLD,
        )
        # then it is the same evaluation as from the CDNOW file
        assert evaluation == cdnow


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (None, {}, "No such file"),
        ("", {"format": "xml"}, "Unknown format 'xml'"),
        (" 1 1 19970101 1 10.00\n 1 1 1997013x 1 10.00\n", {}, "line 2: bad date '1997013x'"),
        (" 1 1 19970101 1 10.00\n\n 2 2 19970102 1\n", {}, "line 3: expected 5 whitespace-separated fields"),
        (" 1 1 19970101 1 ten\n", {}, "line 1: bad dollar value 'ten'"),
        ("external_id,customer,ordered_at,amount,currency,coupon_code\no1,c1,2024-01-01,5,EUR,\no2,c1,yesterday,5,EUR,\n",
         {}, "line 3: bad ordered_at 'yesterday'"),
        ("external_id,customer,ordered_at,amount,currency,coupon_code\no1,c1,2024-01-01,5,EUR,\no2,c2,2024-01-02,x,EUR,\n",
         {}, "line 3: bad amount 'x'"),
        ("external_id,customer,ordered_at,amount,currency,coupon_code\no1,,2024-01-01,5,EUR,\n", {}, "line 2: the customer is empty"),
        ("external_id,customer,when,amount\n", {"format": "orders"}, "line 1: not an orders CSV: missing column(s) ordered_at"),
        (" 1 1 19970101 1 10.00\n", {"calibration_end": "1997-03-01", "holdout_end": "1997-03-01"},
         "--calibration-end (1997-03-01) must be before --holdout-end (1997-03-01)"),
        (" 1 1 19970101 1 10.00\n", {"calibration_end": "1997-13-01"}, "--calibration-end: '1997-13-01' is not a date"),
        (" 1 1 19970601 1 10.00\n", {}, "No customer has a purchase on or before the calibration end (1997-03-01)"),
        (" 1 1 19970301 1 10.00\n", {}, "too short for the inner backtest"),
    ],
)
def test_bad_input(tmp_path, content, options, message):
    # Given a bad file or bad options, when the command runs, then it stops with a message saying what is wrong
    path = tmp_path / "log.txt"
    if content is not None:
        path.write_text(content)
    args = {"calibration_end": "1997-03-01", "holdout_end": "1997-06-30", **options}
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(
            "evaluate_lapse_rules", "--transactions", str(path), "--calibration-end", args["calibration_end"],
            "--holdout-end", args["holdout_end"], *(["--format", args["format"]] if "format" in args else []),
            stdout=StringIO(),
        )


def test_the_bootstrap_interval_of_an_f1_difference():
    # Given 400 customers, half gone, and three ways to flag them
    label = np.arange(400) % 2 == 0
    perfect, coin = label.copy(), np.arange(400) % 4 < 2
    # Then a rule against itself differs by exactly nothing, and the same seed gives the same interval
    assert f1_difference_interval(flag_a=coin, flag_b=coin, label=label) == (0.0, 0.0)
    assert f1_difference_interval(flag_a=perfect, flag_b=coin, label=label) == f1_difference_interval(
        flag_a=perfect, flag_b=coin, label=label)
    # And a perfect flag beats a coin (F1 1.0 vs 0.5) by an interval around +0.5 that excludes 0
    low, high = f1_difference_interval(flag_a=perfect, flag_b=coin, label=label)
    assert 0.4 < low < 0.5 < high < 0.6


def test_cdnow_master_files_four_columns_and_header_read_as_the_samples_five(tmp_path):
    # Given the same purchases in the sample's layout and in the full file's (CDNOW_master.txt: a header, no sample id)
    sample = tmp_path / "sample.txt"
    sample.write_text(" 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n 00018 0002 19970102  2   26.50\n")
    master = tmp_path / "master.txt"
    master.write_text(" customer_id  date number_of_cds  dollar_value\n 00004 19970101  2   29.33\n"
                      " 00004 19970118  2   29.73\n 00018 19970102  2   26.50\n")
    # When both are read, then they are the same transactions
    a, b = transactions_read(path=sample), transactions_read(path=master)
    assert list(a.customer) == list(b.customer) == ["00004", "00004", "00018"]
    assert list(a.day) == list(b.day) and list(a.amount) == list(b.amount) == [29.33, 29.73, 26.5]
    # And a file that mixes the layouts is refused with the line
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(" 00004 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n")
    with pytest.raises(TransactionsError, match="line 2: expected 4 whitespace-separated|line 2: expected 5 whitespace-separated"):
        transactions_read(path=mixed)
