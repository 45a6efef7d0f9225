"""`coursebook import FILE`: apply JSON Lines commands in order, each atomically.

A line that is not UTF-8, not JSON or not an object is rejected `INVALID` and the file
goes on; nothing but a missing or unreadable file stops it (exit 2).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    Context,
    emit,
    table,
    user_error,
)
from coursebook.errors import Code, Rejected, StoreUnavailable

if TYPE_CHECKING:
    from coursebook.service.application import Coursebook

BOM = b"\xef\xbb\xbf"


def register(cli: click.Group) -> None:
    cli.add_command(import_commands)


def read_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, content) for each non-blank line; BOM and CRLF accepted."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.removesuffix(b"\r")
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


BATCH = 500
"""Lines decided in memory and then recorded in one transaction (each still atomic);
`COURSEBOOK_IMPORT_BATCH` sets another size (1 records each line on its own)."""


def batch_size() -> int:
    text = os.environ.get("COURSEBOOK_IMPORT_BATCH", "")
    return int(text) if text.isdigit() and int(text) > 0 else BATCH


def apply_lines(app: Coursebook, data: bytes, *, stop_on_error: bool = False,
                batch: int | None = None) -> dict[str, Any]:
    size = batch or batch_size()
    report: dict[str, Any] = {"applied": 0, "duplicates": 0, "rejected": []}
    pending: list[tuple[int, Any]] = []

    def settle() -> bool:
        """Applies the pending lines; False once a refusal must stop the import."""
        if not pending:
            return True
        try:
            results = app.execute_batch([raw for _, raw in pending],
                                        stop_on_error=stop_on_error)
        except StoreUnavailable as error:
            raise StoreUnavailable(
                f"lines {pending[0][0]}-{pending[-1][0]}: {error} (applied before them: "
                f"{report['applied']}; run the import again: lines already applied count "
                "as duplicates)") from None
        go_on = _tally(report, [(number, raw, result)
                                for (number, raw), result in zip(pending, results, strict=False)])
        pending.clear()
        return go_on or not stop_on_error

    for number, line in read_lines(data):
        try:
            raw = decode_line(line)
        except Rejected as error:
            if not settle():
                return report
            _tally(report, [(number, None, error)])
            if stop_on_error:
                return report
            continue
        pending.append((number, raw))
        if len(pending) >= size and not settle():
            return report
    settle()
    return report


def _tally(report: dict[str, Any], results: list[tuple[int, Any, Any]]) -> bool:
    """Counts outcomes into the report; False if any line was refused."""
    clean = True
    for number, raw, result in results:
        if isinstance(result, Rejected):
            clean = False
            command_id = raw.get("command_id") if isinstance(raw, dict) else None
            report["rejected"].append({
                "line": number,
                "command_id": command_id if isinstance(command_id, str) else None,
                "code": str(result.code), "field": result.field, "message": result.message})
        else:
            report["applied" if result.status == "applied" else "duplicates"] += 1
    return clean


@click.command("import")
@click.argument("file", metavar="FILE")
@click.option("--stop-on-error", is_flag=True, help="Stop at the first rejected line.")
@click.pass_obj
def import_commands(ctx: Context, file: str, stop_on_error: bool) -> None:
    """Apply JSON Lines commands from FILE (- for standard input), each atomically."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as error:
        raise user_error(f"cannot read {file}: {error.strerror or type(error).__name__}") \
            from None
    with ctx.store() as app:
        report = apply_lines(app, data, stop_on_error=stop_on_error)
        from coursebook.adapters.storage.integrity import catch_up
        from coursebook.service import read_models

        catch_up(app)  # seal the new events into the tamper-evident chain
        # The embedded default keeps its views current without a worker (and a worker,
        # if one runs, never applies a page twice: docs/projections.md).
        read_models.catch_up(app)

    def render(console: Any) -> None:
        console.print(f"applied {report['applied']}, duplicates {report['duplicates']}, "
                      f"rejected {len(report['rejected'])}")
        if report["rejected"]:
            console.print(table("Rejected lines", ["line", "command_id", "code", "message"],
                                [[r["line"], r["command_id"], r["code"], r["message"]]
                                 for r in report["rejected"]]))

    emit(ctx, report, render)
    raise SystemExit(EXIT_REJECTED if report["rejected"] else EXIT_OK)
