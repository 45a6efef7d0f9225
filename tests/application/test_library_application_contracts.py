"""The eventsourcing library's application and infrastructure test cases, run against the
project's parts:

- `ApplicationTestCase` against the engine's application (`Coursebook`, in memory): its
  tagging mapper, orjson transcoder, event store (inserting through the known horizon),
  snapshot store and aggregate cache, wherever the library builds an `Application`;
- `ExampleApplicationTestCase` (the library's bank-account application, snapshots
  included) with the engine's mapper, transcoder, event store and snapshot store, on
  SQLite and PostgreSQL;
- `InfrastructureFactoryTestCase` (the library's mapper and recorder construction)
  against the factory each store runs on: the project's own `PostgresFactory` (its
  schema's `search_path`) and the library's SQLite factory with the store's options.

A library test that does not apply is skipped with the reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock
from uuid import UUID

import pytest
from eventsourcing import postgres, sqlite
from eventsourcing.persistence import DecimalAsStr, Environment, EventStore, Mapper
from eventsourcing.tests import application as library_app_tests
from eventsourcing.tests import persistence as library_tests
from eventsourcing.tests.application import BankAccounts, EmailAddressAsStr
from eventsourcing.utils import get_topic

from coursebook.adapters.storage.integrity import TaggingMapper
from coursebook.adapters.storage.keys import MasterKey
from coursebook.adapters.storage.persistence import check_target, store_env
from coursebook.adapters.storage.pg_schema import PostgresFactory
from coursebook.adapters.storage.record_time import StampingEventStore, horizon_for
from coursebook.adapters.storage.snapshots import SnapshotStore
from coursebook.adapters.storage.transcoding import OrjsonTranscoder, default_transcodings
from coursebook.service.application import Coursebook
from tests import pg


class EngineApplication(Coursebook):
    """The engine's application where the library's tests build `Application[UUID]`."""

    name = "coursebook"

    def __class_getitem__(cls, item: Any) -> Any:
        return cls


NOT_THE_ENGINE_S = {
    "test_name": "it checks how the library names `Application` subclasses; the engine's "
                 "application is named `coursebook` (its tables are named after it)",
    "test_resolve_persistence_topics": "its wrong PERSISTENCE_MODULE values meet the "
                                       "engine's master-key check first (StoreUnavailable "
                                       "'no master key'), before the library's "
                                       "InfrastructureFactoryError it expects",
    "test_take_snapshot_raises_assertion_error_if_snapshotting_not_enabled":
        "the engine always has a snapshot store (courses are snapshotted every "
        "SNAPSHOT_INTERVAL versions)",
}


class TestEngineApplication(library_app_tests.ApplicationTestCase):
    def setUp(self) -> None:
        reason = NOT_THE_ENGINE_S.get(self._testMethodName)
        if reason is not None:
            pytest.skip(reason)
        patch = mock.patch.object(library_app_tests, "Application", EngineApplication)
        patch.start()
        self.addCleanup(patch.stop)
        super().setUp()


class EngineBankAccounts(BankAccounts):
    """The library's example application on the engine's storage parts."""

    def construct_transcoder(self) -> Any:
        transcoder = OrjsonTranscoder()
        for transcoding in [*default_transcodings(), DecimalAsStr(), EmailAddressAsStr()]:
            transcoder.register(transcoding)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        return TaggingMapper(self.construct_transcoder(), key=MasterKey.ephemeral().integrity)

    def construct_event_store(self) -> EventStore[UUID]:
        return StampingEventStore(self.mapper, self.recorder, horizon_for(self.recorder))

    def construct_snapshot_store(self) -> SnapshotStore:
        recorder: Any = self.factory.aggregate_recorder(purpose="snapshots")
        return SnapshotStore(mapper=self.mapper, recorder=recorder)


class SQLiteTrackingSubclass(sqlite.SQLiteTrackingRecorder):
    pass


class PostgresTrackingSubclass(postgres.PostgresTrackingRecorder):
    pass


class _Store:
    """The environment of a new store (a temporary SQLite file or a PostgreSQL schema)."""

    kind = "sqlite"

    def store_env(self) -> dict[str, str]:
        if self.kind == "postgres":
            pg.require()
            target = pg.new_target()
            check_target(target, create=True)  # makes the schema
            self.addCleanup(pg.drop_schema, target)  # type: ignore[attr-defined]
        else:
            folder = tempfile.TemporaryDirectory()
            self.addCleanup(folder.cleanup)  # type: ignore[attr-defined]
            target = str(Path(folder.name) / "store.db")
        return store_env(target, create=True)


class TestExampleApplicationOnSQLite(_Store, library_app_tests.ExampleApplicationTestCase):
    expected_factory_topic = get_topic(sqlite.SQLiteFactory)

    def setUp(self) -> None:
        for patch in (mock.patch.dict("os.environ", self.store_env()),
                      mock.patch.object(library_app_tests, "BankAccounts",
                                        EngineBankAccounts)):
            patch.start()
            self.addCleanup(patch.stop)
        super().setUp()


@pytest.mark.postgres
class TestExampleApplicationOnPostgreSQL(TestExampleApplicationOnSQLite):
    kind = "postgres"
    expected_factory_topic = get_topic(PostgresFactory)


class TestSQLiteFactory(_Store, library_tests.InfrastructureFactoryTestCase[Any]):
    factory_class: ClassVar[Any] = sqlite.SQLiteFactory
    module: ClassVar[Any] = sqlite
    prefix = "SQLite"

    def setUp(self) -> None:
        self.env = Environment("coursebook", self.store_env())
        super().setUp()

    def expected_factory_class(self) -> Any:
        return self.factory_class

    def expected_aggregate_recorder_class(self) -> Any:
        return getattr(self.module, f"{self.prefix}AggregateRecorder")

    def expected_application_recorder_class(self) -> Any:
        return getattr(self.module, f"{self.prefix}ApplicationRecorder")

    def expected_tracking_recorder_class(self) -> Any:
        return getattr(self.module, f"{self.prefix}TrackingRecorder")

    def tracking_recorder_subclass(self) -> Any:
        return globals()[f"{self.prefix}TrackingSubclass"]

    def expected_process_recorder_class(self) -> Any:
        return getattr(self.module, f"{self.prefix}ProcessRecorder")


@pytest.mark.postgres
class TestPostgresFactory(TestSQLiteFactory):
    kind = "postgres"
    factory_class = PostgresFactory
    module = postgres
    prefix = "Postgres"
