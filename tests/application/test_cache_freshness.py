"""Two applications on one store (two processes of a clinic backend): what one records,
the other's next command decides on, although it answers from its aggregate cache
(`coursebook.service.freshness`: one look at the head of the log per command)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coursebook.clock import FixedClock
from coursebook.errors import Code
from tests.builders import Clinic, day, rejected
from tests.stores import PERSISTENT_KINDS, params, reopen


@pytest.fixture(params=params(PERSISTENT_KINDS))
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def other(clinic: Clinic, store_kind: str, tmp_path: Path,
          clock: FixedClock) -> Iterator[Clinic]:
    """A second application on the same store, its cache warmed on course C1."""
    clinic.ready()
    second = reopen(store_kind, tmp_path, clock)
    assert second is not None
    other = Clinic(second, staff=False)
    other.schedule(planned_at=day(1))  # loads C1, the actor and the patient into its cache
    yield other
    second.close()


def test_a_course_paused_by_the_other_process_refuses_the_next_session(
        clinic: Clinic, other: Clinic) -> None:
    clinic.pause(at=day(0, 11))
    with rejected(Code.COURSE_PAUSED):
        other.give(at=day(1))


def test_a_licence_lapsed_in_the_other_process_stops_the_next_injection(
        clinic: Clinic, other: Clinic) -> None:
    clinic.run("renew_license", at=day(0, 11), actor="admin", practitioner_id="dr-ada",
               license_number="LIC-dr-ada", license_expires_on="2026-01-10")
    with rejected(Code.NOT_AUTHORIZED):
        other.give(at=day(1))


def test_an_erasure_in_the_other_process_blocks_the_next_fact(
        clinic: Clinic, other: Clinic) -> None:
    clinic.run("erase_patient", at=day(0, 11), actor="dpo", patient_ref="P1",
               reason="request")
    with rejected(Code.PATIENT_ERASED):
        other.give(at=day(1))


def test_each_process_sees_the_versions_the_other_added(clinic: Clinic,
                                                        other: Clinic) -> None:
    clinic.give(at=day(1))
    other.react(severity=1)
    clinic.react(severity=2, at=day(2, 10))
    assert other.give(at=day(30)).version == 7
    assert clinic.course()["version"] == 7


def test_an_erasure_elsewhere_drops_this_process_s_cached_records_and_keys(
        clinic: Clinic, other: Clinic) -> None:
    """Another process's erasure: at its next command, this one keeps no decrypted
    personal data of that patient in its aggregate cache, nor the patient's key."""
    key_id = other.app.keyring.key_id("P1")
    assert key_id in other.app.keyring._cache  # unwrapped when C1 was loaded
    clinic.run("erase_patient", at=day(0, 11), actor="dpo", patient_ref="P1",
               reason="request")
    other.open("C2", patient_ref="P2", at=day(0, 12))  # any next command
    assert key_id not in other.app.keyring._cache
    cached = other.app.repository.cache
    assert cached is not None
    courses = [a for a in (link[3] for link in cached.cache.values())
               if type(a).__name__ == "TreatmentCourse"]
    assert [c.state.course_id for c in courses if c.state.patient_ref == "P1"] == []
