"""`posepipe evaluate`: a recipe's runnable targets scored on a labelled set, side by side with the FP32 export.

The targets are built as `build` builds them (cached steps are hits); then each one, and the batch-1
export itself (the FP32 reference), is run on every labelled instance by its toolchain's runner and
scored by the model's own MMPose metrics (the score step). The table is printed and each target's
manifest records its evaluation (placed again; a later build keeps it while the artifact is unchanged).
The labelled set is the recipe's own (``evaluation:``, fetched by sha256 like any input) or a local
archive given with --data (it enters the store by its sha256).
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

from pipelines.cli import console
from pipelines.commands.build import BuildRequest, blocked_error, build_targets, fetch_options, runnable
from pipelines.commands.fetch import make_fetcher, recipe_inputs
from pipelines.commands.recipes import load_named, select_targets
from pipelines.core import evaluation
from pipelines.core.errors import UsageError
from pipelines.core.layout import Layout
from pipelines.core.plan import REFERENCE, LabelledData
from pipelines.core.recipe import Recipe, Target
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.fs import write_bytes_atomic
from pipelines.edges.containers.provisioning import blocker

LOCAL_ANNOTATIONS = "annotations.json"  # where a --data archive keeps its COCO keypoints JSON


def evaluate(layout: Layout, req: BuildRequest, targets: list[str] | None = None, data: Path | None = None,
             limit: int | None = None, predictions: Path | None = None) -> dict[str, dict]:
    """Score ``targets`` (default: every one that can run here) on the labelled set; return the scores by column.
    With ``predictions``, each column's keypoints are also written there as COCO keypoint results
    (``<column>.json``: image_id, category_id, keypoints [x, y, score ...], score), for other tools."""
    recipe = load_named(layout, req.recipe)
    chosen = _runnable_targets(layout, recipe, targets)
    labelled = _labelled_data(layout, recipe, req, data, limit)
    outcome = build_targets(layout, recipe, chosen, req, labelled)
    scores = outcome.evaluation
    if predictions is not None:
        for column, found in outcome.predictions.items():
            results = json.loads(found.read_text())["results"]
            write_bytes_atomic(predictions / f"{column}.json", json.dumps(results, indent=1).encode() + b"\n")
        console.line(f"predictions of {', '.join(outcome.predictions)} written to {predictions}/")
    head, rows = evaluation.rows(scores, REFERENCE)
    console.evaluation_table(recipe.name, labelled.name, head, rows, evaluation.reported(recipe.seed_reported))
    return scores


def _runnable_targets(layout: Layout, recipe: Recipe, wanted: list[str] | None) -> tuple[Target, ...]:
    """The named targets, each of which must be able to run here; none named: every target that can."""
    named = [t for name in wanted for t in select_targets(recipe, name)] if wanted else list(recipe.targets)
    blocked = {t.id: found for t in named if (found := blocker(recipe, t, layout.docker))}
    cannot = [t.id for t in named if t.id not in blocked and not runnable(layout, t)]
    if wanted and blocked:
        raise blocked_error(layout, recipe, blocked, {})
    if wanted and cannot:
        raise UsageError(f"{recipe.name}: {', '.join(cannot)} cannot run here (their toolchain has no runner), so "
                         "they cannot be evaluated")
    for tid, (toolchain, status) in blocked.items():
        console.note(f"skip    {recipe.name}/{tid}: toolchain {toolchain} is {status.value}")
    for tid in cannot:
        console.note(f"skip    {recipe.name}/{tid}: its toolchain cannot run its artifacts here")
    chosen = tuple(t for t in named if t.id not in blocked and t.id not in cannot)
    if not chosen:
        raise UsageError(f"{recipe.name}: no target of this recipe can run here, so there is nothing to evaluate")
    return chosen


def _labelled_data(layout: Layout, recipe: Recipe, req: BuildRequest, data: Path | None, limit: int | None) -> LabelledData:
    if data is not None:
        if not data.is_file():
            raise UsageError(f"--data {data}: no such file")
        if not (zipfile.is_zipfile(data) or tarfile.is_tarfile(data)):
            raise UsageError(f"--data {data}: give a zip or tar archive holding {LOCAL_ANNOTATIONS} (COCO keypoints) "
                             "and the images its file_name values name")
        sha = BlobStore(layout.store).add(data)
        return LabelledData(data.name, sha, sha, LOCAL_ANNOTATIONS, "", limit)
    if recipe.evaluation is None:
        raise UsageError(f"recipe {recipe.name!r} names no labelled set (evaluation:); give one with --data ARCHIVE, a zip "
                         f"or tar holding {LOCAL_ANNOTATIONS} (COCO keypoints) and its images")
    fetcher = make_fetcher(layout, fetch_options(req), req.progress)
    wanted = recipe_inputs(recipe, calibration=False, evaluation=True)
    sha = {name: fetcher.fetch(wanted[name][1], wanted[name][0]).sha256 for name in ("annotations", "images")}
    ev = recipe.evaluation
    return LabelledData(f"{recipe.name}'s evaluation set", sha["annotations"], sha["images"], ev.annotations_member,
                        ev.images_prefix, limit or ev.limit)
