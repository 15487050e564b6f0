"""`invoke gc`: bound the store by size and age; `--images` drops images no toolchain builds any more."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.core.cells import Status
from pipelines.core.errors import UsageError
from pipelines.core.layout import Layout
from pipelines.edges.store import gc as store_gc
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.containers.images import ImageBuilder, image_tag, load_toolchain
from pipelines.edges.containers.provisioning import status


def gc(layout: Layout, max_size: str | None, max_age: str | None, images: bool) -> None:
    if max_size or max_age:
        removed, busy = store_gc.collect(layout.store, max_size, max_age)
        freed = sum(i.size for i in removed)
        console.line(f"removed {len(removed)} item(s), {freed / 1e6:.1f} MB; {len(busy)} in use and kept")
    elif not images:
        raise UsageError("give --max-size and/or --max-age, or --images")
    if images:
        driver = DockerDriver.from_env()
        builder = ImageBuilder(driver, layout.docker, layout.store)
        specs = [load_toolchain(layout.docker, n) for n in builder.toolchains() if status(n, layout.docker) is Status.READY]
        current = {image_tag(spec.name, builder.digest(spec)) for spec in specs}
        current |= {builder.base_spec(spec.debian).tag for spec in specs} | {builder.base_spec().tag}
        stale = [t for t in driver.tags("posepipe/") if t not in current]
        removed_tags = [t for t in stale if driver.remove_image(t)]
        console.line(f"removed {len(removed_tags)} outdated image tag(s) of {len(stale)}")
