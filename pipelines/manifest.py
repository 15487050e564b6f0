"""The artifact manifest: built from what the build did, validated by its own schema.

Canonical JSON with no clock time in it, so two clean builds of the same recipe
write the same bytes.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema

from . import __version__
from .digests import canonical_json
from .errors import IntegrityError
from .stepcache import tree_manifest

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "recipes" / "schema" / "manifest.schema.json"
NAME = "manifest.json"


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def posepipe_commit(root: Path) -> str:
    res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if res.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "pipelines", "docker", "recipes", "tasks.py"],
                           capture_output=True, text=True).stdout.strip()
    return res.stdout.strip() + ("-dirty" if dirty else "")


def files_of(target_dir: Path) -> list[dict[str, Any]]:
    """Every file under the target folder except the manifest itself."""
    return [{"path": p, **facts} for p, facts in tree_manifest(target_dir).items() if p != NAME]


def validate(manifest: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(top)"
        raise IntegrityError(f"manifest does not match its schema at {where}: {errors[0].message}")


def write(target_dir: Path, manifest: dict[str, Any]) -> bytes:
    validate(manifest)
    data = canonical_json(manifest) + b"\n"
    (target_dir / NAME).write_bytes(data)
    return data


def read(target_dir: Path) -> dict[str, Any]:
    path = target_dir / NAME
    if not path.is_file():
        raise IntegrityError(f"{target_dir} has no {NAME}")
    manifest = json.loads(path.read_text())
    validate(manifest)
    return manifest


def check_files(target_dir: Path, manifest: dict[str, Any]) -> None:
    """Raise IntegrityError naming the first file that is missing, extra or changed."""
    want = {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]}
    have = {f["path"]: (f["size"], f["sha256"]) for f in files_of(target_dir)}
    for path in sorted(set(want) | set(have)):
        if path not in have:
            raise IntegrityError(f"{target_dir}: {path} is listed in the manifest but missing")
        if path not in want:
            raise IntegrityError(f"{target_dir}: {path} is not listed in the manifest")
        if have[path] != want[path]:
            raise IntegrityError(f"{target_dir}: {path} has sha256 {have[path][1]}, the manifest says {want[path][1]}")


def version() -> str:
    return __version__
