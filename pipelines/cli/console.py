"""What a person sees: results on stdout, progress and messages on stderr.

Plain lines when output is not a terminal (CI logs), rich widgets when it is. Edges
never print; they log to the "posepipe" logger, which is shown here.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table

from pipelines.core.cells import Cell, Status
from pipelines.core.errors import PosepipeError
from pipelines.core.recipe import Recipe, RecipeError
from pipelines.core.steps import Step

# Logs and pipes get a wide fixed width so tables are not cut to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)
PROGRESS = re.compile(r"progress (\d+/\d+ .*)")  # what a long step prints of its progress (e.g. a runner on a labelled set)


def plain() -> bool:
    """No live widgets when output is not a terminal or the user asked for none."""
    return not sys.stderr.isatty() or bool(os.environ.get("CI")) or bool(os.environ.get("POSEPIPE_NO_PROGRESS"))


class _ToConsole(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        err.print(record.getMessage(), markup=False)


_logger = logging.getLogger("posepipe")
if not any(isinstance(h, _ToConsole) for h in _logger.handlers):
    _logger.addHandler(_ToConsole())
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


def line(text: str) -> None:
    out.print(text, markup=False, soft_wrap=True)


def note(text: str) -> None:
    err.print(text, markup=False)


def error(e: PosepipeError) -> None:
    err.print(f"[bold red]posepipe: {e.label}[/] (exit {e.exit_code})", markup=True)
    err.print(str(e), markup=False)


def validation(recipes: Iterable[Recipe], errors: Iterable[RecipeError]) -> None:
    recipes, errors = list(recipes), list(errors)
    for r in recipes:
        line(f"ok  {r.path.name}: {len(r.targets)} target(s), digest {r.digest[:12]}")
    line(f"{len(recipes)} of {len(recipes) + len(errors)} recipe(s) valid")


def cells(rows: list[tuple[Cell, Status, str | None]]) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for col in ("recipe", "target", "toolchain", "kind", "output", "status"):
        table.add_column(col)
    for c, status, toolchain in rows:
        why = f" ({toolchain})" if toolchain and toolchain != c.toolchain else ""
        table.add_row(c.recipe, c.target, c.toolchain, c.kind, c.output, status.value + why)
    out.print(table)


# ----------------------------------------------------------------------------- builds


@dataclass(frozen=True)
class Built:
    """One target's line in the build summary."""

    target: str
    label: str
    folder: str
    figures: dict[str, float]


class StepConsole:
    """A build's steps as a person follows them: one line per finished step, and on a
    terminal a live line per running step with its elapsed time. Step output goes to the
    step's log file; ``verbose`` also streams it here."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        _logger.setLevel(logging.DEBUG if verbose else logging.INFO)  # DEBUG: image build lines
        self._running: dict[str, float] = {}
        self._progress: dict[str, str] = {}  # a step's last "progress N/M what" line, shown beside it
        self._lock = threading.Lock()
        self._live: Live | None = None

    @contextmanager
    def session(self) -> Iterator[StepConsole]:
        if plain() or self.verbose:
            yield self
            return
        with Live(self._render(), console=err, refresh_per_second=2, transient=True,
                  get_renderable=self._render) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        with self._lock:
            for label, t0 in self._running.items():
                table.add_row("[yellow]running[/]", label, f"{now - t0:5.0f} s", self._progress.get(label, ""))
        return table

    def started(self, step: Step) -> None:
        with self._lock:
            self._running[step.label] = time.monotonic()
        if plain() and not self.verbose:
            err.print(f"run     {step.label}", markup=False)

    def output(self, step: Step, text: str) -> None:
        if self.verbose:
            err.print(f"[{step.label}] {text}", markup=False)
        if found := PROGRESS.match(text):
            with self._lock:
                self._progress[step.label] = found[1]

    def done(self, step: Step, ran: bool, seconds: float) -> None:
        with self._lock:
            self._running.pop(step.label, None)
            self._progress.pop(step.label, None)
        how = "ran   " if ran else "cached"
        err.print(f"{how}  {step.label}  {seconds:.1f} s", markup=False)


def build_summary(recipe: str, built: list[Built], ran: int, cached: int, pulled: int = 0) -> None:
    counts = f"{ran} step(s) ran, {cached} from the cache" + (f" ({pulled} pulled from the remote cache)" if pulled else "")
    table = Table(title=f"{recipe}: {counts}", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("target", "label", "folder", "figures"):
        table.add_column(col)
    for b in built:
        figures = ", ".join(f"{k} {v:.3g}" for k, v in sorted(b.figures.items())) or "-"
        table.add_row(b.target, b.label, b.folder, figures)
    out.print(table)
    line(counts)


def evaluation_table(recipe: str, data: str, head: list[str], rows: list[list[str]], reported: dict[str, float]) -> None:
    """One recipe's artifacts scored side by side on one labelled set (and what its seed document reports)."""
    table = Table(title=f"{recipe} on {data}", title_justify="left", show_edge=False, pad_edge=False)
    for col in head:
        table.add_column(col, justify="left" if col == "artifact" else "right")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if reported:
        line("seed document reports (its own checkpoint, on its full set): "
             + ", ".join(f"{k} {v:g}" for k, v in reported.items()))
