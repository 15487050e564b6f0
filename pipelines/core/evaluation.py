"""Evaluations as posepipe records and shows them: one target's scores beside the FP32 export's.

Pure. The scores come from the score steps (MMPose's own metrics, chosen by the model's config), the
timing from the runner steps; a manifest keeps the record while it scores the very outputs the target
folder holds (``artifact_step``), so a rebuild that changes the artifact drops it instead of carrying a
score it did not earn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADLINE = ("AP", "AP .5", "AR", "NME", "PCK", "AUC", "EPE")  # the figures a table shows, of those a metric gives
LOWER_IS_BETTER = frozenset({"NME", "EPE"})
REPORTED = {"coco_ap": "AP", "coco_ar": "AR", "coco_map": "AP"}  # a seed's published figures, by the figure they are


def record(data: Mapping[str, Any], reference: Mapping[str, Any], scores: Mapping[str, Any], artifact_step: str) -> dict[str, Any]:
    """The manifest's record of one target scored on ``data``, beside the FP32 export (``reference``)."""
    ref = reference["figures"]
    return {
        "set": dict(data),
        "metrics": list(scores["metrics"]),
        "dataset": scores["dataset"],
        "figures": dict(scores["figures"]),
        "fp32_export": dict(ref),
        "delta": {k: v - ref[k] for k, v in scores["figures"].items() if k in ref},
        "images": scores["images"],
        "instances": scores["instances"],
        "inputs": scores["inputs"],
        "seconds_per_input": scores["seconds_per_input"],
        "fp32_export_seconds_per_input": reference["seconds_per_input"],
        "artifact_step": artifact_step,
        "steps": dict(scores["steps"]),
    }


def headline(figures: Mapping[str, float]) -> list[str]:
    return [k for k in HEADLINE if k in figures]


def primary(figures: Mapping[str, float]) -> str | None:
    """The figure a column is judged by (the first headline one its metrics give)."""
    shown = headline(figures)
    return shown[0] if shown else None


def reported(seed: Mapping[str, Any]) -> dict[str, float]:
    """The seed document's published figures that a metric here also gives (AP, AR), by that figure's name."""
    return {REPORTED[k]: float(v) for k, v in seed.items() if k in REPORTED and isinstance(v, (int, float))}


def rows(scores: Mapping[str, Mapping[str, Any]], reference: str) -> tuple[list[str], list[list[str]]]:
    """A side-by-side table: one row per column (the FP32 export first), its headline figures, the primary
    figure's difference to FP32, the instances and images scored, and the runner's milliseconds per input
    (a person's box for a top-down model, a photo for a bottom-up one)."""
    ref = scores[reference]["figures"]
    shown = headline(ref)
    main = primary(ref)
    head = ["artifact", *shown, f"{main} vs FP32" if main else "vs FP32", "instances", "images", "ms/input"]
    out = []
    for name, s in scores.items():
        f = s["figures"]
        delta = "-" if name == reference or main is None else f"{f[main] - ref[main]:+.4f}"
        out.append([name, *(f"{f[k]:.4f}" if k in f else "-" for k in shown), delta, str(s["instances"]),
                    str(s["images"]), f"{1000 * s['seconds_per_input']:.1f}"])
    return head, out
