"""Timestamp options as people type them; a bad one is a usage error that names the option
once and gives a hint."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_USAGE,
    timestamp_option_value,
    user_error,
)

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-09-10", dt.datetime(2026, 9, 10, tzinfo=PARIS)),  # the start of that local day
    ("2026-01-10", dt.datetime(2026, 1, 10, tzinfo=PARIS)),
    ("2026-09-10Z", dt.datetime(2026, 9, 10, tzinfo=dt.UTC)),
    ("2026-09-10T09:00", dt.datetime(2026, 9, 10, 9, tzinfo=PARIS)),
    ("2026-09-10 09:00", dt.datetime(2026, 9, 10, 9, tzinfo=PARIS)),
    ("2026-09-10T09:00:00+02:00", dt.datetime(2026, 9, 10, 7, tzinfo=dt.UTC)),
    ("2026-09-10T09:00:00Z", dt.datetime(2026, 9, 10, 9, tzinfo=dt.UTC)),
])
def test_the_forms_people_type_mean_one_moment(value: str, expected: dt.datetime) -> None:
    assert timestamp_option_value(value, "--as-of", PARIS) == expected


@pytest.mark.parametrize("value", ["2026-03-29T02:30", "2026-10-25T02:30"])
def test_a_local_time_the_clocks_skip_or_repeat_is_refused_with_a_hint(value: str) -> None:
    with pytest.raises(type(user_error(""))) as refused:
        timestamp_option_value(value, "--as-of", PARIS)
    assert refused.value.code == EXIT_USAGE
    assert refused.value.message.startswith("--as-of: ")
    assert refused.value.hint is not None
    assert "offset" in refused.value.hint


def test_a_malformed_timestamp_names_the_option_once_and_gives_examples() -> None:
    with pytest.raises(type(user_error(""))) as refused:
        timestamp_option_value("yesterday", "--as-of", PARIS)
    assert refused.value.code == EXIT_USAGE
    assert refused.value.message == "--as-of: is not an ISO-8601 timestamp"
    assert refused.value.hint is not None
    assert "2026-03-04" in refused.value.hint


def test_an_absent_timestamp_option_is_none() -> None:
    assert timestamp_option_value(None, "--known-at") is None
