"""`invoke build`: fetch, plan, run the steps, and place each target's files under artifacts/."""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import archive, catalog, report
from . import manifest as manifest_mod
from .blobstore import BlobStore
from .docker_driver import DockerDriver
from .engine import Engine, EngineOptions, Step
from .errors import NotImplementedYet, ToolchainNotProvisioned
from .fetcher import FetchOptions
from .fetching import make_fetcher, recipe_inputs
from .images import ImageBuilder, ToolchainSpec, load_toolchain
from .paths import Layout
from .provisioning import not_provisioned
from .plan import CALIBRATION_TOOLCHAIN, EXPORT_TOOLCHAIN, _plain, compile_step_id, plan
from .recipe import Recipe, Target
from .stepcache import Entry, StepCache
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
    check: bool = False  # run every step again and record in the manifest which files differ
    memory: str | None = None  # per-container limit, docker syntax ("8g")
    cpus: float | None = None  # per-container CPU limit


def _blocked(layout: Layout, t: Target) -> tuple[str, Status] | None:
    """The toolchain that keeps a target from building here, and why; None if it can build."""
    needed = (EXPORT_TOOLCHAIN, CALIBRATION_TOOLCHAIN, t.toolchain) if t.needs_calibration else (EXPORT_TOOLCHAIN, t.toolchain)
    for name in needed:
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
        raise _blocked_error(layout, recipe, blocked, built)
    return built


def _build_targets(layout: Layout, recipe: Recipe, targets: tuple[Target, ...], req: BuildRequest) -> dict[str, Path]:
    fetcher = make_fetcher(layout, FetchOptions(locked=req.locked, offline=req.offline), req.progress)
    wanted = recipe_inputs(recipe, calibration=any(t.needs_calibration for t in targets))
    fetched = {name: (rf.url, fetcher.fetch(rf, label).sha256) for name, (label, rf) in wanted.items()}
    checkpoint = fetched["checkpoint"][1]
    calibration = fetched["calibration"][1] if "calibration" in fetched else None
    driver = DockerDriver.from_env()
    engine = Engine(
        driver,
        ImageBuilder(driver, layout.docker, layout.store),
        StepCache(layout.store),
        BlobStore(layout.store),
        layout.docker,
        layout.store / "logs" / recipe.name,
        EngineOptions(
            jobs=req.jobs, no_cache=req.no_cache, keep_failed=req.keep_failed, mem_limit=req.memory, cpus=req.cpus,
            check=req.check,
        ),
        on_line=lambda step, line: report.err.print(f"[{step.label}] {line}", markup=False),
    )
    steps = plan(recipe, targets, checkpoint, calibration)
    results = engine.run(steps)
    inputs = {name: {"url": url, "sha256": sha} for name, (url, sha) in fetched.items()}
    built = {}
    for t in targets:
        dest = layout.artifacts / recipe.name / t.id
        used = _steps_of(steps, compile_step_id(recipe, t))
        facts = BuildFacts(recipe, t, used, results, inputs, engine.options.source_date_epoch, layout.docker,
                           engine.stats.differs if req.check else None)
        place_tree(results[compile_step_id(recipe, t)].outputs, dest, lambda d: facts.write_manifest(layout, d))
        tarball = dest.parent / f"{t.id}.tar.gz"
        staged = tarball.with_name(f".{tarball.name}.{uuid.uuid4().hex}")
        try:
            archive.pack(dest, staged, engine.options.source_date_epoch)
            os.replace(staged, tarball)
        finally:
            staged.unlink(missing_ok=True)
        built[t.id] = dest
        report.out.print(f"ok  {recipe.name}/{t.id} -> {dest} ({facts.label})", markup=False)
    report.out.print(f"{len(engine.stats.ran)} step(s) ran, {len(engine.stats.cached)} from the cache", markup=False)
    for step_id, files in sorted(engine.stats.differs.items()):
        verdict = f"NOT reproducible: {', '.join(files)} differ" if files else "reproducible"
        report.out.print(f"check {step_id}: {verdict}", markup=False)
    return built


