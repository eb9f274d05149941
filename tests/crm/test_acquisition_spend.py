"""Acquisition spend in (docs/metrics.md section 6, the numerator of CAC): the service's rules, the admin,
the API and the CSV import all refuse the same bad values, write audit rows, and a repeat changes nothing."""

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from core.selectors import business_settings
from crm.models import AcquisitionSpend, AuditEntry
from crm.services.audit import SYSTEM
from crm.services.imports import csv_import
from crm.services.spend import spend_delete, spend_latest_month, spend_update, spend_upsert
from tests.factories import AcquisitionSpendFactory

pytestmark = pytest.mark.django_db
API = "/api/acquisition-spend/"
ADMIN = "/admin/crm/acquisitionspend/"
MARCH = dt.date(2026, 3, 1)


def rows() -> list[tuple]:
    return list(AcquisitionSpend.objects.order_by("month", "channel").values_list("month", "channel", "amount", "currency"))


def audit(action: str) -> int:
    return AuditEntry.objects.filter(entity="crm.acquisitionspend", action=action).count()


def field_errors(exc: ValidationError) -> dict[str, str]:
    return {f: " ".join(m) for f, m in exc.message_dict.items()}


# --- The service ---------------------------------------------------------------------------------------

def test_upsert_creates_then_updates_then_leaves_the_same_amount_alone():
    # Given no spend, when March is set three times (new, another amount, that amount again)
    first = spend_upsert(month="2026-03", channel="  search ads ", amount="1200.5", currency="eur", actor=SYSTEM)
    second = spend_upsert(month=MARCH, channel="search ads", amount=Decimal("1300"), currency="", actor=SYSTEM)
    third = spend_upsert(month="2026-03-01", channel="search ads", amount="1300.00", currency="EUR", actor=SYSTEM)

    # Then one row, the channel stripped, the currency the business's, and one audit row per real change
    assert [first[1], second[1], third[1]] == ["created", "updated", "unchanged"]
    assert rows() == [(MARCH, "search ads", Decimal("1300.00"), "EUR")]
    assert (audit("create"), audit("update")) == (1, 1)
    assert AuditEntry.objects.get(action="update").changes == {"amount": ["1200.50", "1300.00"]}


def test_the_same_month_for_all_channels_and_for_one_channel_are_two_rows():
    spend_upsert(month="2026-03", channel="", amount="500", currency="", actor=SYSTEM)
    spend_upsert(month="2026-03", channel="social", amount="200", currency="", actor=SYSTEM)
    assert rows() == [(MARCH, "", Decimal("500.00"), "EUR"), (MARCH, "social", Decimal("200.00"), "EUR")]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("month", "2026-3-15", "'2026-3-15' is not a month: write it as YYYY-MM (e.g. 2026-03) or as its first day (2026-03-01)."),
    ("month", "2026-03-15", "A month is written as its first day (2026-03-01), not 2026-03-15."),
    ("month", "1969-12", "The month must be between 1970-01 and"),
    ("amount", "-1", "An amount cannot be negative; got -1."),
    ("amount", "10.005", "At most 2 decimal places; got 10.005."),
    ("amount", "1000000000000", "At most 999999999999.99; got 1000000000000."),
    ("amount", "NaN", "'NaN' is not a finite number."),
    ("amount", "ten", "'ten' is not a number."),
    ("channel", "x" * 41, "At most 40 characters; got 41."),
    ("currency", "USD", "Spend must be in the business currency, EUR (the KPIs add amounts): USD is refused."),
])
def test_a_bad_value_is_refused_with_its_reason_and_nothing_is_written(field, value, message):
    # Given otherwise good values, when one field is bad
    good = {"month": "2026-03", "channel": "", "amount": "10", "currency": "EUR"}
    with pytest.raises(ValidationError) as caught:
        spend_upsert(**{**good, field: value}, actor=SYSTEM)
    # Then that field, and only it, says why; nothing is stored or audited
    errors = field_errors(caught.value)
    assert list(errors) == [field]
    assert errors[field].startswith(message)
    assert rows() == [] and audit("create") == 0


