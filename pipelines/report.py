"""What commands print. Plain text when not a terminal, so CI logs stay readable."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.table import Table

from .catalog import Row, Validation
from .errors import PosepipeError

# Logs and pipes get a wide fixed width so tables are not cut to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def plain() -> bool:
    """No live widgets when output is not a terminal or the user asked for none."""
    return not sys.stderr.isatty() or bool(os.environ.get("CI")) or bool(os.environ.get("POSEPIPE_NO_PROGRESS"))


def error(e: PosepipeError) -> None:
    err.print(f"[bold red]posepipe: {e.label}[/] (exit {e.exit_code})", markup=True)
    err.print(str(e), markup=False)


def validation(v: Validation) -> None:
    for r in v.recipes:
        out.print(f"ok  {r.path.name}: {len(r.targets)} target(s), digest {r.digest[:12]}")
    total = len(v.recipes) + len(v.errors)
    out.print(f"{len(v.recipes)} of {total} recipe(s) valid")


def rows(rows: list[Row]) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for col in ("recipe", "target", "toolchain", "kind", "output", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.recipe, r.target, r.toolchain, r.kind, r.output, r.status.value)
    out.print(table)
