"""Pure planning: a recipe and its chosen targets become a DAG of steps.

Every target compiles from an export of the model at the target's batch size;
the export always writes TorchScript and ONNX (the seeds use both, and one
export per batch size is then shared by every target).
A target that combines others (its toolchain says which) depends on them instead. Parameters are
exactly what the in-image step scripts read, so they are also what the cache
key covers: change one recipe field and only the steps that read it rerun.
"""

from __future__ import annotations

from typing import Any

from pipelines.core.mmpose_configs import config_1x
from pipelines.core.recipe import Recipe, Target, plain
from pipelines.core.steps import Step

EXPORT_TOOLCHAIN = "mmpose"
CALIBRATION_TOOLCHAIN = "calibration"
HELD_OUT = 16  # images after the calibration set, kept apart for accuracy gates


def frontend(target: Target) -> str:
    return target.params.get("frontend", "onnx")


def batch(target: Target) -> int:
    return int(target.params.get("batch", 1))


def _model_facts(recipe: Recipe, batch_size: int) -> dict[str, Any]:
    m = recipe.model
    return {
        "task": m.task,
        "input": {"name": m.input.name, "shape": [batch_size, *m.input.shape[1:]]},
        "outputs": [{"name": o.name, "shape": [batch_size, *o.shape[1:]]} for o in m.outputs],
        "normalization": {"mean": list(m.normalization.mean), "std": list(m.normalization.std),
                          "channel_order": m.normalization.channel_order},
    }


def export_step_id(recipe: Recipe, batch_size: int) -> str:
    return f"{recipe.name}/export@b{batch_size}"


def plan(recipe: Recipe, targets: tuple[Target, ...], checkpoint_sha256: str, calibration_sha256: str | None) -> list[Step]:
    """Steps for ``targets`` (plus the targets they combine), sharing exports by batch size."""
    wanted = _with_combined(recipe, targets)
    steps: dict[str, Step] = {}
    for b in sorted({batch(t) for t in wanted if not t.combines}):
        params = {
            "stage": "export",
            "mmpose": {
                "version": recipe.model.mmpose.version,
                "config": recipe.model.mmpose.config,
                "config_1x": config_1x(recipe.model.mmpose.config),
            },
            **_model_facts(recipe, b),
            "formats": ["onnx", "torchscript"],
            "opset": recipe.export.opset,
            "tolerance": recipe.export.tolerance,
            "simplify": recipe.export.simplify,
        }
        sid = export_step_id(recipe, b)
        steps[sid] = Step(sid, EXPORT_TOOLCHAIN, params, f"{recipe.name}/export (batch {b})",
                          blobs=(("checkpoint", checkpoint_sha256),), timeout=3 * 3600)
    calibration_id = f"{recipe.name}/calibration"
    if calibration_sha256 and recipe.calibration and any(t.needs_calibration for t in wanted):
        c = recipe.calibration
        steps[calibration_id] = Step(
            calibration_id, CALIBRATION_TOOLCHAIN, {"select": c.select, "count": c.count, "held_out": HELD_OUT},
            f"{recipe.name}/calibration", blobs=(("archive", calibration_sha256),),
        )
    for t in wanted:
        sid = compile_step_id(recipe, t)
        params = {"stage": "compile", "target": t.id, "output": t.output, "settings": plain(t.params)}
        if t.combines:
            deps = tuple((ref, compile_step_id(recipe, recipe.target(ref))) for ref in t.combines)
            steps[sid] = Step(sid, t.toolchain, params, f"{recipe.name}/{t.id}/combine", deps=deps)
            continue
        params.update(_model_facts(recipe, batch(t)), frontend=frontend(t))
        deps = [("model", export_step_id(recipe, batch(t)))]
        if t.needs_calibration and calibration_id in steps:
            deps.append(("calibration", calibration_id))  # /in/calibration/{list.json,images/}
        steps[sid] = Step(sid, t.toolchain, params, f"{recipe.name}/{t.id}/compile", deps=tuple(deps), timeout=6 * 3600)
    return list(steps.values())


def compile_step_id(recipe: Recipe, target: Target) -> str:
    return f"{recipe.name}/{target.id}"


def _with_combined(recipe: Recipe, targets: tuple[Target, ...]) -> list[Target]:
    out: dict[str, Target] = {}
    for t in targets:
        for ref in t.combines:
            out.setdefault(ref, recipe.target(ref))
        out[t.id] = t
    return list(out.values())


VIS_FILES = {"PNG": "vis.png", "JPEG": "vis.jpg"}


def predict_step(recipe: Recipe, target: Target, photo_sha256: str, box: tuple[int, int, int, int] | None,
                 image_format: str = "PNG") -> Step:
    """A step that runs ``target``'s built artifact on one photo in its toolchain's image (the toolchain's
    runner, Step.script "run"): keypoints.json and the drawn photo (VIS_FILES). Keyed like any step, so a
    repeat is a cache hit."""
    params = {"stage": "predict", "target": target.id, "output": target.output, "box": list(box) if box else None,
              "image_format": image_format, "vis": VIS_FILES[image_format], **_model_facts(recipe, batch(target))}
    return Step(f"{recipe.name}/{target.id}/predict", target.toolchain, params, f"{recipe.name}/{target.id}/predict",
                deps=(("artifact", compile_step_id(recipe, target)),), blobs=(("photo", photo_sha256),), script="run")
