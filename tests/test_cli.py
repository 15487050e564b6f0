"""The Invoke layer: help on every argument, exit codes by cause, no fake success."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys

import pytest
from invoke.exceptions import Exit
from invoke.tasks import Task

from pipelines.entry import tasks
from pipelines.commands import clean as cleaning
from pipelines.commands import validate as validating
from pipelines.core import errors
from pipelines.cli.adapter import command
from pipelines.core.layout import REPO_ROOT, Layout

TASKS = {name: obj for name, obj in vars(tasks).items() if isinstance(obj, Task)}
assert TASKS, "no tasks found: the parametrized tests below would pass vacuously"


def test_all_documented_tasks_exist():
    names = {t.name for t in TASKS.values()}
    assert names >= {"validate", "list", "build", "fetch", "images", "publish", "download", "matrix", "clean", "gc", "lock"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_a_docstring_and_help_for_every_argument(name):
    t = TASKS[name]
    assert (t.body.__doc__ or "").strip(), name
    params = [p for p in inspect.signature(t.body).parameters if p != "c"]
    assert sorted(t.help) == sorted(params), f"{name}: help for {sorted(t.help)} but arguments {params}"


def every_error_class() -> list[type[errors.PosepipeError]]:
    """Found, not listed: a new error class is checked here without editing this test."""
    found, todo = [], list(errors.PosepipeError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


ALL_ERRORS = every_error_class()


def test_exit_codes_are_distinct_per_cause():
    by_cause = {e.label: e.exit_code for e in ALL_ERRORS}  # InvalidRecipes is RecipeError's cause, many times
    codes = list(by_cause.values())
    assert len(ALL_ERRORS) >= 10
    assert len(codes) == len(set(codes)) and 0 not in codes and 1 not in codes


@pytest.mark.parametrize("error", ALL_ERRORS)
def test_wrapper_turns_each_error_into_its_exit_code(error, capsys):
    exc = error("/r.yaml", []) if error is errors.RecipeError else error([]) if error is errors.InvalidRecipes else error("what went wrong")

    @command
    def body():
        raise exc

    with pytest.raises(Exit) as e:
        body()
    assert e.value.code == error.exit_code
    assert error.label in capsys.readouterr().err


def test_ctrl_c_exits_130(capsys):
    @command
    def body():
        raise KeyboardInterrupt

    with pytest.raises(Exit) as e:
        body()
    assert e.value.code == 130


def test_readme_lists_every_exit_code():
    """The README's exit-code table, and no other table, has exactly the codes the errors use."""
    section = (REPO_ROOT / "README.md").read_text().split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    documented = {int(code): cause.strip() for code, cause in rows}
    assert set(documented) == {0, errors.INTERRUPTED_EXIT_CODE} | {err.exit_code for err in ALL_ERRORS}
    assert all(documented.values())


def test_validate_of_a_bad_checkout_raises_invalid_recipes(tmp_path):
    (tmp_path / "recipes").mkdir()
    shutil.copy(REPO_ROOT / "recipes" / "litehrnet.yaml", tmp_path / "recipes")
    (tmp_path / "recipes" / "broken.yaml").write_text("name: [\n")
    with pytest.raises(errors.InvalidRecipes) as e:
        validating.validate(Layout(tmp_path, tmp_path / "store"), None)
    assert e.value.exit_code == errors.RecipeError.exit_code
    assert "broken.yaml" in str(e.value) and "litehrnet" not in str(e.value)


def test_clean_removes_only_what_was_named(tmp_path):
    lay = Layout(tmp_path, tmp_path / "store")
    for t in ("a", "b"):
        (lay.artifacts / "r" / t).mkdir(parents=True)
    cleaning.clean(lay, "r", "a")
    assert not (lay.artifacts / "r" / "a").exists() and (lay.artifacts / "r" / "b").exists()
    with pytest.raises(errors.UsageError):
        cleaning.clean(lay, None, "a")


def invoke(*args: str, root=None, **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "POSEPIPE_VENDOR_CONFIG": "/nonexistent/vendor.yaml", **({"POSEPIPE_ROOT": str(root)} if root else {}),
           **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env
    )


def test_invoke_list_and_validate_work():
    assert invoke("--list").returncode == 0
    res = invoke("validate")
    assert res.returncode == 0, res.stderr
    assert "7 of 7 recipe(s) valid" in res.stdout


