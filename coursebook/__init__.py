"""coursebook: an event-sourced engine for aesthetic-clinic treatment courses.

The public surface, and the only one a host needs::

    from coursebook import open_store, Rejected

    app = open_store("clinic.db", create=True)     # or "postgresql://…"
    app.initialise("Europe/Paris")
    app.execute({...})                               # or app.open_course(...), …
    app.import_lines(open("commands.jsonl", "rb").read())
    app.get_course("C-1"); app.calendar(); app.audit(); app.compliance(); app.verify()
    app.recall("HA-2291", as_of=None, known_at=None)    # a lot's sessions, for a recall
    app.check_migration(); app.migrate(actor="ops-1")   # after an upgrade of coursebook

A store holding records written by a newer coursebook raises `StoreUnavailable` (its
message says so; docs/schema-evolution.md). A question whose answer would rest on a stored
record changed outside the engine raises `Tampered` instead (docs/integrity.md).
Everything else (`coursebook.domain`, `.projections`, `.service`, `.adapters`) is the
engine's inside and may change between releases. The engine logs through the standard
`logging` module under the `coursebook` logger and never prints.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from coursebook.clock import Clock, FixedClock, SystemClock
from coursebook.errors import Code, CoursebookError, Rejected, StoreUnavailable, Tampered

if TYPE_CHECKING:
    from coursebook.adapters.storage.integrity import SealHead
    from coursebook.bootstrap import open_store, resolve_target, safe_target
    from coursebook.domain.commands import parse_timestamp
    from coursebook.projections.compliance import Finding
    from coursebook.projections.compliance import Report as ComplianceReport
    from coursebook.service.application import Coursebook, Outcome
    from coursebook.service.importing import ImportReport, RejectedLine

__all__ = ["Clock", "Code", "ComplianceReport", "Coursebook", "CoursebookError", "Finding",
           "FixedClock", "ImportReport", "Outcome", "Rejected", "RejectedLine", "SealHead",
           "StoreUnavailable", "SystemClock", "Tampered", "open_store", "parse_timestamp",
           "resolve_target", "safe_target"]

# A library logs, the host decides where to: without this handler, a host that configured
# no logging would get the engine's warnings on standard error (Python's last resort).
# See coursebook/logs.py and docs/embedding.md.
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "Coursebook": ("coursebook.service.application", "Coursebook"),
    "Outcome": ("coursebook.service.application", "Outcome"),
    "ImportReport": ("coursebook.service.importing", "ImportReport"),
    "RejectedLine": ("coursebook.service.importing", "RejectedLine"),
    "ComplianceReport": ("coursebook.projections.compliance", "Report"),
    "Finding": ("coursebook.projections.compliance", "Finding"),
    "SealHead": ("coursebook.adapters.storage.integrity", "SealHead"),
    "open_store": ("coursebook.bootstrap", "open_store"),
    "resolve_target": ("coursebook.bootstrap", "resolve_target"),
    "safe_target": ("coursebook.bootstrap", "safe_target"),
    "parse_timestamp": ("coursebook.domain.commands", "parse_timestamp"),
}


def __getattr__(name: str) -> Any:
    """The application (and with it the event store library) is imported on first use,
    so `coursebook --help` and a plain `import coursebook` stay quick."""
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'coursebook' has no attribute {name!r}")
