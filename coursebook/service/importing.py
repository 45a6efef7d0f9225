"""JSON Lines in, an import report out: what `coursebook import` and a host's bulk loads
read. Each line is one command, decided and recorded as `execute` would (each atomic),
in batches of `BATCH` lines per transaction.

Lines are numbered from 1 as they stand; blank lines are skipped; a UTF-8 byte-order
mark and CRLF line ends are accepted; a line that is not UTF-8, not JSON or not an
object is rejected `INVALID` (its `command_id` None when none can be read) and the
import goes on.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

import attrs
import orjson

from coursebook.domain.commands import MAX_DEPTH
from coursebook.errors import Code, CoursebookError, Rejected

__all__ = ["BATCH", "MAX_LINE", "ImportReport", "RejectedLine", "UnusableInput", "batch_size",
           "decode_line", "numbered_lines"]

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


MAX_LINE = 4 * 1024 * 1024
"""The longest line an import reads (bytes, without its line end): a longer one is
rejected `INVALID` and the rest of it skipped, so memory stays bounded by it."""
MAX_SKIP = 64 * MAX_LINE
"""A "line" with no end in this many bytes is not JSON Lines at all (`/dev/zero`, a disk
image): the import stops there with `UnusableInput`."""
_CHUNK = 1024 * 1024


class UnusableInput(CoursebookError):
    """The input cannot be read as JSON Lines from some point on (the lines before it
    were applied); the command line exits 2 with this message."""


def numbered_lines(data: bytes | str | Iterable[str] | IO[bytes]
                   ) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, content) for each non-blank line; BOM and CRLF accepted.
    `data`: a file's bytes, its whole text, an iterable of its lines, or a binary file
    read line by line (never more than `MAX_LINE` + 2 bytes of it held at once). A line
    longer than `MAX_LINE` comes out cut to `MAX_LINE` + 1 bytes (`decode_line` rejects
    it)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if isinstance(data, bytes | bytearray | memoryview):
        data = io.BytesIO(bytes(data))
    chunks: Iterable[bytes]
    if not isinstance(data, io.TextIOBase) and hasattr(data, "readline"):  # binary file
        chunks = _read_lines(cast(IO[bytes], data))
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


def _read_lines(stream: IO[bytes]) -> Iterator[bytes]:
    number = 0
    while True:
        line = stream.readline(MAX_LINE + 2)
        if not line:
            return
        number += 1
        if len(line) == MAX_LINE + 2 and not line.endswith(b"\n"):  # cut: skip the rest
            skipped = len(line)
            while True:
                rest = stream.readline(_CHUNK)
                skipped += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
                if skipped > MAX_SKIP:
                    raise UnusableInput(f"line {number}: no line end in {MAX_SKIP >> 20} "
                                        "MiB: this is not a JSON Lines file")
            line = line[:MAX_LINE] + b"\0"  # longer than MAX_LINE, whatever is stripped
        yield line


def decode_line(line: bytes) -> Any:
    if len(line) > MAX_LINE:
        raise Rejected(Code.INVALID, f"the line is longer than {MAX_LINE >> 20} MiB",
                       "(line)")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Code.INVALID, "the line is not valid UTF-8", "(line)") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if error.msg.startswith("depth limit"):  # orjson stops at 1024 levels
            raise Rejected(Code.INVALID, "the line is nested more than "
                           f"{MAX_DEPTH} levels deep", "(line)") from None
        raise Rejected(Code.INVALID, "the line is not valid JSON", "(line)") from None
