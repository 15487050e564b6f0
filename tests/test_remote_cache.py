"""Two machines (two stores) sharing steps and toolchain images through a real OCI registry on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest

from pipelines.commands import images as imaging
from pipelines.commands.build import BuildRequest, build
from pipelines.core.layout import REPO_ROOT, Layout
from pipelines.core.steps import Step
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.run.engine import EngineOptions
from pipelines.edges.containers.images import ImageBuilder, image_tag, load_toolchain
from pipelines.edges.remote.registry import CacheSetting, Registry
from pipelines.edges.remote.steps import MEDIA_TYPE, RemoteSteps

from .conftest import TEST_TOOLCHAINS, local_registry, make_engine, served_recipe, zip_of
from .httpserver import LoopbackServer, Route

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def steps() -> list[Step]:
    return [Step("a", "probe", {"action": "write", "text": "one"}, "test/a"),
            Step("b", "probe", {"action": "write", "text": "two"}, "test/b", deps=(("up", "a"),))]


@pytest.fixture
def toolchains(tmp_path) -> Path:
    """The probe toolchain with a unique marker: an image of its own, which the test may remove."""
    folder = tmp_path / "toolchains"
    shutil.copytree(TEST_TOOLCHAINS / "probe", folder / "probe")
    with open(folder / "probe" / "step.py", "a") as f:
        f.write(f"# {uuid.uuid4().hex}: an image of this test's own\n")
    yield folder
    DockerDriver.from_env().remove_image(probe_tag(folder))


def probe_tag(toolchains: Path) -> str:
    builder = ImageBuilder(DockerDriver.from_env(), REPO_ROOT / "docker", REPO_ROOT)  # the digest reads no store
    return image_tag("probe", builder.digest(load_toolchain(toolchains, "probe")))


def machine(tmp_path: Path, name: str, toolchains: Path, cache: CacheSetting | None, **kw):
    return make_engine(tmp_path / name, EngineOptions(jobs=1), toolchains=toolchains, cache=cache, **kw)


def tree(entry) -> dict[str, bytes]:
    return {p.relative_to(entry.path).as_posix(): p.read_bytes() for p in sorted(entry.path.rglob("*"))
            if p.is_file() and p.name != "fingerprints.json"}


def forget_image(toolchains: Path) -> None:
    """This machine never had the image: remove it from the (shared) Docker engine."""
    driver, tag = DockerDriver.from_env(), probe_tag(toolchains)
    assert driver.remove_image(tag) and driver.image_id(tag) is None


def no_builds(monkeypatch) -> None:
    def refuse(*_):
        raise AssertionError("machine B built an image that the registry had")
    monkeypatch.setattr(ImageBuilder, "_build", refuse)


def test_rebuilt_image_keeps_every_step_key(tmp_path, toolchains):
    first = machine(tmp_path, "a", toolchains, None)
    keys = {k: e.key for k, e in first.run(steps()).items()}
    forget_image(toolchains)
    again = machine(tmp_path, "a", toolchains, None)
    out = again.run(steps())  # builds the image again: a new image ID, the same keys
    assert {k: e.key for k, e in out.items()} == keys
    assert again.stats.ran == [] and sorted(again.stats.cached) == ["a", "b"]


def test_machine_b_pulls_what_machine_a_built(tmp_path, toolchains, oci_registry, monkeypatch):
    cache = CacheSetting(oci_registry.url)
    a = machine(tmp_path, "a", toolchains, cache)
    built = a.run(steps())
    assert sorted(a.stats.ran) == ["a", "b"]
    forget_image(toolchains)
    no_builds(monkeypatch)
    b = machine(tmp_path, "b", toolchains, cache)
    pulled = b.run(steps())
    assert b.stats.ran == [] and sorted(b.stats.pulled) == ["a", "b"]  # 0 step containers on machine B
    for sid in ("a", "b"):
        assert tree(pulled[sid]) == tree(built[sid])  # byte-identical outputs, manifest and log
        assert pulled[sid].key == built[sid].key


def test_tampered_remote_blob_is_refused_and_the_step_runs_here(tmp_path, toolchains, oci_registry, caplog):
    cache = CacheSetting(oci_registry.url)
    built = machine(tmp_path, "a", toolchains, cache).run(steps()[:1])["a"]
    layer = Registry(cache).manifest(RemoteSteps(Registry(cache), None, 0).ref(built.key))["layers"][0]
    hexdigest = layer["digest"].removeprefix("sha256:")
    blob = next(oci_registry.data.rglob(f"blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the registry now serves other bytes under the same digest
    blob.write_bytes(bytes(data))
    b = machine(tmp_path, "b", toolchains, cache)
    with caplog.at_level(logging.WARNING, logger="posepipe"):
        out = b.run(steps()[:1])["a"]
    assert b.stats.ran == ["a"] and b.stats.pulled == []
    assert (out.outputs / "result.txt").read_text() == "one\n"
    assert any("damaged, not used" in r.getMessage() for r in caplog.records)
    assert not list((tmp_path / "b" / "blobs").rglob("*.partial")) and not any(
        p.name == hexdigest for p in (tmp_path / "b").rglob("*"))  # nothing of the bad blob kept


def test_an_entry_that_is_no_archive_is_refused_and_the_step_runs_here(tmp_path, toolchains, oci_registry, caplog):
    """A registry that serves consistent bytes (the digest matches) that are no entry at all."""
    cache = CacheSetting(oci_registry.url)
    key = machine(tmp_path, "probe", toolchains, None).key_for(steps()[0], {})[0]
    junk = tmp_path / "entry.tar.gz"
    junk.write_bytes(b"not an archive at all")
    registry = Registry(cache)
    registry.client.push(target=RemoteSteps(registry, None, 0).ref(key), files=[f"{junk}:{MEDIA_TYPE}"],
                         manifest_annotations={"posepipe.key": key}, disable_path_validation=True, quiet=True)
    b = machine(tmp_path, "b", toolchains, cache)
    with caplog.at_level(logging.WARNING, logger="posepipe"):
        out = b.run(steps()[:1])["a"]
    assert b.stats.ran == ["a"] and b.stats.pulled == [] and (out.outputs / "result.txt").read_text() == "one\n"
    assert any("not a readable .tar.gz" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_registry_gone_mid_build_finishes_locally_with_one_warning(tmp_path, toolchains, caplog):
    with local_registry(tmp_path / "registry") as registry:
        def stop_after_first(step, ran, seconds):
            if step.id == "a":
                registry.stop()
        a = machine(tmp_path, "a", toolchains, CacheSetting(registry.url), on_done=stop_after_first)
        with caplog.at_level(logging.WARNING, logger="posepipe"):
            out = a.run(steps())
    assert sorted(a.stats.ran) == ["a", "b"] and (out["b"].outputs / "result.txt").read_text() == "two\n"
    gone = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(gone) == 1, [r.getMessage() for r in caplog.records]


def test_two_machines_pushing_one_key_leave_one_valid_entry(tmp_path, toolchains, oci_registry, monkeypatch):
    cache = CacheSetting(oci_registry.url)
    machine(tmp_path, "warm", toolchains, None).run(steps()[:1])  # the image exists: both start the step at once
    engines = [machine(tmp_path, name, toolchains, cache) for name in ("a", "b")]
    gate = threading.Barrier(2)
    results: dict[str, object] = {}

    def build(name, engine):
        gate.wait()
        results[name] = engine.run(steps()[:1])["a"]

    threads = [threading.Thread(target=build, args=(n, e)) for n, e in zip(("a", "b"), engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {"a", "b"}
    c = machine(tmp_path, "c", toolchains, cache)
    out = c.run(steps()[:1])["a"]
    assert c.stats.ran == [] and c.stats.pulled == ["a"]
    assert (out.outputs / "result.txt").read_text() == "one\n"
    assert json.loads((out.path / "manifest.json").read_text())["key"] == out.key


def test_read_only_never_pushes_and_a_refusing_registry_only_warns(tmp_path, toolchains, oci_registry, caplog):
    ro = machine(tmp_path, "a", toolchains, CacheSetting(oci_registry.url, read_only=True))
    entry = ro.run(steps()[:1])["a"]
    registry = Registry(CacheSetting(oci_registry.url))
    assert registry.manifest(RemoteSteps(registry, None, 0).ref(entry.key)) is None
    assert not list(oci_registry.data.rglob("_manifests"))  # nothing at all was pushed, image included

    with local_registry(tmp_path / "refusing", read_only=True) as refusing:
        b = machine(tmp_path, "b", toolchains, CacheSetting(refusing.url))
        with caplog.at_level(logging.WARNING, logger="posepipe"):
            out = b.run(steps()[:1])["a"]
    assert b.stats.ran == ["a"] and (out.outputs / "result.txt").read_text() == "one\n"
    assert any("refused" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def checkout(root: Path, server: LoopbackServer) -> Layout:
    """A checkout with stand-in export and ONNX Runtime stages and face_deeppose served over loopback."""
    for name in ("base", "common", "calibration"):
        shutil.copytree(REPO_ROOT / "docker" / name, root / "docker" / name)
    for name in ("mmpose", "onnxruntime"):
        shutil.copytree(TEST_TOOLCHAINS / "standin", root / "docker" / name)
    checkpoint, archive = b"stand-in checkpoint\n", zip_of({"val2017/000000000001.jpg": b"image"})
    served = (server.add("/ckpt.pth", Route(checkpoint)), checkpoint), (server.add("/cal.zip", Route(archive)), archive)
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / "face_deeppose.yaml").write_text(served_recipe("face_deeppose", *served))
    return Layout(root, root.parent / f"{root.name}-store")


def containers_created_during(driver: DockerDriver, fn) -> list[dict]:
    """Every container the Docker engine created while ``fn`` ran (image builds' RUN steps included)."""
    since = time.time()
    fn()
    return list(driver.api.events(since=since, until=time.time(), filters={"type": "container", "event": "create"},
                                  decode=True))


@pytest.mark.alone
def test_machine_b_builds_a_recipe_from_the_cache_with_no_container(tmp_path, oci_registry, caplog):
    """A made its images without the cache, then built with it: the build pushes the images it used
    with its steps. B, with an empty store and none of those images, creates no container at all."""
    driver, url = DockerDriver.from_env(), oci_registry.url
    with LoopbackServer() as server:
        a, b = checkout(tmp_path / "a", server), checkout(tmp_path / "b", server)
        imaging.images(a, bootstrap=False)
        assert not list(oci_registry.data.rglob("_manifests"))  # made without the cache: nothing shared yet
        tags = {n: image_tag(n, ImageBuilder(driver, a.docker, a.store).digest(load_toolchain(a.docker, n)))
                for n in ("mmpose", "onnxruntime")}
        with caplog.at_level(logging.INFO, logger="posepipe"):
            build(a, BuildRequest("face_deeppose", "ort_fp32", progress=False, cache=url))
        said = [r.getMessage() for r in caplog.records]
        assert all(f"image {t}: pushed to {url}" in said for t in tags.values()), said
        for tag in tags.values():
            assert driver.remove_image(tag)  # machine B never had them
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="posepipe"):
            created = containers_created_during(
                driver, lambda: build(b, BuildRequest("face_deeppose", "ort_fp32", progress=False, cache=url)))
        said = [r.getMessage() for r in caplog.records]
        assert created == []  # no image build, no step
        assert all(f"image {t}: pulled from {url}" in said for t in tags.values()), said
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="posepipe"):
            build(a, BuildRequest("face_deeppose", "ort_fp32", progress=False, cache=url, cache_read_only=True))
        said = [r.getMessage() for r in caplog.records]
        assert all(f"image {t}: present here and in {url}" in said for t in tags.values()), said
    assert list((a.store / "logs").rglob("*.log"))  # machine A ran its steps
    assert not list((b.store / "logs").rglob("*.log"))  # machine B started no step container
    folder = Path("artifacts") / "face_deeppose" / "ort_fp32"
    files_a = {p.relative_to(a.root / folder): p.read_bytes() for p in (a.root / folder).rglob("*") if p.is_file()}
    files_b = {p.relative_to(b.root / folder): p.read_bytes() for p in (b.root / folder).rglob("*") if p.is_file()}
    assert Path("manifest.json") in files_a and files_a == files_b  # byte-identical artifacts and manifests


def test_images_with_a_cache_pushes_the_images_it_finds_present(tmp_path, oci_registry, caplog):
    with LoopbackServer() as server:
        a = checkout(tmp_path / "a", server)
    driver = DockerDriver.from_env()
    imaging.images(a, bootstrap=False)  # made (or found) without the cache
    registry = Registry(CacheSetting(oci_registry.url))
    digests = {n: ImageBuilder(driver, a.docker, a.store).digest(load_toolchain(a.docker, n)) for n in ("mmpose", "onnxruntime")}
    assert not any(registry.has_image(f"{registry.repository('images', n)}:{d}") for n, d in digests.items())
    with caplog.at_level(logging.INFO, logger="posepipe"):
        imaging.images(a, bootstrap=False, cache=oci_registry.url)
    assert all(registry.has_image(f"{registry.repository('images', n)}:{d}") for n, d in digests.items())
    said = [r.getMessage() for r in caplog.records]
    assert all(f"image {image_tag(n, d)}: pushed to {oci_registry.url}" in said for n, d in digests.items()), said
