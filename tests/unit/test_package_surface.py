"""The package's public names resolve (the application ones lazily, on first use)."""

from __future__ import annotations

import coursebook
from coursebook.service.application import Coursebook, Outcome


def test_every_public_name_resolves() -> None:
    for name in coursebook.__all__:
        assert getattr(coursebook, name) is not None, name
    assert coursebook.Coursebook is Coursebook
    assert coursebook.Outcome is Outcome
