"""Shared fixtures: a Docker engine, the bootstrapped base, and engines on private stores."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.edges.fs import file_lock
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.containers.docker_driver import OWNER_LABEL, DockerDriver, owner_gone, owner_token
from pipelines.run.engine import Engine, EngineOptions
from pipelines.edges.containers.images import ImageBuilder, load_toolchain
from pipelines.core.layout import REPO_ROOT
from pipelines.edges.remote.registry import CacheSetting, Registry
from pipelines.edges.remote.images import RemoteImages
from pipelines.edges.remote.steps import RemoteSteps
from pipelines.edges.store.steps import StepCache

TEST_TOOLCHAINS = Path(__file__).resolve().parent / "toolchains"
# Images and wheels are shared by all tests (and kept between CI runs on one machine):
# they are content-addressed, so sharing cannot leak state between tests.
SHARED_STORE = Path(os.environ.get("POSEPIPE_TEST_STORE", Path.home() / ".cache" / "posepipe-tests"))


# The order the suite needs its images in: mmpose first (nearly every Docker test exports), then what the next
# modules use; TPU-MLIR early, as its module holds the longest test (real compiles and simulations, 12-19 min beside
# other tests in a cold run here), which would otherwise end the run with one worker idle; mmpose and
# drpai_tvm_cpu, which share PyPI torch's CUDA wheels, far apart so those 3 GB are downloaded once. Modules
# run in this order too (pytest_collection_modifyitems).
BUILD_ORDER = ("mmpose", "onnxruntime", "calibration", "sophgo_tpu_mlir", "openvino", "rknn", "litert", "ethos_u",
               "drpai_tvm_cpu")
AFTER_BUILDS = len(BUILD_ORDER) + 1  # the rank of modules with a test marked `alone`
IMAGES_AHEAD = "images ahead"  # the name of the threads that build them beside the tests
# Held shared by every Docker test and by the images' builds beside them, exclusively by a test marked `alone`:
# the suite runs two modules at once (pytest-xdist, pyproject's addopts), and one that counts or removes what
# the engine holds must have the engine to itself. In the shared store, so it covers every test process here.
ENGINE_LOCK = SHARED_STORE / "locks" / "tests-on-this-docker-engine"
# Held by a test marked `alone` from before it waits for the engine lock, and passed through by the others before
# they take it shared: flock prefers no one, so without it a worker running long modules would keep the
# engine shared and the alone test waiting, with the other worker idle.
ENGINE_GATE = ENGINE_LOCK.with_name(ENGINE_LOCK.name + ".gate")


def _images_needed(item) -> set[str]:
    names = {name for mark in item.iter_markers("images") for name in mark.args}
    return names | ({"mmpose"} if "mmpose_image" in getattr(item, "fixturenames", ()) else set())


def _rank(item) -> int:
    if item.get_closest_marker("alone"):
        return AFTER_BUILDS
    return max((BUILD_ORDER.index(n) + 1 for n in _images_needed(item) if n in BUILD_ORDER), default=0)


def pytest_collection_modifyitems(config, items):
    """Whole modules (their fixtures set up once), in the order their images are ready: those that need none
    first, then by the last image each needs in BUILD_ORDER, then the modules with a test that needs the
    Docker engine to itself; the file order otherwise."""
    module = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        module[path] = max(module.get(path, 0), _rank(item))
    items.sort(key=lambda item: module[item.nodeid.split("::")[0]])


class _ImagesAhead:
    """The toolchain images the selected tests use, built two at a time in a thread beside the first tests,
    instead of one by one as tests reach them (on a machine without them, most of a cold run), and instead
    of before the first test (a build and a test use the machine differently, so side by side they overlap).
    Only a head start: a test still finds its images itself (waiting on the image's lock while it is being
    made here), and an image that failed here is made again, and reported, by the test that needs it."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.said: list[str] = []
        self.holding = contextlib.ExitStack()  # the engine lock, shared, until every image is ready

    def ready(self, name: str, got, seconds: float) -> None:
        self.said.append(f"  {name}: ready after {seconds:.0f} s" if not isinstance(got, Exception) else
                         f"  {name}: not built ahead ({type(got).__name__}: {str(got).splitlines()[0][:200]})")

    def start(self, builder: ImageBuilder, specs: list, began: float) -> None:
        def run() -> None:
            try:
                builder.ensure_all(specs, on_ready=self.ready, thread_name=IMAGES_AHEAD)
                self.said.append(f"  all ready {time.monotonic() - began:.0f} s after the tests began")
            finally:
                self.holding.close()

        self.holding.enter_context(file_lock(ENGINE_LOCK, shared=True))  # before any test can ask for it alone

        logging.getLogger("posepipe").addFilter(lambda record: not record.threadName.startswith(IMAGES_AHEAD))
        self.thread = threading.Thread(target=run, name=IMAGES_AHEAD, daemon=True)
        self.thread.start()

    def outcome(self, interrupted: bool) -> list[str]:
        """What the builds said, once they are done (not waited for when the run was interrupted)."""
        if self.thread is None:  # none started in this process (under xdist, the controller holds gw0's lines)
            return self.said
        if not interrupted:
            self.thread.join()
        return self.said if not self.thread.is_alive() else ["  interrupted while some were still being built"]


