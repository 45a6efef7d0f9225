"""A bad timestamp option is a usage error that names the option once."""

from __future__ import annotations

import pytest

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_USAGE,
    timestamp_option_value,
    user_error,
)


def test_a_timestamp_option_without_offset_names_the_option_once() -> None:
    with pytest.raises(type(user_error(""))) as refused:
        timestamp_option_value("2026-01-01", "--as-of")
    assert refused.value.code == EXIT_USAGE
    assert refused.value.message == "--as-of: needs a UTC offset (e.g. +01:00 or Z)"


def test_an_absent_timestamp_option_is_none() -> None:
    assert timestamp_option_value(None, "--known-at") is None
