"""Natural keys (caller-chosen ids) mapped to aggregate UUIDs with uuid5, as the library's
examples do, so every process finds the same aggregate without an index. The ids a
command names again and again (courses, practitioners, patients) are remembered."""

from __future__ import annotations

import uuid
from functools import lru_cache

__all__ = ["CLINIC_ID", "command_uuid", "course_uuid", "patient_uuid", "practitioner_uuid"]

NAMESPACE = uuid.UUID("6f1c1a56-4d1b-5b52-9b7e-2f3c8e0c0b01")
CLINIC_ID = uuid.uuid5(NAMESPACE, "clinic")


@lru_cache(maxsize=65536)
def course_uuid(course_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "course:" + course_id)


@lru_cache(maxsize=65536)
def practitioner_uuid(practitioner_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "practitioner:" + practitioner_id)


@lru_cache(maxsize=65536)
def patient_uuid(patient_ref: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "patient:" + patient_ref)


@lru_cache(maxsize=1024)
def command_uuid(command_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "command:" + command_id)
