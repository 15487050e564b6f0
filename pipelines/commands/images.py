"""`invoke images`: the base image and every toolchain image this machine can build."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.core.cells import Status
from pipelines.core.layout import Layout
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.containers.images import ImageBuilder, ToolchainImage, load_toolchain
from pipelines.edges.containers.provisioning import status
from pipelines.edges.remote.registry import Registry
from pipelines.edges.remote.images import RemoteImages
from pipelines.edges.settings import cache_setting


def images(layout: Layout, bootstrap: bool, cache: str | None = None, cache_read_only: bool = False) -> dict[str, str]:
    """Base image plus every toolchain under docker/ that has a toolchain.yaml and is provisioned, two at a
    time, each said as it is ready; with a remote cache, missing ones are pulled from it and built ones pushed to it."""
    driver = DockerDriver.from_env()
    setting = cache_setting(cache, cache_read_only)
    remote = RemoteImages(Registry(setting), driver) if setting else None
    builder = ImageBuilder(driver, layout.docker, layout.store, fresh_base=bootstrap, remote=remote)
    built = {"base": builder.base_id()}
    console.line(f"ok  base: {built['base']}")
    specs = []
    for name in builder.toolchains():
        if status(name, layout.docker) is Status.NOT_PROVISIONED:
            console.note(f"skip {name}: not provisioned (see docs/toolchains.md)")
            continue
        specs.append(load_toolchain(layout.docker, name))

    def ready(name: str, got: ToolchainImage | Exception, seconds: float) -> None:
        if isinstance(got, ToolchainImage):
            console.line(f"ok  {name}: {got.id} ({seconds:.0f} s)")

    made = builder.ensure_all(specs, on_ready=ready)
    failed = [got for got in made.values() if isinstance(got, Exception)]
    if failed:
        raise failed[0]  # the others are made; the first failure is what the command reports
    built.update({name: got.id for name, got in made.items()})
    return built
