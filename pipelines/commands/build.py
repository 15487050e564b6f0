"""`invoke build`: fetch, plan, run the steps, place each target under artifacts/ with its manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.cli import console
from pipelines.cli.console import Built, StepConsole
from pipelines.commands.fetch import download_cap, make_fetcher, recipe_inputs
from pipelines.commands.recipes import load_named, select_targets
from pipelines.core import manifest as manifest_model
from pipelines.core.catalog_page import figures
from pipelines.core.cells import Status
from pipelines.core.errors import NotImplementedYet, ToolchainNotProvisioned
from pipelines.core import evaluation
from pipelines.core.layout import Layout
from pipelines.core.plan import (REFERENCE, Column, LabelledData, compile_step_id, evaluation_columns, evaluation_steps,
                                 needs_calibration, plan, predict_step)
from pipelines.core.recipe import Recipe, Target
from pipelines.core.steps import Step, upstream
from pipelines.edges.publishing import artifacts
from pipelines.edges.containers import interpreters
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.run.engine import Engine, EngineOptions
from pipelines.edges.store.fetcher import FetchOptions
from pipelines.edges.git import posepipe_commit
from pipelines.edges.containers.images import ImageBuilder, load_toolchain
from pipelines.edges.containers.provisioning import blocker, not_provisioned
from pipelines.edges.remote.registry import Registry
from pipelines.edges.remote.images import RemoteImages
from pipelines.edges.remote.steps import RemoteSteps
from pipelines.edges.settings import cache_setting
from pipelines.edges.store.steps import Entry, StepCache
from pipelines.edges.store import Store

REPORTS = ("export.json", "report.json")


@dataclass(frozen=True)
class BuildRequest:
    recipe: str
    target: str | None = None
    no_cache: bool = False
    keep_failed: bool = False
    jobs: int = 0
    locked: bool = False
    offline: bool = False
    progress: bool = True
    check: bool = False  # run every step again and record in the manifest which files differ
    memory: str | None = None  # per-container limit, docker syntax ("8g")
    cpus: float | None = None  # per-container CPU limit
    verbose: bool = False  # stream every step's output (it is always in the step's log file)
    max_download: str | None = None  # cap on downloads of unknown size ("8G"); default per kind
    cache: str | None = None  # a remote cache, oci://HOST[:PORT]/NAMESPACE (else from the environment or config)
    cache_read_only: bool = False  # use the remote cache but never push to it (pull requests)


def build(layout: Layout, req: BuildRequest) -> dict[str, Path]:
    recipe = load_named(layout, req.recipe)
    targets = select_targets(recipe, req.target)
    blocked = {t.id: s for t in targets if (s := blocker(recipe, t, layout.docker))}
    for tid, (toolchain, s) in blocked.items():
        console.note(f"skip    {recipe.name}/{tid}: toolchain {toolchain} is {s.value}")
    ready = tuple(t for t in targets if t.id not in blocked)
    built = build_targets(layout, recipe, ready, req).placed if ready else {}
    if blocked:
        raise blocked_error(layout, recipe, blocked, built)
    return built


@dataclass(frozen=True)
class Prepared:
    """What running a recipe's targets needs: its inputs fetched, its steps planned, an engine to run them."""

    fetched: dict[str, tuple[str, str]]  # input name -> (url, sha256)
    steps: list[Step]
    previews: dict[str, Step]  # target id -> the step running it on the recipe's preview photo
    engine: Engine
    console: StepConsole


def runnable(layout: Layout, target: Target) -> bool:
    """Whether the target's toolchain can run its artifacts here (a runner in its toolchain.yaml)."""
    return bool(load_toolchain(layout.docker, target.toolchain).run)


def fetch_options(req: BuildRequest) -> FetchOptions:
    return FetchOptions(locked=req.locked, offline=req.offline, max_bytes=download_cap(req.max_download))


