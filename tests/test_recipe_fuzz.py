"""Hypothesis mutates the real recipes: every outcome is a Recipe or a RecipeError."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.errors import RecipeError
from pipelines.core.layout import REPO_ROOT
from pipelines.core.recipe import load_recipe, recipe_paths
from pipelines.core.schema import recipe_schema

SOURCES = {p.stem: p.read_text() for p in recipe_paths(REPO_ROOT / "recipes")}
DATA = {k: yaml.safe_load(v) for k, v in SOURCES.items()}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False),
    st.text(max_size=20), st.just("0x438E0000"), st.just("../x"), st.just("int8"),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _mutate(data, path, op, value):
    data = copy.deepcopy(data)
    if not path:
        return value if op == "replace" else data
    parent = data
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif op == "add" and isinstance(parent, dict):
        parent[str(value)[:12] or "k"] = value
    elif op == "add" and isinstance(parent, list):
        parent.append(value)
    return data


@st.composite
def mutated_documents(draw):
    name = draw(st.sampled_from(sorted(DATA)))
    data = DATA[name]
    paths = list(_paths(data))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        data = _mutate(data, path, draw(st.sampled_from(["delete", "replace", "add"])), draw(values))
        paths = list(_paths(data)) or [()]
    return name, yaml.safe_dump(data, allow_unicode=True)


@st.composite
def mangled_text(draw):
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        text = text[:i] + draw(st.text(alphabet="-:[]{}&*!|>'\"#\n 0aZ", max_size=6)) + text[j:]
    return name, text


def _check(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.yaml"
        path.write_text(text)
        try:
            recipe = load_recipe(path)
        except RecipeError as e:
            lines = text.count("\n") + 1
            assert e.problems, "a refused recipe names at least one problem"
            for p in e.problems:
                assert p.reason.strip() and "\n" not in p.reason, p  # one line a person can read
                assert p.line is None or 1 <= p.line <= lines, f"{p} points past the file's {lines} lines"
                assert str(e).count(str(p)) >= 1
            return
        # accepted: then the schema accepts the same data, and loading again gives the same recipe
        data = yaml.safe_load(text)
        assert not list(jsonschema.Draft202012Validator(recipe_schema()).iter_errors(data))
        assert load_recipe(path).digest == recipe.digest and recipe.name == name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_structural_mutations_never_crash(doc):
    _check(*doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_text())
def test_text_mutations_never_crash(doc):
    _check(*doc)
