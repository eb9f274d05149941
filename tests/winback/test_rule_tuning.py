"""Choosing the lapse rule on the business's own orders, and adopting it with one click."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from predictions.services.fitting import models_fit
from tests.predictions.test_fitting import cdnow  # noqa: F401 (fixture: CDNOW's sample as our orders)
from winback.services import rule_tuning
from winback.models import DormancyPolicy, RuleTuning
from winback.services.policy import policy_change, policy_current
from winback.services.rule_tuning import lapse_rule_adopt, lapse_rule_tune

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc
# CDNOW's evaluation split: calibration to 1997-09-30, holdout to 1998-06-30 (273 days).
END_OF_DATA = dt.datetime(1998, 6, 30, 23, tzinfo=UTC)


def row(tuning: RuleTuning, key: str) -> dict:
    return next(r for r in tuning.candidates if r["key"] == key)


def test_the_backtest_on_our_orders_scores_every_candidate_like_the_evaluation_does(cdnow):  # noqa: F811
    # Given CDNOW's sample as our orders and the rhythm rule in use
    policy_change(user=None, values={"rule": "rhythm"})
    # When the rules are backtested with the last 273 days as the holdout
    tuning = lapse_rule_tune(holdout_days=273, now=END_OF_DATA)
    # Then it ran on the 2,357 customers, calibrated to 30 September 1997
    assert (tuning.reason, tuning.customers, tuning.calibration_end) == ("", 2357, dt.date(1997, 9, 30))
    # And the window and the current rhythm rule score what evaluate_lapse_rules measures on the same split
    assert row(tuning, "window_90")["all"] == {"customers": 2357, "flagged": 1946, "precision": pytest.approx(0.796, abs=1e-3),
                                               "recall": pytest.approx(0.926, abs=1e-3), "f1": pytest.approx(0.856, abs=1e-3)}
    assert row(tuning, "window_90")["repeat"]["f1"] == pytest.approx(0.555, abs=1e-3)
    assert row(tuning, "current")["all"]["f1"] == pytest.approx(0.852, abs=1e-3)
    assert row(tuning, "current")["repeat"]["f1"] == pytest.approx(0.456, abs=1e-3)
    # And the current rule comes first, the others best first, and the best is named
    assert tuning.candidates[0]["key"] == "current"
    f1s = [r["all"]["f1"] for r in tuning.candidates[1:]]
    assert f1s == sorted(f1s, reverse=True)
    assert tuning.best_key == max(tuning.candidates, key=lambda r: r["all"]["f1"])["key"]
    # And "today" is counted on the whole history: everyone is long gone by the end of the data plus a year
    later = lapse_rule_tune(holdout_days=273, now=END_OF_DATA + dt.timedelta(days=730))
    assert row(later, "window_90")["flagged_today"] == 2357


def test_without_a_usable_fit_there_is_no_model_candidate_and_with_one_there_is(cdnow):  # noqa: F811
    assert not any(r["key"].startswith("model_") for r in lapse_rule_tune(holdout_days=273, now=END_OF_DATA).candidates)
    models_fit(as_of=END_OF_DATA)
    tuning = lapse_rule_tune(holdout_days=273, now=END_OF_DATA)
    models = [r for r in tuning.candidates if r["key"].startswith("model_")]
    assert len(models) == 5 and all(0 < r["all"]["flagged"] <= 2357 for r in models)


def test_a_manager_adopts_a_candidate_with_one_click_as_a_new_policy_version(cdnow, manager, agent):  # noqa: F811
    policy_change(user=None, values={"rule": "rhythm"})
    tuning = lapse_rule_tune(holdout_days=273, now=END_OF_DATA)
    before = policy_current()
    url = f"/admin/winback/dormancypolicy/adopt/{tuning.pk}/window_60/"
    # The page shows the backtest with its explanation and an Adopt button per candidate
    client = Client()
    client.force_login(manager)
    page = client.get("/admin/winback/dormancypolicy/").content.decode()
    assert 'id="rule-tuning"' in page and url in page and "harmonic mean" in page
    # An agent cannot adopt; a GET changes nothing
    other = Client()
    other.force_login(agent)
    assert other.post(url).status_code in (302, 403)
    assert client.get(url).status_code == 405
    assert policy_current() == before
    # When the manager clicks Adopt
    response = client.post(url)
    assert response.status_code == 302
    # Then the candidate is the new policy version, by them, saying where it came from
    policy = policy_current()
    assert policy.pk != before.pk
    assert (policy.rule, policy.default_days, policy.created_by) == ("window", 60, manager)
    assert f"tuning #{tuning.pk}" in policy.note
    # And an unknown candidate is refused with a message, changing nothing
    client.post(f"/admin/winback/dormancypolicy/adopt/{tuning.pk}/nonsense/")
    assert policy_current() == policy
    with pytest.raises(ValidationError, match="no candidate"):
        lapse_rule_adopt(user=manager, tuning=tuning, key="nonsense")


def test_too_little_history_is_recorded_not_raised_and_bad_holdouts_are_refused():
    tuning = lapse_rule_tune(holdout_days=180)
    assert tuning.reason.startswith("Only 0 customers") and tuning.candidates == []
    with pytest.raises(ValidationError, match="30 to 730"):
        lapse_rule_tune(holdout_days=10)
    with pytest.raises(CommandError, match="30 to 730"):
        call_command("tune_lapse_rule", "--holdout-days", "5000")
    assert RuleTuning.objects.count() == 1


def test_the_command_prints_the_table(cdnow, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(rule_tuning.timezone, "now", lambda: END_OF_DATA)
    call_command("tune_lapse_rule", "--holdout-days", "273")
    out = capsys.readouterr().out
    assert "Calibration to 1997-09-30, holdout 273 days, 2357 customers" in out
    assert "Window: no order for 90 days" in out and "Best:" in out
    assert DormancyPolicy.objects.exists()
    assert Decimal(str(RuleTuning.objects.get().candidates[0]["values"]["k"])) > 0
