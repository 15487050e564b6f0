"""The artifact manifest model: validated by its own schema, rendered as canonical JSON.

No clock time in it, so two clean builds of the same recipe write the same bytes.
Reading and writing manifests on disk is ``pipelines.edges.publishing.artifacts``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from pipelines import __version__
from pipelines.core import labels
from pipelines.core.digests import canonical_json
from pipelines.core.errors import IntegrityError
from pipelines.core.layout import SCHEMAS
from pipelines.core.recipe import Recipe, Target, plain
from pipelines.core.steps import Step

SCHEMA_PATH = SCHEMAS / "manifest.schema.json"
NAME = "manifest.json"
PREVIEW_FILES = ("preview.png", "preview.json")  # beside a target's outputs: its keypoints drawn on the recipe's photo


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def validate(manifest: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(top)"
        raise IntegrityError(f"manifest does not match its schema at {where}: {errors[0].message}")


def render(manifest: dict[str, Any]) -> bytes:
    validate(manifest)
    return canonical_json(manifest) + b"\n"


def parse(data: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as e:
        raise IntegrityError(f"{where}: the manifest is not JSON: {e}") from None
    validate(manifest)
    return manifest


def compare_files(where: str, manifest: dict[str, Any], have: list[dict[str, Any]]) -> None:
    """Raise IntegrityError naming the first file that is missing, extra or changed."""
    want = {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]}
    got = {f["path"]: (f["size"], f["sha256"]) for f in have}
    for path in sorted(set(want) | set(got)):
        if path not in got:
            raise IntegrityError(f"{where}: {path} is listed in the manifest but missing")
        if path not in want:
            raise IntegrityError(f"{where}: {path} is not listed in the manifest")
        if got[path] != want[path]:
            raise IntegrityError(f"{where}: {path} has sha256 {got[path][1]}, the manifest says {want[path][1]}")


def version() -> str:
    return __version__


@dataclass(frozen=True)
class StepRecord:
    """What one step contributed to a target: its key, image, outputs and the reports it wrote."""

    step: Step
    key: str
    image: str
    toolchain_version: str
    contract_test: bool
    files: Mapping[str, Mapping[str, Any]]  # output path -> {size, sha256}
    reports: Mapping[str, Mapping[str, Any]]  # "export.json" / "report.json" -> its content


def assemble(
    recipe: Recipe, target: Target, records: list[StepRecord], inputs: Mapping[str, Mapping[str, str]],
    differs: Mapping[str, list[str]] | None, commit: str, epoch: int, base: Mapping[str, str | None],
    preview: Mapping[str, Any] | None = None, evaluation: list[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The manifest of ``target``, whose folder holds exactly the last record's outputs, plus the ``preview``
    files (the artifact run on the recipe's photo) when there are any."""
    final = records[-1]
    checks = [c for r in records for rep in r.reports.values() for c in labels.checks_in(r.step.id, rep)]
    files = {p: final.files[p] for p in final.files if p != NAME}
    files.update(preview["files"] if preview else {})
    used = {"checkpoint", *(("calibration",) if target.needs_calibration else ()), *(("preview",) if preview else ())}
    extra: dict[str, Any] = {}
    if preview:
        extra["preview"] = dict(preview)
    if evaluation:
        extra["evaluation"] = [dict(e) for e in evaluation]
    return {
        "schema_version": 1,
        "label": labels.earned(any(r.contract_test for r in records), final.step.id, checks),
        "checks": [c.as_json() for c in checks],
        "recipe": {"name": recipe.name, "digest": recipe.digest},
        "target": {"id": target.id, "toolchain": target.toolchain, "output": target.output, "params": plain(target.params)},
        "inputs": {k: dict(v) for k, v in inputs.items() if k in used},
        "base": dict(base),  # the Debian base every bootstrapped image stands on, by its rootfs digest
        "toolchains": sorted(
            ({"name": r.step.toolchain, "version": r.toolchain_version, "image": r.image} for r in records),
            key=lambda t: (t["name"], t["image"]),
        ),
        "steps": [{"id": r.step.id, "toolchain": r.step.toolchain, "key": r.key, "params": plain(r.step.params)} for r in records],
        "files": [{"path": p, **files[p]} for p in sorted(files)],
        "verification": {f"{r.step.id}/{name}": dict(rep) for r in records for name, rep in sorted(r.reports.items())},
        "reproducibility": {"checked": False} if differs is None else {
            "checked": True,
            "differing_files": {r.step.id: list(differs.get(r.step.id, [])) for r in records},
        },
        "posepipe": {"version": version(), "commit": commit},
        "source_date_epoch": epoch,
        **extra,
    }
