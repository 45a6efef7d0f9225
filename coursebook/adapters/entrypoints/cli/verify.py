"""`coursebook verify [--seal FILE] [--against FILE]`: is the stored history untouched?

Exit 0 when every event matches its tag and the seal chain, 3 when tampering was found
(the first problem names the first bad place), 2 when a seal file cannot be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coursebook.adapters.entrypoints.cli.common import (
    EXIT_OK,
    EXIT_TAMPERED,
    Context,
    check_export_path,
    emit,
    plural,
    table,
    user_error,
    write_export,
)


def register(cli: click.Group) -> None:
    cli.add_command(verify)


@click.command()
@click.option("--seal", "seal_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the chain's current head to FILE (keep it outside the store).")
@click.option("--against", "against_file", type=click.Path(dir_okay=False), default=None,
              help="Also check that the head sealed earlier in FILE is still in the chain.")
@click.option("--force", is_flag=True,
              help="Replace the --seal FILE if it exists (never the store, its key, or a symlink).")
@click.pass_obj
def verify(ctx: Context, seal_file: str | None, against_file: str | None,
           force: bool) -> None:
    """Check every stored event against tampering (changed, deleted or reordered)."""
    from coursebook import SealHead

    if seal_file is not None:
        check_export_path("--seal", seal_file, force=force)

    against = None
    if against_file is not None:
        try:
            against = SealHead.loads(Path(against_file).read_bytes())
        except (OSError, ValueError) as error:
            raise user_error(f"cannot use the seal file {against_file}: "
                             f"{type(error).__name__}") from None
    with ctx.store(damaged_ok=True) as app:
        result = app.verify(against)
        now = app.clock.now()
    head: SealHead = result.pop("head")
    if seal_file is not None and result["ok"]:
        write_export("--seal", seal_file, head.dumps(now), "the head of the chain",
                     force=force)
        result["sealed"] = {"file": seal_file, "position": head.position}

    def render(console: Any) -> None:
        if result["ok"]:
            console.print(f"ok: {plural(result['events'], 'event')} (and "
                          f"{plural(result['other_records'], 'other record')}: command "
                          "receipts, personal data) checked, none changed, deleted or "
                          "reordered")
        else:
            console.print(table("Tampering found", ["position", "subject", "version", "problem"],
                                [[p["position"], p["subject"], p["version"], p["problem"]]
                                 for p in result["problems"]]))
        if "sealed" in result:
            console.print(f"head of the chain written to {seal_file}")
        for pending in result.get("pending_erasures", []):
            console.print(f"pending {pending['kind']} since {pending['since']}: "
                          f"{pending['reason']} (run: coursebook keys status --complete)")

    emit(ctx, result, render)
    raise SystemExit(EXIT_OK if result["ok"] else EXIT_TAMPERED)
