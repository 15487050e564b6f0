"""Shared fixtures: a Docker engine, the bootstrapped base, and engines on private stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.blobstore import BlobStore
from pipelines.docker_driver import OWNER_LABEL, DockerDriver, owner_gone, owner_token
from pipelines.engine import Engine, EngineOptions
from pipelines.images import ImageBuilder
from pipelines.paths import REPO_ROOT
from pipelines.stepcache import StepCache

TEST_TOOLCHAINS = Path(__file__).resolve().parent / "toolchains"
# Images and wheels are shared by all tests (and kept between CI runs on one machine):
# they are content-addressed, so sharing cannot leak state between tests.
SHARED_STORE = Path(os.environ.get("POSEPIPE_TEST_STORE", Path.home() / ".cache" / "posepipe-tests"))


def make_engine(cache_root: Path, options: EngineOptions = EngineOptions(jobs=2), toolchains: Path = TEST_TOOLCHAINS, on_line=lambda s, l: None) -> Engine:
    driver = DockerDriver.from_env()
    images = ImageBuilder(driver, REPO_ROOT / "docker", SHARED_STORE)
    return Engine(
        driver, images, StepCache(cache_root), BlobStore(cache_root), toolchains, cache_root / "logs", options, on_line
    )


@pytest.fixture(scope="session")
def docker_driver() -> DockerDriver:
    return DockerDriver.from_env()


@pytest.fixture(autouse=True)
def no_container_left_behind(request):
    """Every docker test must leave `docker ps -a` without posepipe containers."""
    yield
    if "docker" not in request.keywords:
        return
    driver = DockerDriver.from_env()
    mine = owner_token()  # this test process, or processes it started that have ended
    left = [c for c in driver.api.containers(all=True, filters={"label": OWNER_LABEL})
            if c["Labels"][OWNER_LABEL] == mine or owner_gone(c["Labels"][OWNER_LABEL])]
    for c in left:
        driver.api.remove_container(c["Id"], force=True)
    assert not left, f"containers left behind: {[c['Labels'] for c in left]}"


def standin_vendor_image(folder: Path, base: str | None = None) -> str:
    """Build (once per content and base) a test stand-in vendor image from ``folder``, on our base by default."""
    import hashlib
    import json

    from pipelines.stepcache import tree_manifest

    driver = DockerDriver.from_env()
    base = base or ImageBuilder(driver, REPO_ROOT / "docker", SHARED_STORE).base_id()
    digest = hashlib.sha256(json.dumps([tree_manifest(folder), base], sort_keys=True).encode()).hexdigest()[:16]
    tag = f"posepipe/{folder.name.replace('_', '-')}:{digest}"
    return driver.image_id(tag) or driver.build(folder, tag, {"BASE_IMAGE": base}, lambda line: None)
