"""The toolchain interface: what the core needs to know of a toolchain, in one object per toolchain.

The recipe validator, the schema, the planner, ``invoke list`` and ``invoke matrix`` ask these
objects; nothing else in posepipe branches on a toolchain's name. Each toolchain's object lives
in its own module under ``pipelines/core/toolchains/`` beside its image folder ``docker/<name>/``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Problem = tuple[tuple[str | int, ...], str]  # (field path inside the target, reason)


def keypoint_figures(what: str, measured: Mapping[str, Any] | None) -> dict[str, float]:
    """The columns of a keypoint agreement (posepipe_step.agreement) with what it compared, e.g. "int8"."""
    if not measured:
        return {}
    return {f"{what} mean error px": measured["mean_error_px"], f"{what} p95 error px": measured["p95_error_px"],
            f"{what} PCK@2px": measured["pck_2px"]}


@dataclass(frozen=True)
class Toolchain:
    name: str
    kind: Literal["open", "vendor"]  # vendor: the user provisions the image (docs/toolchains.md)
    vendor: str
    summary: str
    runner_label: str  # GitHub Actions runner label its matrix cells need (.github/runners.yaml overrides)
    # JSON Schema (properties/required/...) of a target's own fields; None for toolchains
    # that serve the build itself (export, calibration) and are never named by a target.
    target_fields: Mapping[str, Any] | None = None
    # How its outputs earn the label 'verified' (the check its step script records), for people.
    verification: str = "no check of its own: a real compile is labelled 'compiled'"
    int8_field: str | None = None  # the target field whose value "int8" (any case) means it quantises
    combine_field: str | None = None  # the target field listing targets whose outputs it merges
    # Its runner cannot load a built artifact (RKNN's simulator refuses a .rknn read from a file): it rebuilds the
    # model in-process from what the compile step took, so its run steps take those inputs and settings too.
    runner_rebuilds: bool = False

    def needs_calibration(self, target: Mapping[str, Any]) -> bool:
        """Whether this target needs the recipe's calibration set (it quantises)."""
        return self.int8_field is not None and str(target.get(self.int8_field, "")).lower() == "int8"

    def batch(self, target: Mapping[str, Any]) -> int:
        """The batch size the target's artifact takes (its export is made at it): its ``batch`` field, else 1."""
        return int(target.get("batch", 1))

    def frontend(self, target: Mapping[str, Any]) -> str:
        """Which of the export's files the target compiles from: its ``frontend`` field ("torchscript"), else "onnx"."""
        return str(target.get("frontend", "onnx"))

    def combines(self, target: Mapping[str, Any]) -> tuple[str, ...]:
        """Target ids whose outputs this target merges (it then needs no export of its own)."""
        return tuple(target.get(self.combine_field, ())) if self.combine_field else ()

    def normalise(self, target: dict[str, Any]) -> dict[str, Any]:
        """A target's fields as steps read them (e.g. hex strings to integers)."""
        return target

    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        """The few numbers of one of its step's reports worth a column in the build summary and
        the catalog (the step script's report keys are known here and in the script, nowhere else)."""
        return {}

    def problems(self, target: Mapping[str, Any], recipe: Mapping[str, Any]) -> Iterator[Problem]:
        """Rules JSON Schema cannot say: board tables, cross-field facts. ``target`` is validated data."""
        return iter(())
