"""The eventsourcing library's own contract tests, run against the project's parts.

- The transcoder (`OrjsonTranscoder`, with every transcoding the engine registers)
  passes the library's `TranscoderTestCase` for every kind of value the engine stores:
  strings, dicts (including ones that look like typed values), lists, mixed containers,
  custom types nested in custom types, UUIDs through the registered `uuid_hex`
  transcoding (orjson alone writes a UUID as a bare string, read back as a `str`), and
  a clear `TypeError` for a type without a transcoding.
- The view recorders are not presented as library tracking recorders (they move only by
  compare-and-set, see `adapters/storage/view_recorders.py`).
"""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import TrackingRecorder, Transcoder
from eventsourcing.tests import persistence as library_tests
from eventsourcing.tests.persistence import CustomType1, CustomType1AsDict, CustomType2AsDict

from coursebook.adapters.storage.snapshots import snapshot_transcodings
from coursebook.adapters.storage.transcoding import OrjsonTranscoder, default_transcodings
from coursebook.adapters.storage.view_recorders import SQLiteViewRecorder, ViewRecorder

NOT_STORED = {
    "test_dict_subclass": "the engine stores no dict subclass",
    "test_list_subclass": "the engine stores no list subclass",
    "test_str_subclass": "the engine stores no str subclass but its own enums (registered)",
    "test_int_subclass": "the engine stores no int subclass",
    "test_tuple": "the engine stores no tuple: event fields are lists",
    "test_mixed": "it mixes tuples in (the engine stores none)",
}


def engine_transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    for transcoding in [*default_transcodings(), *snapshot_transcodings()]:
        transcoder.register(transcoding)
    return transcoder


class TestOrjsonTranscoder(library_tests.TranscoderTestCase):
    def construct_transcoder(self) -> Transcoder:
        transcoder = engine_transcoder()
        transcoder.register(CustomType1AsDict())
        transcoder.register(CustomType2AsDict())
        return transcoder

    def setUp(self) -> None:
        reason = NOT_STORED.get(self._testMethodName)
        if reason is not None:
            pytest.skip(reason)
        super().setUp()


def test_a_uuid_anywhere_goes_through_its_registered_transcoding() -> None:
    transcoder = engine_transcoder()
    value = uuid.UUID("b2723fe2c01a40d2875ea3aac6a09ff5")
    for document in ({"id": value}, [value], {"a": [{"b": value}]}):
        data = transcoder.encode(document)
        assert b'"_type_":"uuid_hex"' in data
        assert transcoder.decode(data) == document


def test_a_custom_type_holding_a_uuid_reads_back_a_uuid() -> None:
    transcoder = engine_transcoder()
    transcoder.register(CustomType1AsDict())
    copy = transcoder.decode(transcoder.encode({"a": CustomType1(uuid.uuid4())}))
    assert isinstance(copy["a"].value, uuid.UUID)


def test_view_recorders_are_not_presented_as_tracking_recorders() -> None:
    view = SQLiteViewRecorder(":memory:", "v", "app", (), ())
    try:
        assert not isinstance(view, TrackingRecorder)
        assert not issubclass(ViewRecorder, TrackingRecorder)
        assert not hasattr(view, "insert_tracking")
    finally:
        view.close()
