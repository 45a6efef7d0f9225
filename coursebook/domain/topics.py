"""The names stored records go by, and the old names of classes that were renamed or moved.

Every stored event carries a *topic*: the module and qualified name of its class when it
was written (`eventsourcing.utils.get_topic`). A store lives for decades, so a class
that is renamed or moved keeps answering to every topic it was ever stored under. The
rule (docs/schema-evolution.md):

- **A rename is one line here**: `renamed(old_topic, cls)` registers the old topic with
  the library (`register_topic`, so `resolve_topic` finds the class, and with it the
  mapper and every fast read path) and lists it in `LEGACY_TOPICS`. Old rows are never
  rewritten; new rows carry the class's new topic. A renamed aggregate or module takes
  its nested classes with it (`renamed("old.module:OldAggregate", NewAggregate)`).
- **Readers know an event by its class, never by one topic string.** Whoever selects
  stored rows by topic (the views, the compliance report, the cache's erasure check)
  selects `topics_of(cls)`: the class's topic and every registered old one. The views'
  runner hands each row to its projection under the class's current topic
  (`current_topic`), so a projection compares topics as it always did.

Classes may also pin their stored topic with a `TOPIC` attribute (the library's
`construct_topic` prefers it), as `store_records` did when its module moved; that stays
valid, and then the old and the new module write the same topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from eventsourcing.utils import get_topic, register_topic, resolve_topic

__all__ = ["LEGACY_TOPICS", "current_topic", "renamed", "topic_aliases", "topics_of"]

LEGACY_TOPICS: dict[str, type | ModuleType] = {}
"""Every old topic still found in stores, and the class (or module) it names now. Only
ever grows: a topic once stored is stored for good."""


def renamed(old_topic: str, new: type | ModuleType) -> None:
    """Stored records under `old_topic` are read as `new` (a class, or a module for a
    moved module). Call it at import time of `new`'s module, once per old name."""
    register_topic(old_topic, new)
    LEGACY_TOPICS[old_topic] = new


def topics_of(cls: type) -> list[str]:
    """Every topic a stored record of `cls` may carry: its own, then each old one
    registered for it, for a class it is nested in, or for its module."""
    own = get_topic(cls)
    module, qualname = cls.__module__, cls.__qualname__
    found: list[str] = [own]
    for old, new in LEGACY_TOPICS.items():
        if new is cls:
            topic = old
        elif isinstance(new, type) and new.__module__ == module \
                and qualname.startswith(new.__qualname__ + "."):
            topic = f"{old}.{qualname[len(new.__qualname__) + 1:]}"
        elif isinstance(new, ModuleType) and new.__name__ == module:
            topic = f"{old}:{qualname}"
        else:
            continue
        if topic not in found and _resolves_to(topic, cls):
            found.append(topic)
    return found


def _resolves_to(topic: str, cls: type) -> bool:
    try:
        return resolve_topic(topic) is cls
    except Exception:  # a topic that no longer resolves names nothing of ours
        return False


def current_topic(topic: str) -> str:
    """The topic the class stored under `topic` is written under today."""
    found: Any = resolve_topic(topic)
    return get_topic(found)


def topic_aliases(topics: Iterable[str]) -> dict[str, str]:
    """Each old topic of the classes stored under `topics`, to the current topic of its
    class (empty when none of them was ever renamed)."""
    aliases: dict[str, str] = {}
    for topic in topics:
        cls = resolve_topic(topic)
        now = get_topic(cls)
        for old in topics_of(cls):
            if old != now:
                aliases[old] = now
    return aliases
