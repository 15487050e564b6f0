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
from pipelines.core.layout import Layout
from pipelines.core.plan import compile_step_id, plan
from pipelines.core.recipe import Recipe, Target
from pipelines.core.steps import Step, upstream
from pipelines.edges import artifacts, interpreters
from pipelines.edges.blobstore import BlobStore
from pipelines.edges.docker_driver import DockerDriver
from pipelines.edges.engine import Engine, EngineOptions
from pipelines.edges.fetcher import FetchOptions
from pipelines.edges.git import posepipe_commit
from pipelines.edges.images import ImageBuilder, load_toolchain
from pipelines.edges.provisioning import blocker, not_provisioned
from pipelines.edges.registry import Registry
from pipelines.edges.remote_images import RemoteImages
from pipelines.edges.remote_steps import RemoteSteps
from pipelines.edges.settings import cache_setting
from pipelines.edges.stepcache import Entry, StepCache

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
    blocked = {t.id: s for t in targets if (s := blocker(t, layout.docker))}
    for tid, (toolchain, s) in blocked.items():
        console.note(f"skip    {recipe.name}/{tid}: toolchain {toolchain} is {s.value}")
    ready = tuple(t for t in targets if t.id not in blocked)
    built = _build_targets(layout, recipe, ready, req) if ready else {}
    if blocked:
        raise blocked_error(layout, recipe, blocked, built)
    return built


@dataclass(frozen=True)
class Prepared:
    """What running a recipe's targets needs: its inputs fetched, its steps planned, an engine to run them."""

    fetched: dict[str, tuple[str, str]]  # input name -> (url, sha256)
    steps: list[Step]
    engine: Engine
    console: StepConsole


def prepare(layout: Layout, recipe: Recipe, targets: tuple[Target, ...], req: BuildRequest) -> Prepared:
    """Fetch the inputs ``targets`` need, plan their steps and make the engine (build and predict share it)."""
    options = FetchOptions(locked=req.locked, offline=req.offline, max_bytes=download_cap(req.max_download))
    fetcher = make_fetcher(layout, options, req.progress)
    wanted = recipe_inputs(recipe, calibration=any(t.needs_calibration for t in targets))
    fetched = {name: (rf.url, fetcher.fetch(rf, label).sha256) for name, (label, rf) in wanted.items()}
    steps = plan(recipe, targets, fetched["checkpoint"][1], fetched["calibration"][1] if "calibration" in fetched else None)
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
        StepCache(layout.store), BlobStore(layout.store), layout.docker, layout.store / "logs" / recipe.name, options,
        on_line=shown.output, on_start=shown.started, on_done=shown.done,
        remote=registry and RemoteSteps(registry, BlobStore(layout.store), options.source_date_epoch),
    )
    return Prepared(fetched, steps, engine, shown)


def _build_targets(layout: Layout, recipe: Recipe, targets: tuple[Target, ...], req: BuildRequest) -> dict[str, Path]:
    prepared = prepare(layout, recipe, targets, req)
    fetched, steps, engine = prepared.fetched, prepared.steps, prepared.engine
    with prepared.console.session():
        results = engine.run(steps)
    inputs = {name: {"url": url, "sha256": sha} for name, (url, sha) in fetched.items()}
    commit = posepipe_commit(layout.checkout)
    base = engine.images.base().as_json()
    placed, summary = {}, []
    for t in targets:
        records = [_record(layout, s, results[s.id]) for s in upstream(steps, compile_step_id(recipe, t))]
        manifest = manifest_model.assemble(recipe, t, records, inputs, engine.stats.differs if req.check else None,
                                           commit, engine.options.source_date_epoch, base)
        dest = layout.artifacts / recipe.name / t.id
        artifacts.place(results[compile_step_id(recipe, t)].outputs, dest, manifest_model.render(manifest),
                        engine.options.source_date_epoch)
        placed[t.id] = dest
        summary.append(Built(t.id, manifest["label"], str(dest.relative_to(layout.checkout) if dest.is_relative_to(layout.checkout) else dest),
                             figures(manifest)))
    console.build_summary(recipe.name, summary, len(engine.stats.ran), len(engine.stats.cached),
                          len(engine.stats.pulled))
    for step_id, files in sorted(engine.stats.differs.items()):
        verdict = f"NOT reproducible: {', '.join(files)} differ" if files else "reproducible"
        console.line(f"check {step_id}: {verdict}")
    return placed


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
