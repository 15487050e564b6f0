"""`invoke fetch`: bring a recipe's pinned inputs into the store."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.cli.progress import for_terminal
from pipelines.commands.recipes import all_valid, load_named
from pipelines.core.layout import Layout
from pipelines.core.recipe import Recipe, RemoteFile
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.store.fetcher import Fetcher, FetchOptions, FetchResult
from pipelines.edges.store.gc import parse_size


def recipe_inputs(recipe: Recipe, calibration: bool, evaluation: bool = False) -> dict[str, tuple[str, RemoteFile]]:
    """{name: (label, file)}: the checkpoint, the preview photo if the recipe names one, and, if asked and
    present, the calibration archive ("calibration") and the labelled set ("annotations", "images")."""
    inputs = {"checkpoint": (f"{recipe.name}: checkpoint {recipe.model.checkpoint.file_name}", recipe.model.checkpoint)}
    if recipe.preview:
        inputs["preview"] = (f"{recipe.name}: preview photo {recipe.preview.photo.file_name}", recipe.preview.photo)
    if calibration and recipe.calibration:
        archive = recipe.calibration.archive
        inputs["calibration"] = (f"{recipe.name}: calibration {archive.file_name}", archive)
    if evaluation and recipe.evaluation:
        for name in ("annotations", "images"):
            rf = getattr(recipe.evaluation, name)
            inputs[name] = (f"{recipe.name}: evaluation {name} {rf.file_name}", rf)
    return inputs


def download_cap(text: str | None) -> int | None:
    """--max-download: "500M", "8G" ... (None: each kind's default cap)."""
    return parse_size(text) if text else None


def make_fetcher(layout: Layout, options: FetchOptions, progress: bool) -> Fetcher:
    return Fetcher(BlobStore(layout.store), layout.lock_file, options, for_terminal(progress))


def fetch_recipe_inputs(
    layout: Layout,
    recipe: str | None,
    *,
    calibration: bool,
    evaluation: bool = False,
    locked: bool,
    offline: bool,
    verify: bool,
    progress: bool,
    max_download: str | None = None,
) -> list[FetchResult]:
    recipes = [load_named(layout, recipe)] if recipe else all_valid(layout)
    options = FetchOptions(locked=locked, offline=offline, verify=verify, max_bytes=download_cap(max_download))
    fetcher = make_fetcher(layout, options, progress)
    results = []
    for r in recipes:
        for label, rf in recipe_inputs(r, calibration, evaluation).values():
            res = fetcher.fetch(rf, label)
            how = "downloaded" if res.downloaded else "in store"
            console.line(f"ok  {label}: {how}, {res.size} bytes, sha256 {res.sha256}")
            results.append(res)
    return results

