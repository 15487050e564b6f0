"""`posepipe predict`: one built target run on a photo in its own toolchain's image, its keypoints drawn.

The target's steps are planned and run as `build` runs them (cached ones are hits, so an artifact
already built costs nothing), then one more step runs the artifact through its toolchain's runner
(``run:`` in its toolchain.yaml): hermetic like every step, and cached by artifact, photo and box.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.cli import console
from pipelines.commands.build import BuildRequest, blocked_error, prepare
from pipelines.commands.recipes import load_named, select_targets
from pipelines.core.errors import UsageError
from pipelines.core.layout import Layout
from pipelines.core.plan import VIS_FILES, compare_step, predict_step, reference_export
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.fs import write_bytes_atomic
from pipelines.edges.containers.images import load_toolchain
from pipelines.edges.containers.provisioning import blocker

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    """--box x,y,w,h in photo pixels (None: the whole photo)."""
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--box {text!r}: expected x,y,w,h as four whole numbers of photo pixels, e.g. 40,20,200,260")
    x, y, w, h = (int(p) for p in parts)
    if w == 0 or h == 0:
        raise UsageError(f"--box {text!r}: the width and height must be above 0")
    return x, y, w, h


def predict(layout: Layout, req: BuildRequest, image: Path, out: Path, box: str | None = None, compare: bool = False) -> dict:
    """Write ``out`` (the photo with the keypoints drawn) and ``out`` with .json (the keypoints); return the latter.
    With ``compare``, the FP32 export runs on the same crop too and both are drawn (the export's as rings)."""
    if req.target is None:
        raise UsageError("--target is required: predict runs one target's artifact")
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out {out}: give a .png or .jpg file name")
    if not image.is_file():
        raise UsageError(f"--image {image}: no such file")
    recipe = load_named(layout, req.recipe)
    (target,) = select_targets(recipe, req.target)
    if found := blocker(recipe, target, layout.docker):
        raise blocked_error(layout, recipe, {target.id: found}, {})
    load_toolchain(layout.docker, target.toolchain).argv("run")  # says so now if its artifacts cannot run here
    step = predict_step(recipe, target, BlobStore(layout.store).add(image), parse_box(box), FORMATS[out.suffix.lower()])
    prepared = prepare(layout, recipe, (target,), req)
    shown = compare_step(recipe, target, step) if compare else step
    extra = [*reference_export(recipe, prepared.steps, prepared.fetched["checkpoint"][1]), shown] if compare else []
    with prepared.console.session():
        results = prepared.engine.run([*prepared.steps, step, *extra])
    produced = results[shown.id].outputs / shown.params["output"]
    keypoints = json.loads((produced / "keypoints.json").read_text())
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, (produced / VIS_FILES[FORMATS[out.suffix.lower()]]).read_bytes())
    write_bytes_atomic(out.with_suffix(".json"), (produced / "keypoints.json").read_bytes())
    versus = f", {keypoints['mean_distance_px']} px on average from the FP32 export's (rings)" if compare else ""
    console.line(f"{recipe.name}/{target.id}: {len(keypoints['keypoints'])} keypoints drawn on {out}{versus} "
                 f"(keypoints in {out.with_suffix('.json')})")
    return keypoints
