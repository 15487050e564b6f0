"""Toolchain images: ``docker/<name>/`` built on the base, tagged by a digest of all inputs.

The tag is ``posepipe/<name>:<digest>`` where the digest covers every file in
the toolchain folder (the locked wheels' hashes among them), the Python it
supplies and the base by content (the bootstrap settings, or the provisioned
vendor file's sha256 or digest), never an image ID: an unchanged toolchain is
never rebuilt, a changed one always is, and the digest is the same on every
machine, so step keys built on it are too. With a remote cache, a missing
image is pulled from the registry instead of being built, and a built one is
pushed there.
"""

from __future__ import annotations

import logging

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.edges.containers import interpreters
from pipelines.edges.containers import provisioning
from pipelines.edges.containers.interpreters import Interpreter

from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.store.fetcher import Fetcher
from pipelines.edges.fs import get_or_make
from pipelines.edges.containers.bootstrap import BaseRecord, BaseSpec, base_record, ensure_base, load_base_spec
from pipelines.core.digests import SHA256_HEX, sha256_file, sha256_json
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.remote.images import RemoteImages
from pipelines.edges.store import Store
from pipelines.core.errors import UsageError
from pipelines.core.recipe import RemoteFile
from pipelines.core.layout import REPO_ROOT
from pipelines.edges.containers.wheelhouse import DEFAULT_PYTHON, fill_wheelhouse, served

log = logging.getLogger("posepipe")
SHARED_DIR = REPO_ROOT / "docker" / "common"  # in-image code several toolchains share
INSTALL_STAGE = SHARED_DIR / "install.Dockerfile"  # written before the Dockerfile of every toolchain with locked wheels


@dataclass(frozen=True)
class FetchedFile:
    """A file an image build takes by sha256 (e.g. a runtime for another architecture): downloaded once
    into the store by the verified fetcher, never committed, part of the image's digest by its hash."""

    name: str  # its name in the build context's fetched/ folder
    source: RemoteFile


def _fetched(spec_file: Path, data: object) -> tuple[FetchedFile, ...]:
    if not isinstance(data, dict):
        raise UsageError(f"{spec_file}: fetch must map file names to {{url, sha256, size}}")
    out = []
    for name, entry in sorted(data.items()):
        if not (isinstance(entry, dict) and {"url", "sha256"} <= entry.keys() and SHA256_HEX.match(str(entry["sha256"]))):
            raise UsageError(f"{spec_file}: fetch.{name} needs a url and a full 64-hex sha256")
        out.append(FetchedFile(name, RemoteFile(entry["url"], entry["sha256"], entry.get("size"), kind="vendor")))
    return tuple(out)


@dataclass(frozen=True)
class ToolchainSpec:
    name: str
    folder: Path
    command: tuple[str, ...]  # argv of the in-image step script
    run: tuple[str, ...] = ()  # argv of its in-image runner (runs a built artifact on photos); () if it cannot here
    score: tuple[str, ...] = ()  # argv of its in-image scorer of a runner's predictions (the export toolchain's)
    requirements: str | None = None  # hashed requirements file inside the folder
    version: str = "unversioned"  # what the toolchain is, for manifests (e.g. "mmpose 1.3.2")
    contract_test: bool = False  # a test stand-in: its artifacts are labelled and never publishable
    base: str = "bootstrap"  # "bootstrap": our Debian base; "vendor": the image the user provisions
    provision: str = ""  # for vendor toolchains: exactly what the user must supply
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of every file
    shared: tuple[str, ...] = ()  # files and folders of docker/common/ copied into its build context (and its digest)
    python: str = DEFAULT_PYTHON  # the CPython its wheels are for; not Debian's 3.11 means we supply one
    interpreter: Interpreter | None = None  # that supplied CPython, when it was found
    debian: tuple[str, ...] = ()  # Debian packages beyond the common base's: it stands on a base of its own
    fetched: tuple[FetchedFile, ...] = ()  # files its build takes by sha256, in the context's fetched/

    @property
    def files_digest(self) -> str:
        return sha256_json(self.files)

    def argv(self, script: str) -> tuple[str, ...]:
        """The in-image command a step names (Step.script: "command", "run" or "score")."""
        argv = {"command": self.command, "run": self.run, "score": self.score}[script]
        if not argv:
            what = "run its artifacts here" if script == "run" else "score predictions"
            raise UsageError(f"toolchain {self.name} cannot {what} (its toolchain.yaml has no {script} command)")
        return argv


