"""Pure planning: a recipe and its chosen targets become a DAG of steps.

Every target compiles from an export of the model at the target's batch size;
the export always writes TorchScript and ONNX (the seeds use both, and one
export per batch size is then shared by every target).
A target that combines others (its toolchain says which) depends on them instead. Parameters are
exactly what the in-image step scripts read, so they are also what the cache
key covers: change one recipe field and only the steps that read it rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.core.mmpose_configs import config_1x
from pipelines.core.recipe import Recipe, Target, plain
from pipelines.core.steps import Step

EXPORT_TOOLCHAIN = "mmpose"
CALIBRATION_TOOLCHAIN = "calibration"
HELD_OUT = 16  # images after the calibration set, kept apart for accuracy gates
REFERENCE = "export"  # the FP32 reference of predict --compare and evaluate: the batch-1 export, run by its own toolchain


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


def _mmpose_source(recipe: Recipe) -> dict[str, str]:
    m = recipe.model.mmpose
    return {"version": m.version, "config": m.config, "config_1x": config_1x(m.config)}


def export_step(recipe: Recipe, batch_size: int, checkpoint_sha256: str) -> Step:
    """The MMPose export at one batch size: TorchScript and ONNX, shared by every target of that batch."""
    params = {
        "stage": "export",
        "mmpose": _mmpose_source(recipe),
        **_model_facts(recipe, batch_size),
        "formats": ["onnx", "torchscript"],
        "opset": recipe.export.opset,
        "tolerance": recipe.export.tolerance,
        "simplify": recipe.export.simplify,
    }
    return Step(export_step_id(recipe, batch_size), EXPORT_TOOLCHAIN, params, f"{recipe.name}/export (batch {batch_size})",
                blobs=(("checkpoint", checkpoint_sha256),), timeout=3 * 3600)


def plan(recipe: Recipe, targets: tuple[Target, ...], checkpoint_sha256: str, calibration_sha256: str | None) -> list[Step]:
    """Steps for ``targets`` (plus the targets they combine), sharing exports by batch size."""
    wanted = with_combined(recipe, targets)
    steps: dict[str, Step] = {}
    for b in sorted({t.batch for t in wanted if not t.combines}):
        steps[export_step_id(recipe, b)] = export_step(recipe, b, checkpoint_sha256)
    calibration_id = calibration_step_id(recipe)
    if calibration_sha256 and recipe.calibration and needs_calibration(recipe, targets):
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
            steps[sid] = Step(sid, t.toolchain, params, f"{recipe.name}/{t.id}/compile (from {', '.join(t.combines)})", deps=deps)
            continue
        params.update(_model_facts(recipe, t.batch), frontend=t.frontend)
        steps[sid] = Step(sid, t.toolchain, params, f"{recipe.name}/{t.id}/compile",
                          deps=_compile_inputs(recipe, t, calibration_id in steps), timeout=6 * 3600)
    return list(steps.values())


def calibration_step_id(recipe: Recipe) -> str:
    return f"{recipe.name}/calibration"


def _compile_inputs(recipe: Recipe, target: Target, calibrated: bool) -> tuple[tuple[str, str], ...]:
    """The steps a target compiles from: its export (/in/model) and, if it needs it and the build has one, the
    calibration step (/in/calibration/{list.json,images/})."""
    deps = [("model", export_step_id(recipe, target.batch))]
    if target.needs_calibration and calibrated:
        deps.append(("calibration", calibration_step_id(recipe)))
    return tuple(deps)


def _runner_inputs(recipe: Recipe, target: Target) -> tuple[tuple[tuple[str, str], ...], dict[str, Any]]:
    """What a target's run step takes besides its artifact: nothing, unless its toolchain's runner rebuilds the
    model (it cannot load the artifact); then the compile step's own inputs and settings."""
    if not target.runner_rebuilds:
        return (), {}
    return _compile_inputs(recipe, target, recipe.calibration is not None), {"settings": plain(target.params), "frontend": target.frontend}


def needs_calibration(recipe: Recipe, targets: tuple[Target, ...]) -> bool:
    """Whether building ``targets`` (with the targets they combine) needs the recipe's calibration set."""
    return any(t.needs_calibration for t in with_combined(recipe, targets))


def compile_step_id(recipe: Recipe, target: Target) -> str:
    return f"{recipe.name}/{target.id}"