IMAGES = _ImagesAhead()


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reports its collection and tests can be sent to it
def pytest_collection_finish(session):
    """Start building the images the selected tests use (``images`` marks, mmpose for the ``mmpose_image``
    fixture) beside the tests, in BUILD_ORDER; the base first, as nearly every Docker test needs it. Under
    xdist, in the first worker only: every worker collects every test, and one builder is enough."""
    wanted = {name for item in session.items for name in _images_needed(item)}
    if not wanted or session.config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return
    names = sorted(wanted, key=lambda n: BUILD_ORDER.index(n) if n in BUILD_ORDER else len(BUILD_ORDER))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    try:
        builder = ImageBuilder(DockerDriver.from_env(), REPO_ROOT / "docker", SHARED_STORE)
        builder.base_id()
    except Exception as e:  # noqa: BLE001 - no engine or no base: every docker test says why
        reporter.write_line(f"toolchain images not built ahead: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return
    specs = []
    for name in names:
        try:
            specs.append(load_toolchain(REPO_ROOT / "docker", name))
        except Exception as e:  # noqa: BLE001 - as for a failed build: the test that needs it says why
            IMAGES.ready(name, e, 0.0)
    reporter.write_line(f"toolchain images the selected tests use, found or built beside them, two at a time: {', '.join(names)}")
    IMAGES.start(builder, specs, time.monotonic())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A Docker test holds the engine lock shared (its module's fixtures included, as they are set up and torn
    down inside this), a test marked ``alone`` exclusively: it starts once no other test and no image build
    beside the tests is using the engine, no test starts while it waits (the gate), and none until it ends."""
    if "docker" not in item.keywords:
        yield
    elif item.get_closest_marker("alone"):
        with file_lock(ENGINE_GATE), file_lock(ENGINE_LOCK):
            yield
    else:
        with file_lock(ENGINE_GATE, shared=True):
            pass  # waits while a test marked alone waits for the engine
        with file_lock(ENGINE_LOCK, shared=True):
            yield


def pytest_sessionfinish(session, exitstatus):
    """An xdist worker hands what its images' builds said to the controller, which prints the summary."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["images_ahead"] = IMAGES.outcome(exitstatus == pytest.ExitCode.INTERRUPTED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    IMAGES.said.extend(getattr(node, "workeroutput", {}).get("images_ahead", []))


def pytest_terminal_summary(terminalreporter, exitstatus):
    said = IMAGES.outcome(exitstatus == pytest.ExitCode.INTERRUPTED)
    if said:
        terminalreporter.write_line("toolchain images built beside the tests:")
        for line in said:
            terminalreporter.write_line(line)


def make_engine(cache_root: Path, options: EngineOptions = EngineOptions(jobs=2), toolchains: Path = TEST_TOOLCHAINS,
                on_line=lambda s, l: None, cache: CacheSetting | None = None, on_done=lambda s, r, t: None) -> Engine:
    """An engine on its own store (one "machine"); with ``cache``, sharing steps and images through that registry."""
    driver = DockerDriver.from_env()
    registry = Registry(cache) if cache else None
    images = ImageBuilder(driver, REPO_ROOT / "docker", SHARED_STORE, remote=registry and RemoteImages(registry, driver))
    return Engine(
        driver, images, StepCache(cache_root), BlobStore(cache_root), toolchains, cache_root / "logs", options, on_line,
        on_done=on_done,
        remote=registry and RemoteSteps(registry, BlobStore(cache_root), options.source_date_epoch),
    )


@dataclass
class LocalRegistry:
    """Debian's docker-registry on 127.0.0.1: a real OCI registry that a test can read, damage and stop."""

    url: str  # oci://127.0.0.1:PORT/posepipe
    data: Path  # its storage folder
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def local_registry(folder: Path, read_only: bool = False):
    registry = shutil.which("docker-registry")
    assert registry, "Debian's docker-registry is installed by .ci/run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "registry.yml"
    maintenance = "  maintenance:\n    readonly:\n      enabled: true\n" if read_only else ""
    config.write_text(
        f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n{maintenance}"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([registry, "serve", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # ready when it says so
        if "listening on" in line:
            break
    else:
        raise AssertionError("the registry exited before listening")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its log, or it blocks
    local = LocalRegistry(f"oci://127.0.0.1:{port}/posepipe", folder / "data", proc)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def oci_registry(tmp_path):
    with local_registry(tmp_path / "registry") as registry:
        yield registry


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

    from pipelines.edges.store.steps import tree_manifest

    driver = DockerDriver.from_env()
    base = base or ImageBuilder(driver, REPO_ROOT / "docker", SHARED_STORE).base_id()
    digest = hashlib.sha256(json.dumps([tree_manifest(folder), base], sort_keys=True).encode()).hexdigest()[:16]
    tag = f"posepipe/{folder.name.replace('_', '-')}:{digest}"
    return driver.image_id(tag) or driver.build(folder, tag, {"BASE_IMAGE": base}, lambda line: None)


@contextlib.contextmanager
def vendor_checkout(tmp_path: Path, monkeypatch, toolchain: str, image: str, recipes: list[str], archive: bytes, count: int):
    """A checkout for a vendor stage's contract tests: the real stage, the stand-in vendor image
    provisioned (labelled contract-test), the export stand-in, and the recipes' checkpoint and
    calibration archive served over loopback with a calibration count the archive can meet."""
    from pipelines.core.layout import Layout

    from .httpserver import LoopbackServer, Route

    root = tmp_path / "repo"
    (root / "recipes").mkdir(parents=True)
    for name, src in (("base", REPO_ROOT / "docker" / "base"), ("calibration", REPO_ROOT / "docker" / "calibration"),
                      (toolchain, REPO_ROOT / "docker" / toolchain), ("mmpose", TEST_TOOLCHAINS / "standin")):
        shutil.copytree(src, root / "docker" / name)
    (tmp_path / "vendor.yaml").write_text(f"{toolchain}:\n  image:\n    ref: {image}\n  contract_test: true\n")
    monkeypatch.setenv("POSEPIPE_VENDOR_CONFIG", str(tmp_path / "vendor.yaml"))
    checkpoint = b"stand-in checkpoint\n"
    with LoopbackServer() as server:
        ckpt_url, cal_url = server.add("/ckpt.pth", Route(checkpoint)), server.add("/calibration.zip", Route(archive))
        for recipe in recipes:
            text = served_recipe(recipe, (ckpt_url, checkpoint), (cal_url, archive))
            (root / "recipes" / f"{recipe}.yaml").write_text(re.sub(r"count: \d+", f"count: {count}", text))
        yield Layout(root, tmp_path / "store")


def served_recipe(recipe: str, checkpoint: tuple[str, bytes], calibration: tuple[str, bytes],
                  preview: tuple[str, bytes] | None = None) -> str:
    """The text of ``recipes/<recipe>.yaml`` with its checkpoint and calibration archive at loopback URLs, and its
    preview photo too when one is given (else the recipe's preview block is left out: no preview is made)."""
    text = (REPO_ROOT / "recipes" / f"{recipe}.yaml").read_text()
    served = [(r"https://download\.openmmlab\.com", checkpoint), (r"http://images\.cocodataset\.org", calibration)]
    if preview:
        served.append((r"https://raw\.githubusercontent\.com", preview))
    else:
        text = without_preview(text)
    for host, (url, data) in served:
        text = re.sub(host + r"\S+\n(\s+)sha256: \S+",
                      lambda m: f"{url}\n{m[1]}sha256: {hashlib.sha256(data).hexdigest()}", text)
    return text


def without_preview(text: str) -> str:
    """A recipe's text without its preview block (its photo is on the internet, which tests do not reach)."""
    return re.sub(r"^preview:\n(?:[ #].*\n|\n)*", "", text, flags=re.M)


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()
