"""The commands behind the Invoke tasks, as plain functions over a Layout."""

from __future__ import annotations

import shutil

from . import catalog, report
from . import gc as store_gc
from . import matrix as build_matrix
from . import wheelhouse
from .docker_driver import DockerDriver
from .bootstrap import load_base_spec
from .images import ImageBuilder, image_tag, load_toolchain
from .errors import InvalidRecipes, UsageError
from .paths import Layout
from .toolchains import Status, status


def validate(layout: Layout, names: list[str] | None) -> catalog.Validation:
    v = catalog.validate_all(layout, names)
    report.validation(v)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return v


def list_targets(layout: Layout, names: list[str] | None) -> list[catalog.Row]:
    v = catalog.validate_all(layout, names)
    rows = catalog.rows(layout, v.recipes)
    report.rows(rows)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return rows


def images(layout: Layout, bootstrap: bool) -> dict[str, str]:
    """Base image plus every toolchain under docker/ that has a toolchain.yaml."""
    driver = DockerDriver.from_env()
    builder = ImageBuilder(driver, layout.docker, layout.store, fresh_base=bootstrap)
    built = {"base": builder.base_id()}
    for name in builder.toolchains():
        if status(name, layout.root) is Status.NOT_PROVISIONED:
            report.err.print(f"skip {name}: not provisioned (see docs/toolchains.md)", markup=False)
            continue
        built[name] = builder.ensure(load_toolchain(layout.docker, name))
    for name, image_id in built.items():
        report.out.print(f"ok  {name}: {image_id}", markup=False)
    return built


def lock(layout: Layout, toolchain: str) -> None:
    source = layout.docker / toolchain / "requirements.in"
    if not source.is_file():
        raise UsageError(f"{source} does not exist")
    out = wheelhouse.lock(source, layout.store / "wheels")
    report.out.print(f"wrote {out} ({len(wheelhouse.locked_hashes(out))} wheels)", markup=False)


def gc(layout: Layout, max_size: str | None, max_age: str | None, images: bool) -> None:
    if max_size or max_age:
        removed, busy = store_gc.collect(layout.store, max_size, max_age)
        freed = sum(i.size for i in removed)
        report.out.print(f"removed {len(removed)} item(s), {freed / 1e6:.1f} MB; {len(busy)} in use and kept", markup=False)
    elif not images:
        raise UsageError("give --max-size and/or --max-age, or --images")
    if images:
        driver = DockerDriver.from_env()
        builder = ImageBuilder(driver, layout.docker, layout.store)
        specs = [load_toolchain(layout.docker, n) for n in builder.toolchains() if status(n, layout.root) is Status.READY]
        current = {image_tag(spec, builder.base_for(spec)) for spec in specs}
        current.add(load_base_spec(layout.docker).tag)
        stale = [t for t in driver.tags("posepipe/") if t not in current]
        removed_tags = [t for t in stale if driver.remove_image(t)]
        report.out.print(f"removed {len(removed_tags)} outdated image tag(s) of {len(stale)}", markup=False)


def matrix(layout: Layout, changed_since: str | None) -> str:
    text = build_matrix.render(build_matrix.cells(layout, changed_since))
    report.out.print(text, markup=False, soft_wrap=True)
    return text


def clean(layout: Layout, recipe: str | None, target: str | None) -> list[str]:
    """Remove build outputs under artifacts/ (the store is left to `invoke gc`)."""
    if target and not recipe:
        raise UsageError("--target needs --recipe")
    base = layout.artifacts
    victim = base / recipe / target if target else (base / recipe if recipe else base)
    if not victim.exists():
        report.out.print(f"nothing to clean at {victim}")
        return []
    shutil.rmtree(victim)
    report.out.print(f"removed {victim}")
    return [str(victim)]
