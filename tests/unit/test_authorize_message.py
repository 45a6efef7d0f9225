"""The NOT_AUTHORIZED message reads as a sentence, whatever the role."""

from __future__ import annotations

import datetime as dt

import pytest

from coursebook.domain.rules import Practitioner, authorize
from coursebook.errors import Code, Rejected


@pytest.mark.parametrize(("role", "expected"), [
    ("aesthetician", "an aesthetician may not inject"),
    ("nurse", "a nurse may not override"),
])
def test_a_role_that_may_not_act_is_named_with_its_article(role: str, expected: str) -> None:
    act = "inject" if role == "aesthetician" else "override"
    someone = Practitioner("p1", role, dt.date(2030, 1, 1))
    with pytest.raises(Rejected) as refused:
        authorize(someone, act, "p1", dt.date(2026, 1, 1))
    assert refused.value.code == Code.NOT_AUTHORIZED
    assert refused.value.message.startswith(expected)
