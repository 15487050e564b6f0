"""What every in-image step script shares: its parameters, failing with a message, running a
tool, the recipe's pixel normalisation, and the checks that earn an artifact its label.

Copied into each toolchain image whose toolchain.yaml lists it under ``shared:``, and part of
that image's digest, so a change here rebuilds exactly those images. It runs under the
vendors' Pythons too (BMNNSDK2's is 3.7): standard library only at import time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

PARAMS = json.loads(Path("/in/params.json").read_text())
SETTINGS = PARAMS.get("settings", {})
OUT = Path("/out") / PARAMS["output"] if "output" in PARAMS else Path("/out")
TOOLCHAIN = os.environ.get("POSEPIPE_TOOLCHAIN", "posepipe")


def fail(message, code=2):
    """End the step with a message a person can act on (the engine shows the log's last lines)."""
    print("{} step failed: {}".format(TOOLCHAIN, message), file=sys.stderr, flush=True)
    sys.exit(code)


def run(argv, cwd=None, what=None):
    """Run a tool, echoing its command line; a non-zero exit fails the step."""
    print("+ " + " ".join(str(a) for a in argv), flush=True)
    res = subprocess.run([str(a) for a in argv], cwd=None if cwd is None else str(cwd))
    if res.returncode != 0:
        fail("{} exited with {}".format(what or Path(str(argv[0])).name, res.returncode))


def mean_std(order=None):
    """The recipe's normalisation ((x - mean) / std on the 0-255 scale) per channel, in ``order``
    ("RGB" or "BGR"; default: the model's own channel order)."""
    n = PARAMS["normalization"]
    mean, std = list(n["mean"]), list(n["std"])
    if order is not None and order != n["channel_order"]:
        mean, std = mean[::-1], std[::-1]
    return mean, std


def normalise(rgb):
    """HWC uint8/float RGB pixels -> the model's normalised NCHW float32 batch of one."""
    import numpy as np

    x = np.asarray(rgb, dtype=np.float32)
    if PARAMS["normalization"]["channel_order"] == "BGR":
        x = x[..., ::-1]
    mean, std = mean_std()
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def load_image(data):
    """Encoded image bytes -> resized to the model's input, normalised, NCHW float32 (batch of one)."""
    import io

    from PIL import Image

    _, _, h, w = PARAMS["input"]["shape"]
    return normalise(Image.open(io.BytesIO(data)).convert("RGB").resize((w, h), Image.BILINEAR))


def check(name, passed, **figures):
    """One recorded check: posepipe labels a target 'verified' only if its own checks passed."""
    return {"name": name, "passed": bool(passed), "figures": figures}


def write_report(report, path=None):
    """Write report.json (with its "checks") beside the outputs and echo a one-line summary."""
    path = path or OUT / "report.json"
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    for c in report.get("checks", []):
        print("check {}: {}".format(c["name"], "passed" if c["passed"] else "FAILED"), flush=True)