def _steps_of(steps: list[Step], final: str) -> list[Step]:
    """``final`` and every step it depends on, upstream first."""
    by_id = {s.id: s for s in steps}
    seen: list[Step] = []

    def visit(sid: str) -> None:
        for _, dep in by_id[sid].deps:
            visit(dep)
        if by_id[sid] not in seen:
            seen.append(by_id[sid])

    visit(final)
    return seen


@dataclass(frozen=True)
class BuildFacts:
    """What one target's manifest records, gathered from the steps that made it."""

    recipe: Recipe
    target: Target
    steps: list[Step]
    results: dict[str, Entry]
    inputs: dict[str, dict[str, str]]
    epoch: int
    docker_dir: Path
    differs: dict[str, list[str]] | None = None  # --check results by step id

    @functools.cached_property
    def specs(self) -> dict[str, ToolchainSpec]:
        return {s.toolchain: load_toolchain(self.docker_dir, s.toolchain) for s in self.steps}

    @property
    def label(self) -> str:
        return "contract-test" if any(sp.contract_test for sp in self.specs.values()) else "verified"

    def write_manifest(self, layout: Layout, target_dir: Path) -> None:
        specs = self.specs
        entries = {s.id: json.loads((self.results[s.id].path / "manifest.json").read_text()) for s in self.steps}
        verification = {}
        for s in self.steps:
            for name in ("export.json", "report.json"):
                found = list(self.results[s.id].outputs.rglob(name))
                if found:
                    verification[f"{s.id}/{name}"] = json.loads(found[0].read_text())
        manifest_mod.write(target_dir, {
            "schema_version": 1,
            "label": self.label,
            "recipe": {"name": self.recipe.name, "digest": self.recipe.digest},
            "target": {"id": self.target.id, "toolchain": self.target.toolchain, "output": self.target.output,
                       "params": _plain(self.target.params)},
            "inputs": {k: v for k, v in self.inputs.items() if k == "checkpoint" or self.target.needs_calibration},
            "toolchains": sorted(
                ({"name": s.toolchain, "version": specs[s.toolchain].version, "image": entries[s.id]["image"]} for s in self.steps),
                key=lambda t: (t["name"], t["image"]),
            ),
            "steps": [{"id": s.id, "key": self.results[s.id].key, "params": dict(s.params)} for s in self.steps],
            "files": manifest_mod.files_of(target_dir),
            "verification": verification,
            "reproducibility": {"checked": False} if self.differs is None else {
                "checked": True,
                "differing_files": {s.id: self.differs.get(s.id, []) for s in self.steps},
            },
            "posepipe": {"version": manifest_mod.version(), "commit": manifest_mod.posepipe_commit(layout.root)},
            "source_date_epoch": self.epoch,
        })


def place_tree(src: Path, dest: Path, prepare=lambda staged: None) -> None:
    """Replace ``dest`` by a copy of ``src`` (then ``prepare``d) so that it is never half old, half new."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = dest.parent / f".{dest.name}.{uuid.uuid4().hex}"
    try:
        shutil.copytree(src, staged)
        prepare(staged)
        if dest.exists():
            old = dest.parent / f".{dest.name}.old.{uuid.uuid4().hex}"
            os.replace(dest, old)
            os.replace(staged, dest)
            shutil.rmtree(old)
        else:
            os.replace(staged, dest)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _blocked_error(layout: Layout, recipe: Recipe, blocked: dict[str, tuple[str, Status]], built: dict[str, Path]):
    names = ", ".join(f"{tid} ({tc} {s.value})" for tid, (tc, s) in blocked.items())
    done = f"; built: {', '.join(built)}" if built else "; nothing was built"
    text = f"{recipe.name}: these targets cannot build here: {names}{done}"
    missing = sorted({tc for tc, s in blocked.values() if s is Status.NOT_PROVISIONED})
    if missing:
        how = "\n\n".join(str(not_provisioned(tc, load_toolchain(layout.docker, tc).provision)) for tc in missing)
        return ToolchainNotProvisioned(f"{text}\n\n{how}")
    return NotImplementedYet(text)
