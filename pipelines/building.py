"""`invoke build`: fetch, plan, run the steps, and place each target's files under artifacts/."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import catalog, report
from .blobstore import BlobStore
from .docker_driver import DockerDriver
from .engine import Engine, EngineOptions
from .errors import NotImplementedYet, ToolchainNotProvisioned
from .fetcher import FetchOptions
from .fetching import make_fetcher
from .images import ImageBuilder
from .paths import Layout
from .plan import EXPORT_TOOLCHAIN, compile_step_id, plan
from .recipe import Recipe, Target
from .stepcache import StepCache
from .toolchains import Status, status


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
    memory: str | None = None  # per-container limit, docker syntax ("8g")
    cpus: float | None = None  # per-container CPU limit


def _blocked(layout: Layout, t: Target) -> tuple[str, Status] | None:
    """The toolchain that keeps a target from building here, and why; None if it can build."""
    for name in (EXPORT_TOOLCHAIN, t.toolchain):
        s = status(name, layout.root)
        if s is not Status.READY:
            return name, s
    return None


def build(layout: Layout, req: BuildRequest) -> dict[str, Path]:
    recipe = catalog.load_named(layout, req.recipe)
    targets = catalog.select_targets(recipe, req.target)
    blocked = {t.id: s for t in targets if (s := _blocked(layout, t))}
    for tid, (toolchain, s) in blocked.items():
        report.err.print(f"skip {recipe.name}/{tid}: toolchain {toolchain} is {s.value}", markup=False)
    ready = tuple(t for t in targets if t.id not in blocked)
    built = _build_targets(layout, recipe, ready, req) if ready else {}
    if blocked:
        raise _blocked_error(recipe, blocked, built)
    return built


def _build_targets(layout: Layout, recipe: Recipe, targets: tuple[Target, ...], req: BuildRequest) -> dict[str, Path]:
    fetcher = make_fetcher(layout, FetchOptions(locked=req.locked, offline=req.offline), req.progress)
    checkpoint = fetcher.fetch(recipe.model.checkpoint, f"{recipe.name}: checkpoint").sha256
    calibration = None
    if recipe.calibration and any(t.needs_calibration for t in targets):
        calibration = fetcher.fetch(recipe.calibration.archive, f"{recipe.name}: calibration").sha256
    driver = DockerDriver.from_env()
    engine = Engine(
        driver,
        ImageBuilder(driver, layout.docker, layout.store),
        StepCache(layout.store),
        BlobStore(layout.store),
        layout.docker,
        layout.store / "logs" / recipe.name,
        EngineOptions(
            jobs=req.jobs, no_cache=req.no_cache, keep_failed=req.keep_failed, mem_limit=req.memory, cpus=req.cpus
        ),
        on_line=lambda step, line: report.err.print(f"[{step.label}] {line}", markup=False),
    )
    results = engine.run(plan(recipe, targets, checkpoint, calibration))
    built = {}
    for t in targets:
        dest = layout.artifacts / recipe.name / t.id
        place_tree(results[compile_step_id(recipe, t)].outputs, dest)
        built[t.id] = dest
        report.out.print(f"ok  {recipe.name}/{t.id} -> {dest}", markup=False)
    report.out.print(f"{len(engine.stats.ran)} step(s) ran, {len(engine.stats.cached)} from the cache", markup=False)
    return built


def place_tree(src: Path, dest: Path) -> None:
    """Replace ``dest`` by a copy of ``src`` so that it is never half old, half new."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = dest.parent / f".{dest.name}.{uuid.uuid4().hex}"
    try:
        shutil.copytree(src, staged)
        if dest.exists():
            old = dest.parent / f".{dest.name}.old.{uuid.uuid4().hex}"
            os.replace(dest, old)
            os.replace(staged, dest)
            shutil.rmtree(old)
        else:
            os.replace(staged, dest)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _blocked_error(recipe: Recipe, blocked: dict[str, tuple[str, Status]], built: dict[str, Path]):
    names = ", ".join(f"{tid} ({tc} {s.value})" for tid, (tc, s) in blocked.items())
    done = f"; built: {', '.join(built)}" if built else "; nothing was built"
    text = f"{recipe.name}: these targets cannot build here: {names}{done}"
    if any(s is Status.NOT_PROVISIONED for _, s in blocked.values()):
        return ToolchainNotProvisioned(text)
    return NotImplementedYet(text)