def with_combined(recipe: Recipe, targets: tuple[Target, ...]) -> list[Target]:
    """``targets`` and the targets they combine (built with them, from their own toolchains)."""
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
    rebuild, settings = _runner_inputs(recipe, target)
    params = {"stage": "predict", "target": target.id, "output": target.output, "box": list(box) if box else None,
              "image_format": image_format, "vis": VIS_FILES[image_format], **_model_facts(recipe, target.batch), **settings}
    return Step(f"{recipe.name}/{target.id}/predict", target.toolchain, params, f"{recipe.name}/{target.id}/predict",
                deps=(("artifact", compile_step_id(recipe, target)), *rebuild), blobs=(("photo", photo_sha256),), script="run")


def compare_step(recipe: Recipe, target: Target, predicted: Step) -> Step:
    """The batch-1 export (FP32) run on the same photo and box as ``predicted``, drawing both: the target's
    keypoints as the skeleton, the export's as rings, and the distance of each pair in the JSON."""
    params = {**predicted.params, "target": REFERENCE, "output": "", "compare": {"target": target.id, "output": target.output},
              **_model_facts(recipe, 1)}
    label = f"{recipe.name}/{target.id}/predict-vs-fp32"
    return Step(label, EXPORT_TOOLCHAIN, params, label, deps=(("artifact", export_step_id(recipe, 1)), ("compare", predicted.id)),
                blobs=predicted.blobs, script="run")


@dataclass(frozen=True)
class LabelledData:
    """A labelled set as steps take it: its files by sha256 in the store, and how to read them."""

    name: str  # for people: the recipe's set or the local file it came from
    annotations: str  # sha256 of the COCO keypoints JSON, or of an archive holding it
    images: str  # sha256 of the images archive
    annotations_member: str = ""
    images_prefix: str = ""
    limit: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "annotations": self.annotations, "images": self.images,
                "annotations_member": self.annotations_member, "images_prefix": self.images_prefix, "limit": self.limit}


@dataclass(frozen=True)
class Column:
    """One column of an evaluation: the steps that run an artifact on the set and score its predictions."""

    name: str  # REFERENCE or a target id
    run: Step
    score: Step


def evaluation_columns(recipe: Recipe, targets: tuple[Target, ...], data: LabelledData) -> list[Column]:
    """Per target, and first for the FP32 export (REFERENCE): a runner step predicting every labelled instance
    (the toolchain's runner, Step.script "run") and a step scoring them with the config's own MMPose metrics
    (the export toolchain's "score"). Keyed like any step: a repeat on the same artifact and set is a hit."""
    read = {"annotations_member": data.annotations_member, "images_prefix": data.images_prefix, "limit": data.limit}
    tag = data.annotations[:12] if data.annotations == data.images else f"{data.annotations[:12]}-{data.images[:12]}"
    sources = [(REFERENCE, EXPORT_TOOLCHAIN, "", 1, export_step_id(recipe, 1), ((), {}))]
    sources += [(t.id, t.toolchain, t.output, t.batch, compile_step_id(recipe, t), _runner_inputs(recipe, t)) for t in targets]
    columns = []
    for name, toolchain, output, batch_size, artifact, (rebuild, settings) in sources:
        label = f"{recipe.name}/{name}/evaluate"
        run = Step(f"{label}@{tag}", toolchain, {"stage": "evaluate", "target": name, "output": output, **read,
                                                 **_model_facts(recipe, batch_size), **settings}, label,
                   deps=(("artifact", artifact), *rebuild), blobs=(("annotations", data.annotations), ("images", data.images)),
                   script="run", timeout=24 * 3600)
        score = Step(f"{recipe.name}/{name}/score@{tag}", EXPORT_TOOLCHAIN,
                     {"stage": "score", "mmpose": _mmpose_source(recipe), "annotations_member": data.annotations_member},
                     f"{recipe.name}/{name}/score", deps=(("predictions", run.id),),
                     blobs=(("annotations", data.annotations),), script="score")
        columns.append(Column(name, run, score))
    return columns


def reference_export(recipe: Recipe, planned: list[Step], checkpoint_sha256: str) -> list[Step]:
    """The batch-1 export that REFERENCE runs, unless the ``planned`` steps already make it."""
    return [] if any(s.id == export_step_id(recipe, 1) for s in planned) else [export_step(recipe, 1, checkpoint_sha256)]


def evaluation_steps(recipe: Recipe, planned: list[Step], columns: list[Column], checkpoint_sha256: str) -> list[Step]:
    """What ``columns`` add to the ``planned`` build steps: their own, and the reference export."""
    if not columns:
        return []
    return reference_export(recipe, planned, checkpoint_sha256) + [s for c in columns for s in (c.run, c.score)]
