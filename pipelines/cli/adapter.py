"""The one adapter between Invoke tasks and posepipe: errors become exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from invoke import Task
from invoke.exceptions import Exit

from pipelines.cli import console
from pipelines.core.errors import INTERRUPTED_EXIT_CODE, PosepipeError, UsageError


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a task body; report a PosepipeError in one message and exit with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PosepipeError as e:
            console.error(e)
            raise Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            console.err.print("posepipe: interrupted; nothing partial was kept")
            raise Exit(code=INTERRUPTED_EXIT_CODE) from None

    return wrapper


class HelpfulTask(Task):
    """A task whose options never take -h as their short flag, so `invoke TASK -h` is always help."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        return super().arg_opts(name, default, set(taken_names) | {"h"})


def required(value: str | None, flag: str) -> str:
    """Task options are optional to Invoke (so `invoke TASK --help` always works); enforce here."""
    if not value:
        raise UsageError(f"{flag} is required (see `invoke --help TASK`)")
    return value


def whole_number(value: str | None, flag: str) -> int | None:
    """An optional option that must be a whole number above 0 when given."""
    if value is None:
        return None
    if not str(value).isdigit() or int(value) < 1:
        raise UsageError(f"{flag} {value!r}: give a whole number above 0")
    return int(value)
