"""Byte progress for downloads: a rich bar on a terminal, two plain lines elsewhere."""

from __future__ import annotations

import time

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pipelines.cli import console


class BarProgress:
    """A live rich bar with size, speed and ETA."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task = None

    def start(self, label: str, total: int | None, done: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console.err,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(label, total=total, completed=done)

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class LineProgress:
    """For logs: one line when a transfer starts and one when it ends, with its speed."""

    def __init__(self) -> None:
        self._label = ""
        self._bytes = 0
        self._t0 = 0.0

    def start(self, label: str, total: int | None, done: int) -> None:
        self._label, self._bytes, self._t0 = label, 0, time.monotonic()
        size = f"{total / 1e6:.1f} MB" if total else "unknown size"
        resumed = f", resuming at {done / 1e6:.1f} MB" if done else ""
        console.err.print(f"fetching {label} ({size}{resumed})", markup=False)

    def advance(self, n: int) -> None:
        self._bytes += n

    def finish(self) -> None:
        dt = max(time.monotonic() - self._t0, 1e-9)
        console.err.print(
            f"  {self._label}: {self._bytes / 1e6:.1f} MB in {dt:.1f} s ({self._bytes / dt / 1e6:.1f} MB/s)",
            markup=False,
        )


def for_terminal(enabled: bool) -> BarProgress | LineProgress:
    return BarProgress() if enabled and not console.plain() else LineProgress()
