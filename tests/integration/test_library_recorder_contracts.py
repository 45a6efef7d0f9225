"""The eventsourcing library's recorder contract tests, run against the recorders the
project builds, on SQLite and PostgreSQL:

- `ApplicationRecorderTestCase` against the events recorder `open_store` makes (the
  store's own table names, its options, the SQLite text reading `read_damaged_text`
  installs);
- `AggregateRecorderTestCase` against the snapshot store's recorder the application
  builds (`Wiring.construct_snapshot_store`);
- `TrackingRecorderTestCase` against the seal chain's tracking recorder
  (`integrity.seal_table_for`), the project's one library tracking recorder (the views'
  recorders are not tracking recorders: `tests/unit/test_library_contracts.py`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.tests import persistence as library_tests

from coursebook.adapters.storage.integrity import seal_table_for
from coursebook.bootstrap import open_store
from coursebook.clock import FixedClock
from tests import pg
from tests.stores import PG_TEST_ENV, START


class _Stores:
    """A new store per test (a temporary SQLite file, or a new PostgreSQL schema)."""

    kind = "sqlite"

    def setUp(self) -> None:
        if self.kind == "postgres":
            pg.require()
        self._apps: list[Any] = []
        self._dir = tempfile.TemporaryDirectory()
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        for app in self._apps:
            app.close()
        self._dir.cleanup()

    def new_app(self) -> Any:
        if self.kind == "sqlite":
            where = str(Path(self._dir.name) / f"store{len(self._apps)}.db")
            app = open_store(where, create=True, clock=FixedClock(START))
        else:
            app = open_store(pg.new_target(), create=True, clock=FixedClock(START),
                             extra_env=PG_TEST_ENV)
        self._apps.append(app)
        return app


class TestSQLiteEventsRecorder(_Stores, library_tests.ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> Any:
        return self.new_app().recorder

    def test_concurrent_no_conflicts(self) -> None:
        pytest.skip("a load test of the library's own recorder (minutes on this machine)")

    def test_concurrent_throughput(self) -> None:
        pytest.skip("a load test of the library's own recorder (minutes on this machine)")

    def test_performance(self) -> None:
        pytest.skip("timings belong in `python -m benchmarks`, not in tests")


class TestSQLiteSnapshotRecorder(_Stores, library_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> Any:
        return self.new_app().snapshots.recorder

    def test_performance(self) -> None:
        pytest.skip("timings belong in `python -m benchmarks`, not in tests")


class TestSQLiteSealTracking(_Stores, library_tests.TrackingRecorderTestCase):
    def create_recorder(self) -> Any:
        table: Any = seal_table_for(self.new_app().recorder, create=True)
        return table.tracking


@pytest.mark.postgres
class TestPostgresEventsRecorder(TestSQLiteEventsRecorder):
    kind = "postgres"


@pytest.mark.postgres
class TestPostgresSnapshotRecorder(TestSQLiteSnapshotRecorder):
    kind = "postgres"


@pytest.mark.postgres
class TestPostgresSealTracking(TestSQLiteSealTracking):
    kind = "postgres"
