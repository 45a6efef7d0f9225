"""Logging that a host controls (issue "Embedding first", item 3).

An embedding host gets the library's records on the standard `logging` logger
`coursebook`, one per command, with structured fields and no personal data; the library
itself never writes to standard output or standard error, whether the host configured a
handler or nothing at all (not even warnings through Python's last-resort handler).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from coursebook.errors import StoreUnavailable
from coursebook.logs import FIELDS
from tests.application.test_logs import PERSONAL, private_course
from tests.builders import Clinic, command, day
from tests.logcapture import pristine_logging

ROOT = Path(__file__).resolve().parents[2]
HOST_FORMAT = "%(asctime)s %(levelname)s %(name)s %(module)s:%(lineno)d %(message)s"


class HostHandler(logging.Handler):
    """What a host attaches: it keeps the records, and formats them as a host would."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter(HOST_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def coursebook_logger() -> Iterator[logging.Logger]:
    """The `coursebook` logger as a host process finds it after `import coursebook`."""
    with pristine_logging() as logger:
        yield logger


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without any handler: pytest's own, added for each test's call
    phase (after the fixtures are set up), are set aside while it lasts."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields the library attaches to each record."""
    found: dict[str, Any] = record.__dict__[FIELDS]
    return found


def counting_executions(clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every command body the application is asked to execute, in order."""
    bodies: list[Any] = []
    execute = clinic.app.execute

    def counted(raw: Any, *args: Any, **kwargs: Any) -> Any:
        bodies.append(raw)
        return execute(raw, *args, **kwargs)

    monkeypatch.setattr(clinic.app, "execute", counted)
    return bodies


def adjust(command_id: str) -> dict[str, Any]:
    return command("adjust_interval", at=day(0, 11), command_id=command_id, course_id="C1",
                   min_days=7, target_days=20, max_days=40, reason="host logging test")


def test_a_host_handler_gets_one_record_per_command_and_nothing_is_printed(
        clinic: Clinic, coursebook_logger: logging.Logger, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    handler = HostHandler()
    coursebook_logger.addHandler(handler)
    coursebook_logger.setLevel(logging.INFO)
    capfd.readouterr()  # what the fixtures' set-up said is not the library's doing
    try:
        bodies = counting_executions(clinic, monkeypatch)
        refusals = private_course(clinic)
        clinic.run("erase_patient", at=day(5), actor="dpo", patient_ref="P1",
                   reason="GDPR request")
    finally:
        coursebook_logger.removeHandler(handler)

    assert capfd.readouterr() == ("", "")
    records = handler.records
    assert len(refusals) == 10
    assert len(records) == len(bodies) == 5 + len(refusals) + 1
    for body, record in zip(bodies, records, strict=True):
        logged = fields(record)
        assert record.name == "coursebook"
        assert record.levelno == logging.INFO
        assert record.module == "commanding"  # the caller, not the logging helper
        assert logged["event"] == "command"
        assert logged["command"] == body["command"]
        assert logged["outcome"] in ("applied", "rejected")
        if logged["outcome"] == "rejected":
            assert logged["code"]
            assert str(logged["code"]) in record.getMessage()
        if logged["outcome"] == "rejected" and logged["field"] == "command_id":
            assert logged["command_id"] is None  # the bad id itself is not logged
        else:
            assert logged["command_id"] == body["command_id"]
            assert f"command_id={body['command_id']}" in record.getMessage()
        assert record.getMessage().startswith(f"command command={body['command']} ")
    outcomes = [fields(record)["outcome"] for record in records]
    assert outcomes.count("rejected") == len(refusals)
    assert {fields(record)["code"] for record in records
            if fields(record)["outcome"] == "rejected"} == {str(r.code) for r in refusals}

    for record in records:
        texts = [str(record.__dict__), handler.format(record)]
        for text in texts:
            for value in PERSONAL:
                assert value.casefold() not in text.casefold(), (value, text)


def test_nothing_reaches_standard_error_when_no_handler_is_configured_anywhere(
        clinic: Clinic, coursebook_logger: logging.Logger,
        capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[logging.LogRecord] = []

    def note(record: logging.LogRecord) -> bool:  # a filter, not a handler: still none
        seen.append(record)
        return True

    clinic.ready()
    writes: Any = clinic.app.events.horizon  # every insert of events goes through it

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    def store_fails() -> None:
        with monkeypatch.context() as patch:
            patch.setattr(writes, "insert", gone)
            with pytest.raises(StoreUnavailable):
                clinic.app.execute(adjust(f"lost-{len(seen)}"))

    capfd.readouterr()
    coursebook_logger.addFilter(note)
    try:
        with bare_root():
            store_fails()
            clinic.give()
    finally:
        coursebook_logger.removeFilter(note)
    assert [fields(r)["outcome"] for r in seen] == ["store_unavailable"]
    assert seen[0].levelno == logging.WARNING
    assert capfd.readouterr() == ("", "")

    # The same warning without the package's NullHandler goes to Python's last resort:
    # the handler above is what keeps a host's standard error clean.
    null_handlers = [h for h in coursebook_logger.handlers
                     if isinstance(h, logging.NullHandler)]
    assert null_handlers
    for null in null_handlers:
        coursebook_logger.removeHandler(null)
    try:
        with bare_root():
            store_fails()
    finally:
        for null in null_handlers:
            coursebook_logger.addHandler(null)
    assert "outcome=store_unavailable" in capfd.readouterr().err


EMBEDDED = """
import sys
from eventsourcing.persistence import OperationalError
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from coursebook.errors import Rejected, StoreUnavailable
from tests.builders import Clinic, command, day
from tests.stores import START

app = open_store(sys.argv[1], create=True, clock=FixedClock(START))
app.initialise("Europe/Paris")
clinic = Clinic(app)
clinic.ready()
try:
    clinic.give(anaesthetic="Quetzalcaine")
except Rejected:
    pass

def gone(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")

app.events.horizon.insert = gone
try:
    app.execute(command("adjust_interval", at=day(0, 11), course_id="C1", min_days=7,
                        target_days=20, max_days=40, reason="host logging test"))
except StoreUnavailable:
    pass
app.close()
sys.exit(3 if "structlog" in sys.modules else 0)
"""


def test_a_fresh_host_process_that_configures_nothing_prints_nothing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", EMBEDDED, str(tmp_path / "store.db")],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # 3: structlog
