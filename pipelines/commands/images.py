"""`invoke images`: the base image and every toolchain image this machine can build."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.core.cells import Status
from pipelines.core.layout import Layout
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.containers.images import ImageBuilder, load_toolchain
from pipelines.edges.containers.provisioning import status
from pipelines.edges.remote.registry import Registry
from pipelines.edges.remote.images import RemoteImages
from pipelines.edges.settings import cache_setting


def images(layout: Layout, bootstrap: bool, cache: str | None = None, cache_read_only: bool = False) -> dict[str, str]:
    """Base image plus every toolchain under docker/ that has a toolchain.yaml and is provisioned;
    with a remote cache, missing ones are pulled from it and built ones pushed to it."""
    driver = DockerDriver.from_env()
    setting = cache_setting(cache, cache_read_only)
    remote = RemoteImages(Registry(setting), driver) if setting else None
    builder = ImageBuilder(driver, layout.docker, layout.store, fresh_base=bootstrap, remote=remote)
    built = {"base": builder.base_id()}
    for name in builder.toolchains():
        if status(name, layout.docker) is Status.NOT_PROVISIONED:
            console.note(f"skip {name}: not provisioned (see docs/toolchains.md)")
            continue
        built[name] = builder.ensure(load_toolchain(layout.docker, name)).id
    for name, image_id in built.items():
        console.line(f"ok  {name}: {image_id}")
    return built
