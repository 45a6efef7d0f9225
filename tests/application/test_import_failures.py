"""An import stays atomic per line when something fails in the middle of a batch, and
stays idempotent when importers retry the same file at the same time.

A batch's lines are recorded in one transaction: a failure while it is decided or while
its rows are being inserted leaves none of its lines in the store (and every line before
it whole); running the import again then leaves the store one clean import leaves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import DataError

from benchmarks.clinic import clinic_commands
from coursebook.adapters.storage.keys import MASTER_KEY_ENV, new_master_key_text
from coursebook.clock import FixedClock
from coursebook.domain.course import TreatmentCourse
from coursebook.service.application import Coursebook
from tests.integration.ledger import read_ledger
from tests.integration.test_import_determinism import NOW, answers, clean_import, lines_decided
from tests.stores import PERSISTENT_KINDS, make_app, params, release

BATCH = 20


class Injected(RuntimeError):
    """The failure a test injects (a full disk, a bug, a lost server...)."""


@pytest.fixture(autouse=True)
def master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """One master key for every store of a test, so that keyed receipt digests compare."""
    monkeypatch.setenv(MASTER_KEY_ENV, new_master_key_text())


def clinic() -> bytes:
    return b"".join(orjson.dumps(c) + b"\n" for c in clinic_commands(6, seed=5))


def fail_on_second_batch(app: Coursebook, where: str, settled: list[int],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the second batch fail: in the middle of its decisions (its first session
    given), or once its rows are inserted and before its transaction commits."""
    if where == "decide":
        original_give = TreatmentCourse.give_session

        def give(course: TreatmentCourse, *args: Any, **kwargs: Any) -> None:
            if settled:  # the first batch is recorded
                raise Injected("a bug in the middle of a batch")
            original_give(course, *args, **kwargs)

        monkeypatch.setattr(TreatmentCourse, "give_session", give)
        return
    recorder: Any = app.recorder
    postgres = hasattr(recorder, "_insert_stored_events")
    # After the rows' INSERT, inside its transaction: on PostgreSQL the fetch of their ids.
    name = "_fetch_ids_after_insert_events" if postgres else "_insert_events"
    original: Callable[..., Any] = getattr(recorder, name)

    def insert(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(cursor, *args, **kwargs)
        if settled:
            if postgres:  # the server fails the transaction (an error it reports)
                cursor.execute("SELECT 1/0")
            else:
                raise Injected("the store failed with the batch's rows inserted")
        return result

    monkeypatch.setattr(recorder, name, insert)


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
@pytest.mark.parametrize("where", ["decide", "insert"])
def test_a_failure_mid_batch_records_none_of_its_lines_and_a_rerun_completes_the_import(
        kind: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = clinic()
    lines = data.splitlines(keepends=True)
    clean_report, clean = clean_import(data, FixedClock(NOW))
    app = make_app(kind, tmp_path, FixedClock(NOW), catalogue="default@2")
    try:
        settled: list[int] = []
        with monkeypatch.context() as patch:
            fail_on_second_batch(app, where, settled, patch)
            with pytest.raises(Injected if where == "decide" or kind == "sqlite"
                               else DataError):
                app.import_lines(data, batch=BATCH, progress=settled.append)
        assert settled == [BATCH]
        read_ledger(app).check()  # whole commands only, refusals included
        # The store holds exactly the first batch's lines: what importing them alone gives.
        before = b"".join(lines[:BATCH])
        assert answers(app, before) == clean_import(before, FixedClock(NOW))[1]

        again = app.import_lines(data, batch=BATCH).as_dict()
        assert lines_decided(again) == lines_decided(clean_report)
        assert answers(app, data) == clean
    finally:
        app.close()
        release(kind, tmp_path)


@pytest.mark.parametrize("kind", params(PERSISTENT_KINDS))
def test_importers_retrying_the_same_file_at_once_apply_each_line_once(
        kind: str, tmp_path: Path) -> None:
    data = clinic()
    clean_report, clean = clean_import(data, FixedClock(NOW))
    first = make_app(kind, tmp_path, FixedClock(NOW), catalogue="default@2")
    apps = [first, *(make_app(kind, tmp_path, FixedClock(NOW), catalogue="default@2")
                     for _ in range(2))]
    reports: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(apps))

    def run(app: Coursebook, batch: int) -> None:
        try:
            start.wait()
            reports.append(app.import_lines(data, batch=batch).as_dict())
        except BaseException as error:  # reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=run, args=(app, batch))
                   for app, batch in zip(apps, (BATCH, 7, 1), strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not errors, errors
        for report in reports:
            assert lines_decided(report) == lines_decided(clean_report)
        assert sum(r["applied"] for r in reports) == clean_report["applied"]
        assert answers(first, data) == clean
    finally:
        for app in apps:
            app.close()
        release(kind, tmp_path)
