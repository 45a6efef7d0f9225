"""`Coursebook.check_migration()` and `Coursebook.migrate()` (service/migration.py).

The check reads the whole store through this code and changes nothing; the migration
does what a stored-format change needs beyond upcasting (views of another format
rebuilt, snapshots of another form replaced), records `ClinicSettings.StoreMigrated`,
shown in the audit trail, and never rewrites a stored event. Both on every store kind
the check can find something on: rows are rewritten in place, with valid tags, as
another coursebook would have written them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from coursebook.adapters.storage.integrity import TAG_LEN, event_tag
from coursebook.adapters.storage.snapshots import FORM
from coursebook.clock import FixedClock
from coursebook.domain.course import TreatmentCourse
from coursebook.domain.ids import course_uuid
from coursebook.domain.store_records import ClinicSettings
from coursebook.errors import Code
from coursebook.service.application import Coursebook
from tests.application.test_schema_evolution import old_name
from tests.builders import Clinic, day, rejected
from tests.logcapture import capture_logs
from tests.stores import PERSISTENT_KINDS, make_app, params, release, reopen

SESSION_GIVEN = get_topic(TreatmentCourse.SessionGiven)


@pytest.fixture(params=params(PERSISTENT_KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def built(kind: str, tmp_path: Path, clock: FixedClock) -> Iterator[Coursebook]:
    """A store of `kind` with two courses (C1: two sessions; C2: one), opened again by a
    second application (the first one closed), as an operator would open it."""
    app = make_app(kind, tmp_path, clock)
    clinic = Clinic(app)
    clinic.ready("C1")
    clinic.give("C1", at=day(1))
    clinic.give("C1", at=day(22))
    clinic.ready("C2", patient_ref="P2")
    clinic.give("C2", at=day(2))
    app.close()
    second = reopen(kind, tmp_path, clock)
    assert second is not None
    yield second
    second.close()
    release(kind, tmp_path)


def rows(app: Coursebook) -> list[tuple[int, str, bytes]]:
    return [(n.id, n.topic, bytes(n.state))
            for n in app.recorder.select_notifications(1, 1_000_000)]


def restore(app: Coursebook, n: Any, topic: str, body: dict[str, Any]) -> None:
    """Rewrites the stored event `n` in place with `topic` and `body`, tagged validly."""
    payload = orjson.dumps(body)
    state = payload + event_tag(app.integrity_key, n.originator_id, n.originator_version,
                                topic, payload)
    recorder: Any = app.recorder
    table = recorder.events_table_name
    if type(recorder).__module__ == "eventsourcing.sqlite":
        sql = (f"UPDATE {table} SET topic = ?, state = ? WHERE originator_id = ? "
               "AND originator_version = ?")
        params_: tuple[Any, ...] = (topic, state, n.originator_id.hex, n.originator_version)
    else:
        sql = (f"UPDATE {recorder.datastore.schema}.{table} SET topic = %s, state = %s "
               "WHERE originator_id = %s AND originator_version = %s")
        params_ = (topic, state, n.originator_id, n.originator_version)
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(sql, params_)


def first_session(app: Coursebook, course_id: str = "C1") -> Any:
    return next(n for n in app.recorder.select_notifications(1, 1000)
                if n.topic == SESSION_GIVEN and n.originator_id == course_uuid(course_id))


def body_of(n: Any) -> dict[str, Any]:
    found: dict[str, Any] = orjson.loads(bytes(n.state)[:-TAG_LEN])
    return found


# -- the check ---------------------------------------------------------------------------------
def test_a_store_this_code_wrote_reads_whole(app: Coursebook, clock: FixedClock) -> None:
    clinic = Clinic(app)
    clinic.ready("C1")
    clinic.give("C1", at=day(1))
    before = rows(app)

    report = app.check_migration()

    assert (report["ok"], report["problems"], report["problem_count"]) == (True, [], 0)
    assert (report["courses"], report["courses_folded"]) == (1, 1)
    assert report["records"] == len(before)
    assert sum(e["records"] for e in report["events"]) == len(before)
    given = [e for e in report["events"] if e["type"] == "TreatmentCourse.SessionGiven"]
    assert given == [{"type": "TreatmentCourse.SessionGiven", "stored_version": 3,
                      "current_version": 3, "records": 1, "failed": 0, "upcasters": [],
                      "old_topics": []}]
    assert all(e["stored_version"] == e["current_version"] and not e["upcasters"]
               for e in report["events"])
    assert [(v["name"], v["format"] == v["stored_format"], v["rebuild_needed"])
            for v in report["views"]] == [("calendar", True, False), ("audit", True, False),
                                            ("recall", True, False),
                                            ("compliance", True, False)]
    assert report["snapshots"] == {"usable": 0, "ignored": 0, "other_form": 0, "newer": 0,
                                   "not_intact": 0}
    assert rows(app) == before  # the check wrote nothing


def test_the_check_counts_old_versions_and_the_upcasters_they_take(built: Coursebook) -> None:
    """A session rewritten as 0.1.0 stored it (version 1, values by position)."""
    n = first_session(built)
    body = body_of(n)
    del body["class_version"]
    body["products"] = [{"_type_": "product", "_data_": list(p["_data_"].values())}
                        for p in body["products"]]
    restore(built, n, n.topic, body)

    report = built.check_migration()

    assert report["ok"]
    given = {e["stored_version"]: e for e in report["events"]
             if e["type"] == "TreatmentCourse.SessionGiven"}
    assert given[1] == {"type": "TreatmentCourse.SessionGiven", "stored_version": 1,
                        "current_version": 3, "records": 1, "failed": 0,
                        "upcasters": ["upcast_v1_v2", "upcast_v2_v3"], "old_topics": []}
    assert given[3]["records"] == 2
    assert built.get_course("C1")["sessions_given"] == 2


def test_a_newer_record_fails_the_check_named_by_position_and_subject(
        built: Coursebook) -> None:
    n = first_session(built)
    restore(built, n, n.topic, {**body_of(n), "class_version": 99})
    before = rows(built)

    report = built.check_migration()

    assert report["ok"] is False
    assert report["problems"] == [{
        "position": n.id, "subject": "course C1", "version": n.originator_version,
        "problem": "a stored TreatmentCourse.SessionGiven is of version 99, and this "
                   "coursebook reads versions up to 3: the store was written by a newer "
                   "coursebook (upgrade coursebook)"}]
    assert (report["courses"], report["courses_folded"]) == (2, 1)
    assert {(e["stored_version"], e["records"], e["failed"], tuple(e["upcasters"]))
            for e in report["events"] if e["type"] == "TreatmentCourse.SessionGiven"} == {
        (99, 0, 1, ()), (3, 2, 0, ())}
    text = orjson.dumps(report).decode()
    assert "Jeanne" not in text  # no personal data
    assert "Name of" not in text

    done = built.migrate(actor="ops-1")
    assert (done["migrated"], done["recorded"], done["check"]["ok"]) == (False, None, False)
    assert rows(built) == before  # refused: nothing written


def test_an_unknown_topic_fails_the_check(built: Coursebook) -> None:
    n = first_session(built, "C2")
    restore(built, n, "coursebook.domain.course:TreatmentCourse.SessionNoShow", body_of(n))

    report = built.check_migration()

    assert not report["ok"]
    (problem,) = report["problems"]
    assert (problem["position"], problem["subject"]) == (n.id, "course C2")
    assert "TreatmentCourse.SessionNoShow" in problem["problem"]
    assert "newer coursebook" in problem["problem"]
    assert (report["courses"], report["courses_folded"]) == (2, 1)


def test_a_record_that_does_not_decode_fails_the_check(built: Coursebook) -> None:
    n = first_session(built)
    body = body_of(n)
    body["products"] = [{"_type_": "no_such_value", "_data_": 1}]
    restore(built, n, n.topic, body)

    report = built.check_migration()

    (problem,) = report["problems"]
    assert problem["subject"] == "course C1"
    assert problem["problem"].startswith("a stored TreatmentCourse.SessionGiven cannot be "
                                         "decoded")


def test_a_course_that_does_not_fold_fails_the_check(built: Coursebook) -> None:
    """A session stored for a course that, in the store, was never opened."""
    n = first_session(built)
    opened = next(m for m in built.recorder.select_notifications(1, 1000)
                  if m.originator_id == n.originator_id and m.originator_version == 1)
    restore(built, opened, SESSION_GIVEN, {**body_of(n)})

    report = built.check_migration()

    assert not report["ok"]
    assert report["problems"][0]["problem"] == \
        "a course event comes before the course's opening"


def test_events_under_an_old_topic_are_reported(built: Coursebook) -> None:
    with old_name() as old:
        n = first_session(built)
        restore(built, n, old, body_of(n))
        report = built.check_migration()
    assert report["ok"]
    (given,) = [e for e in report["events"] if e["type"] == "TreatmentCourse.SessionGiven"]
    assert (given["records"], given["old_topics"]) == (3, [old])


# -- the migration -------------------------------------------------------------------------------
def test_a_migration_is_recorded_and_shown_in_the_audit_trail(
        built: Coursebook, clock: FixedClock) -> None:
    before = rows(built)

    done = built.migrate(actor="ops-1", reason="upgrade to 0.2")

    assert done["migrated"] is True
    assert (done["views_rebuilt"], done["snapshots_replaced"]) == ([], 0)
    after = rows(built)
    assert after[:len(before)] == before  # never rewrites a stored event
    (recorded,) = after[len(before):]
    assert recorded[1] == get_topic(ClinicSettings.StoreMigrated)
    assert done["recorded"] == {"event": "ClinicSettings.StoreMigrated",
                                "position": recorded[0]}
    entry = built.audit()[-1]
    assert {k: entry[k] for k in ("position", "subject", "event", "actor", "reason")} == {
        "position": recorded[0], "subject": "clinic", "event": "StoreMigrated",
        "actor": "ops-1", "reason": "upgrade to 0.2"}
    assert entry["at"] == entry["recorded_at"] == "2026-11-01T12:00:00Z"
    assert entry["detail"] == {"coursebook_version": entry["detail"]["coursebook_version"],
                               "from_versions": {}, "to_versions": {}, "views_rebuilt": [],
                               "snapshots_replaced": 0}
    assert built.verify()["ok"]
    assert built.audit("C1") == [e for e in built.audit() if e["subject"] == "C1"]


@pytest.mark.parametrize(("actor", "reason", "field"), [
    ("", None, "actor"), ("   ", None, "actor"), ("a\nb", None, "actor"),
    ("ops-1", "", "reason"), ("ops-1", "x\x00", "reason")])
def test_a_migration_needs_an_actor(built: Coursebook, actor: str, reason: str | None,
                                    field: str) -> None:
    before = rows(built)
    with rejected(Code.INVALID, field):
        built.migrate(actor=actor, reason=reason)
    assert rows(built) == before


def test_views_of_another_format_are_rebuilt_and_reported(built: Coursebook) -> None:
    expected = built.audit()
    recorder: Any = built.recorder
    placeholder = "?" if type(recorder).__module__ == "eventsourcing.sqlite" else "%s"
    with recorder.datastore.transaction(commit=True) as cursor:  # as a 0.1.0 store has it
        cursor.execute(f"DELETE FROM projection_format WHERE view = {placeholder}",
                       ("audit",))

    other = _second(built)  # `built` opened its views: an operator's fresh process
    try:
        report = other.check_migration()
        assert [(v["name"], v["stored_format"], v["rebuild_needed"])
                for v in report["views"]] == [("calendar", 2, False), ("audit", 1, True),
                                        ("recall", 1, False), ("compliance", 1, False)]
        done = other.migrate(actor="ops-1")
        assert [(v["name"], v["from_format"], v["to_format"]) for v in done["views_rebuilt"]] \
            == [("audit", 1, 3)]
        assert done["views_rebuilt"][0]["events"] > 0
        assert other.audit()[:-1] == expected
        assert other.audit()[-1]["detail"]["views_rebuilt"] == ["audit"]
        assert [v["rebuild_needed"] for v in other.check_migration()["views"]] == [False] * 4
    finally:
        other.close()


def _second(app: Coursebook) -> Coursebook:
    """Another application on the same store (its views not opened yet)."""
    return Coursebook(app.env, clock=app.clock, master_key=app.keyring.master)


def test_snapshots_of_another_form_are_replaced(built: Coursebook) -> None:
    built.take_snapshot(course_uuid("C1"))
    store: Any = built.snapshots
    (stored,) = store.recorder.select_events(course_uuid("C1"))
    old = bytes(stored.state)[:-TAG_LEN].replace(FORM.encode(), b"0" * len(FORM))
    assert old != bytes(stored.state)[:-TAG_LEN]
    store.delete(stored)
    store.recorder.insert_events([StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic,
        old + event_tag(built.integrity_key, stored.originator_id,
                        stored.originator_version, stored.topic, old))])
    expected = built.get_course("C1")

    report = built.check_migration()
    assert report["ok"]
    assert report["snapshots"] == {"usable": 0, "ignored": 1, "other_form": 1, "newer": 0,
                                   "not_intact": 0}
    with capture_logs() as logs:
        done = built.migrate(actor="ops-1")
    assert done["snapshots_replaced"] == 1
    assert [e for e in logs if e["event"] == "snapshot_replaced"] == [{
        "event": "snapshot_replaced", "aggregate": str(course_uuid("C1")),
        "version": stored.originator_version, "log_level": "info"}]
    assert built.check_migration()["snapshots"]["usable"] == 1
    assert built.get_course("C1") == expected


def test_a_tampered_snapshot_is_counted_and_left_alone(built: Coursebook) -> None:
    built.take_snapshot(course_uuid("C1"))
    store: Any = built.snapshots
    (stored,) = store.recorder.select_events(course_uuid("C1"))
    store.delete(stored)
    state = bytearray(stored.state)
    state[-1] ^= 1
    store.recorder.insert_events([StoredEvent(stored.originator_id,
                                              stored.originator_version, stored.topic,
                                              bytes(state))])

    report = built.check_migration()
    assert report["ok"]
    assert (report["snapshots"]["not_intact"], report["snapshots"]["ignored"]) == (1, 1)
    assert built.migrate(actor="ops-1")["snapshots_replaced"] == 0
    assert len(list(store.recorder.select_events(course_uuid("C1")))) == 1