def test_the_month_may_be_at_most_a_year_ahead():
    latest = spend_latest_month()
    spend_upsert(month=latest, channel="", amount="1", currency="", actor=SYSTEM)
    after = (latest + dt.timedelta(days=32)).replace(day=1)
    with pytest.raises(ValidationError) as caught:
        spend_upsert(month=after, channel="", amount="1", currency="", actor=SYSTEM)
    assert "at most a year ahead" in field_errors(caught.value)["month"]


def test_the_business_currency_is_the_settings_one():
    # Given a business that counts in Hungarian forint
    settings = business_settings()
    settings.currency = "HUF"
    settings.save()
    # When spend in euro and then in forint arrives, then the euro is refused and the forint is kept
    with pytest.raises(ValidationError, match="business currency, HUF"):
        spend_upsert(month="2026-03", channel="", amount="10", currency="EUR", actor=SYSTEM)
    spend, _ = spend_upsert(month="2026-03", channel="", amount="10", currency="", actor=SYSTEM)
    assert spend.currency == "HUF"


def test_update_onto_another_rows_month_and_channel_is_refused_and_changes_nothing():
    march = AcquisitionSpendFactory(month=MARCH, channel="social")
    april = AcquisitionSpendFactory(month=dt.date(2026, 4, 1), channel="social", amount=Decimal("7"))
    with pytest.raises(ValidationError) as caught:
        spend_update(spend=april, actor=SYSTEM, data={"month": "2026-03"})
    assert field_errors(caught.value) == {
        "channel": "A spend of 2026-03 for this channel already exists: change that one instead."}
    april.refresh_from_db()
    assert (april.month, march.amount, audit("update")) == (dt.date(2026, 4, 1), Decimal("1000.00"), 0)


def test_delete_leaves_an_audit_row_with_what_it_was():
    spend = AcquisitionSpendFactory(month=MARCH, channel="tv", amount=Decimal("99.00"))
    spend_delete(spend=spend, actor=SYSTEM)
    assert rows() == []
    entry = AuditEntry.objects.get(action="delete")
    assert entry.changes == {"month": "2026-03-01", "channel": "tv", "amount": "99.00", "currency": "EUR"}


# --- The API -------------------------------------------------------------------------------------------

def test_api_post_is_an_upsert_answering_201_then_200(api):
    body = {"month": "2026-03", "channel": "search ads", "amount": "1200.00", "currency": "EUR"}
    created = api.post(API, body, format="json")
    again = api.post(API, {**body, "amount": "1250.00"}, format="json")
    assert (created.status_code, again.status_code) == (201, 200), (created.data, again.data)
    assert again.data["id"] == created.data["id"]
    assert (again.data["month"], again.data["amount"], again.data["currency"]) == ("2026-03-01", "1250.00", "EUR")
    assert rows() == [(MARCH, "search ads", Decimal("1250.00"), "EUR")]
    entry = AuditEntry.objects.get(action="create")
    assert entry.actor_label == "shop-integration via api"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"month": "2026-03-15", "amount": "1"}, "month", "A month is written as its first day (2026-03-01), not 2026-03-15."),
    ({"month": "2026-03", "amount": "1", "currency": "USD"}, "currency",
     "Spend must be in the business currency, EUR (the KPIs add amounts): USD is refused. Convert the amount to "
     "EUR and enter it again."),
    ({"month": "2026-03", "amount": "-1"}, "amount", "Ensure this value is greater than or equal to 0."),
    ({"month": "2026-03", "amount": "1000000000000"}, "amount", "Ensure that there are no more than 12 digits before the decimal point."),
    ({"month": "2026-03"}, "amount", "This field is required."),
    ({"month": "2026-03", "amount": "1", "channel": "x" * 41}, "channel", "Ensure this field has no more than 40 characters."),
])
def test_api_bad_input_is_a_400_naming_the_field_and_nothing_changes(api, body, field, message):
    AcquisitionSpendFactory(month=MARCH, channel="", amount=Decimal("5.00"))
    response = api.post(API, body, format="json")
    assert response.status_code == 400
    assert [(e["field"], e["message"]) for e in response.data["errors"]] == [(field, message)]
    assert rows() == [(MARCH, "", Decimal("5.00"), "EUR")]
    assert audit("create") + audit("update") == 0