def prepare(layout: Layout, recipe: Recipe, targets: tuple[Target, ...], req: BuildRequest) -> Prepared:
    """Fetch the inputs ``targets`` need, plan their steps and their previews, and make the engine (build,
    predict and evaluate share it)."""
    fetcher = make_fetcher(layout, fetch_options(req), req.progress)
    wanted = recipe_inputs(recipe, calibration=needs_calibration(recipe, targets))
    fetched = {name: (rf.url, fetcher.fetch(rf, label).sha256) for name, (label, rf) in wanted.items()}
    steps = plan(recipe, targets, fetched["checkpoint"][1], fetched["calibration"][1] if "calibration" in fetched else None)
    previews = {t.id: predict_step(recipe, t, fetched["preview"][1], recipe.preview.box)
                for t in targets if recipe.preview and runnable(layout, t)}
    driver = DockerDriver.from_env()
    shown = StepConsole(verbose=req.verbose)
    options = EngineOptions(jobs=req.jobs, no_cache=req.no_cache, keep_failed=req.keep_failed, mem_limit=req.memory,
                            cpus=req.cpus, check=req.check)
    setting = None if req.offline else cache_setting(req.cache, req.cache_read_only)
    registry = Registry(setting) if setting else None
    if registry:
        console.note(f"remote cache {registry.url}" + (" (read-only)" if registry.read_only else ""))
    engine = Engine(
        driver, ImageBuilder(driver, layout.docker, layout.store, remote=registry and RemoteImages(registry, driver)),
        StepCache(layout.store), BlobStore(layout.store), layout.docker, Store(layout.store).logs / recipe.name, options,
        on_line=shown.output, on_start=shown.started, on_done=shown.done,
        remote=registry and RemoteSteps(registry, BlobStore(layout.store), options.source_date_epoch),
    )
    return Prepared(fetched, steps, previews, engine, shown)


@dataclass(frozen=True)
class Outcome:
    """What a build placed, and the evaluation it ran (when it was asked to score a labelled set)."""

    placed: dict[str, Path]
    evaluation: dict[str, dict] | None  # column (REFERENCE or target id) -> its scores
    predictions: dict[str, Path]  # column -> its runner's predictions.json, in the store


def build_targets(layout: Layout, recipe: Recipe, targets: tuple[Target, ...], req: BuildRequest,
                  data: LabelledData | None = None) -> Outcome:
    """Run ``targets``' steps and their previews (with ``data``, also their evaluation on that labelled set,
    beside the FP32 export's) and place each target under artifacts/ with its manifest."""
    prepared = prepare(layout, recipe, targets, req)
    columns = evaluation_columns(recipe, targets, data) if data else []
    steps = [*prepared.steps, *prepared.previews.values(),
             *evaluation_steps(recipe, prepared.steps, columns, prepared.fetched["checkpoint"][1])]
    with prepared.console.session():
        results = prepared.engine.run(steps)
    scores = {c.name: _scored(c, results) for c in columns}
    manifests = {t.id: _assemble(layout, recipe, t, prepared, steps, results, req.check,
                                 data and evaluation.record(data.as_json(), scores[REFERENCE], scores[t.id],
                                                            results[compile_step_id(recipe, t)].key))
                 for t in targets}
    placed = {t.id: _place(layout, recipe, t, results, manifests[t.id], prepared) for t in targets}
    _summarise(layout, recipe, placed, manifests, prepared.engine)
    found = {c.name: next(results[c.run.id].outputs.rglob("predictions.json")) for c in columns}
    return Outcome(placed, scores if data else None, found)


def _assemble(layout: Layout, recipe: Recipe, target: Target, prepared: Prepared, steps: list[Step],
              results: dict[str, Entry], check: bool, evaluated: dict | None) -> dict:
    """The target's manifest: its steps' records, its preview, and its evaluation (this one, or the ones the placed
    manifest holds while they score these very outputs)."""
    engine, final = prepared.engine, results[compile_step_id(recipe, target)]
    records = [_record(layout, s, results[s.id]) for s in upstream(steps, compile_step_id(recipe, target))]
    inputs = {name: {"url": url, "sha256": sha} for name, (url, sha) in prepared.fetched.items()}
    preview = _preview(prepared.previews.get(target.id), results, inputs, target)
    kept = [evaluated] if evaluated else artifacts.evaluations_of(layout.artifacts / recipe.name / target.id, final.key)
    return manifest_model.assemble(recipe, target, records, inputs, engine.stats.differs if check else None,
                                   posepipe_commit(layout.checkout), engine.options.source_date_epoch,
                                   engine.images.base().as_json(), preview, kept)