def test_invoke_list_shows_toolchain_and_status():
    res = invoke("list", "--recipe", "face_deeppose")
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if "│" in line}
    assert "drpai_tvm_cpu" in rows["drpai_cpu"] and "face_deeppose_cpu" in rows["drpai_cpu"]
    assert rows["drpai_cpu"].rstrip().endswith("ready")  # the open CPU-only mode needs nothing from the user
    assert "not provisioned" in rows["drpai"] and rows["ort_int8"].rstrip().endswith("ready")
    assert "the Docker engine (reachable)" in res.stderr


def test_invoke_list_accounts_for_the_export_and_calibration_toolchains_and_the_engine(tmp_path):
    (tmp_path / "recipes").mkdir()
    shutil.copy(REPO_ROOT / "recipes" / "face_deeppose.yaml", tmp_path / "recipes")
    shutil.copytree(REPO_ROOT / "docker", tmp_path / "docker")
    shutil.rmtree(tmp_path / "docker" / "calibration")  # INT8 targets calibrate: they cannot build here
    res = invoke("list", "--recipe", "face_deeppose", root=tmp_path)
    rows = {line.split("│")[1].strip(): line.split("│")[-1].strip() for line in res.stdout.splitlines() if "│" in line}
    assert rows["ort_int8"] == "not implemented (calibration)" and rows["ort_fp32"] == "ready"
    shutil.rmtree(tmp_path / "docker" / "mmpose")  # no export: nothing builds
    res = invoke("list", "--recipe", "face_deeppose", root=tmp_path, DOCKER_HOST="unix:///nonexistent.sock")
    rows = {line.split("│")[1].strip(): line.split("│")[-1].strip() for line in res.stdout.splitlines() if "│" in line}
    assert rows["ort_fp32"] == "not implemented (mmpose)"
    shutil.copytree(REPO_ROOT / "docker" / "mmpose", tmp_path / "docker" / "mmpose")
    res = invoke("list", "--recipe", "face_deeppose", root=tmp_path, DOCKER_HOST="unix:///nonexistent.sock")
    rows = {line.split("│")[1].strip(): line.split("│")[-1].strip() for line in res.stdout.splitlines() if "│" in line}
    assert rows["ort_fp32"] == "no Docker engine" and "cannot reach the Docker engine" in res.stderr


def test_build_without_its_toolchains_fails_loudly_and_claims_nothing(tmp_path):
    (tmp_path / "recipes").mkdir()
    shutil.copy(REPO_ROOT / "recipes" / "face_deeppose.yaml", tmp_path / "recipes")
    res = invoke("build", "--recipe", "face_deeppose", root=tmp_path)  # a checkout with no docker/ stages
    assert res.returncode == errors.NotImplementedYet.exit_code
    assert "toolchain mmpose is not implemented" in res.stderr and "nothing was built" in res.stderr
    assert res.stdout == ""


def test_unknown_recipe_is_a_usage_error_without_traceback():
    res = invoke("build", "--recipe", "nope")
    assert res.returncode == errors.UsageError.exit_code
    assert "no recipe named 'nope'" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("name", sorted(TASKS))
def test_dash_h_is_help_for_every_task(name):
    res = subprocess.run([sys.executable, "-m", "invoke", TASKS[name].name, "-h"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert res.returncode == 0 and "Usage:" in res.stdout, res.stdout + res.stderr


def test_remote_cache_setting_comes_from_flag_then_environment_then_config(tmp_path, monkeypatch):
    from pipelines.edges.settings import cache_setting

    config = tmp_path / "config.yaml"
    monkeypatch.setenv("POSEPIPE_CONFIG", str(config))
    monkeypatch.delenv("POSEPIPE_CACHE", raising=False)
    monkeypatch.delenv("POSEPIPE_CACHE_READ_ONLY", raising=False)
    assert cache_setting() is None
    config.write_text("cache: oci://cfg:5000/team\ncache_read_only: true\n")
    assert (cache_setting().url, cache_setting().read_only) == ("oci://cfg:5000/team", True)
    monkeypatch.setenv("POSEPIPE_CACHE", "oci://env/team")
    assert cache_setting().url == "oci://env/team"
    assert cache_setting("oci://flag/team").url == "oci://flag/team"
    config.write_text("cache: [not, a, url]\n")
    monkeypatch.delenv("POSEPIPE_CACHE")
    with pytest.raises(errors.UsageError, match="cache must be a string"):
        cache_setting()
    with pytest.raises(errors.UsageError, match="oci://HOST"):
        cache_setting("https://example.org/cache")
