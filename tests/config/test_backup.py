"""make backup / make restore (config/backup.py, manage.py db_backup / db_restore)."""

import datetime as dt
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from config import backup
from config.backup import BackupError, Database, backup_create, restore
from crm.models import Contact, Customer, Order
from crm.services.audit import SYSTEM
from crm.services.orders import OrderInput, orders_insert
from metrics.models import MetricSnapshot
from metrics.services.periods import add_months
from tests.conftest import ROOT, subprocess_env
from tests.conftest import test_database_url as url_of_test_database  # not collected as a test
from tests.factories import CustomerFactory
from touchpoints.models import Touchpoint
from touchpoints.services.materialize import touchpoints_materialize
from winback.models import CaseEvent, LifecycleEvent, WinbackCase
from winback.services.lifecycle import lifecycle_scan
from winback.services.queue import DispositionInput, case_claim_next, case_record_disposition

PARIS = ZoneInfo("Europe/Paris")
# Every row of these must come back, the same ids in the same tables.
RESTORED_MODELS = [Customer, Order, Contact, LifecycleEvent, WinbackCase, CaseEvent, Touchpoint, MetricSnapshot]

KPI_SCRIPT = """
import json, os
from django.contrib.auth import get_user_model
from django.test import Client
client = Client()
client.force_login(get_user_model().objects.get(username=os.environ["KPI_USER"]))
answers = {}
for path in json.loads(os.environ["KPI_PATHS"]):
    response = client.get(path, HTTP_ACCEPT="application/json")
    body = response.json()
    if body.get("source") == "live":  # computed for this request: its time is not a figure of the data
        body.pop("computed_at", None)
    answers[path] = [response.status_code, body]
print(json.dumps(answers, sort_keys=True))
"""


def kpi_answers(database_url: str, paths: list[str], username: str) -> dict:
    """The KPI API's answers, from a process of its own whose DATABASE_URL names ``database_url``."""
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", KPI_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=subprocess_env(DATABASE_URL=database_url, KPI_PATHS=json.dumps(paths), KPI_USER=username))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table_fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of the ordered ids) of every table in RESTORED_MODELS."""
    with psycopg.connect(url) as conn:
        return {m._meta.db_table: conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM {m._meta.db_table}"
        ).fetchone() for m in RESTORED_MODELS}


@pytest.fixture
def scratch_databases(transactional_db):
    """Names for databases a test creates on the test server; each is dropped afterwards."""
    names: list[str] = []

    def make(suffix: str) -> tuple[str, str]:
        name = f"{connection.settings_dict['NAME']}_{suffix}"
        names.append(name)
        url = url_of_test_database().rsplit("/", 1)[0] + f"/{name}"
        return name, url

    yield make
    admin = Database(dict(connection.settings_dict))
    with admin.connect(dbname="postgres") as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shop_with_history(agent) -> None:
    """Customers and orders through the crm services; the lifecycle scan's events and cases; an agent's call;
    the outbox's touchpoints; KPI snapshots: every kind of row a backup must carry."""
    now = timezone.now()
    call_now = now  # the agent calls when it is daytime in Paris, whatever time the test runs
    while not 9 <= call_now.astimezone(PARIS).hour < 20:
        call_now += dt.timedelta(hours=1)
    items = []
    for i in range(24):
        customer = CustomerFactory(phone="+33612345678", timezone="Europe/Paris", call_zones="Europe/Paris",
                                   email_consent="granted", email_consent_at=now - dt.timedelta(days=900))
        lapsed = i % 3 != 0
        last = now - (dt.timedelta(days=300, hours=i) if lapsed else dt.timedelta(hours=3 + i))
        items += [OrderInput(external_id=f"B{i}-{k}", customer=customer.external_id, ordered_at=last - dt.timedelta(days=30 * k),
                             amount=Decimal("40.00") + k, currency="EUR") for k in range(4)]
    orders_insert(actor=SYSTEM, items=items, all_or_nothing=True)
    lifecycle_scan(full=True, now=now)
    case = case_claim_next(agent=agent, now=call_now)
    assert case is not None, "no callable case: the history above opens none"
    case_record_disposition(agent=agent, case_id=case.pk, data=DispositionInput(outcome="no_answer"), now=call_now)
    touchpoints_materialize(now=now)
    call_command("metrics_refresh", "--months", "12", "--inline", stdout=io.StringIO())