def test_api_lists_by_month_range_and_channel(api):
    for month, channel in [(dt.date(2026, 1, 1), ""), (dt.date(2026, 2, 1), "social"), (MARCH, "social"),
                           (dt.date(2026, 4, 1), "")]:
        AcquisitionSpendFactory(month=month, channel=channel)
    response = api.get(API, {"month_from": "2026-02", "month_to": "2026-03-01", "channel": "social"})
    assert response.status_code == 200
    results = response.data["results"] if isinstance(response.data, dict) else response.data
    assert [r["month"] for r in results] == ["2026-03-01", "2026-02-01"]
    bad = api.get(API, {"month_from": "March"})
    assert bad.status_code == 400
    assert bad.data["errors"][0]["field"] == "month_from"
    # and the rows for all channels together, or only the per-channel ones
    def months(**query) -> list[str]:
        data = api.get(API, query).data
        return [r["month"] for r in (data["results"] if isinstance(data, dict) else data)]

    assert months(all_channels="true") == ["2026-04-01", "2026-01-01"]
    assert months(all_channels="false") == ["2026-03-01", "2026-02-01"]
    assert api.get(API, {"all_channels": "perhaps"}).status_code == 400


def test_api_updates_and_deletes_with_audit_rows(api):
    spend = AcquisitionSpendFactory(month=MARCH, channel="", amount=Decimal("5.00"))
    patched = api.patch(f"{API}{spend.pk}/", {"amount": "6.50"}, format="json")
    assert patched.status_code == 200, patched.data
    assert (patched.data["month"], patched.data["amount"]) == ("2026-03-01", "6.50")
    refused = api.put(f"{API}{spend.pk}/", {"month": "2026-03", "amount": "7", "currency": "GBP"}, format="json")
    assert refused.status_code == 400
    assert refused.data["errors"][0]["field"] == "currency"
    assert rows() == [(MARCH, "", Decimal("6.50"), "EUR")]
    deleted = api.delete(f"{API}{spend.pk}/")
    assert deleted.status_code == 204
    assert rows() == [] and (audit("update"), audit("delete")) == (1, 1)


def test_an_agent_may_not_read_or_write_spend(agent):
    client = Client()
    client.force_login(agent)
    assert client.get(API).status_code == 403
    assert client.post(API, {"month": "2026-03", "amount": "1"}, content_type="application/json").status_code == 403


def test_the_schema_documents_the_endpoint(api):
    schema = api.get("/api/schema/", {"format": "json"})
    if schema.status_code == 404:
        pytest.fail("no /api/schema/ route")
    paths = schema.json()["paths"]
    assert {"get", "post"} <= set(paths["/api/acquisition-spend/"])
    assert {"get", "put", "patch", "delete"} <= set(paths["/api/acquisition-spend/{id}/"])


# --- The admin -----------------------------------------------------------------------------------------

