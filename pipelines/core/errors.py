"""Every failure posepipe reports on purpose, each with its own exit code.

A user (or CI) can tell the cause of a failed command from its exit code alone:
the README lists them. Messages are complete sentences meant for a person; no
traceback is shown for any of these.
"""

from __future__ import annotations

from dataclasses import dataclass


class PosepipeError(Exception):
    """Base of all expected failures. ``exit_code`` is what the CLI returns."""

    exit_code = 1
    label = "error"


class UsageError(PosepipeError):
    exit_code = 2
    label = "usage error"


class RecipeError(PosepipeError):
    """A recipe file is not valid. Carries every problem found, not just the first."""

    exit_code = 3
    label = "invalid recipe"

    def __init__(self, path: str, problems: list[RecipeProblem]):
        self.path = path
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [f"{self.path}: {len(self.problems)} problem(s)"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class RecipeProblem:
    """One thing wrong in a recipe: where (field path, YAML line) and why."""

    field: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.field or "(top level)"
        at = f" (line {self.line})" if self.line else ""
        return f"{where}{at}: {self.reason}"


class InvalidRecipes(PosepipeError):
    """One or more recipe files of a multi-recipe command are invalid."""

    exit_code = RecipeError.exit_code
    label = RecipeError.label

    def __init__(self, errors: list[RecipeError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class IntegrityError(PosepipeError):
    """Bytes did not match their declared sha256 or size."""

    exit_code = 4
    label = "hash mismatch"


class ToolchainNotProvisioned(PosepipeError):
    """A proprietary toolchain's vendor files have not been supplied by the user."""

    exit_code = 5
    label = "toolchain not provisioned"


class StepFailed(PosepipeError):
    exit_code = 6
    label = "step failed"


class NetworkError(PosepipeError):
    exit_code = 7
    label = "network error"


class NotImplementedYet(PosepipeError):
    """A command whose implementation has not landed. Never reported as success."""

    exit_code = 8
    label = "not implemented yet"


class UnlockedInput(PosepipeError):
    """``--locked`` was given and an input's full sha256 is not in the lock file."""

    exit_code = 9
    label = "input not locked"


class OfflineMissing(PosepipeError):
    """``--offline`` was given and a needed blob is not in the store."""

    exit_code = 10
    label = "missing offline"


class EngineUnavailable(PosepipeError):
    """The Docker engine cannot be reached."""

    exit_code = 11
    label = "docker unavailable"


class NoSpace(PosepipeError):
    """The store's disk cannot hold a download of known size; refused before it starts."""

    exit_code = 12
    label = "no space"


class RootlessUnavailable(PosepipeError):
    """The base image must be made without root, and this user cannot unshare (no subordinate ids)."""

    exit_code = 13
    label = "rootless bootstrap unavailable"


INTERRUPTED_EXIT_CODE = 130