def _place(layout: Layout, recipe: Recipe, target: Target, results: dict[str, Entry], manifest: dict,
           prepared: Prepared) -> Path:
    """The target's folder (its outputs, its preview files, the manifest) and tarball under artifacts/."""
    dest = layout.artifacts / recipe.name / target.id
    beside = {name: results[prepared.previews[target.id].id].outputs / f"{target.output}/{source}"
              for name, source in _preview_sources(prepared.previews.get(target.id))}
    artifacts.place(results[compile_step_id(recipe, target)].outputs, dest, manifest_model.render(manifest),
                    prepared.engine.options.source_date_epoch, beside)
    return dest


def _summarise(layout: Layout, recipe: Recipe, placed: dict[str, Path], manifests: dict[str, dict], engine: Engine) -> None:
    shown = [Built(tid, manifests[tid]["label"], str(dest.relative_to(layout.checkout) if dest.is_relative_to(layout.checkout) else dest),
                   figures(manifests[tid])) for tid, dest in placed.items()]
    console.build_summary(recipe.name, shown, len(engine.stats.ran), len(engine.stats.cached), len(engine.stats.pulled))
    reports = {key: report for m in manifests.values() for key, report in m["verification"].items()}
    for step_id, files in sorted(engine.stats.differs.items()):
        verdict = f"NOT reproducible: {', '.join(files)} differ" if files else "reproducible"
        stated = [r["reproducibility"] for key, r in reports.items() if key.startswith(f"{step_id}/") and isinstance(r.get("reproducibility"), str)]
        if files and stated and not any(f.endswith("report.json") for f in files):
            verdict += f", as its report states (the report, with what it records instead, came out identical): {stated[0]}"
        console.line(f"check {step_id}: {verdict}")


def _scored(column: Column, results: dict[str, Entry]) -> dict:
    """A column's scores (score.json) with its runner's timing (timing.json) and the keys of both steps."""
    score = json.loads((results[column.score.id].outputs / "score.json").read_text())
    timing = json.loads(next(results[column.run.id].outputs.rglob("timing.json")).read_text())
    return {**score, "inputs": timing["inputs"], "seconds_per_input": timing["seconds_per_input"],
            "steps": {"run": results[column.run.id].key, "score": results[column.score.id].key}}


def _preview_sources(step: Step | None) -> list[tuple[str, str]]:
    """(name beside the target's outputs, path in the predict step's output folder) of each preview file."""
    return list(zip(manifest_model.PREVIEW_FILES, (step.params["vis"], "keypoints.json"))) if step else []


def _preview(step: Step | None, results: dict[str, Entry], inputs: dict, target: Target) -> dict | None:
    """The manifest's preview section (None: the target has no preview)."""
    if step is None:
        return None
    entry = results[step.id]
    facts = json.loads((entry.path / "manifest.json").read_text())["files"]
    return {"photo": inputs["preview"], "box": step.params["box"], "step": entry.key,
            "files": {name: dict(facts[f"{target.output}/{source}"]) for name, source in _preview_sources(step)}}


def _record(layout: Layout, step, entry: Entry) -> manifest_model.StepRecord:
    spec = load_toolchain(layout.docker, step.toolchain)
    facts = json.loads((entry.path / "manifest.json").read_text())
    reports = {}
    for name in REPORTS:
        found = sorted(entry.outputs.rglob(name))
        if found:
            reports[name] = json.loads(found[0].read_text())
    return manifest_model.StepRecord(step, entry.key, facts["image"], spec.version, spec.contract_test, facts["files"], reports)


def blocked_error(layout: Layout, recipe: Recipe, blocked: dict[str, tuple[str, Status]], built: dict[str, Path]):
    names = ", ".join(f"{tid} ({tc} {s.value})" for tid, (tc, s) in blocked.items())
    done = f"; built: {', '.join(built)}" if built else "; nothing was built"
    text = f"{recipe.name}: these targets cannot build here: {names}{done}"
    missing = sorted({(tc, s) for tc, s in blocked.values() if s in (Status.NOT_PROVISIONED, Status.NEEDS_PYTHON)})
    if missing:
        specs = {tc: load_toolchain(layout.docker, tc) for tc, _ in missing}
        how = "\n\n".join(
            str(not_provisioned(tc, specs[tc].provision) if s is Status.NOT_PROVISIONED
                else interpreters.missing(specs[tc].python, tc))
            for tc, s in missing
        )
        return ToolchainNotProvisioned(f"{text}\n\n{how}")
    return NotImplementedYet(text)
