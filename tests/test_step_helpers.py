"""docker/common/posepipe_step.py on the host: what every step script decodes, compares and gates with.

The module reads its parameters on first use, so it imports here; each test sets the parameters a step
would get."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest

from pipelines.core.layout import REPO_ROOT


@pytest.fixture
def step(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "docker" / "common"))
    sys.modules.pop("posepipe_step", None)
    module = importlib.import_module("posepipe_step")
    monkeypatch.setattr(module, "PARAMS_FILE", tmp_path / "params.json")
    yield module
    sys.modules.pop("posepipe_step", None)


def use(step, **params):
    """The step's /in/params.json: a 64x48 input and ``params``, read afresh on next use."""
    step.PARAMS_FILE.write_text(json.dumps({"input": {"shape": [1, 3, 64, 48]}, **params}))
    step._params = None


def test_it_imports_without_parameters_and_reads_them_on_first_use(step):
    assert step._params is None  # nothing read at import: there is no /in/params.json here
    with pytest.raises(FileNotFoundError):
        step.params()
    use(step, output="face_cpu", settings={"max_keypoint_error_px": 2})
    assert step.PARAMS["output"] == "face_cpu" and step.SETTINGS == {"max_keypoint_error_px": 2}
    assert str(step.OUT) == "/out/face_cpu"
    with pytest.raises(AttributeError, match="no attribute 'PARMS'"):
        step.PARMS  # noqa: B018 - a typo is an error, not a lazy read


def test_heatmaps_decode_as_mmpose_does(step):
    use(step, task="topdown_heatmap")
    maps = np.zeros((1, 2, 16, 12), np.float32)  # heatmaps at 1/4 of the 64x48 input
    maps[0, 0, 5, 7], maps[0, 0, 5, 8], maps[0, 0, 4, 7] = 1.0, 0.5, 0.25  # peak; higher neighbour right and above
    points, scores = step.decode([maps])
    assert points[0, 0].tolist() == [(7 + 0.25) * 4, (5 - 0.25) * 4]  # a quarter pixel towards each higher neighbour
    assert scores[0].tolist() == [1.0, 0.0]
    assert points[0, 1].tolist() == [-4.0, -4.0]  # no maximum above 0: MMPose's -1 heatmap pixel


def test_simcc_and_regression_heads_decode_to_input_pixels(step):
    use(step, task="topdown_simcc")
    x, y = np.zeros((1, 1, 96), np.float32), np.zeros((1, 1, 128), np.float32)  # split ratio 2
    x[0, 0, 30], y[0, 0, 101] = 0.9, 0.6
    points, scores = step.decode([x, y])
    assert points[0, 0].tolist() == [15.0, 50.5] and scores[0, 0] == pytest.approx(0.6)
    use(step, task="topdown_regression")
    points, scores = step.decode([np.array([[[0.5, 0.25]]], np.float32)])
    assert points[0, 0].tolist() == [24.0, 16.0] and scores.tolist() == [[1.0]]


def test_agreement_and_the_gate_say_what_breaks_the_limits(step):
    use(step, task="topdown_regression", settings={"max_keypoint_error_px": 1.0, "max_normalized_error": 0.5})
    reference = [[np.array([[[0.5, 0.5], [0.25, 0.25]]], np.float32)]]
    moved = [[np.array([[[0.5, 0.5], [0.25 + 3 / 48, 0.25]]], np.float32)]]  # one keypoint 3 px off
    measured = step.agreement(reference, moved)
    assert measured["mean_error_px"] == pytest.approx(1.5) and measured["pck_2px"] == 0.5 and measured["images"] == 1
    assert step.gate(measured) == ["mean keypoint error 1.500 px > 1.0 px"]
    assert step.limits() == {"max_keypoint_error_px": 1.0, "max_normalized_error": 0.5}
    assert step.gate(step.agreement(reference, reference)) == []


def test_max_abs_diff_pairs_outputs_however_they_are_grouped(step):
    a, b = np.zeros((2, 3), np.float32), np.full((2, 3), 0.25, np.float32)
    assert step.max_abs_diff([a, a], [a, b]) == 0.25
    assert step.max_abs_diff([[a], [a, a]], [[a], [a, -b * 2]]) == 0.5  # one list of outputs per input
