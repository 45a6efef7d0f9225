"""Nothing served unverified: every answer built from stored events checks their tags.

One byte of a stored `SessionGiven` changed underneath the engine (dose 2.0 -> 9.0) must
make every question that reads it raise `Tampered` naming the record, never answer 9.0;
a stored topic changed to an unknown class, or a state rewritten as text, likewise (and
`verify` reports them as findings). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coursebook.adapters.storage.keys import CHECK_ID, Keyring, MasterKey
from coursebook.bootstrap import open_store
from coursebook.errors import StoreUnavailable, Tampered
from coursebook.service.application import Coursebook
from tests import pg
from tests.builders import Clinic
from tests.stores import PERSISTENT_KINDS, PG_TEST_ENV, make_app, params, release, target


class Raw:
    """The store's events table, written with SQL behind the engine's back."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where
        self.table = "stored_events" if kind == "sqlite" else "coursebook_events"
        self.id = "rowid" if kind == "sqlite" else "notification_id"

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        statement = statement.format(table=self.table, id=self.id)
        if self.kind == "sqlite":
            with sqlite3.connect(self.where) as conn:
                rows = conn.execute(statement, params).fetchall()
            conn.close()
            return rows
        import psycopg
        from psycopg import sql

        url, schema = self.where.split("?")[0], pg.schema_of(self.where)
        with psycopg.connect(url, autocommit=True) as pg_conn:
            pg_conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            cursor = pg_conn.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def position_of(self, needle: bytes) -> tuple[int, bytes]:
        """The last stored event whose state holds `needle`, and its state."""
        rows = self.sql("SELECT {id}, state FROM {table} ORDER BY {id}")
        return next((int(p), bytes(s)) for p, s in reversed(rows) if needle in bytes(s))

    def set_state(self, position: int, state: bytes) -> None:
        self.sql("UPDATE {table} SET state=? WHERE {id}=?", (state, position))


