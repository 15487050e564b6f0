"""Recipes: YAML validated by the JSON Schema, checked for board facts, frozen.

``load_recipe`` is the only way a recipe enters posepipe. Whatever is wrong
with a file comes back as one ``RecipeError`` listing every problem with its
field path (``targets[2].quantize``) and line, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

import jsonschema
from jsonschema.exceptions import ValidationError

from pipelines.core import mmpose_configs, toolchains
from pipelines.core.digests import openmmlab_prefix, sha256_json
from pipelines.core.errors import RecipeError, RecipeProblem
from pipelines.core.schema import recipe_schema
from pipelines.core.yaml_source import YamlDocument, read_yaml_mapping

MAX_ERRORS_SHOWN = 20


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class RemoteFile:
    """A file fetched by hash. ``sha256`` is 64 hex, an 8-hex prefix, or 'unpinned'."""

    url: str
    sha256: str
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    kind: str = "checkpoint"  # checkpoint | calibration | dataset | vendor | artifact: picks the download cap
    max_size: int | None = None  # cap for a download of unknown size, instead of the kind's default

    @property
    def file_name(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name

    @property
    def fully_pinned(self) -> bool:
        return len(self.sha256) == 64


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Normalization:
    """Pixel normalisation on the 0-255 scale: (x - mean) / std per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: Literal["RGB", "BGR"]
    source: str


@dataclass(frozen=True)
class MMPoseSource:
    version: str
    config: str


@dataclass(frozen=True)
class Model:
    task: str
    mmpose: MMPoseSource
    checkpoint: RemoteFile
    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    normalization: Normalization


@dataclass(frozen=True)
class ExportSpec:
    opset: int
    tolerance: float = 1e-4
    simplify: str = "none"


@dataclass(frozen=True)
class Calibration:
    archive: RemoteFile
    select: str
    count: int


@dataclass(frozen=True)
class LabelledSet:
    """A labelled set (COCO keypoints JSON and its images) that `posepipe evaluate` scores targets on."""

    annotations: RemoteFile
    images: RemoteFile
    annotations_member: str = ""  # the JSON's path inside the annotations archive; "" when the file is the JSON
    images_prefix: str = ""  # folder in the images archive the JSON's file names are relative to
    limit: int | None = None  # the first N labelled images by id; None: all


@dataclass(frozen=True)
class Preview:
    """The sample photo each runnable target is run on at build time, and the person's box in it."""

    photo: RemoteFile
    box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Target:
    """One deployable artifact. ``params`` are the toolchain-specific fields, frozen."""

    id: str
    toolchain: str
    output: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def needs_calibration(self) -> bool:
        return toolchains.get(self.toolchain).needs_calibration(self.params)

    @property
    def combines(self) -> tuple[str, ...]:
        return toolchains.get(self.toolchain).combines(self.params)

    @property
    def batch(self) -> int:
        return toolchains.get(self.toolchain).batch(self.params)

    @property
    def frontend(self) -> str:
        return toolchains.get(self.toolchain).frontend(self.params)

    @property
    def runner_rebuilds(self) -> bool:
        return toolchains.get(self.toolchain).runner_rebuilds


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    model: Model
    export: ExportSpec
    targets: tuple[Target, ...]
    calibration: Calibration | None
    evaluation: LabelledSet | None
    preview: Preview | None
    seed_document: str | None
    seed_reported: Mapping[str, float | str]
    path: Path
    digest: str  # sha256 of the validated data in canonical JSON (comments do not count)

    def target(self, target_id: str) -> Target:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(target_id)


