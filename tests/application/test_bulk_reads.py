"""`recorded_originators`: which aggregates have stored events, in one query per batch
(what `import` asks of each batch's command ids before deciding its lines)."""

from __future__ import annotations

from coursebook.adapters.bulk_reads import recorded_originators
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
