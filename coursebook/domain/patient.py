"""The `PatientRecord` aggregate: which courses belong to a pseudonymous patient, and
whether the patient was erased. It holds no personal data itself."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from coursebook.domain.ids import patient_uuid

__all__ = ["PatientRecord"]


class PatientRecord(Aggregate):
    class Registered(Aggregate.Created):
        at: dt.datetime
        actor: str
        command_id: str
        patient_ref: str
        course_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.patient_ref = self.patient_ref
            aggregate.course_ids = [self.course_id]
            aggregate.erased_at = None

    class CourseAdded(Aggregate.Event):
        at: dt.datetime
        actor: str
        command_id: str
        course_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.course_ids.append(self.course_id)

    class Erased(Aggregate.Event):
        at: dt.datetime
        actor: str
        command_id: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.erased_at = self.at

    if TYPE_CHECKING:  # set by the events' apply(); not constructor arguments
        patient_ref: str
        course_ids: list[str]
        erased_at: dt.datetime | None

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    @classmethod
    def register(cls, *, recorded_at: dt.datetime, at: dt.datetime, actor: str,
                 command_id: str, patient_ref: str, course_id: str) -> PatientRecord:
        return cls._create(cls.Registered, id=patient_uuid(patient_ref), timestamp=recorded_at,
                           at=at, actor=actor, command_id=command_id, patient_ref=patient_ref,
                           course_id=course_id)

    def add_course(self, *, recorded_at: dt.datetime, at: dt.datetime, actor: str,
                   command_id: str, course_id: str) -> None:
        self.trigger_event(self.CourseAdded, timestamp=recorded_at, at=at, actor=actor,
                           command_id=command_id, course_id=course_id)

    def erase(self, *, recorded_at: dt.datetime, at: dt.datetime, actor: str,
              command_id: str, reason: str) -> None:
        self.trigger_event(self.Erased, timestamp=recorded_at, at=at, actor=actor,
                           command_id=command_id, reason=reason)
