"""`coursebook keys status|rotate`: pending erasures, and master-key rotation
(docs/privacy.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_STORE,
    Context,
    emit,
    table,
    user_error,
)

if TYPE_CHECKING:  # the engine is imported where used: start-up and `--help` need none
    from rich.console import Console

NEW_MASTER_KEY_ENV = "COURSEBOOK_NEW_MASTER_KEY"


def register(cli: click.Group) -> None:
    cli.add_command(keys)


@click.group()
def keys() -> None:
    """The store's keys: pending erasures, and rotating the master key."""


def _render_pending(console: Console, pending: list[dict[str, Any]]) -> None:
    if not pending:
        console.print("no pending erasure: every erased key is gone from the store's files")
        return
    console.print(table("Pending erasures", ["kind", "patient_ref", "since", "reason"],
                        [[p["kind"], p["patient_ref"] or "", p["since"], p["reason"]]
                         for p in pending]))


@keys.command()
@click.option("--complete", is_flag=True,
              help="First try to finish the pending erasures (waits a moment for readers "
                   "and locks).")
@click.pass_obj
def status(ctx: Context, complete: bool) -> None:
    """How many data keys are stored, and the erasures not yet finished (old copies of a
    key may still be in the store's files: a reader held an older snapshot, or the key
    table was locked). The next write finishes them, or `--complete`."""
    with ctx.store() as app:
        document = app.key_status(complete=complete)

    def render(console: Console) -> None:
        console.print(f"{document['keys']} patient data keys")
        _render_pending(console, document["pending_erasures"])

    emit(ctx, document, render)


@keys.command()
@click.option("--new-key-file", type=click.Path(dir_okay=False), default=None,
              help="The new master key, from this file (owner-only). Default: "
                   f"${NEW_MASTER_KEY_ENV}, else a new random key written to the store's "
                   "key file.")
@click.pass_obj
def rotate(ctx: Context, new_key_file: str | None) -> None:
    """Re-wrap every stored key under a new master key, in one transaction, without
    touching any event. Stop every other process using the store first. With the key in
    a key file, the file is replaced by the new key; with COURSEBOOK_MASTER_KEY, set it
    to the new key afterwards."""
    from coursebook.adapters.storage.keys import (
        MASTER_KEY_ENV,
        MasterKey,
        key_file_for,
        new_master_key_text,
        read_key_file,
        replace_key_file,
    )
    from coursebook.errors import StoreUnavailable

    from_env = bool(os.environ.get(MASTER_KEY_ENV))
    key_file = None if from_env else key_file_for(ctx.target)
    staged: Path | None = None
    try:
        if new_key_file is not None:
            new = read_key_file(Path(new_key_file))
            if new is None:
                raise user_error(f"no key file at {new_key_file}")
            text = Path(new_key_file).read_text(encoding="ascii")
        elif os.environ.get(NEW_MASTER_KEY_ENV):
            text = os.environ[NEW_MASTER_KEY_ENV]
            new = MasterKey.from_text(text, NEW_MASTER_KEY_ENV)
        elif key_file is not None:
            text = new_master_key_text()
            new = MasterKey.from_text(text, "the new key")
            # Kept beside the key file until the store is re-wrapped: should the process
            # die in between, the new key is there, not lost.
            staged = key_file.with_name(key_file.name + ".new")
            replace_key_file(staged, text)
        else:
            raise user_error(f"the master key comes from {MASTER_KEY_ENV}: give the new one "
                             f"with --new-key-file or {NEW_MASTER_KEY_ENV}")
    except StoreUnavailable as error:
        raise user_error(str(error), EXIT_STORE) from None
    with ctx.store() as app:
        result = app.rotate_master_key(new)
    if key_file is not None:
        replace_key_file(key_file, text)
        if staged is not None:
            staged.unlink(missing_ok=True)
    document = {"keys": result["keys"], "key_file": None if key_file is None else str(key_file),
                "pending": result["pending"]}

    def render(console: Console) -> None:
        console.print(f"{document['keys']} stored keys re-wrapped under the new master key")
        if key_file is not None:
            console.print(f"the key file {key_file} now holds the new master key")
        else:
            console.print(f"set {MASTER_KEY_ENV} to the new master key before the next "
                          "command")
        if document["pending"]:
            _render_pending(console, document["pending"])

    emit(ctx, document, render)
