"""A command works on a copy of the cached course: whatever it changes, and whether or
not it is recorded, the cached course (what the next command and queries see) stays as
the stored events say."""

from __future__ import annotations

from copy import deepcopy

import attrs

from coursebook.domain.course import TreatmentCourse
from coursebook.domain.ids import course_uuid
from tests.builders import Clinic


def test_a_copy_shares_no_container_and_no_reaction_with_the_cached_course(
        clinic: Clinic) -> None:
    clinic.ready()
    clinic.give()
    clinic.react(severity=4)
    cached = clinic.app.repository.get(course_uuid("C1"), deepcopy_from_cache=False)
    copy = deepcopy(cached)
    assert isinstance(copy, TreatmentCourse)
    assert copy.state == cached.state
    assert copy.version == cached.version
    assert copy.id == cached.id
    for field in attrs.fields(type(cached.state)):
        value = getattr(cached.state, field.name)
        if isinstance(value, list | dict | set):
            assert getattr(copy.state, field.name) is not value, field.name
    assert all(a is not b for a, b in zip(copy.state.reactions, cached.state.reactions,
                                          strict=True))
    copy.state.reactions[0].reviewed_by = "someone"
    copy.state.sessions.clear()
    assert cached.state.reactions[0].reviewed_by is None
    assert cached.state.sessions_given == 1

