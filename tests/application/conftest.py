"""Application tests run on every store kind of `tests.stores.STORE_KINDS`."""

from __future__ import annotations

import pytest

from coursebook.service.application import Coursebook
from tests.builders import Clinic


@pytest.fixture
def clinic(app: Coursebook) -> Clinic:
    return Clinic(app)