@pytest.fixture(params=params(PERSISTENT_KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    found: str = request.param
    return found


@pytest.fixture
def app(kind: str, tmp_path: Path, clock: Any) -> Iterator[Coursebook]:
    application = make_app(kind, tmp_path, clock)
    clinic = Clinic(application)
    clinic.ready("C1")
    clinic.give("C1")
    yield application
    application.close()
    release(kind, tmp_path)


@pytest.fixture
def raw(kind: str, tmp_path: Path) -> Raw:
    return Raw(kind, target(kind, tmp_path))


def forge_dose(raw: Raw) -> int:
    position, state = raw.position_of(b'"dose_ml":2.0')
    raw.set_state(position, state.replace(b'"dose_ml":2.0', b'"dose_ml":9.0'))
    return position


QUERIES: dict[str, Callable[[Coursebook], Any]] = {
    "course show": lambda app: app.get_course("C1"),
    "course show --as-of": lambda app: app.get_course("C1", as_of="2026-10-30T00:00:00Z"),
    "course show --known-at": lambda app: app.get_course(
        "C1", known_at="2026-11-01T12:00:00Z"),
    "course show --version": lambda app: app.get_course("C1", version=3),
    "course history": lambda app: app.get_history("C1"),
    "compliance --as-of": lambda app: app.compliance(as_of="2026-11-01T12:00:00Z"),
    "compliance (rebuilt)": lambda app: (app.rebuild_views("compliance"), app.compliance()),
    "audit (rebuilt)": lambda app: (app.rebuild_views(), app.audit("C1")),
    "calendar (rebuilt)": lambda app: (app.rebuild_views(), app.calendar()),
}


def test_the_untouched_store_answers_every_question(app: Coursebook) -> None:
    for ask in QUERIES.values():
        ask(app)
    assert app.verify()["ok"]


@pytest.mark.parametrize("question", list(QUERIES))
def test_a_changed_session_is_never_served(app: Coursebook, raw: Raw, question: str) -> None:
    before = app.get_course("C1")
    position = forge_dose(raw)
    with pytest.raises(Tampered) as caught:
        QUERIES[question](app)
    assert caught.value.subject == "course C1"
    assert caught.value.version is not None
    assert "9.0" not in str(caught.value)
    assert not app.verify()["ok"]
    assert app.verify()["problems"][0]["position"] == position
    assert before["sessions_given"] == 1


def test_new_events_never_carry_a_changed_one_into_the_views(app: Coursebook,
                                                             raw: Raw) -> None:
    forge_dose(raw)
    Clinic(app, staff=False).ready("C2", patient_ref="P2")  # recorded: its write is fine
    with pytest.raises(Tampered):
        app.rebuild_views()
    with pytest.raises(Tampered):
        app.catch_up_views()


def test_a_topic_changed_to_an_unknown_class_is_tampering(app: Coursebook, raw: Raw) -> None:
    position, _ = raw.position_of(b'"dose_ml":2.0')
    raw.sql("UPDATE {table} SET topic=? WHERE {id}=?",
            ("coursebook.domain.course:TreatmentCourse.Nothing", position))
    with pytest.raises(Tampered) as caught:
        app.get_course("C1")
    assert caught.value.subject == "course C1"
    assert app.verify()["problems"][0]["position"] == position


def test_a_state_rewritten_as_text_is_a_finding_and_named(app: Coursebook, raw: Raw,
                                                         kind: str) -> None:
    if kind != "sqlite":
        pytest.skip("only SQLite lets a blob column hold text")
    position, state = raw.position_of(b'"dose_ml":2.0')
    raw.sql("UPDATE {table} SET state=CAST(state AS TEXT) WHERE {id}=?", (position,))
    assert raw.sql("SELECT typeof(state) FROM {table} WHERE {id}=?", (position,)) == [("text",)]
    result = app.verify()
    assert not result["ok"]
    first = result["problems"][0]
    assert (first["position"], first["subject"]) == (position, "course C1")
    assert "text" in first["problem"]
    for question in ("course show", "course history", "compliance --as-of"):
        with pytest.raises(Tampered) as caught:
            QUERIES[question](app)
        assert "text" in str(caught.value)
    raw.set_state(position, state)
    assert app.verify()["ok"]


VIEW_TAMPERING = {
    "forged audit row": ("INSERT INTO view_audit (position, recorded_at, at, subject, "
                         "course_id, event, actor, reason, detail) SELECT position + 100000, "
                         "recorded_at, at, subject, course_id, event, actor, 'forged', detail "
                         "FROM view_audit WHERE course_id='C1' AND event='SessionGiven'",
                         "forged"),
    "deleted audit row": ("DELETE FROM view_audit WHERE course_id='C1' AND "
                          "event='SessionGiven'", "deleted"),
    "changed audit row": ("UPDATE view_audit SET actor='dr-nobody' WHERE course_id='C1' AND "
                          "event='SessionGiven'", "changed"),
    "changed calendar row": ("UPDATE view_calendar SET day='2030-01-01' "
                             "WHERE course_id='C1'", "changed"),
    "tracking past the head": ("UPDATE projection_tracking SET position=1004521 "
                               "WHERE view='audit'", "past the last stored event"),
}


@pytest.mark.parametrize("case", list(VIEW_TAMPERING))
def test_verify_checks_the_views_against_the_log(app: Coursebook, raw: Raw, case: str) -> None:
    app.catch_up_views()
    assert app.verify()["ok"]
    statement, finding = VIEW_TAMPERING[case]
    raw.sql(statement)
    result = app.verify()
    assert not result["ok"], case
    assert any(finding in p["problem"] and p["subject"].startswith("view ")
               for p in result["problems"]), result["problems"]
    app.rebuild_views()  # what the finding says to do repairs it
    assert app.verify()["ok"]


def test_a_tracking_row_past_the_head_is_not_up_to_date(app: Coursebook, raw: Raw) -> None:
    app.catch_up_views()
    raw.sql("UPDATE projection_tracking SET position=1004521 WHERE view='audit'")
    (audit,) = [s for s in app.views_status() if s["name"] == "audit"]
    assert audit["up_to_date"] is False


# -- the key table ---------------------------------------------------------------------------

@pytest.fixture
def two_patients(app: Coursebook) -> Coursebook:
    Clinic(app, staff=False).ready("C2", patient_ref="P2")
    assert app.verify()["ok"]
    return app


def key_problems(app: Coursebook) -> list[str]:
    result = app.verify()
    assert not result["ok"]
    return [f"{p['subject']}: {p['problem']}" for p in result["problems"]]


def test_a_deleted_key_without_an_erased_event_is_a_finding(two_patients: Coursebook,
                                                            raw: Raw) -> None:
    raw.sql("DELETE FROM coursebook_keys WHERE key_id=?", (Keyring.key_id("P2"),))
    (found,) = key_problems(two_patients)
    assert found.startswith("patient P2: the patient's key is missing and no Erased event")


def test_an_erased_patient_s_missing_key_is_accounted_for(two_patients: Coursebook) -> None:
    Clinic(two_patients, staff=False).run("erase_patient", at="2026-10-01T09:00:00+02:00",
                                          actor="dpo", patient_ref="P2",
                                          reason="GDPR Art. 17 request")
    assert two_patients.verify()["ok"]


def test_swapped_or_corrupted_keys_are_findings(two_patients: Coursebook, raw: Raw) -> None:
    one, two = Keyring.key_id("P1"), Keyring.key_id("P2")
    (k1,), (k2,) = (raw.sql("SELECT wrapped FROM coursebook_keys WHERE key_id=?", (k,))[0]
                    for k in (one, two))
    raw.sql("UPDATE coursebook_keys SET wrapped=? WHERE key_id=?", (bytes(k2), one))
    raw.sql("UPDATE coursebook_keys SET wrapped=? WHERE key_id=?", (bytes(k1), two))
    found = key_problems(two_patients)
    assert sorted(f.split(":")[0] for f in found) == ["patient P1", "patient P2"]
    assert all("swapped or corrupted" in f for f in found)
    raw.sql("UPDATE coursebook_keys SET wrapped=? WHERE key_id=?", (bytes(k1), one))
    raw.sql("UPDATE coursebook_keys SET wrapped=? WHERE key_id=?",
            (bytes(k2)[:-1] + bytes([k2[-1] ^ 1]), two))
    (found_one,) = key_problems(two_patients)
    assert found_one.startswith("patient P2: ")
    assert "swapped or corrupted" in found_one


def test_a_key_no_patient_accounts_for_is_a_finding(two_patients: Coursebook, raw: Raw) -> None:
    """A copied key under another id does not open (the id is bound into its wrapping,
    `test_swapped_or_corrupted_keys_are_findings`); one wrapped with the master key for a
    patient the log does not know is reported too."""
    two_patients.keyring.data_key("P9", create=True)
    (found,) = key_problems(two_patients)
    assert "no patient in the log accounts for" in found


def test_a_deleted_key_check_row_lets_no_wrong_master_key_in(
        two_patients: Coursebook, raw: Raw, kind: str, tmp_path: Path, clock: Any) -> None:
    master = two_patients.keyring.master
    raw.sql("DELETE FROM coursebook_keys WHERE key_id=?", (CHECK_ID,))
    assert "the key-check row is missing" in key_problems(two_patients)[0]
    extra = PG_TEST_ENV if kind == "postgres" else None
    with pytest.raises(StoreUnavailable, match="does not open this store"):
        open_store(target(kind, tmp_path), clock=clock, master_key=MasterKey.ephemeral(),
                   extra_env=extra)
    assert raw.sql("SELECT count(*) FROM coursebook_keys WHERE key_id=?", (CHECK_ID,)) \
        == [(0,)]
    right = open_store(target(kind, tmp_path), clock=clock, master_key=master,
                       extra_env=extra)
    try:
        assert right.verify()["ok"]  # the right key (it tags the events) writes it again
        assert right.get_course("C2")["patient"] == two_patients.get_course("C2")["patient"]
    finally:
        right.close()
