"""Proprietary toolchains the user supplies: where posepipe finds them and how it checks them.

Vendor toolchains (DRP-AI TVM, Sophgo, Vastai, Kneron) cannot be downloaded by posepipe.
The user builds or obtains the vendor's image and names it in a vendor config,
``$POSEPIPE_VENDOR_CONFIG`` or ``~/.config/posepipe/vendor.yaml``::

    drpai_tvm:
      image:
        load: /srv/vendor/drpai-tvm-v1.1.1-v2ma.tar   # a `docker save` file, checked by sha256
        sha256: 3f1c...                                # then `docker load`ed once
    kneron:
      image:
        ref: registry.example/kneron/toolchain@sha256:9a7b...   # or an image by digest

posepipe layers its in-image step script on that image (``docker/<toolchain>/Dockerfile``).
A toolchain without an entry is "not provisioned", and every message about it says exactly
what to supply (the ``provision`` text of its toolchain.yaml).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.core import toolchains
from pipelines.core.cells import Status
from pipelines.core.plan import CALIBRATION_TOOLCHAIN, EXPORT_TOOLCHAIN, needs_calibration, with_combined
from pipelines.core.recipe import Recipe, RemoteFile, Target
from pipelines.edges.fs import get_or_make, write_bytes_atomic
from pipelines.edges.settings import config_dir
from pipelines.edges.store import Store
from pipelines.core.digests import SHA256_HEX
from pipelines.core.errors import IntegrityError, ToolchainNotProvisioned, UsageError


def config_path() -> Path:
    env = os.environ.get("POSEPIPE_VENDOR_CONFIG")
    if env:
        return Path(env)
    return config_dir() / "vendor.yaml"


@dataclass(frozen=True)
class VendorImage:
    toolchain: str
    load: Path | None = None  # a `docker save` tar, with its sha256
    sha256: str | None = None
    ref: str | None = None  # "name@sha256:..." or a local image ID "sha256:..."
    contract_test: bool = False  # a test stand-in, never a verified build


def entries() -> dict[str, VendorImage]:
    path = config_path()
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of toolchain names")
    out = {}
    for name, entry in data.items():
        if name == "interpreters":  # not a toolchain: see pipelines/edges/containers/interpreters.py
            continue
        image = (entry or {}).get("image") or {}
        if "load" in image:
            if not SHA256_HEX.match(str(image.get("sha256", ""))):
                raise UsageError(f"{path}: {name}.image.load needs the file's full sha256 in {name}.image.sha256")
            out[name] = VendorImage(name, load=Path(image["load"]), sha256=image["sha256"], contract_test=bool(entry.get("contract_test")))
        elif "ref" in image:
            ref = str(image["ref"])
            if "@sha256:" not in ref and not SHA256_HEX.match(ref.removeprefix("sha256:")):
                raise UsageError(f"{path}: {name}.image.ref must be pinned by digest (name@sha256:...) or an image ID")
            out[name] = VendorImage(name, ref=ref, contract_test=bool(entry.get("contract_test")))
        else:
            raise UsageError(f"{path}: {name} needs image.load (+ sha256) or image.ref")
    return out


def provisioned(name: str) -> VendorImage | None:
    return entries().get(name)


def declared_python(docker_dir: Path, name: str) -> str:
    """The CPython a toolchain's wheels are for when posepipe supplies it (``python:`` in its
    toolchain.yaml), else "" (Debian's own)."""
    spec_file = docker_dir / name / "toolchain.yaml"
    return str((yaml.safe_load(spec_file.read_text()) or {}).get("python", "")) if spec_file.is_file() else ""


def status(name: str, docker_dir: Path) -> Status:
    """Whether a toolchain can build here: its image folder exists, a proprietary one is supplied,
    and the CPython it needs (if not Debian's) is found."""
    spec_file = docker_dir / name / "toolchain.yaml"
    if not spec_file.is_file():
        return Status.NOT_IMPLEMENTED
    if toolchains.get(name).kind == "vendor" and provisioned(name) is None:
        return Status.NOT_PROVISIONED
    python = declared_python(docker_dir, name)
    if python:
        from pipelines.edges.containers.interpreters import locate  # it reads this module's config path

        if locate(str(python)) is None:
            return Status.NEEDS_PYTHON
    return Status.READY


def blocker(recipe: Recipe, target: Target, docker_dir: Path) -> tuple[str, Status] | None:
    """The toolchain that keeps ``target`` from building here, and why, or None: the export's, the
    calibration's (when it or a target it combines calibrates), the target's own and those of the
    targets it combines are all needed."""
    built = with_combined(recipe, (target,))
    needed = [EXPORT_TOOLCHAIN, *([CALIBRATION_TOOLCHAIN] if needs_calibration(recipe, (target,)) else []),
              *dict.fromkeys(t.toolchain for t in built)]
    for name in needed:
        s = status(name, docker_dir)
        if s is not Status.READY:
            return name, s
    return None


def not_provisioned(name: str, provision_text: str) -> ToolchainNotProvisioned:
    return ToolchainNotProvisioned(
        f"toolchain {name} is not provisioned. Supply it in {config_path()} as\n"
        f"  {name}:\n    image: {{load: FILE.tar, sha256: <sha256 of FILE.tar>}}   (or {{ref: NAME@sha256:...}})\n"
        f"What that image is and how to make it:\n{provision_text.rstrip()}"
    )


def vendor_image_id(driver, vendor: VendorImage, store: Store, fetcher) -> str:
    """The local image ID of a provisioned vendor image, loading (and hash-checking) it once."""
    if vendor.ref:
        found = driver.image_id(vendor.ref)
        if found:
            return found
        return driver.pull(vendor.ref)
    record = store.vendor / f"{vendor.sha256}.json"

    def find() -> str | None:
        if record.is_file():
            image_id = json.loads(record.read_text())["image_id"]
            if driver.image_id(image_id):
                return image_id
        return None

    def load() -> str:
        # the fetcher checks the file's sha256 on its way into the store
        blob = fetcher.fetch(RemoteFile(str(vendor.load), vendor.sha256, kind="vendor"), f"{vendor.toolchain} vendor image")
        image_id = driver.load_tar(blob.path)
        if image_id is None:
            raise IntegrityError(f"{vendor.load} loaded no image (is it a `docker save` file?)")
        write_bytes_atomic(record, json.dumps({"image_id": image_id, "file": str(vendor.load)}).encode())
        return image_id

    return get_or_make(store.vendor_lock(vendor.sha256), f"the {vendor.toolchain} vendor image", find, load)