class FrozenDict(dict):
    """A read-only dict for target parameters inside frozen dataclasses."""

    def _refuse(self, *_: Any, **__: Any) -> None:
        raise TypeError("recipe parameters are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(sha256_json(self))


# --------------------------------------------------------------------------- loading


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    """The schema itself is checked against its metaschema by a test, not on every run."""
    schema = recipe_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def field_path(parts: Iterable[str | int]) -> str:
    """['targets', 2, 'quantize'] -> 'targets[2].quantize'."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """Descend into anyOf/oneOf/allOf/if-then to the errors that say something specific."""
    if error.context:
        # For a oneOf/anyOf keep the branch that got furthest; for allOf keep all.
        if error.validator in ("anyOf", "oneOf"):
            best = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.context or [])))
            yield from _leaf_errors(best)
            return
        for sub in error.context:
            yield from _leaf_errors(sub)
        return
    yield error


def _reason(error: ValidationError) -> tuple[tuple[str | int, ...], str] | None:
    """Field path and one-line reason for an error; None for echoes of another error."""
    path = tuple(error.absolute_path)
    v = error.validator
    if v in ("additionalProperties", "unevaluatedProperties"):
        instance = error.instance if isinstance(error.instance, dict) else {}
        if v == "unevaluatedProperties" and instance.get("toolchain") not in toolchains.target_toolchains():
            return None  # the unknown toolchain is the real problem, reported on its own
        allowed = _allowed_keys(error.schema, instance)
        unknown = sorted(k for k in instance if k not in allowed)
        if not unknown:
            return None  # keys of a branch that failed for another, reported reason
        return path + (unknown[0],), f"unknown key (allowed: {', '.join(sorted(allowed))})"
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return path + (missing,), "required field is missing"
    if v == "enum":
        return path, f"must be one of {', '.join(map(repr, error.validator_value))}, not {error.instance!r}"
    if v == "const":
        return path, f"must be {error.validator_value!r}, not {error.instance!r}"
    if v == "type":
        return path, f"must be of type {error.validator_value}, not {type(error.instance).__name__}"
    if v == "pattern":
        return path, f"{error.instance!r} does not have the required form ({_pattern_hint(error.schema)})"
    if v == "not" and isinstance(error.instance, str):
        return path, f"{error.instance!r} must not contain '..'"
    if v in ("minItems", "maxItems"):
        n = len(error.instance) if isinstance(error.instance, list) else "?"
        word = "at least" if v == "minItems" else "at most"
        return path, f"must have {word} {error.validator_value} item(s), has {n}"
    if v == "oneOf" and path and not error.context:
        return path, error.message
    return path, error.message


def _allowed_keys(schema_part: Mapping[str, Any], instance: Mapping[str, Any]) -> set[str]:
    """Keys a mapping may have, including those its toolchain's if/then branch adds."""
    keys = set(schema_part.get("properties", {}))
    defs = recipe_schema()["$defs"]
    for branch in schema_part.get("allOf", []):
        wanted = branch.get("if", {}).get("properties", {}).get("toolchain", {}).get("const")
        if wanted is not None and instance.get("toolchain") == wanted:
            keys |= set(defs[branch["then"]["$ref"].split("/")[-1]].get("properties", {}))
    return keys


def _pattern_hint(schema_part: Mapping[str, Any]) -> str:
    return schema_part.get("description") or f"pattern {schema_part.get('pattern')}"


def _schema_problems(doc: YamlDocument) -> list[RecipeProblem]:
    problems: dict[str, RecipeProblem] = {}  # one reason per field: the first is the clearest
    for error in _validator().iter_errors(doc.data):
        for leaf in _leaf_errors(error):
            found = _reason(leaf)
            if found is None:
                continue
            path, reason = found
            name = field_path(path)
            if name not in problems:
                problems[name] = RecipeProblem(name, reason, doc.line_of(path))
    return sorted(problems.values(), key=lambda p: (p.line or 0, p.field))


def _bad_urls(node: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """URLs the schema's pattern lets through but that cannot be parsed (e.g. a stray '[' reads as an IPv6 host)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("url", "mirrors"):
                for i, url in enumerate([v] if k == "url" else v):
                    try:
                        urlsplit(url)
                    except ValueError as e:
                        yield (at + ((k,) if k == "url" else (k, i))), f"is not a URL: {e}"
            else:
                yield from _bad_urls(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _bad_urls(v, at + (i,))


def _semantic_problems(data: dict[str, Any], path: Path) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules JSON Schema cannot say: cross-field facts and board tables."""
    out: list[tuple[tuple[str | int, ...], str]] = list(_bad_urls(data))
    if out:
        return out  # the rules below read the URLs
    if data["name"] != path.stem:
        out.append((("name",), f"must equal the file name {path.stem!r}"))

    if (why := mmpose_configs.problem(data["model"]["mmpose"]["config"])) is not None:
        out.append((("model", "mmpose", "config"), why))

    ckpt = data["model"]["checkpoint"]
    name_prefix = openmmlab_prefix(PurePosixPath(urlsplit(ckpt["url"]).path).name)
    if name_prefix and not ckpt["sha256"].startswith(name_prefix):
        out.append(
            (("model", "checkpoint", "sha256"), f"does not start with {name_prefix}, the prefix in the file name")
        )

    ids: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for i, t in enumerate(data["targets"]):
        if t["id"] in ids:
            out.append((("targets", i, "id"), f"duplicate target id {t['id']!r} (also targets[{ids[t['id']]}])"))
        ids.setdefault(t["id"], i)
        if t["output"] in outputs:
            out.append(
                (("targets", i, "output"), f"output {t['output']!r} is also used by targets[{outputs[t['output']]}]")
            )
        outputs.setdefault(t["output"], i)

    for i, t in enumerate(data["targets"]):
        out += [(("targets", i) + p, r) for p, r in _target_problems(t, ids, data)]
    return out


def _target_problems(t: dict[str, Any], ids: dict[str, int], data: dict[str, Any]):
    toolchain = toolchains.get(t["toolchain"])
    for j, ref in enumerate(toolchain.combines(t)):
        if ref not in ids:
            yield ("combine", j), f"names no target of this recipe: {ref!r}"
        elif ref == t["id"]:
            yield ("combine", j), "a target cannot combine itself"
    yield from toolchain.problems(t, data)
    if toolchain.needs_calibration(t) and "calibration" not in data:
        yield ("toolchain",), "this target quantizes to INT8 and needs the recipe's calibration block"


def _remote(d: Mapping[str, Any], kind: str) -> RemoteFile:
    return RemoteFile(d["url"], d["sha256"], d.get("size"), tuple(d.get("mirrors", ())), kind, d.get("max_size"))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """Frozen recipe values back to JSON types."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


_TARGET_COMMON = {"id", "toolchain", "output", "description"}


def _build(data: dict[str, Any], path: Path) -> Recipe:
    m = data["model"]
    n = m["normalization"]
    model = Model(
        task=m["task"],
        mmpose=MMPoseSource(m["mmpose"]["version"], m["mmpose"]["config"]),
        checkpoint=_remote(m["checkpoint"], "checkpoint"),
        input=TensorSpec(m["input"]["name"], tuple(m["input"]["shape"])),
        outputs=tuple(TensorSpec(o["name"], tuple(o["shape"])) for o in m["outputs"]),
        normalization=Normalization(tuple(n["mean"]), tuple(n["std"]), n["channel_order"], n["source"]),
    )
    e = data["export"]
    export = ExportSpec(e["opset"], e.get("tolerance", 1e-4), e.get("simplify", "none"))
    cal = data.get("calibration")
    calibration = Calibration(_remote(cal["archive"], "calibration"), cal["select"], cal["count"]) if cal else None
    ev = data.get("evaluation")
    evaluation = LabelledSet(_remote(ev["annotations"], "dataset"), _remote(ev["images"], "dataset"),
                             ev.get("annotations_member", ""), ev.get("images_prefix", ""), ev.get("limit")) if ev else None
    pv = data.get("preview")
    preview = Preview(_remote(pv["photo"], "dataset"), tuple(pv["box"]) if "box" in pv else None) if pv else None
    targets = []
    for t in data["targets"]:
        params = toolchains.get(t["toolchain"]).normalise({k: v for k, v in t.items() if k not in _TARGET_COMMON})
        targets.append(Target(t["id"], t["toolchain"], t["output"], _freeze(params), t.get("description", "")))
    seed = data.get("seed", {})
    return Recipe(
        name=data["name"],
        description=data.get("description", ""),
        model=model,
        export=export,
        targets=tuple(targets),
        calibration=calibration,
        evaluation=evaluation,
        preview=preview,
        seed_document=seed.get("document"),
        seed_reported=FrozenDict(seed.get("reported", {})),
        path=path,
        digest=sha256_json(data),
    )


def load_recipe(path: Path) -> Recipe:
    """Read, validate and freeze one recipe file. Raises RecipeError listing every problem."""
    path = Path(path)
    doc = read_yaml_mapping(path)
    problems = _schema_problems(doc)
    if not problems:
        problems = [
            RecipeProblem(field_path(p), reason, doc.line_of(p)) for p, reason in _semantic_problems(doc.data, path)
        ]
    if problems:
        raise RecipeError(str(path), problems[:MAX_ERRORS_SHOWN])
    return _build(doc.data, path)


def recipe_paths(recipes_dir: Path) -> list[Path]:
    return sorted(p for p in recipes_dir.glob("*.yaml") if p.is_file())
