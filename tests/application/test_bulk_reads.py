"""`recorded_originators`: which aggregates have stored events, in one query per batch
(what `import` asks of each batch's command ids before deciding its lines)."""

from __future__ import annotations

from coursebook.adapters.storage.bulk_reads import recorded_originators, select_rows
from coursebook.domain.ids import command_uuid, course_uuid
from tests.builders import Clinic


def test_it_names_exactly_the_aggregates_with_events(clinic: Clinic, store_kind: str) -> None:
    applied = [command_uuid(clinic.open().command_id),
               command_uuid(clinic.consult().command_id)]
    asked = [*applied, course_uuid("C1"), command_uuid("never-sent"), course_uuid("C2")]
    found = recorded_originators(clinic.app.recorder, asked)
    if store_kind == "memory":
        assert found is None  # per-aggregate reads cost nothing there
        return
    assert found == {*applied, course_uuid("C1")}
    assert recorded_originators(clinic.app.recorder, []) == set()


def test_plain_rows_are_the_library_s_stored_events(clinic: Clinic, store_kind: str) -> None:
    clinic.ready()
    clinic.give()
    clinic.react(severity=1)
    recorder, course = clinic.app.recorder, course_uuid("C1")
    for gt, lte, limit in ((None, None, 10), (1, None, 10), (1, 3, 10), (0, None, 2)):
        rows = select_rows(recorder, course, gt=gt, lte=lte, limit=limit)
        if store_kind == "memory":
            assert rows is None
            return
        expected = recorder.select_events(course, gt=gt or None, lte=lte, limit=limit)
        assert [(r.originator_id, r.originator_version, r.topic, r.state) for r in rows] \
            == [(e.originator_id, e.originator_version, e.topic, bytes(e.state))
                for e in expected]
    assert select_rows(recorder, course_uuid("C404"), gt=None, lte=None, limit=5) == []
