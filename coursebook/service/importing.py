"""JSON Lines in, an import report out: what `coursebook import` and a host's bulk loads
read. Each line is one command, decided and recorded as `execute` would (each atomic),
in batches of `BATCH` lines per transaction.

Lines are numbered from 1 as they stand; blank lines are skipped; a UTF-8 byte-order
mark and CRLF line ends are accepted; a line that is not UTF-8, not JSON or not an
object is rejected `INVALID` (its `command_id` None when none can be read) and the
import goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import orjson

from coursebook.errors import Code, Rejected

__all__ = ["BATCH", "ImportReport", "RejectedLine", "batch_size", "decode_line",
           "numbered_lines"]

BOM = b"\xef\xbb\xbf"

BATCH = 500
"""Lines decided in memory and then recorded in one transaction (each still atomic);
`COURSEBOOK_IMPORT_BATCH` sets another size (1 records each line on its own)."""


def batch_size() -> int:
    text = os.environ.get("COURSEBOOK_IMPORT_BATCH", "")
    return int(text) if text.isdigit() and int(text) > 0 else BATCH


@attrs.frozen
class RejectedLine:
    line: int
    command_id: str | None
    code: str
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "command_id": self.command_id, "code": self.code,
                "field": self.field, "message": self.message}


@attrs.define
class ImportReport:
    """How many lines were applied, how many were duplicates of commands already applied,
    and each rejected line with its code, field and message (never personal data)."""

    applied: int = 0
    duplicates: int = 0
    rejected: list[RejectedLine] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        """The document `coursebook import` prints."""
        return {"applied": self.applied, "duplicates": self.duplicates,
                "rejected": [line.as_dict() for line in self.rejected]}

    def count(self, number: int, raw: Any, result: Any) -> bool:
        """Counts one line's outcome (an `Outcome` or a `Rejected`); False if refused."""
        if isinstance(result, Rejected):
            command_id = raw.get("command_id") if isinstance(raw, dict) else None
            self.rejected.append(RejectedLine(
                number, command_id if isinstance(command_id, str) else None,
                str(result.code), result.field, result.message))
            return False
        if result.status == "applied":
            self.applied += 1
        else:
            self.duplicates += 1
        return True


def numbered_lines(data: bytes | str | Iterable[str]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, content) for each non-blank line; BOM and CRLF accepted.
    `data`: a file's bytes, its whole text, or an iterable of its lines."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if isinstance(data, bytes | bytearray | memoryview):
        chunks: Iterable[bytes] = bytes(data).split(b"\n")
        first = True
    else:
        chunks = (line.encode("utf-8", "surrogateescape") for line in data)
        first = True
    for number, line in enumerate(chunks, start=1):
        if first:
            line = line.removeprefix(BOM).removeprefix("\ufeff".encode())
            first = False
        line = line.removesuffix(b"\n").removesuffix(b"\r")
        if line.strip():
            yield number, line


def decode_line(line: bytes) -> Any:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Code.INVALID, "the line is not valid UTF-8", "(line)") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Rejected(Code.INVALID, "the line is not valid JSON", "(line)") from None
