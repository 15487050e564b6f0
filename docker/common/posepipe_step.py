"""What every in-image step script shares: its parameters, failing with a message, running a
tool, the recipe's pixel normalisation, and the checks that earn an artifact its label.

Copied into each toolchain image whose toolchain.yaml lists it under ``shared:``, and part of
that image's digest, so a change here rebuilds exactly those images. It runs under the
vendors' Pythons too (BMNNSDK2's is 3.7): standard library only at import time, and nothing read
then: the parameters are read on first use, so the helpers are unit-tested on the host
(tests/test_step_helpers.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

PARAMS_FILE = Path("/in/params.json")
TOOLCHAIN = os.environ.get("POSEPIPE_TOOLCHAIN", "posepipe")
_params = None


def params():
    """The step's parameters (what the planner put in /in/params.json), read on first use, so this module
    imports anywhere: its helpers are unit-tested on the host with parameters set by the test."""
    global _params
    if _params is None:
        _params = json.loads(PARAMS_FILE.read_text())
    return _params


def settings():
    """The target's settings among the parameters (what the recipe says of this target)."""
    return params().get("settings", {})


def out_dir():
    """Where the step writes its outputs: /out, or the folder the planner named for them."""
    return Path("/out") / params()["output"] if "output" in params() else Path("/out")


def __getattr__(name):
    """``from posepipe_step import PARAMS, SETTINGS, OUT``, as step scripts write it, reads them then (PEP 562)."""
    lazy = {"PARAMS": params, "SETTINGS": settings, "OUT": out_dir}
    if name not in lazy:
        raise AttributeError("module posepipe_step has no attribute {!r}".format(name))
    return lazy[name]()


def fail(message, code=2):
    """End the step with a message a person can act on (the engine shows the log's last lines)."""
    print("{} step failed: {}".format(TOOLCHAIN, message), file=sys.stderr, flush=True)
    sys.exit(code)


def run(argv, cwd=None, what=None):
    """Run a tool, echoing its command line; a non-zero exit fails the step."""
    code, _ = run_capture(argv, cwd, echo_only=True)
    if code != 0:
        fail("{} exited with {}".format(what or Path(str(argv[0])).name, code))


def run_capture(argv, cwd=None, echo_only=False):
    """Run a tool, echoing its command line and output; returns (exit code, output) for the caller to judge."""
    print("+ " + " ".join(str(a) for a in argv), flush=True)
    argv, cwd = [str(a) for a in argv], None if cwd is None else str(cwd)
    if echo_only:
        return subprocess.run(argv, cwd=cwd).returncode, ""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    return proc.wait(), "".join(lines)


def mean_std(order=None):
    """The recipe's normalisation ((x - mean) / std on the 0-255 scale) per channel, in ``order``
    ("RGB" or "BGR"; default: the model's own channel order)."""
    n = params()["normalization"]
    mean, std = list(n["mean"]), list(n["std"])
    if order is not None and order != n["channel_order"]:
        mean, std = mean[::-1], std[::-1]
    return mean, std


def normalise(rgb):
    """HWC uint8/float RGB pixels -> the model's normalised NCHW float32 batch of one."""
    import numpy as np

    x = np.asarray(rgb, dtype=np.float32)
    if params()["normalization"]["channel_order"] == "BGR":
        x = x[..., ::-1]
    mean, std = mean_std()
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def load_image(data):
    """Encoded image bytes -> resized to the model's input, normalised, NCHW float32 (batch of one)."""
    import io

    from PIL import Image

    _, _, h, w = params()["input"]["shape"]
    return normalise(Image.open(io.BytesIO(data)).convert("RGB").resize((w, h), Image.BILINEAR))


