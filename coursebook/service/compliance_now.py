"""The compliance report as of now, from the compliance view (docs/compliance.md).

The view keeps what each course contributes (`projections/compliance_view.py`); after a
catch-up, the report evaluates those contributions at the moment asked about, folds
from the log only the courses and practitioners with events dated after it, and judges
with the same `judge_contributions` as the report from the events. The courses of the
report are folded from the log only when looked up (the HTML page draws those with
findings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import cast

from coursebook.adapters.storage.time_travel import fold_course
from coursebook.domain import rules
from coursebook.domain.course_state import CourseState
from coursebook.domain.ids import course_uuid
from coursebook.domain.selection import select_events
from coursebook.errors import StoreUnavailable
from coursebook.projections.calendar import patient_key
from coursebook.projections.compliance import (
    Contribution,
    Report,
    contribution,
    fold_practitioner,
    judge_contributions,
)
from coursebook.projections.compliance_view import ComplianceProjection
from coursebook.service import read_models
from coursebook.service.wiring import Wiring

__all__ = ["FoldedOnUse", "compliance_now"]


class FoldedOnUse(Mapping[str, CourseState]):
    """The courses of a report: their ids known, each state folded when first asked for."""

    def __init__(self, ids: list[str], folded: dict[str, CourseState],
                 fold: Callable[[str], CourseState | None]) -> None:
        self._ids = ids
        self._known = set(ids)
        self._folded = folded
        self._fold = fold

    def __getitem__(self, course_id: str) -> CourseState:
        state = self._folded.get(course_id)
        if state is None:
            if course_id not in self._known:
                raise KeyError(course_id)
            state = self._fold(course_id)
            if state is None:  # pragma: no cover - the view listed it as opened by then
                raise KeyError(course_id)
            self._folded[course_id] = state
        return state

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def compliance_now(app: Wiring, moment: dt.datetime) -> Report:
    """The report as of `moment` from every recorded event, read from the compliance
    view (equal to `build_report` over the whole log at that moment, known at any time
    after it)."""
    runner = read_models.runners(app)["compliance"]
    runner.catch_up()
    stored = cast(ComplianceProjection, runner.projection).at(moment)
    zone = app.zone

    def fold(course_id: str) -> CourseState | None:
        if app.closed:
            raise StoreUnavailable(
                "this report of now reads each course from its store when the course is "
                "first looked up (courses, html()): look it up before closing the store")
        return fold_course(app.course_reader, course_uuid(course_id), as_of=moment)[0]

    erased_keys = stored.erased
    judged: list[tuple[Contribution, bool]] = [
        (made, patient_key(patient_ref) in erased_keys)
        for _, patient_ref, made in stored.courses]
    ids = [course_id for course_id, _, _ in stored.courses]
    erased = {patient_ref for _, patient_ref, _ in stored.courses
              if patient_key(patient_ref) in erased_keys}
    folded: dict[str, CourseState] = {}
    for course_id in stored.later:  # events dated after the moment: from the log
        state = fold(course_id)
        if state is None:
            continue
        gone = patient_key(state.patient_ref) in erased_keys
        folded[course_id] = state
        ids.append(course_id)
        judged.append((contribution(state, zone), gone))
        if gone:
            erased.add(state.patient_ref)
    practitioners: list[rules.Practitioner] = list(stored.practitioners)
    for originator in stored.later_practitioners:
        found = fold_practitioner(select_events(app.events.get(originator), as_of=moment))
        if found is not None:
            practitioners.append(found)
    findings = judge_contributions(judged, practitioners, as_of=moment, zone=zone)
    return Report(as_of=moment, known_at=None, zone=zone,
                  courses=FoldedOnUse(ids, folded, fold),
                  practitioners={p.practitioner_id: p for p in practitioners},
                  erased=frozenset(erased), findings=findings)