def load_toolchain(docker_dir: Path, name: str) -> ToolchainSpec:
    folder = docker_dir / name
    spec_file = folder / "toolchain.yaml"
    if not spec_file.is_file():
        raise UsageError(f"toolchain {name!r} has no {spec_file}")
    data = yaml.safe_load(spec_file.read_text())
    files = {
        p.relative_to(folder).as_posix(): sha256_file(p)[0]
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    shared = tuple(data.get("shared", ()))
    for name_ in shared:
        if not (SHARED_DIR / name_).exists():
            raise UsageError(f"{spec_file}: shared file or folder {name_!r} is not in {SHARED_DIR}")
        files.update({f"shared/{rel}": digest for rel, digest in _shared_files(name_)})
    if data.get("requirements"):
        files["shared/install.Dockerfile"] = sha256_file(INSTALL_STAGE)[0]
    python = str(data.get("python", DEFAULT_PYTHON))
    interpreter = interpreters.find(python) if python != DEFAULT_PYTHON else None
    version = str(data.get("version", "unversioned"))
    if interpreter is not None:
        files[f"python/{interpreter.version}"] = interpreter.digest
        version += f" on {interpreter.describe}"
    debian = tuple(data.get("debian", ()))
    if debian:  # the manifest's base is the common one; say what this toolchain's adds
        version += f"; its base adds Debian {', '.join(debian)}"
    fetched = _fetched(spec_file, data.get("fetch", {}))
    files.update({f"fetched/{f.name}": f.source.sha256 for f in fetched})
    vendor = provisioning.provisioned(name) if data.get("base") == "vendor" else None
    return ToolchainSpec(
        name, folder, tuple(data["command"]), run=tuple(data.get("run", ())), score=tuple(data.get("score", ())), requirements=data.get("requirements"), files=files,
        version=version,
        contract_test=bool(data.get("contract_test", False)) or bool(vendor and vendor.contract_test),
        base=data.get("base", "bootstrap"), provision=data.get("provision", ""), shared=shared,
        python=python, interpreter=interpreter, debian=debian, fetched=fetched,
    )


def _shared_files(name: str) -> list[tuple[str, str]]:
    """(path under docker/common/, sha256) of a shared file, or of every file in a shared folder."""
    path = SHARED_DIR / name
    found = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
    return [(p.relative_to(SHARED_DIR).as_posix(), sha256_file(p)[0]) for p in found]


@dataclass(frozen=True)
class ToolchainImage:
    """A toolchain image: the digest of its inputs (what step keys use) and its image ID here (what runs)."""

    digest: str
    id: str


def image_tag(name: str, digest: str) -> str:
    return f"posepipe/{name}:{digest[:16]}"


class ImageBuilder:
    """Builds (or finds) toolchain images; one lock per tag so parallel builds agree."""

    def __init__(self, driver: DockerDriver, docker_dir: Path, store_root: Path, fresh_base: bool = False,
                 remote: RemoteImages | None = None):
        self.driver = driver
        self.docker_dir = docker_dir
        self.store = Store(store_root)
        self.fresh_base = fresh_base  # re-run mmdebstrap even if the tagged base exists
        self.remote = remote  # a registry to pull missing images from and push built ones to
        self._base_ids: dict[str, str] = {}  # base tag -> image ID, once per builder
        self._shared: set[str] = set()  # tags the remote cache was already made to hold
        self._lock = threading.Lock()

    def base_spec(self, extra: tuple[str, ...] = ()) -> BaseSpec:
        """The common base, or a toolchain's own (the common one with more Debian packages)."""
        return load_base_spec(self.docker_dir).with_packages(extra)

    def base_id(self, extra: tuple[str, ...] = ()) -> str:
        spec = self.base_spec(extra)
        with self._lock:  # worker threads ask at once; bootstrap once
            if spec.tag not in self._base_ids:
                reuse = not (self.fresh_base or spec.image)  # a configured base image is used as is
                self._base_ids[spec.tag] = get_or_make(
                    self.store.base_lock(spec.digest), f"the base image {spec.tag}",
                    (lambda: self.driver.image_id(spec.tag)) if reuse else (lambda: None),
                    lambda: self._make_base(spec, reuse),
                )
            return self._base_ids[spec.tag]

    def _make_base(self, spec: BaseSpec, reuse: bool) -> str:
        """Pulled from the remote cache if allowed and there, else bootstrapped here (and pushed)."""
        pulled = self._pulled(spec.tag, "base", spec.digest) if reuse else None
        if pulled:
            return pulled
        image_id = ensure_base(self.driver, spec, self.store, self.fresh_base)
        if self.remote:
            self.remote.share(spec.tag, "base", spec.digest)
        return image_id

    def base(self) -> BaseRecord:
        """The bootstrapped base's tag and rootfs digest (or the configured base image), for manifests."""
        self.base_id()
        return base_record(self.driver, load_base_spec(self.docker_dir))

    def toolchains(self) -> list[str]:
        return sorted(p.parent.name for p in self.docker_dir.glob("*/toolchain.yaml"))

    def base_for(self, spec: ToolchainSpec) -> str:
        """Our bootstrapped base, or the vendor image the user provisioned for this toolchain."""
        if spec.base != "vendor":
            return self.base_id(spec.debian)
        vendor = provisioning.provisioned(spec.name)
        if vendor is None:
            raise provisioning.not_provisioned(spec.name, spec.provision)
        fetcher = Fetcher(BlobStore(self.store.root), self.store.pins("vendor"))
        return provisioning.vendor_image_id(self.driver, vendor, self.store, fetcher)

    def base_input(self, spec: ToolchainSpec) -> str:
        """What ``spec`` is built on, by content: the bootstrap settings or the provisioned vendor image."""
        if spec.base != "vendor":
            base = self.base_spec(spec.debian)
            return base.image or f"bootstrap:{base.digest}"
        vendor = provisioning.provisioned(spec.name)
        if vendor is None:
            raise provisioning.not_provisioned(spec.name, spec.provision)
        return f"docker-save:{vendor.sha256}" if vendor.sha256 else str(vendor.ref)

    def digest(self, spec: ToolchainSpec) -> str:
        return sha256_json({"v": 2, "files": spec.files, "base": self.base_input(spec)})

    def ensure(self, spec: ToolchainSpec) -> ToolchainImage:
        """The image for ``spec``: found by its tag, else pulled from the remote cache, else built;
        with a remote cache, once per builder, the registry is made to hold it too."""
        digest = self.digest(spec)
        tag = image_tag(spec.name, digest)
        lock = self.store.image_lock(tag)
        pulled: list[str] = []

        def make() -> str:
            if found := self._pulled(tag, spec.name, digest):
                pulled.append(found)
                return found
            return self._build(spec, tag)

        image_id = get_or_make(lock, f"image {tag}", lambda: self.driver.image_id(tag), make)
        with self._lock:
            share = self.remote is not None and not pulled and tag not in self._shared
            self._shared.add(tag)
        if share:
            self.remote.share(tag, spec.name, digest)
        return ToolchainImage(digest, image_id)

    def ensure_all(self, specs: list[ToolchainSpec], jobs: int = 2,
                   on_ready: Callable[[str, ToolchainImage | Exception, float], None] = lambda name, got, seconds: None,
                   thread_name: str = "images") -> dict[str, ToolchainImage | Exception]:
        """Each of ``specs`` found, pulled or built, ``jobs`` at a time in the order given (a build spends much
        of its time on one core or on the disk, so two side by side use the machine better); ``on_ready`` as each
        is done. A failure is returned in its place, not raised, so one bad image does not stop the others.
        ``thread_name`` prefixes the names of the threads that build, so a caller can tell their log records apart."""
        def one(spec: ToolchainSpec) -> ToolchainImage | Exception:
            started = time.monotonic()
            try:
                got: ToolchainImage | Exception = self.ensure(spec)
            except Exception as e:  # noqa: BLE001 - returned to the caller, who says it or raises it
                got = e
            on_ready(spec.name, got, time.monotonic() - started)
            return got

        with ThreadPoolExecutor(jobs, thread_name_prefix=thread_name) as pool:
            return dict(zip((s.name for s in specs), pool.map(one, specs)))

    def _pulled(self, tag: str, name: str, digest: str) -> str | None:
        return self.remote.pull(tag, name, digest) if self.remote else None

    def _build(self, spec: ToolchainSpec, tag: str) -> str:
        base = self.base_for(spec)
        log.info(f"building image {tag} (its Dockerfile steps show with --verbose)")
        self.store.tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="context-", dir=self.store.tmp) as tmp:
            context = Path(tmp) / "context"
            shutil.copytree(spec.folder, context, ignore=shutil.ignore_patterns("__pycache__"))
            for name in spec.shared:
                if (SHARED_DIR / name).is_dir():
                    shutil.copytree(SHARED_DIR / name, context / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copyfile(SHARED_DIR / name, context / name)
            if spec.python != DEFAULT_PYTHON:
                if spec.interpreter is None:
                    raise interpreters.missing(spec.python, spec.name)
                interpreters.copy_into(spec.interpreter, context / "python")
            if spec.fetched:
                fetcher = Fetcher(BlobStore(self.store.root), self.store.pins("toolchain-files"))
                (context / "fetched").mkdir()
                for f in spec.fetched:
                    _link_or_copy(fetcher.fetch(f.source, f"{spec.name}: {f.name}").path, context / "fetched" / f.name)
            def said(line: str) -> None:
                log.debug(f"  {line}")

            if not spec.requirements:
                return self.driver.build(context, tag, {"BASE_IMAGE": base}, said)
            wheels = Path(tmp) / "wheels"  # beside the context, not in it: served, never sent to the engine
            wheels.mkdir()
            for wheel in fill_wheelhouse(spec.folder / spec.requirements, self.store.wheels, spec.python):
                _link_or_copy(wheel, wheels / wheel.name)
            (context / "Dockerfile").write_text(install_stage(spec) + (spec.folder / "Dockerfile").read_text())
            with served(wheels) as url:
                return self.driver.build(context, tag, {"BASE_IMAGE": base, "WHEELS": url}, said, host_network=True)


def install_stage(spec: ToolchainSpec) -> str:
    """The shared install steps for ``spec``: with the CPython posepipe supplies when it names one."""
    if spec.python == DEFAULT_PYTHON:
        interpreter, python = "", "python3"
    else:
        prefix = f"/opt/python{spec.python}"
        interpreter, python = f"COPY python/ {prefix}/\nENV LD_LIBRARY_PATH={prefix}/lib\n", f"{prefix}/bin/python{spec.python}"
    return INSTALL_STAGE.read_text().replace("@INTERPRETER@", interpreter).replace("@PYTHON@", python)


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)  # same file system: no copy of GBs
    except OSError:
        shutil.copy2(source, dest)
