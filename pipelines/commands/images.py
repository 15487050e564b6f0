"""`invoke images`: the base image and every toolchain image this machine can build."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.core.cells import Status
from pipelines.core.layout import Layout
from pipelines.edges.docker_driver import DockerDriver
from pipelines.edges.images import ImageBuilder, load_toolchain
from pipelines.edges.provisioning import status


def images(layout: Layout, bootstrap: bool) -> dict[str, str]:
    """Base image plus every toolchain under docker/ that has a toolchain.yaml and is provisioned."""
    driver = DockerDriver.from_env()
    builder = ImageBuilder(driver, layout.docker, layout.store, fresh_base=bootstrap)
    built = {"base": builder.base_id()}
    for name in builder.toolchains():
        if status(name, layout.docker) is Status.NOT_PROVISIONED:
            console.note(f"skip {name}: not provisioned (see docs/toolchains.md)")
            continue
        built[name] = builder.ensure(load_toolchain(layout.docker, name))
    for name, image_id in built.items():
        console.line(f"ok  {name}: {image_id}")
    return built