def decode(outputs):
    """The model's outputs as MMPose's codecs decode them: (keypoints (N, K, 2) in input pixels, scores (N, K)).

    Heatmaps (MSRAHeatmap): the arg-max of each channel, moved 0.25 heatmap pixel towards the higher
    neighbour on each axis (refine_keypoints), times input size / heatmap size; the score is the maximum,
    and a keypoint whose maximum is not above 0 is placed at -1 heatmap pixel, as MMPose places it.
    Regression (RegressionLabel): (x, y) in 0..1 of the input, times its size; score 1. SimCC
    (SimCCLabel): the arg-max bin of each axis over the bins per pixel (simcc_split_ratio); the score is
    the smaller of the two maxima."""
    import numpy as np

    _, _, h, w = params()["input"]["shape"]
    first = outputs[0]
    if params()["task"] == "topdown_simcc":  # outputs: simcc_x (N, K, W*ratio), simcc_y (N, K, H*ratio)
        x, y = outputs[0], outputs[1]
        points = np.stack([x.argmax(-1) * (w / x.shape[-1]), y.argmax(-1) * (h / y.shape[-1])], axis=-1).astype(np.float32)
        scores = np.minimum(x.max(-1), y.max(-1)).astype(np.float32)
        return np.where((scores > 0)[..., None], points, np.float32(-1)), scores
    if first.ndim == 3:  # regression head: normalised (x, y)
        return (first[..., :2] * np.array([w, h], np.float32)).astype(np.float32), np.ones(first.shape[:2], np.float32)
    n, k, hh, ww = first.shape
    maps = first.reshape(n * k, hh, ww)
    flat = maps.reshape(n * k, -1)
    ys, xs = np.divmod(flat.argmax(-1), ww)
    scores = flat.max(-1)
    xs, ys = np.where(scores > 0, xs, -1), np.where(scores > 0, ys, -1)
    rows = np.arange(n * k)
    inside_x = (xs > 1) & (xs < ww - 1) & (ys > 0) & (ys < hh)  # MMPose's own bounds for each axis
    inside_y = (ys > 1) & (ys < hh - 1) & (xs > 0) & (xs < ww)
    cx, cy = np.clip(xs, 1, ww - 2), np.clip(ys, 1, hh - 2)
    dx = np.where(inside_x, maps[rows, np.clip(ys, 0, hh - 1), cx + 1] - maps[rows, np.clip(ys, 0, hh - 1), cx - 1], 0)
    dy = np.where(inside_y, maps[rows, cy + 1, np.clip(xs, 0, ww - 1)] - maps[rows, cy - 1, np.clip(xs, 0, ww - 1)], 0)
    points = np.stack([xs + 0.25 * np.sign(dx), ys + 0.25 * np.sign(dy)], axis=-1) * np.array([w / ww, h / hh])
    return points.reshape(n, k, 2).astype(np.float32), scores.reshape(n, k).astype(np.float32)


def keypoints(outputs):
    """(N, K, 2) keypoints in input pixels, decoded as MMPose decodes (``decode``): what accuracy gates compare."""
    return decode(outputs)[0]


def agreement(reference, candidate):
    """Keypoint disagreement of ``candidate`` with ``reference`` (lists of batches of outputs), in input pixels."""
    import numpy as np

    _, _, h, w = params()["input"]["shape"]
    err = np.concatenate([np.linalg.norm(keypoints(c) - keypoints(r), axis=-1).ravel() for r, c in zip(reference, candidate)])
    return {
        "images": len(reference) * params()["input"]["shape"][0],
        "mean_error_px": float(err.mean()),
        "p95_error_px": float(np.percentile(err, 95)),
        "pck_2px": float((err <= 2.0).mean()),
        "normalized_mean_error": float(err.mean() / np.hypot(w, h)),
    }


def max_abs_diff(reference, candidate):
    """The largest |reference - candidate| over paired outputs: arrays, or lists of them (say, one list per input)."""
    import numpy as np

    def pairs(r, c):
        if isinstance(r, (list, tuple)):
            for rr, cc in zip(r, c):
                yield from pairs(rr, cc)
        else:
            yield np.asarray(r), np.asarray(c)

    return max(float(np.abs(a - b).max()) for a, b in pairs(reference, candidate))


def limits():
    """The recipe's accuracy limits for this target (none set: figures are recorded, but no check)."""
    return {k: settings()[k] for k in ("max_keypoint_error_px", "max_normalized_error") if k in settings()}


def gate(measured):
    """What in ``measured`` breaks the recipe's limits, as sentences (empty: it passed)."""
    problems = []
    if "max_keypoint_error_px" in settings() and measured["mean_error_px"] > settings()["max_keypoint_error_px"]:
        problems.append("mean keypoint error {:.3f} px > {} px".format(measured["mean_error_px"], settings()["max_keypoint_error_px"]))
    if "max_normalized_error" in settings() and measured["normalized_mean_error"] > settings()["max_normalized_error"]:
        problems.append("normalised mean error {:.4f} > {}".format(measured["normalized_mean_error"], settings()["max_normalized_error"]))
    return problems


def batches(images):
    """Single-image arrays grouped into the model's fixed batch size (a remainder is left out)."""
    import numpy as np

    b = params()["input"]["shape"][0]
    return [np.concatenate(images[i:i + b]) for i in range(0, len(images) - b + 1, b)]


def held_out_inputs():
    """The calibration step's held-out images (as many as the planner asked it for), normalised and
    batched: what accuracy gates compare on."""
    listing = json.loads(Path("/in/calibration/list.json").read_text())
    if not listing["held_out"]:
        fail("the calibration step held out no images, so there is nothing to check the model on")
    return batches([load_image((Path("/in/calibration") / e["file"]).read_bytes()) for e in listing["held_out"]])


def check(name, passed, **figures):
    """One recorded check: posepipe labels a target 'verified' only if its own checks passed."""
    return {"name": name, "passed": bool(passed), "figures": figures}


def write_report(report, path=None):
    """Write report.json (with its "checks") beside the outputs and echo a one-line summary."""
    path = path or out_dir() / "report.json"
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    for c in report.get("checks", []):
        print("check {}: {}".format(c["name"], "passed" if c["passed"] else "FAILED"), flush=True)
