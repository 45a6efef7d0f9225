"""The orjson transcoder reads what the library's own JSON transcoder reads, the same way.

`OrjsonTranscoder.decode` walks the decoded document with shortcuts (typed strings go
straight to their decoder, spacing rules and products are interned); the library's
`JSONTranscoder`, given the same transcodings, is the reference it must equal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given
from hypothesis import strategies as st

from coursebook.adapters.storage.keys import Keyring, MasterKey
from coursebook.adapters.storage.transcoding import (
    EncryptedPersonal,
    Interned,
    OrjsonTranscoder,
    default_transcodings,
    deferring_personal,
)
from coursebook.domain.values import Personal, Phase, Product, Protocol, SpacingRule

KEYRING = Keyring(MasterKey.ephemeral())
ERASED = "P-erased"
KEYRING.encrypt(ERASED, b"{}")


def transcoders(keyring: Keyring | None) -> tuple[OrjsonTranscoder, JSONTranscoder]:
    ours, reference = OrjsonTranscoder(), JSONTranscoder()
    for transcoding in default_transcodings(keyring):
        ours.register(transcoding)
        reference.register(transcoding)
    return ours, reference


names = st.text(st.characters(codec="utf-8"), max_size=12).filter(
    lambda s: s not in ("_type_", "_data_"))
scalars = st.none() | st.booleans() | st.integers(-2**53, 2**53) | names \
    | st.floats(allow_nan=False, allow_infinity=False)
datetimes = st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(
    hours=2))]))
rules = st.builds(lambda a, b, c, s: SpacingRule(a, a + b, a + b + c, s),
                  st.integers(1, 40), st.integers(0, 10), st.integers(0, 10), names)
products = st.builds(Product, names, names, st.dates())
phases = st.builds(Phase, st.integers(1, 5), st.none() | st.integers(5, 9), rules)
protocols = st.builds(Protocol, names, names, st.integers(1, 3), st.integers(1, 9),
                      st.integers(1, 9), st.integers(1, 9), st.integers(1, 9),
                      st.lists(phases, max_size=3), st.none() | rules)
personal_data = st.none() | st.dictionaries(names, scalars | st.lists(scalars, max_size=3),
                                            max_size=4)
personals = st.builds(Personal, st.sampled_from(["P-1", "P-2", ERASED]), personal_data)
typed = datetimes | st.dates() | rules | products | phases | protocols | personals
values = st.recursive(scalars | typed, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(names, inner, max_size=4), max_leaves=12)
documents = st.dictionaries(names, values, max_size=10)


@given(documents)
def test_decodes_as_the_library_json_transcoder_does(document: dict[str, Any]) -> None:
    ours, reference = transcoders(None)
    stored = ours.encode(document)
    assert ours.decode(stored) == reference.decode(stored) == document


@given(st.lists(documents, max_size=4), st.booleans())
def test_with_encrypted_personal_data_and_erased_patients(
        documents: list[dict[str, Any]], erase: bool) -> None:
    ours, reference = transcoders(KEYRING)
    stored = [ours.encode(document) for document in documents]
    if erase:
        KEYRING.shred(ERASED)
    deferring = deferring_personal(ours)
    for data in stored:
        # Twice: the second read of the same bytes meets interned values.
        assert ours.decode(data) == reference.decode(data) == ours.decode(data)
        assert deferring.decode(data) == reference.decode(data)
    KEYRING.encrypt(ERASED, b"{}")  # a fresh key for the next example


def test_an_erased_patients_personal_data_reads_as_erased() -> None:
    keyring = Keyring(MasterKey.ephemeral())
    ours, reference = transcoders(keyring)
    stored = ours.encode({"screening": Personal("P-9", {"allergies": ["latex"]})})
    assert b"latex" not in stored
    keyring.shred("P-9")
    assert ours.decode(stored) == reference.decode(stored) == {
        "screening": Personal("P-9", None)}


def rule(lo: int, target: int, hi: int, source: str) -> dict[str, object]:
    return {"min_days": lo, "target_days": target, "max_days": hi, "source": source}


def test_interned_values_are_bounded_and_equal_to_fresh_ones() -> None:
    interned = Interned(lambda d: SpacingRule(**d), limit=2)
    first = interned(rule(14, 21, 28, "a"))
    assert interned(rule(14, 21, 28, "a")) is first
    assert [interned(rule(1, 2, 3, s)) for s in "bcd"] == [SpacingRule(1, 2, 3, s)
                                                          for s in "bcd"]
    assert len(interned.values) <= 2
    assert interned(rule(14, 21, 28, "a")) == first


def test_a_value_stored_by_position_is_refused_without_its_upcaster() -> None:
    interned = Interned(lambda d: SpacingRule(**d))
    with pytest.raises(TypeError, match="upcaster"):
        interned([14, 21, 28, "a"])


def test_revive_rebuilds_one_value_for_the_lazy_views() -> None:
    ours, _ = transcoders(None)
    moment = dt.datetime(2027, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert ours.revive({"_type_": "datetime_iso", "_data_": moment.isoformat()}) == moment
    assert ours.revive([{"a": {"_type_": "date_iso", "_data_": "2027-01-02"}}]) == [
        {"a": dt.date(2027, 1, 2)}]
    assert ours.revive("plain") == "plain"


class CountingKeyring(Keyring):
    def __init__(self) -> None:
        super().__init__(MasterKey.ephemeral())
        self.decrypted = 0

    def decrypt(self, patient_ref: str, sealed: bytes) -> bytes | None:
        self.decrypted += 1
        return super().decrypt(patient_ref, sealed)


def test_deferred_personal_data_is_opened_only_when_read() -> None:
    keyring = CountingKeyring()
    ours, _ = transcoders(keyring)
    stored = ours.encode({"patient": Personal("P-7", {"name": "Ada Okafor"})})
    sealed = deferring_personal(ours).decode(stored)["patient"]
    assert isinstance(sealed, EncryptedPersonal)
    assert keyring.decrypted == 0
    assert "Ada" not in repr(sealed)
    assert "P-7" in repr(sealed)
    assert sealed.data == {"name": "Ada Okafor"}
    assert sealed.get("name") == "Ada Okafor"
    assert sealed == Personal("P-7", {"name": "Ada Okafor"}) == sealed
    assert keyring.decrypted == 1  # opened once, then kept


def test_deferred_personal_data_of_an_erased_patient_opens_as_erased() -> None:
    keyring = Keyring(MasterKey.ephemeral())
    ours, _ = transcoders(keyring)
    stored = ours.encode({"patient": Personal("P-8", {"name": "Tove Lind"})})
    sealed = deferring_personal(ours).decode(stored)["patient"]
    keyring.shred("P-8")
    assert sealed.erased
    assert sealed.data is None
    assert sealed == Personal("P-8", None)


def test_without_encryption_nothing_is_deferred() -> None:
    ours, _ = transcoders(None)
    assert deferring_personal(ours) is ours
    assert deferring_personal(JSONTranscoder()) is not ours


def test_an_unknown_type_name_is_refused_not_guessed() -> None:
    ours, _ = transcoders(None)
    for body in (b'{"a":{"_type_":"pickle","_data_":"x"}}',
                 b'{"a":[{"_type_":"pickle","_data_":[1]}]}',
                 b'{"_type_":"pickle","_data_":{}}'):
        with pytest.raises(TranscodingNotRegisteredError):
            ours.decode(body)