@pytest.mark.postgres
def test_a_backup_restored_into_a_new_database_has_every_row_and_the_same_kpis(manager, agent, scratch_databases,
                                                                                 tmp_path, monkeypatch):
    # Given a shop with customers, orders, cases with their events, touchpoints and KPI snapshots
    shop_with_history(agent)
    source_url = url_of_test_database()
    source = table_fingerprints(source_url)
    assert all(count > 0 for count, _ in source.values()), source
    assert source[CaseEvent._meta.db_table][0] > source[WinbackCase._meta.db_table][0]  # opened, claimed, called

    # When it is backed up and restored into a database that does not exist yet, as make backup / restore do
    dump = tmp_path / "shop.dump"
    out = io.StringIO()
    call_command("db_backup", "--file", str(dump), stdout=out)
    assert f"to {dump}: " in out.getvalue() and f"({dump.stat().st_size:,} bytes)" in out.getvalue()
    name, restored_url = scratch_databases("restored")
    monkeypatch.setenv("RESTORE_DATABASE_URL", restored_url)
    out = io.StringIO()
    call_command("db_restore", "--file", str(dump), stdout=out)

    # Then the database was created, its migrations are all applied, and every row is there
    assert f"into database {name} on " in out.getvalue() and "(created)" in out.getvalue()
    assert "migrate --check: no unapplied migrations" in out.getvalue()
    assert table_fingerprints(restored_url) == source
    # And the KPI API answers the same from the restored database, period by period
    month = add_months(timezone.localdate().replace(day=1), -1)
    quarter = add_months(month, -2)
    paths = [f"/api/metrics/?month={month:%Y-%m}", f"/api/metrics/?start={quarter}&end={add_months(month, 1)}",
             f"/api/metrics/series/?metric=churn_rate&grain=month&start={add_months(month, -11)}&end={add_months(month, 1)}",
             "/api/metrics/cohorts/"]
    before = kpi_answers(source_url, paths, manager.username)
    after = kpi_answers(restored_url, paths, manager.username)
    assert {path: status for path, (status, _) in before.items()} == dict.fromkeys(paths, 200)
    assert after == before
    monthly, quarter_live = before[paths[0]][1], before[paths[1]][1]
    assert monthly["source"] == "snapshot" and "computed_at" in monthly  # the stored snapshot, its time included
    assert quarter_live["source"] == "live"
    assert monthly["counts"]["CS"] > 0 and sum(quarter_live["counts"].values()) > 0  # no empty answers


@pytest.mark.postgres
def test_a_restore_refuses_a_database_that_has_tables_unless_forced(manager, scratch_databases, tmp_path):
    CustomerFactory.create_batch(3)
    dump = backup_create(db=Database(dict(connection.settings_dict)), path=tmp_path / "small.dump")
    _, url = scratch_databases("again")
    target = Database.from_url(url)
    restore(path=dump, db=target, url=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM crm_customer WHERE id = (SELECT min(id) FROM crm_customer)")  # a change since

    with pytest.raises(BackupError, match=r"not empty \(\d+ tables\).*FORCE=1"):
        restore(path=dump, db=target, url=url)
    assert table_fingerprints(url)[Customer._meta.db_table][0] == 2  # untouched by the refusal

    result = restore(path=dump, db=target, url=url, force=True)
    assert not result.created and result.replaced == result.tables
    assert table_fingerprints(url)[Customer._meta.db_table] == table_fingerprints(url_of_test_database())[Customer._meta.db_table]


def test_the_password_reaches_pg_dump_through_its_environment_never_its_command_line(monkeypatch, tmp_path):
    calls = []

    def fake_run(argv, *, env, **kwargs):
        calls.append((argv, env))
        Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--file="))).write_bytes(b"PGDMP")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(backup.subprocess, "run", fake_run)
    monkeypatch.setattr(backup.shutil, "which", lambda name: f"/usr/bin/{name}")
    db = Database.from_url("postgres://shop:s3cret%2Fpw@db.internal:6543/winback?sslmode=require")
    path = backup_create(db=db, path=tmp_path / "winback.dump")

    [(argv, env)] = calls
    assert path.read_bytes() == b"PGDMP"
    assert not any("s3cret" in a for a in argv) and "--format=custom" in argv
    assert (env["PGPASSWORD"], env["PGUSER"], env["PGHOST"], env["PGPORT"], env["PGDATABASE"], env["PGSSLMODE"]) == (
        "s3cret/pw", "shop", "db.internal", "6543", "winback", "require")


def test_a_failed_dump_leaves_no_file_that_looks_like_a_backup(monkeypatch, tmp_path):
    def failing_run(argv, **kwargs):
        Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--file="))).write_bytes(b"PGDMP half")
        return subprocess.CompletedProcess(argv, 1, "", 'pg_dump: error: connection to server failed: FATAL:  database "gone" does not exist')

    monkeypatch.setattr(backup.subprocess, "run", failing_run)
    monkeypatch.setattr(backup.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(BackupError, match="(?s)pg_dump of database gone.*does not exist"):
        backup_create(db=Database.from_url("postgres://u@127.0.0.1/gone"), path=tmp_path / "gone.dump")
    assert list(tmp_path.iterdir()) == []


def test_sqlite_is_backed_up_with_the_online_backup_api_and_restored_into_a_new_file(tmp_path, monkeypatch):
    import sqlite3

    source = tmp_path / "shop.sqlite3"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE crm_customer (id integer primary key, name text)")
        conn.executemany("INSERT INTO crm_customer (name) VALUES (?)", [("Amina",), ("Zoltán",)])
    conn.close()
    monkeypatch.setattr(backup.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, "", ""))
    path = backup.backup_default_path(db=Database.from_url(f"sqlite:///{source}"), backup_dir=tmp_path / "backups",
                                      now=dt.datetime(2026, 3, 1, 4, 5, 6, tzinfo=dt.timezone.utc))
    assert path == tmp_path / "backups" / "shop-20260301T040506Z.sqlite3"
    backup_create(db=Database.from_url(f"sqlite:///{source}"), path=path)

    copy = tmp_path / "copy.sqlite3"
    result = restore(path=path, db=Database.from_url(f"sqlite:///{copy}"), url=f"sqlite:///{copy}")
    assert result.created and result.tables == 1
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT name FROM crm_customer ORDER BY id").fetchall() == [("Amina",), ("Zoltán",)]
    conn.close()
    with pytest.raises(BackupError, match="not empty"):
        restore(path=path, db=Database.from_url(f"sqlite:///{source}"), url=None)


def test_restore_without_a_file_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv("BACKUP_FILE", raising=False)
    with pytest.raises(CommandError, match="BACKUP_FILE="):
        call_command("db_restore")