def _admin(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


def test_a_manager_adds_spend_in_the_admin_with_the_month_as_yyyy_mm(manager):
    client = _admin(manager)
    response = client.post(f"{ADMIN}add/", {"month": "2026-03", "channel": "social", "amount": "300", "currency": "EUR"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert rows() == [(MARCH, "social", Decimal("300.00"), "EUR")]
    assert AuditEntry.objects.get(action="create").actor_label == "manager via admin"
    listing = client.get(ADMIN)
    assert listing.status_code == 200
    assert '<bdi dir="ltr">2026-03</bdi>' in listing.content.decode()


def test_the_admin_says_why_a_spend_is_refused_and_writes_nothing(manager):
    AcquisitionSpendFactory(month=MARCH, channel="social")
    client = _admin(manager)
    response = client.post(f"{ADMIN}add/", {"month": "2026-03-02", "channel": "x", "amount": "1", "currency": "USD"})
    errors = response.context["adminform"].form.errors
    assert response.status_code == 200
    # (the data in the sentences isolated, so that they read right in a right-to-left page)
    assert errors["month"] == [
        "A month is written as its first day (<bdi>2026-03-01</bdi>), not <bdi>2026-03-02</bdi>."]
    assert errors["currency"][0].startswith("Spend must be in the business currency, <bdi>EUR</bdi>")
    duplicate = client.post(f"{ADMIN}add/", {"month": "2026-03", "channel": " social ", "amount": "1", "currency": "EUR"})
    assert duplicate.context["adminform"].form.errors["channel"] == [
        "A spend of <bdi>2026-03</bdi> for this channel already exists: change that one instead."]
    assert "<bdi>2026-03</bdi> for this channel" in duplicate.content.decode()
    assert AcquisitionSpend.objects.count() == 1 and audit("create") == 0


def test_a_manager_changes_and_deletes_spend_in_the_admin_with_audit_rows(manager):
    spend = AcquisitionSpendFactory(month=MARCH, channel="")
    client = _admin(manager)
    changed = client.post(f"{ADMIN}{spend.pk}/change/", {"month": "2026-03", "channel": "", "amount": "1500", "currency": "EUR"})
    assert changed.status_code == 302
    assert client.get(f"{ADMIN}{spend.pk}/change/").context["adminform"].form.initial["month"] == "2026-03"
    deleted = client.post(f"{ADMIN}{spend.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert rows() == [] and (audit("update"), audit("delete")) == (1, 1)


# --- The CSV import ------------------------------------------------------------------------------------

SPEND_CSV = (
    "month,channel,amount,currency\n"
    "2026-01,search ads,1200.00,EUR\n"   # row 2: good
    "2026-02-01,,800,eur\n"              # row 3: good (a first day, all channels, lower-case currency)
    "2026-02-14,social,10,EUR\n"         # row 4: not a first day
    "2026-03,social,25.50,USD\n"         # row 5: another currency
    "2026-03,social,-2,EUR\n"            # row 6: negative
    "2026-03,social,300,\n"              # row 7: good (blank currency: the business's)
)


def report_rows(path: Path) -> list[tuple[int, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(int(r["row"]), r["column"]) for r in csv.DictReader(f)]


def test_import_keeps_good_rows_reports_bad_ones_and_a_reimport_changes_nothing(tmp_path):
    path = tmp_path / "spend.csv"
    path.write_text(SPEND_CSV, encoding="utf-8")
    # When the file is imported
    result = csv_import(kind="spend", path=path, actor=SYSTEM, report_path=tmp_path / "errors.csv")
    # Then the three good rows are written and each bad one is reported with its column
    assert (result.rows, result.created, result.rejected) == (6, 3, 3)
    assert report_rows(tmp_path / "errors.csv") == [(4, "month"), (5, "currency"), (6, "amount")]
    expected = [(dt.date(2026, 1, 1), "search ads", Decimal("1200.00"), "EUR"),
                (dt.date(2026, 2, 1), "", Decimal("800.00"), "EUR"), (MARCH, "social", Decimal("300.00"), "EUR")]
    assert rows() == expected
    # When it is imported again, then nothing changes and no audit row is added
    audited = AuditEntry.objects.count()
    again = csv_import(kind="spend", path=path, actor=SYSTEM, report_path=tmp_path / "errors2.csv")
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 3)
    assert rows() == expected and AuditEntry.objects.count() == audited


def test_import_of_a_corrected_amount_updates_that_month(tmp_path):
    AcquisitionSpendFactory(month=MARCH, channel="", amount=Decimal("10.00"))
    path = tmp_path / "spend.csv"
    path.write_text("month,channel,amount,currency\n2026-03,,12.00,EUR\n", encoding="utf-8")
    result = csv_import(kind="spend", path=path, actor=SYSTEM, report_path=tmp_path / "errors.csv")
    assert (result.created, result.updated) == (0, 1)
    assert rows() == [(MARCH, "", Decimal("12.00"), "EUR")]
