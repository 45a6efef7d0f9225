"""The command line's log handler: one, whatever the number of `configure_logging` calls."""

from __future__ import annotations

import io
import json
import logging

from coursebook.logs import configure_logging, get_logger, reset_logging
from tests.logcapture import pristine_logging


def test_configuring_twice_keeps_one_handler_writing_to_the_last_stream() -> None:
    first, second = io.StringIO(), io.StringIO()
    with pristine_logging() as logger:
        before = list(logger.handlers)
        configure_logging(stream=first, json=True)
        configure_logging(stream=second, json=True)
        assert len(logger.handlers) == len(before) + 1
        assert logger.propagate is False
        get_logger("coursebook.cli").error("internal_error", error="KeyError")
        configure_logging(stream=second, json=False, level=logging.WARNING)
        get_logger("coursebook").info("command", command="open_course")  # below the level
        get_logger("coursebook").warning("snapshot_ignored", reason="its tag")
        reset_logging()
        assert logger.handlers == before
        assert logger.propagate is True
    assert first.getvalue() == ""
    as_json, as_text = second.getvalue().splitlines()
    entry = json.loads(as_json)
    assert (entry["event"], entry["level"], entry["error"]) == ("internal_error", "error",
                                                               "KeyError")
    assert "snapshot_ignored" in as_text
    assert "[warning" in as_text
    assert "reason='its tag'" in as_text
